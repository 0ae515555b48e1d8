import Foundation
public import PithIR
import PithLinearAlgebra

/// Runs a recipe over a model: the passes rewrite the selected tensors' storage in place.
///
/// Each selected tensor is decoded to `Float` once and worked on in that form; the model keeps its
/// original tensors until the end, so errors are always measured against the original, and then
/// each changed tensor gets its final storage (codebook, quantized codes or dense values, in CSR
/// when that is smaller or asked for).
public enum Compressor {
    public static func run(_ recipe: Recipe, on model: inout Model) throws -> CompressionReport {
        try recipe.validate()
        var run = Run(model: model, seed: recipe.seed)
        for (index, step) in recipe.steps.enumerated() {
            try run.apply(step, number: index + 1)
        }
        let report = run.finish()
        model = run.model
        return report
    }
}

/// A tensor being compressed: its current values and the encoding chosen so far.
struct Working {
    var values: [Float]
    var codebook: CodebookStorage?
    var quantized: QuantizedStorage?
    var factored: FactoredStorage?
    var encode: EncodeOptions?

    var nonzero: Int { values.reduce(0) { $0 + ($1 == 0 ? 0 : 1) } }
}

struct Run {
    var model: Model
    let seed: UInt64
    var working: [TensorID: Working] = [:]
    /// Values before any value-changing pass (after structured pruning, which changes shapes).
    var originals: [TensorID: [Float]] = [:]
    var passes: [CompressionReport.PassRow] = []
    var factorizations: [CompressionReport.FactorizationRow] = []
    var skipped: [CompressionReport.Skip] = []
    /// Tensors in the order they were first touched.
    var order: [TensorID] = []
    /// Every tensor's stored bytes before the recipe ran.
    let initialBytes: [Int]

    init(model: Model, seed: UInt64) {
        self.model = model
        self.seed = seed
        initialBytes = model.tensors.map(\.storedBytes)
    }

    mutating func state(_ id: TensorID) -> Working {
        if let existing = working[id] { return existing }
        let values = model.tensors[id].decodedFloats()
        originals[id] = values
        order.append(id)
        return Working(values: values)
    }

    func selection(_ step: Recipe.Step) -> [TensorID] {
        let selector = step.select ?? TensorSelector()
        return model.tensors.indices.filter { selector.matches(model.tensors[$0]) }
    }

    mutating func apply(_ step: Recipe.Step, number: Int) throws {
        if let options = step.structured {
            try StructuredPruning.apply(options, selector: step.select ?? TensorSelector(), to: &self, step: number)
            return
        }
        let ids = selection(step)
        if ids.isEmpty {
            skipped.append(.init(step: number, action: step.action, target: "*", reason: "no tensor matched the selection"))
            return
        }
        if let options = step.prune { try prune(ids, options, step: number) }
        if let options = step.cluster { try cluster(ids, options, step: number) }
        if let options = step.quantize { try quantize(ids, options, step: number) }
        if let options = step.factorize { try factorize(ids, options, step: number) }
        if let options = step.encode {
            for id in ids {
                var s = state(id)
                s.encode = options
                working[id] = s
            }
        }
    }

    // MARK: Reporting helpers

    /// The storage the tensor would have now, without sparse encoding.
    func provisional(_ id: TensorID, _ s: Working) -> Tensor {
        var tensor = model.tensors[id]
        if let factored = s.factored { tensor.storage = .factored(factored) }
        else if let codebook = s.codebook { tensor.storage = .codebook(codebook) }
        else if let quantized = s.quantized { tensor.storage = .quantized(quantized) }
        else { tensor.storage = .dense(Tensor.encode(s.values, as: tensor.dtype)) }
        return tensor
    }

    mutating func record(step: Int, action: String, id: TensorID, before: Int, after s: Working, detail: String) {
        let tensor = provisional(id, s)
        passes.append(.init(
            step: step, action: action, tensor: tensor.name, elements: tensor.count, kept: s.nonzero,
            bitsPerWeight: tensor.count == 0 ? 0 : Double(tensor.storageBits.total) / Double(tensor.count),
            bytesBefore: before, bytesAfter: tensor.storedBytes,
            error: WeightError(original: originals[id]!, approximation: s.values), detail: detail))
    }

    func bytesNow(_ id: TensorID) -> Int {
        working[id].map { provisional(id, $0).storedBytes } ?? model.tensors[id].storedBytes
    }

    // MARK: Magnitude pruning

    mutating func prune(_ ids: [TensorID], _ options: PruneOptions, step: Int) throws {
        var states = [Working]()
        for id in ids {
            let s = state(id)
            if s.codebook != nil || s.quantized != nil || s.factored != nil {
                throw PassError(.notApplicable, "tensor `\(model.tensors[id].name)`: prune runs before cluster, quantize and factorize, not after")
            }
            states.append(s)
        }
        let before = ids.map(bytesNow)
        var details = [String](repeating: "", count: ids.count)
        if let sparsity = options.sparsity, (options.scope ?? .global) == .global {
            let threshold = Pruning.pruneGlobally(&states, sparsity: sparsity)
            details = ids.map { _ in "global threshold |w| ≤ \(threshold)" }
        } else {
            for i in states.indices {
                let threshold: Float
                if let sparsity = options.sparsity {
                    threshold = Pruning.pruneToSparsity(&states[i].values, sparsity: sparsity)
                } else if let absolute = options.threshold {
                    threshold = Float(absolute)
                    Pruning.pruneBelow(&states[i].values, threshold: threshold)
                } else {
                    threshold = Float(options.quality! * Pruning.standardDeviation(states[i].values))
                    Pruning.pruneBelow(&states[i].values, threshold: threshold)
                }
                details[i] = "threshold |w| \(options.sparsity == nil ? "<" : "≤") \(threshold)"
            }
        }
        for (i, id) in ids.enumerated() {
            working[id] = states[i]
            record(step: step, action: "prune", id: id, before: before[i], after: states[i], detail: details[i])
        }
    }

    // MARK: Weight sharing and quantization

    mutating func cluster(_ ids: [TensorID], _ options: ClusterOptions, step: Int) throws {
        let seed = self.seed
        try encodeEach(ids, action: "cluster", granularity: options.granularity, step: step) { id, values, layout, tensor in
            let (codebook, detail) = try WeightSharing.cluster(values, layout: layout, options: options, seed: seed &+ UInt64(id), tensor: tensor.name)
            return (.codebook(codebook), detail)
        }
    }

    /// One tensor's work for `encodeEach`, done on any core.
    struct EncodeJob: Sendable {
        var id: TensorID
        var values: [Float]
        var layout: ChannelLayout
        var tensor: Tensor
    }

    mutating func quantize(_ ids: [TensorID], _ options: QuantizeOptions, step: Int) throws {
        try encodeEach(ids, action: "quantize", granularity: options.granularity, step: step) { _, values, layout, _ in
            let (quantized, detail) = Quantization.quantize(values, layout: layout, options: options)
            return (.quantized(quantized), detail)
        }
    }

    /// Gives each tensor a codebook or quantized encoding (once: the two exclude each other), keeps
    /// the values it now represents, and records the pass.
    mutating func encodeEach(
        _ ids: [TensorID], action: String, granularity: Granularity?, step: Int,
        _ encode: @escaping @Sendable (TensorID, [Float], ChannelLayout, Tensor) throws -> (TensorStorage, String)
    ) throws {
        var pending: [EncodeJob] = []
        for id in ids {
            let s = state(id)
            working[id] = s  // recorded once: `state` decodes and lists a tensor only on first use
            let tensor = model.tensors[id]
            if s.quantized != nil || s.codebook != nil || s.factored != nil {
                throw PassError(.notApplicable, "tensor `\(tensor.name)`: already \(s.factored != nil ? "factorized" : s.codebook != nil ? "clustered" : "quantized"); a tensor is clustered, quantized or factorized once")
            }
            pending.append(EncodeJob(id: id, values: s.values, layout: ChannelLayout(shape: tensor.shape, axis: outputAxis(id), perTensor: (granularity ?? .tensor) == .tensor), tensor: tensor))
        }
        // Tensors are encoded on every core, largest first; results are applied in order.
        let jobs = pending
        let order = jobs.indices.sorted { jobs[$0].values.count > jobs[$1].values.count }
        let byOrder = Parallel.map(order) { i in
            Result { try encode(jobs[i].id, jobs[i].values, jobs[i].layout, jobs[i].tensor) }.mapError { SendableError($0) }
        }
        var results = [Result<(TensorStorage, String), SendableError>?](repeating: nil, count: jobs.count)
        for (k, i) in order.enumerated() { results[i] = byOrder[k] }
        for (job, result) in zip(jobs, results) {
            let id = job.id, tensor = job.tensor
            var s = state(id)
            let before = bytesNow(id)
            let (storage, detail) = try result!.unwrap()
            switch storage {
            case .codebook(let codebook): s.codebook = codebook
            case .quantized(let quantized): s.quantized = quantized
            default: preconditionFailure("encodeEach: only codebook or quantized storage")
            }
            s.values = Tensor(name: tensor.name, dtype: .float32, shape: tensor.shape, storage: storage, origin: tensor.origin).decodedFloats()
            working[id] = s
            record(step: step, action: action, id: id, before: before, after: s, detail: detail)
        }
    }

    // MARK: Final storage

    mutating func finish() -> CompressionReport {
        var rows: [CompressionReport.TensorRow] = []
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
        for (id, encoding) in zip(candidates.map(\.id), Parallel.map(candidates.indices.map { $0 }) { i in
            SparseEncoding.encode(candidates[i].tensor, values: candidates[i].values, indexBits: candidates[i].indexBits)
        }) { sparseEncodings[id] = encoding }
        for id in order {
            guard let s = working[id] else { continue }
            let originalBytes = initialBytes[id]
            var tensor = provisional(id, s)
            if let sparse = sparseEncodings[id] {
                var candidate = tensor
                candidate.storage = .sparse(sparse)
                if s.encode?.indexBits != nil || candidate.storageBits.total < tensor.storageBits.total {
                    tensor = candidate
                }
            }
            model.tensors[id] = tensor
            let bits = tensor.storageBits
            var indexBits = 0, fillers = 0, weightBits = 0
            var encoding: String
            switch tensor.storage {
            case .sparse(let sparse):
                indexBits = sparse.indexBits
                fillers = sparse.fillers
                switch sparse.values {
                case .dense: weightBits = tensor.dtype.bitWidth; encoding = "csr(\(indexBits)) + \(tensor.dtype.rawValue)"
                case .codebook(let c): weightBits = c.bits; encoding = "csr(\(indexBits)) + codebook(\(c.bits))"
                case .quantized(let q): weightBits = q.codeBits; encoding = "csr(\(indexBits)) + \(Self.describe(q))"
                }
            case .codebook(let c): weightBits = c.bits; encoding = "codebook(\(c.bits))"
            case .quantized(let q): weightBits = q.codeBits; encoding = Self.describe(q)
            case .factored(let f): weightBits = 32; encoding = Self.describe(f)
            default: weightBits = tensor.dtype.bitWidth; encoding = "dense \(tensor.dtype.rawValue)"
            }
            let kept = s.nonzero
            rows.append(.init(
                tensor: tensor.name, layer: tensor.consumer?.name ?? "", op: tensor.consumer?.op ?? "", shape: tensor.shape,
                elements: tensor.count, kept: kept, keptFraction: tensor.count == 0 ? 0 : Double(kept) / Double(tensor.count),
                encoding: encoding, weightBits: weightBits, indexBits: indexBits, fillers: fillers, bits: bits,
                originalBytes: originalBytes, bytes: tensor.storedBytes,
                error: WeightError(original: originals[id]!, approximation: s.values)))
        }
        let originalTotal = initialBytes.reduce(0, +)
        let total = model.tensors.reduce(0) { $0 + $1.storedBytes }
        let kept = model.tensors.indices.reduce(0) { sum, id in
            sum + (working[id]?.nonzero ?? model.tensors[id].count)
        }
        return CompressionReport(
            seed: seed, passes: passes, factorizations: factorizations, skipped: skipped, tensors: rows,
            totals: .init(
                tensors: model.tensors.count, compressedTensors: rows.count,
                elements: model.tensors.reduce(0) { $0 + $1.count }, kept: kept,
                originalBytes: originalTotal, bytes: total, ratio: total == 0 ? 0 : Double(originalTotal) / Double(total)))
    }

    static func describe(_ f: FactoredStorage) -> String {
        switch f.method {
        case .lowRank(let r): return "svd rank \(r)"
        case .tensorTrain(_, _, let ranks): return "tt ranks \(ranks.map(String.init).joined(separator: "-"))"
        case .circulant: return "circulant"
        case .separable(let r): return "separable rank \(r)"
        }
    }

    static func describe(_ q: QuantizedStorage) -> String {
        switch q.scheme {
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        case .linear(let bits, let signed):
            return "\(signed ? "int" : "uint")\(bits)\(q.scales.count > 1 ? " per-channel" : "")\(q.isSymmetric ? "" : " affine")"
        }
    }
}

/// An error carried across threads (pass errors are plain values).
struct SendableError: Error, @unchecked Sendable {
    let error: any Error
    init(_ error: any Error) { self.error = error }
}

extension Result where Failure == SendableError {
    /// The success value, or the original error thrown.
    func unwrap() throws -> Success {
        switch self {
        case .success(let value): return value
        case .failure(let wrapped): throw wrapped.error
        }
    }
}
