import PithIR

/// A tensor being compressed: its current values and the encoding chosen so far.
struct Working {
    /// The values, or nil while they are exactly what `codebook` or `quantized` decodes to (an
    /// encoded tensor then holds its codes alone) or, before any pass changed them, what `source`
    /// decodes to; `values` then decodes them each time it is read.
    private var held: [Float]?
    /// The tensor as the run found it, while no pass has changed its values.
    private var source: Tensor?
    /// The tensor's shape and origin, which decoding needs (set when `held` is dropped).
    private var shape: [Int] = []
    private var origin: TensorOrigin?
    var codebook: CodebookStorage?
    var quantized: QuantizedStorage?
    var factored: FactoredStorage?
    var encode: EncodeOptions?
    /// The values before `cluster` or `quantize` encoded them: what `refit` fits the codebook to.
    var unencoded: [Float]?

    init(values: [Float]) { held = values }

    /// A tensor no pass has changed yet, whose values are decoded from it when read.
    init(unchanged tensor: Tensor) { source = tensor }

    /// Whether the values are those `codebook` or `quantized` decodes to, not held apart.
    var isEncoded: Bool { held == nil && (codebook != nil || quantized != nil) }

    /// Whether no pass has changed the values yet (nor encoded them).
    var isUnchanged: Bool { held == nil && source != nil && codebook == nil && quantized == nil }

    /// The tensor's current values. Read them into a local before indexing them in a loop: an
    /// encoded tensor decodes them anew on every read.
    var values: [Float] {
        get { held ?? decoded() }
        set { held = newValue }
        // In place, so that writing one element does not copy the array.
        _modify {
            if held == nil { held = decoded() }
            yield &held!
        }
    }

    private func decoded() -> [Float] {
        if codebook == nil, quantized == nil, let source { return Originals.decode(source) }
        return encoded.decodedFloats()
    }

    /// The tensor as its codebook or quantized storage (once `dropDecodedValues` recorded its shape).
    private var encoded: Tensor {
        Tensor(name: "", dtype: .float32, shape: shape, storage: codebook.map { .codebook($0) } ?? .quantized(quantized!), origin: origin!)
    }

    /// Forgets the decoded values of an encoded tensor, whose codebook or quantized storage gives
    /// them back exactly: with several tensors encoded, only their codes stay in memory.
    mutating func dropDecodedValues(like tensor: Tensor) {
        precondition(codebook != nil || quantized != nil, "only an encoded tensor can decode its values again")
        shape = tensor.shape
        origin = tensor.origin
        held = nil
        source = nil
    }

    var nonzero: Int { measure(against: nil).nonzero }

    /// The nonzero values, and with `original` (which gives the original values of a range of
    /// elements, `Originals.pieces`) the error against them. An encoded tensor's values are decoded
    /// a piece at a time, and the originals are asked for in the same pieces.
    func measure(against original: ((Range<Int>) -> ArraySlice<Float>)?) -> (nonzero: Int, error: WeightError?) {
        var error = original.map { _ in WeightError.Sum() }
        var nonzero = 0, count = 0
        func add(_ values: ArraySlice<Float>, from start: Int) {
            for v in values where v != 0 { nonzero += 1 }
            if let original { error!.add(original(start..<start + values.count), values) }
            count += values.count
        }
        let piece = 1 << 16
        if !isEncoded {
            let all = values
            for start in stride(from: 0, to: all.count, by: piece) { add(all[start..<Swift.min(all.count, start + piece)], from: start) }
        } else {
            let tensor = encoded
            for start in stride(from: 0, to: tensor.count, by: piece) {
                add(tensor.decodedFloats(elements: start..<Swift.min(tensor.count, start + piece))[...], from: start)
            }
        }
        return (nonzero, error.map { $0.result(count: count) })
    }
}

/// What the passes of one recipe share while it runs: the model, each touched tensor's working
/// state and original values, and the report rows so far.
struct CompressionRun {
    var model: Model
    let seed: UInt64
    var working: [TensorID: Working] = [:]
    /// Values before any value-changing pass (after structured pruning, which changes shapes).
    var originals = Originals()
    var passes: [CompressionReport.PassRow] = []
    var factorizations: [CompressionReport.FactorizationRow] = []
    var skipped: [CompressionReport.Skip] = []
    /// Tensors in the order they were first touched.
    var order: [TensorID] = []
    /// Every tensor's stored bytes before the recipe ran.
    let initialBytes: [Int]
    /// Every tensor's role in the graph or layer configuration (`Model.tensorRoles`).
    let roles: [TensorRole]
    /// The data the data-aware passes run the model on; nil for a data-free recipe.
    var calibration: (any CalibrationSource)?
    /// The data-aware passes' damping, a fraction of the mean of diag(H).
    var damp: Double = ErrorFeedback.defaultDamp
    /// Whether `encodeEach` keeps the values it encoded (`Working.unencoded`) for a `refit` to come;
    /// `Compressor.run` clears it when no refit step follows, so that pruned values are let go of.
    var keepsUnencoded = true

    init(model: Model, seed: UInt64, originalsKeptBelow: Int = Originals.keptBelow) {
        self.model = model
        self.seed = seed
        originals = Originals(keptBelow: originalsKeptBelow)
        initialBytes = model.tensors.map(\.storedBytes)
        roles = model.tensorRoles()
    }

    /// The tensors `selector` picks, in model order. When there are none, the step is listed as
    /// skipped and the list is empty.
    mutating func select(_ selector: TensorSelector, step: Int, action: String) -> [TensorID] {
        let ids = model.tensors.indices.filter { selector.matches(model.tensors[$0], role: roles[$0]) }
        if ids.isEmpty {
            skipped.append(.init(step: step, action: action, target: "*", reason: "no tensor matched the selection"))
        }
        return ids
    }

    /// The tensor's working state, its values decoded; on first use the tensor is also listed and
    /// kept as the original.
    mutating func state(_ id: TensorID) -> Working {
        var s = unchangedState(id)
        if s.isUnchanged { s.values = s.values }  // decoded once, for passes that index them
        return s
    }

    /// As `state`, but a tensor no pass has changed yet is not decoded: its values are decoded
    /// from the tensor where they are read (`encodeEach` does that on the core that encodes it).
    mutating func unchangedState(_ id: TensorID) -> Working {
        if let existing = working[id] { return existing }
        if originals.tensor(id) == nil {
            originals.keep(model.tensors[id], as: id)
            order.append(id)
        }
        if let kept = originals.kept[id] { return Working(values: kept) }
        return Working(unchanged: originals.tensor(id)!)
    }

    // MARK: Reporting helpers

    /// The storage the tensor would have now, without sparse encoding.
    func provisional(_ id: TensorID, _ s: Working) -> Tensor {
        var tensor = model.tensors[id]
        if let factored = s.factored {
            tensor.storage = .factored(factored)
        } else if let codebook = s.codebook {
            tensor.storage = .codebook(codebook)
        } else if let quantized = s.quantized {
            tensor.storage = .quantized(quantized)
        } else {
            tensor.storage = .dense(Tensor.encode(s.values, as: tensor.dtype))
        }
        return tensor
    }

    mutating func record(step: Int, action: String, id: TensorID, before: Int, after s: Working, detail: String) {
        let tensor = provisional(id, s)
        let measured = s.measure(against: originals.pieces(id))
        passes.append(
            .init(
                step: step, action: action, tensor: tensor.name, elements: tensor.count, kept: measured.nonzero,
                bitsPerWeight: tensor.count == 0 ? 0 : Double(tensor.storageBits.total) / Double(tensor.count),
                bytesBefore: before, bytesAfter: tensor.storedBytes,
                error: measured.error, detail: detail))
    }

    func bytesNow(_ id: TensorID) -> Int {
        working[id].map { provisional(id, $0).storedBytes } ?? model.tensors[id].storedBytes
    }

    // MARK: Value encodings (cluster, quantize)

    /// One tensor's work for `encodeEach`, done on any core, which decodes its values.
    struct EncodeJob: Sendable {
        var id: TensorID
        var state: Working
        var layout: ChannelLayout
        var tensor: Tensor
    }

    /// Gives each tensor a codebook or quantized encoding (once: the two exclude each other), keeps
    /// the values it now represents, and records the pass. `encode` runs on every core, largest
    /// tensor first; when it throws for several tensors, the error of the largest is rethrown.
    mutating func encodeEach(
        _ ids: [TensorID], action: String, granularity: Granularity?, step: Int,
        _ encode: @escaping @Sendable (TensorID, [Float], ChannelLayout, Tensor) throws -> (TensorStorage, String)
    ) throws {
        var pending: [EncodeJob] = []
        for id in ids {
            let s = unchangedState(id)
            working[id] = s  // recorded once: `state` lists a tensor only on first use
            let tensor = model.tensors[id]
            if s.quantized != nil || s.codebook != nil || s.factored != nil {
                throw PassError(
                    .notApplicable,
                    "tensor `\(tensor.name)`: already \(s.factored != nil ? "factorized" : s.codebook != nil ? "clustered" : "quantized"); a tensor is clustered, quantized or factorized once"
                )
            }
            pending.append(
                EncodeJob(
                    id: id, state: s, layout: ChannelLayout(shape: tensor.shape, axis: outputAxis(id), perTensor: (granularity ?? .tensor) == .tensor),
                    tensor: tensor))
        }
        // Tensors are encoded on every core, largest first; results are applied in order.
        let jobs = pending
        let order = jobs.indices.sorted { jobs[$0].tensor.count > jobs[$1].tensor.count }
        let byOrder = try Parallel.map(order) { i in
            try encode(jobs[i].id, jobs[i].state.values, jobs[i].layout, jobs[i].tensor)
        }
        var results = [(TensorStorage, String)?](repeating: nil, count: jobs.count)
        for (k, i) in order.enumerated() { results[i] = byOrder[k] }
        for (job, result) in zip(jobs, results) {
            let id = job.id, tensor = job.tensor
            var s = working[id]!
            let before = bytesNow(id)
            let (storage, detail) = result!
            // What `refit` fits the codebook to; the originals when no pass changed the values.
            if keepsUnencoded, !s.isUnchanged { s.unencoded = s.values }
            switch storage {
            case .codebook(let codebook): s.codebook = codebook
            case .quantized(let quantized): s.quantized = quantized
            default: preconditionFailure("encodeEach: only codebook or quantized storage")
            }
            s.dropDecodedValues(like: tensor)
            working[id] = s
            record(step: step, action: action, id: id, before: before, after: s, detail: detail)
        }
    }
}

/// The values of each tensor a run touched, as they were when it first touched them: what errors
/// are measured against. A tensor under 4 MiB is decoded once and kept; a larger one is decoded
/// from the tensor each time it is asked for (a view of the model's file holds no memory, and its
/// pages are given back after each read), so that a large model's weights are not held twice.
struct Originals {
    private(set) var kept: [TensorID: [Float]] = [:]
    private var sources: [TensorID: Tensor] = [:]
    /// Bytes (as float32) below which a tensor's original values are kept decoded.
    static let keptBelow = 4 << 20
    let keptBelow: Int

    init(keptBelow: Int = Self.keptBelow) { self.keptBelow = keptBelow }

    mutating func keep(_ tensor: Tensor, as id: TensorID) {
        sources[id] = tensor
        if tensor.count * 4 < keptBelow { kept[id] = Self.decode(tensor) }
    }

    /// The tensor as the run first touched it.
    func tensor(_ id: TensorID) -> Tensor? { sources[id] }

    subscript(id: TensorID) -> [Float]? {
        if let values = kept[id] { return values }
        return sources[id].map(Self.decode)
    }

    /// The original values of elements `range` at a time: from the kept copy, or from a float32
    /// tensor a piece at a time (giving back each piece's pages of a view of a file), or decoded
    /// whole once for other dtypes.
    func pieces(_ id: TensorID) -> (Range<Int>) -> ArraySlice<Float> {
        if let values = kept[id] { return { values[$0] } }
        let source = sources[id]!
        if source.dtype == .float32, case .dense(let buffer) = source.storage {
            return { range in
                defer { buffer.releasePages(bytes: range.lowerBound * 4..<range.upperBound * 4) }
                return source.decodedFloats(elements: range)[...]
            }
        }
        let values = Self.decode(source)
        return { values[$0] }
    }

    /// The tensor's values; a view of a file gives its pages back once they are read.
    static func decode(_ tensor: Tensor) -> [Float] {
        let values = tensor.decodedFloats()
        if case .dense(let buffer) = tensor.storage { buffer.releasePages() }
        return values
    }
}
