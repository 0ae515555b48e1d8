import Foundation
import PithIR

/// Sparse (CSR) storage of pruned tensors.
public struct EncodeOptions: Sendable, Codable, Equatable {
    /// Gap bits: `nil` searches 2…8 for the smallest total once entropy-coded; a number fixes it (1…16).
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
    /// storage now once entropy-coded (`SparseEncoding.estimatedCodedBits`), or whenever an `encode`
    /// step fixed the gap width; never for tensors without zeros or tensors an `encode` step keeps
    /// dense. The stored factors of a factorized tensor are each settled the same way.
    mutating func settleStorage() {
        // CSR candidates, searched on every core (the index-bit search is the costly part).
        // An encoded tensor's values are decoded where they are used (`Working.values`), one tensor
        // at a time per core, so that the codes of every tensor are all that stays in memory.
        let candidates: [(id: TensorID, tensor: Tensor, state: Working, indexBits: Int?)] = order.compactMap { id in
            guard let s = working[id], s.encode?.dense != true, s.factored == nil else { return nil }
            let nonzero = s.nonzero
            guard nonzero < model.tensors[id].count else { return nil }
            // Dense values are not encoded into a buffer for the search (the tensor as it came has the
            // same dtype, shape and bits); every candidate's would be a copy of the model at once.
            let tensor: Tensor
            if s.codebook == nil, s.quantized == nil, case .dense = model.tensors[id].storage {
                tensor = model.tensors[id]
            } else {
                tensor = provisional(id, s)
            }
            // Unless asked for, skip tensors CSR cannot shrink: every entry costs its weight bits and at
            // least one index bit, which must come in under the dense weight bits.
            let weightBits = tensor.storageBits.weights
            if s.encode?.indexBits == nil, tensor.count > 0, nonzero * (weightBits / tensor.count + 1) >= weightBits { return nil }
            return (id, tensor, s, s.encode?.indexBits)
        }
        var sparseEncodings: [TensorID: SparseStorage] = [:]
        for (id, encoding) in zip(
            candidates.map(\.id),
            Parallel.map(candidates.indices.map { $0 }) { i in
                let (tensor, state) = (candidates[i].tensor, candidates[i].state)
                // An encoded tensor is decoded a row at a time; other values are at hand.
                if state.isEncoded {
                    let columns = tensor.rowCount == 0 ? 0 : tensor.count / tensor.rowCount
                    return SparseEncoding.encode(tensor, indexBits: candidates[i].indexBits) {
                        tensor.decodedFloats(elements: $0 * columns..<($0 + 1) * columns)
                    }
                }
                return SparseEncoding.encode(tensor, values: state.values, indexBits: candidates[i].indexBits)
            })
        { sparseEncodings[id] = encoding }
        for id in order {
            guard let s = working[id] else { continue }
            var tensor = provisional(id, s)
            if case .factored(var factored) = tensor.storage, factored.encodings != nil, s.encode?.dense != true {
                factored.encodings = Self.sparseFactors(factored, tensor: tensor, indexBits: s.encode?.indexBits)
                tensor.storage = .factored(factored)
            }
            if let sparse = sparseEncodings[id] {
                var candidate = tensor
                candidate.storage = .sparse(sparse)
                if s.encode?.indexBits != nil || SparseEncoding.estimatedCodedBits(candidate) < SparseEncoding.estimatedCodedBits(tensor) {
                    tensor = candidate
                }
            }
            model.tensors[id] = tensor
        }
    }
}

extension CompressionRun {
    /// The encodings of a factored tensor's stored factors, each in CSR where that is smaller (or
    /// whenever `indexBits` is fixed) and the factor has zeros.
    static func sparseFactors(_ factored: FactoredStorage, tensor: Tensor, indexBits: Int?) -> [TensorStorage]? {
        guard var encodings = factored.encodings else { return nil }
        let shapes = factored.factorShapes(tensorShape: tensor.shape)
        for i in encodings.indices where !factored.factors[i].allSatisfy({ $0 != 0 }) {
            guard case .quantized = encodings[i] else { continue }
            let factor = Tensor(name: tensor.name, dtype: .float32, shape: shapes[i], storage: encodings[i], origin: tensor.origin)
            guard let sparse = SparseEncoding.encode(factor, values: factored.factors[i], indexBits: indexBits) else { continue }
            var candidate = factor
            candidate.storage = .sparse(sparse)
            if indexBits != nil || SparseEncoding.estimatedCodedBits(candidate) < SparseEncoding.estimatedCodedBits(factor) { encodings[i] = .sparse(sparse) }
        }
        return encodings
    }
}

/// CSR with relative column indices (Deep Compression §2), see `SparseStorage`.
enum SparseEncoding {
    /// Gap widths tried when none is given.
    static let searchedIndexBits = 2...8

    /// Encodes `tensor` (whose current storage is dense, codebook or quantized, over the logical
    /// `values`) as CSR. With `indexBits` nil, the width in 2…8 whose CSR costs the fewest bits once
    /// entropy-coded (as the container codes it; `codedBits`) is chosen. Nil when the storage cannot
    /// hold fillers (a codebook without a zero code).
    static func encode(_ tensor: Tensor, values: [Float], indexBits: Int?) -> SparseStorage? {
        let rows = tensor.rowCount
        let columns = rows == 0 ? 0 : tensor.count / rows
        return encode(tensor, indexBits: indexBits) { Array(values[$0 * columns..<($0 + 1) * columns]) }
    }

    /// As `encode(_:values:indexBits:)`, with the logical values of row r given by `row(r)` (its
    /// `columns` values): a codebook or quantized tensor can decode one row at a time instead of whole.
    static func encode(_ tensor: Tensor, indexBits: Int?, row: (Int) -> [Float]) -> SparseStorage? {
        if case .codebook(let codebook) = tensor.storage, !codebook.zeroIsReserved { return nil }
        let rows = tensor.rowCount
        let columns = rows == 0 ? 0 : tensor.count / rows
        let chosen: Int
        if let indexBits {
            chosen = indexBits
        } else {
            let nonzeros = NonzeroSummary(tensor.storage, rows: rows, columns: columns, row: row)
            var best: (bits: Int, total: Double)?
            for b in searchedIndexBits {
                let total = codedBits(nonzeros, indexBits: b, valueBits: tensor.dtype.bitWidth, rows: rows)
                if best == nil || total < best!.total { best = (b, total) }
            }
            chosen = best!.bits
        }
        let limit = 1 << chosen
        // Each entry's value is taken from the element it stands for as the rows are walked: a
        // codebook index or quantized code (fillers sit on zeros: code 0 of a reserved-zero
        // codebook, the zero point's code), or the value itself.
        var indices: [UInt8] = [], codes: QuantizedCodes?, dense: [Float] = []
        var take: (_ element: Int, _ value: Float) -> Void
        switch tensor.storage {
        case .codebook(let codebook): take = { element, _ in indices.append(codebook.indices[element]) }
        case .quantized(let quantized):
            codes = QuantizedCodes(count: 0, width: quantized.codes.width)
            take = { element, _ in codes!.append(quantized.codes[element]) }
        default: take = { _, value in dense.append(value) }
        }
        var rowStarts = [0], gaps: [UInt16] = [], fillerCount = 0
        for r in 0..<rows {
            let values = row(r)
            var previous = -1
            for column in 0..<columns where values[column] != 0 {
                var gap = column - previous - 1
                while gap > limit - 1 {  // a filler zero `limit` columns on
                    previous += limit
                    gaps.append(UInt16(limit - 1))
                    take(r * columns + previous, values[previous])
                    fillerCount += 1
                    gap -= limit
                }
                gaps.append(UInt16(gap))
                take(r * columns + column, values[column])
                previous = column
            }
            rowStarts.append(gaps.count)
        }
        let entryValues: SparseStorage.EntryValues
        switch tensor.storage {
        case .codebook(var codebook):
            codebook.indices = indices
            entryValues = .codebook(codebook)
        case .quantized(var quantized):
            quantized.codes = codes!
            entryValues = .quantized(quantized)
        default:
            entryValues = .dense(Tensor.encode(dense, as: tensor.dtype))
        }
        return SparseStorage(rows: rows, columns: columns, indexBits: chosen, rowStarts: rowStarts, gaps: gaps, fillers: fillerCount, values: entryValues)
    }

    static func nonzeroCount(_ values: [Float]) -> Int { values.reduce(0) { $0 + ($1 == 0 ? 0 : 1) } }

    /// An estimate of the bits `tensor` takes in a container, whose streams are Huffman-coded: each
    /// stream of symbols (codes, indices, gaps) at the length of its Huffman code (`huffmanBits`),
    /// dense values and tables as stored.
    static func estimatedCodedBits(_ tensor: Tensor) -> Double {
        func entropy<S: Sequence>(_ symbols: S) -> Double where S.Element: Hashable {
            var histogram: [S.Element: Int] = [:]
            for symbol in symbols { histogram[symbol, default: 0] += 1 }
            return Double(huffmanBits(Array(histogram.values)))
        }
        let bits = tensor.storageBits
        switch tensor.storage {
        case .codebook(let codebook): return entropy(codebook.indices) + Double(bits.tables)
        case .quantized(let quantized): return entropy(quantized.codes) + Double(bits.tables)
        case .sparse(let sparse):
            var total = entropy(sparse.gaps) + Double(bits.rowPointers + bits.tables)
            switch sparse.values {
            case .codebook(let codebook): total += entropy(codebook.indices)
            case .quantized(let quantized): total += entropy(quantized.codes)
            case .dense: total += Double(bits.weights)
            }
            return total
        default: return Double(bits.total)
        }
    }

    /// The bits of a Huffman code for symbols of these counts: Σ count · code length (at least a bit
    /// per symbol; without the container's limit on code lengths, which rarely binds).
    static func huffmanBits(_ counts: [Int]) -> Int {
        let weights = counts.filter { $0 > 0 }.sorted()
        guard weights.count > 1 else { return weights.first ?? 0 }
        // Two queues: the sorted leaves and the merged nodes (which come out sorted too); each merge
        // adds its weight once per level the symbols below it descend.
        var leaves = weights[...], merged: [Int] = [], next = 0, total = 0
        func smallest() -> Int {
            if next < merged.count, leaves.first.map({ merged[next] <= $0 }) ?? true {
                next += 1
                return merged[next - 1]
            }
            return leaves.removeFirst()
        }
        for _ in 1..<weights.count {
            let sum = smallest() + smallest()
            total += sum
            merged.append(sum)
        }
        return total
    }

    /// What the width search needs to know of a tensor's nonzeros, as counts: how many are
    /// preceded in their row by each number of zeros, and how often each code is stored (codebook
    /// indices or quantized codes; nil for dense values, which the estimate counts raw), with the
    /// code a filler stores. Counts, not lists, so that a tensor of millions of weights is searched
    /// without a list of millions.
    struct NonzeroSummary {
        /// runs[k]: nonzeros after k zeros, for k below 4,096; `longRuns` for longer runs.
        var runs = [Int](repeating: 0, count: 4096)
        var longRuns: [Int: Int] = [:]
        var count = 0
        var codes: [Int32: Int]?
        var filler: Int32 = 0

        init(_ storage: TensorStorage, rows: Int, columns: Int, row: (Int) -> [Float]) {
            var code: ((Int) -> Int32)?
            switch storage {
            case .codebook(let codebook): code = { Int32(codebook.indices[$0]) }
            case .quantized(let quantized):
                code = { quantized.codes[$0] }
                filler = quantized.zeroPoints.first ?? 0
            default: break
            }
            var histogram: [Int32: Int] = [:]
            for r in 0..<rows {
                let values = row(r)
                var previous = -1
                for column in 0..<columns where values[column] != 0 {
                    let run = column - previous - 1
                    if run < runs.count { runs[run] += 1 } else { longRuns[run, default: 0] += 1 }
                    count += 1
                    if let code { histogram[code(r * columns + column), default: 0] += 1 }
                    previous = column
                }
            }
            if code != nil { codes = histogram }
        }

        /// Calls `body` with each run length and how many nonzeros follow a run of that length.
        func forEachRun(_ body: (_ length: Int, _ count: Int) -> Void) {
            for (length, count) in runs.enumerated() where count > 0 { body(length, count) }
            for (length, count) in longRuns { body(length, count) }
        }
    }

    /// An estimate of the bits of a CSR with `indexBits`-bit gaps once the container has Huffman-coded
    /// its streams: gaps and values (fillers included) at the length of their Huffman codes, dense
    /// values `valueBits` each, row pointers as stored (32 bits).
    static func codedBits(_ nonzeros: NonzeroSummary, indexBits: Int, valueBits: Int, rows: Int) -> Double {
        let limit = 1 << indexBits
        var gaps = [Int](repeating: 0, count: limit)
        var fillerCount = 0
        nonzeros.forEachRun { run, count in
            gaps[run % limit] += count
            gaps[limit - 1] += run / limit * count
            fillerCount += run / limit * count
        }
        var total = Double(huffmanBits(gaps))
        if var histogram = nonzeros.codes {
            histogram[nonzeros.filler, default: 0] += fillerCount
            total += Double(huffmanBits(Array(histogram.values)))
        } else {
            total += Double((nonzeros.count + fillerCount) * valueBits)
        }
        return total + Double(32 * (rows + 1))
    }

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
