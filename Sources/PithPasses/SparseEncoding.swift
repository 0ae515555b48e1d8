import PithIR

/// Sparse (CSR) storage of pruned tensors.
public struct EncodeOptions: Sendable, Codable, Equatable {
    /// Gap bits: `nil` searches 2…8 for the smallest total; a number fixes it (1…16).
    public var indexBits: Int?
    /// Never store selected tensors as CSR, even when that would be smaller.
    public var dense: Bool?

    public init(indexBits: Int? = nil, dense: Bool? = nil) {
        self.indexBits = indexBits
        self.dense = dense
    }

    enum CodingKeys: String, CodingKey { case indexBits = "index_bits", dense }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        dense = try container.decodeIfPresent(Bool.self, forKey: .dense)
        if let number = try? container.decodeIfPresent(Int.self, forKey: .indexBits) {
            indexBits = number
        } else if let text = try container.decodeIfPresent(String.self, forKey: .indexBits), text != "auto" {
            throw DecodingError.dataCorruptedError(forKey: .indexBits, in: container, debugDescription: "index_bits is `auto` or a number, not `\(text)`")
        } else {
            indexBits = nil
        }
    }

    func validate(_ label: String) throws {
        if let indexBits, !(1...16).contains(indexBits) {
            throw PassError(.invalidRecipe, "\(label): encode index_bits must be 1…16 or auto, got \(indexBits)")
        }
    }
}

extension EncodeOptions: CompressionPass {
    static let action = "encode"

    /// Marks the selected tensors; their storage is chosen once every pass has run (`settleStorage`).
    func run(selecting selector: TensorSelector, in run: inout CompressionRun, step: Int) {
        for id in run.select(selector, step: step, action: Self.action) {
            var s = run.state(id)
            s.encode = self
            run.working[id] = s
        }
    }
}

extension CompressionRun {
    /// Gives every tensor a pass touched its final storage: CSR when that is smaller than its
    /// storage now, or whenever an `encode` step fixed the gap width; never for tensors without
    /// zeros, factorized tensors, or tensors an `encode` step keeps dense.
    mutating func settleStorage() {
        // CSR candidates, searched on every core (the index-bit search is the costly part).
        let candidates: [(id: TensorID, tensor: Tensor, values: [Float], indexBits: Int?)] = order.compactMap { id in
            guard let s = working[id], s.encode?.dense != true, s.factored == nil, s.nonzero < model.tensors[id].count else { return nil }
            let tensor = provisional(id, s)
            // Unless asked for, skip tensors CSR cannot shrink: every entry costs its weight bits and at
            // least one index bit, which must come in under the dense weight bits.
            let weightBits = tensor.storageBits.weights
            if s.encode?.indexBits == nil, tensor.count > 0, s.nonzero * (weightBits / tensor.count + 1) >= weightBits { return nil }
            return (id, tensor, s.values, s.encode?.indexBits)
        }
        var sparseEncodings: [TensorID: SparseStorage] = [:]
        for (id, encoding) in zip(
            candidates.map(\.id),
            Parallel.map(candidates.indices.map { $0 }) { i in
                SparseEncoding.encode(candidates[i].tensor, values: candidates[i].values, indexBits: candidates[i].indexBits)
            })
        { sparseEncodings[id] = encoding }
        for id in order {
            guard let s = working[id] else { continue }
            var tensor = provisional(id, s)
            if let sparse = sparseEncodings[id] {
                var candidate = tensor
                candidate.storage = .sparse(sparse)
                if s.encode?.indexBits != nil || candidate.storageBits.total < tensor.storageBits.total {
                    tensor = candidate
                }
            }
            model.tensors[id] = tensor
        }
    }
}

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
