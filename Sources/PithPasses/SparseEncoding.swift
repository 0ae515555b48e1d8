import PithIR

/// CSR with relative column indices (Deep Compression §2), see `SparseStorage`.
enum SparseEncoding {
    /// Gap widths tried when none is given.
    static let searchedIndexBits = 2...8

    /// Encodes `tensor` (whose current storage is dense, codebook or quantized, over the logical
    /// `values`) as CSR. With `indexBits` nil, the width in 2…8 with the fewest total bits is chosen.
    /// Nil when the storage cannot hold fillers (a codebook without a zero code).
    static func encode(_ tensor: Tensor, values: [Float], indexBits: Int?) -> SparseStorage? {
        if case .codebook(let codebook) = tensor.storage, !codebook.zeroIsReserved { return nil }
        let rows = tensor.rowCount
        let columns = rows == 0 ? 0 : tensor.count / rows
        let candidates = indexBits.map { [$0] } ?? Array(searchedIndexBits)
        let valueBits: Int
        switch tensor.storage {
        case .codebook(let c): valueBits = c.bits
        case .quantized(let q): valueBits = q.codeBits
        default: valueBits = tensor.dtype.bitWidth
        }
        // Choose the width: entries(b) · (b + valueBits) + row pointers.
        var best: (bits: Int, total: Int)?
        for b in candidates {
            let entries = nonzeroCount(values) + fillers(values, rows: rows, columns: columns, indexBits: b)
            let total = entries * (b + valueBits) + (rows + 1) * Swift.max(1, Int.bitWidth - entries.leadingZeroBitCount)
            if best == nil || total < best!.total { best = (b, total) }
        }
        guard let chosen = best?.bits else { return nil }
        let limit = 1 << chosen
        var rowStarts = [0], gaps: [UInt16] = [], positions: [Int] = [], fillerCount = 0
        for row in 0..<rows {
            var previous = -1
            for column in 0..<columns where values[row * columns + column] != 0 {
                var gap = column - previous - 1
                while gap > limit - 1 {  // a filler zero `limit` columns on
                    previous += limit
                    gaps.append(UInt16(limit - 1))
                    positions.append(row * columns + previous)
                    fillerCount += 1
                    gap -= limit
                }
                gaps.append(UInt16(gap))
                positions.append(row * columns + column)
                previous = column
            }
            rowStarts.append(gaps.count)
        }
        let entryValues: SparseStorage.EntryValues
        switch tensor.storage {
        case .codebook(var codebook):
            codebook.indices = positions.map { codebook.indices[$0] }  // fillers sit on zeros: code 0
            entryValues = .codebook(codebook)
        case .quantized(var quantized):
            quantized.codes = positions.map { quantized.codes[$0] }
            entryValues = .quantized(quantized)
        default:
            entryValues = .dense(Tensor.encode(positions.map { values[$0] }, as: tensor.dtype))
        }
        return SparseStorage(rows: rows, columns: columns, indexBits: chosen, rowStarts: rowStarts, gaps: gaps, fillers: fillerCount, values: entryValues)
    }

    static func nonzeroCount(_ values: [Float]) -> Int { values.reduce(0) { $0 + ($1 == 0 ? 0 : 1) } }

    /// Fillers needed at gap width `indexBits`: ⌊gap / 2^b⌋ for every run of zeros before a nonzero.
    static func fillers(_ values: [Float], rows: Int, columns: Int, indexBits: Int) -> Int {
        let limit = 1 << indexBits
        var total = 0
        for row in 0..<rows {
            var previous = -1
            for column in 0..<columns where values[row * columns + column] != 0 {
                total += (column - previous - 1) / limit
                previous = column
            }
        }
        return total
    }
}
