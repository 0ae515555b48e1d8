import Foundation
import PithEval
import Synchronization

/// Calibration data for the data-aware passes (`pith compress --calibration FILE`): unlabeled samples
/// the model is run on to capture each compressed layer's input. `.npy`, `.npz` (arrays matched to the
/// model's inputs by name, else in order) or IDX; 8-bit IDX images are scaled by 1/255, as `pith eval`
/// does.
public struct Calibration: CalibrationSource {
    /// What `--calibration`, `--calibration-samples` and `--calibration-scale` ask for.
    public struct Request: Sendable {
        public var path: String
        /// The first `samples` samples of the file (default `Calibration.defaultSamples`).
        public var samples: Int?
        /// What each value is multiplied by (default: 1/255 for 8-bit IDX images, else 1).
        public var scale: Double?

        public init(path: String, samples: Int? = nil, scale: Double? = nil) {
            self.path = path
            self.samples = samples
            self.scale = scale
        }
    }

    /// Samples taken from a larger file unless `--calibration-samples` says otherwise.
    public static let defaultSamples = 1024
    /// Samples run through the model at once: a capture holds at most this many samples' activations.
    public static let batchSamples = 256

    public let name: String
    public let samples: Int
    /// One value per model input, every sample, prepared for the evaluator.
    let inputs: [Value]
    /// Captures kept for reuse (sensitivity analysis and `--auto` capture the same layer inputs many
    /// times); nil: every capture runs the model.
    let cache: CaptureCache?

    /// Reads and checks the data for `model`: it must fit the model's inputs (exit 65, naming the file
    /// and the input), hold at least one sample, and be finite. With `cacheBytes` above 0, captures
    /// are kept, up to that many bytes, and a capture whose value and upstream tensors are the same
    /// as a kept one's is served from it (see `CaptureCache`).
    public static func load(_ request: Request, for model: Model, cacheBytes: Int = 0) throws -> Calibration {
        let path = request.path
        let prepared: [Value], available: Int
        do {
            let evaluator = try Evaluator(model: model)
            (prepared, _, available) = try EvaluationInputs.inputs(path, for: evaluator, scale: request.scale, first: request.samples ?? defaultSamples)
        } catch let error as any ReportableError {
            let kind = [ExitKind.noInput, .io].contains(error.exitKind) ? error.exitKind : .data
            let message = error.description.hasPrefix(path) ? error.description : "\(path): \(error.description)"
            throw PithError(kind, "calibration data: \(message)")
        }
        let count = Swift.min(prepared.first?.shape.first ?? 0, request.samples ?? defaultSamples)
        guard available > 0, count > 0 else { throw PithError(.data, "calibration data: \(path): holds no samples; calibration needs at least one") }
        let inputs = prepared.map { rows($0, 0..<count) }
        for value in inputs where value.isFloat {
            if let bad = value.floats.firstIndex(where: { !$0.isFinite }) {
                let perSample = value.count / Swift.max(1, value.shape.first ?? 1)
                throw PithError(
                    .data, "calibration data: \(path): sample \(bad / Swift.max(1, perSample)) holds \(value.floats[bad]); calibration data must be finite")
            }
        }
        let name = count < available ? "\(path) (first \(count) of \(available) samples)" : path
        return Calibration(name: name, samples: count, inputs: inputs, cache: cacheBytes > 0 ? CaptureCache(capacity: cacheBytes) : nil)
    }

    public func capture(_ value: String, in model: Model, _ body: (_ values: [Float], _ shape: [Int]) throws -> Void) throws {
        guard let cache else { return try run(value, in: model, body) }
        let key = CaptureCache.Key(value: value, upstream: CaptureCache.fingerprint(of: value, in: model))
        if let batches = cache.batches(for: key) {
            for batch in batches { try body(batch.values, batch.shape) }
            return
        }
        var kept: [CaptureCache.Batch]? = []
        var bytes = 0
        try run(value, in: model) { values, shape in
            bytes += values.count * MemoryLayout<Float>.stride
            if bytes <= cache.capacity { kept?.append(.init(values: values, shape: shape)) } else { kept = nil }
            try body(values, shape)
        }
        if let kept { cache.store(kept, for: key, bytes: bytes) }
    }

    /// Runs `model` on every sample, a batch at a time, handing the value named `value` to `body`.
    private func run(_ value: String, in model: Model, _ body: (_ values: [Float], _ shape: [Int]) throws -> Void) throws {
        try PithError.translatingErrors {
            let evaluator = try Evaluator(model: model)
            let plan = try evaluator.plan(outputs: [value])
            var start = 0
            while start < samples {
                let range = start..<Swift.min(start + Self.batchSamples, samples)
                let part = inputs.map { Self.rows($0, range) }
                let batch = Swift.max(1, (range.count + Parallel.cores - 1) / Parallel.cores)
                guard let captured = try evaluator.run(batched: part, batchSize: batch, plan: plan).first else { return }
                try body(captured.asFloats, captured.shape)
                start = range.upperBound
            }
        }
    }

    /// Samples `range` (axis 0) of `value`.
    static func rows(_ value: Value, _ range: Range<Int>) -> Value {
        var out = value
        guard let samples = value.shape.first, samples > 0 else { return out }
        let inner = value.count / samples
        out.shape[0] = range.count
        let slice = range.lowerBound * inner..<range.upperBound * inner
        if value.isString {
            out.strings = Array(value.strings[slice])
        } else if value.isFloat {
            out.floats = Array(value.floats[slice])
        } else {
            out.ints = Array(value.ints[slice])
        }
        return out
    }
}

/// Captured layer inputs kept for reuse, at most `capacity` bytes (the oldest go first). A capture is
/// keyed by the value captured and a fingerprint of every tensor it depends on (those read by the
/// nodes upstream of it in the main graph; every tensor when a node upstream holds a subgraph or the
/// model has functions), so a layer's input is captured again only when a layer before it changed.
final class CaptureCache: Sendable {
    struct Key: Hashable {
        var value: String
        var upstream: Int
    }

    struct Batch: Sendable {
        var values: [Float]
        var shape: [Int]
    }

    private struct State {
        var entries: [Key: (batches: [Batch], bytes: Int)] = [:]
        var order: [Key] = []
        var bytes = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    func batches(for key: Key) -> [Batch]? { state.withLock { $0.entries[key]?.batches } }

    func store(_ batches: [Batch], for key: Key, bytes: Int) {
        state.withLock { state in
            guard state.entries[key] == nil else { return }
            while state.bytes + bytes > capacity, !state.order.isEmpty {
                let oldest = state.order.removeFirst()
                state.bytes -= state.entries.removeValue(forKey: oldest)?.bytes ?? 0
            }
            state.entries[key] = (batches, bytes)
            state.order.append(key)
            state.bytes += bytes
        }
    }

    /// A hash of the tensors the value `value` of `model` depends on.
    static func fingerprint(of value: String, in model: Model) -> Int {
        var hasher = Hasher()
        hasher.combine(value)
        var needed: Set<String> = [value]
        var everything = model.graph == nil || !model.functions.isEmpty
        if let graph = model.graph, !everything {
            var producer: [String: Int] = [:]
            for (index, node) in graph.nodes.enumerated() { for output in node.outputs { producer[output] = index } }
            var stack = [value], visited = Set<Int>()
            while let name = stack.popLast() {
                guard let index = producer[name], visited.insert(index).inserted else { continue }
                let node = graph.nodes[index]
                for attribute in node.attributes {
                    switch attribute.value {
                    case .graph, .graphs: everything = true
                    default: break
                    }
                }
                for input in node.inputs where !input.isEmpty && needed.insert(input).inserted { stack.append(input) }
            }
        }
        for tensor in model.tensors where everything || needed.contains(tensor.name) {
            hasher.combine(tensor.name)
            switch tensor.storage {
            case .dense(let buffer): buffer.withUnsafeBytes { hasher.combine(bytes: $0) }
            case .strings(let strings): for string in strings { hasher.combine(string) }
            default: tensor.decodedFloats().withUnsafeBytes { hasher.combine(bytes: $0) }
            }
        }
        return hasher.finalize()
    }
}
