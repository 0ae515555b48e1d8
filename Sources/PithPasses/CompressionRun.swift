import PithIR

/// A tensor being compressed: its current values and the encoding chosen so far.
struct Working {
    /// The values, or nil while they are exactly what `codebook` or `quantized` decodes to: an
    /// encoded tensor then holds its codes alone, and `values` decodes them each time it is read.
    private var held: [Float]?
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
        let storage: TensorStorage = codebook.map { .codebook($0) } ?? .quantized(quantized!)
        return Tensor(name: "", dtype: .float32, shape: shape, storage: storage, origin: origin!).decodedFloats()
    }

    /// Forgets the decoded values of an encoded tensor, whose codebook or quantized storage gives
    /// them back exactly: with several tensors encoded, only their codes stay in memory.
    mutating func dropDecodedValues(like tensor: Tensor) {
        precondition(codebook != nil || quantized != nil, "only an encoded tensor can decode its values again")
        shape = tensor.shape
        origin = tensor.origin
        held = nil
    }

    var nonzero: Int { measure(against: nil).nonzero }

    /// The nonzero values, and with `original` the error against it, going through an encoded
    /// tensor's values a piece at a time instead of decoding them whole.
    func measure(against original: [Float]?) -> (nonzero: Int, error: WeightError?) {
        var error = original.map { _ in WeightError.Sum() }
        var nonzero = 0
        func add(_ values: ArraySlice<Float>, from start: Int) {
            for v in values where v != 0 { nonzero += 1 }
            if let original { error!.add(original[start..<start + values.count], values) }
        }
        if let held {
            add(held[...], from: 0)
        } else {
            let tensor = Tensor(
                name: "", dtype: .float32, shape: shape, storage: codebook.map { .codebook($0) } ?? .quantized(quantized!), origin: origin!)
            let piece = 1 << 16
            for start in stride(from: 0, to: tensor.count, by: piece) {
                add(tensor.decodedFloats(elements: start..<Swift.min(tensor.count, start + piece))[...], from: start)
            }
        }
        return (nonzero, error.map { $0.result(count: original!.count) })
    }
}

/// What the passes of one recipe share while it runs: the model, each touched tensor's working
/// state and original values, and the report rows so far.
struct CompressionRun {
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
    /// Every tensor's role in the graph or layer configuration (`Model.tensorRoles`).
    let roles: [TensorRole]
    /// The data the data-aware passes run the model on; nil for a data-free recipe.
    var calibration: (any CalibrationSource)?
    /// The data-aware passes' damping, a fraction of the mean of diag(H).
    var damp: Double = ErrorFeedback.defaultDamp

    init(model: Model, seed: UInt64) {
        self.model = model
        self.seed = seed
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

    /// The tensor's working state; on first use its values are decoded and kept as the original.
    mutating func state(_ id: TensorID) -> Working {
        if let existing = working[id] { return existing }
        if let original = originals[id] { return Working(values: original) }
        let values = model.tensors[id].decodedFloats()
        // The file's pages of a tensor read in place are not needed again once decoded: the run
        // works on the copy, and the tensor gets new storage at the end.
        if case .dense(let buffer) = model.tensors[id].storage { buffer.releasePages() }
        originals[id] = values
        order.append(id)
        return Working(values: values)
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
        let measured = s.measure(against: originals[id]!)
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

    /// One tensor's work for `encodeEach`, done on any core.
    struct EncodeJob: Sendable {
        var id: TensorID
        var values: [Float]
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
            let s = state(id)
            working[id] = s  // recorded once: `state` decodes and lists a tensor only on first use
            let tensor = model.tensors[id]
            if s.quantized != nil || s.codebook != nil || s.factored != nil {
                throw PassError(
                    .notApplicable,
                    "tensor `\(tensor.name)`: already \(s.factored != nil ? "factorized" : s.codebook != nil ? "clustered" : "quantized"); a tensor is clustered, quantized or factorized once"
                )
            }
            pending.append(
                EncodeJob(
                    id: id, values: s.values, layout: ChannelLayout(shape: tensor.shape, axis: outputAxis(id), perTensor: (granularity ?? .tensor) == .tensor),
                    tensor: tensor))
        }
        // Tensors are encoded on every core, largest first; results are applied in order.
        let jobs = pending
        let order = jobs.indices.sorted { jobs[$0].values.count > jobs[$1].values.count }
        let byOrder = try Parallel.map(order) { i in
            try encode(jobs[i].id, jobs[i].values, jobs[i].layout, jobs[i].tensor)
        }
        var results = [(TensorStorage, String)?](repeating: nil, count: jobs.count)
        for (k, i) in order.enumerated() { results[i] = byOrder[k] }
        for (job, result) in zip(jobs, results) {
            let id = job.id, tensor = job.tensor
            var s = state(id)
            let before = bytesNow(id)
            let (storage, detail) = result!
            switch storage {
            case .codebook(let codebook): s.codebook = codebook
            case .quantized(let quantized): s.quantized = quantized
            default: preconditionFailure("encodeEach: only codebook or quantized storage")
            }
            s.unencoded = s.values
            s.dropDecodedValues(like: tensor)
            working[id] = s
            record(step: step, action: action, id: id, before: before, after: s, detail: detail)
        }
    }
}
