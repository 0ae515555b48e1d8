import Foundation
public import PithIR
import PithLinearAlgebra

/// Runs a model, ONNX graph or Keras configuration, on batches of inputs spread over every core.
public struct Evaluator: Sendable {
    enum Engine: Sendable {
        case onnx(ONNXEvaluator)
        case keras(KerasEvaluator)
    }

    let engine: Engine
    /// The inputs to feed, by name (ONNX graph inputs; Keras input layers), with their declared
    /// shapes (nil for a symbolic or unknown dimension).
    public let inputs: [(name: String, shape: [Int?]?, dtype: DType?)]

    public init(model: Model) throws {
        Self.prepareHeap()
        if model.graph != nil {
            let evaluator = try ONNXEvaluator(model: model)
            engine = .onnx(evaluator)
            inputs = evaluator.inputs.map { info in
                (info.name, info.shape?.map { dimension -> Int? in if case .fixed(let d) = dimension { return d } else { return nil } }, info.dtype)
            }
        } else {
            let evaluator = try KerasEvaluator(model: model)
            engine = .keras(evaluator)
            inputs = evaluator.inputShapes.enumerated().map { ("input_\($0.offset)", $0.element, DType.float32) }
        }
    }

    /// Tunes the process's heap for evaluation, once (see `EvaluationThreads`); every evaluator made
    /// does this first. Called before a model is loaded, the model's tensors share the huge pages too.
    public static func prepareHeap() { EvaluationThreads.prepareHeap() }

    /// The model's outputs by name: the ONNX graph outputs, or `output_0`, `output_1`, … for Keras.
    public var outputNames: [String] {
        switch engine {
        case .onnx(let e): return e.outputs.map(\.name)
        case .keras(let e): return (0..<e.outputCount).map { "output_\($0)" }
        }
    }

    /// Which values a run computes: `names` nil means every output that can be computed (the others
    /// are listed, with the reason, in `skipped`; if none can be, the first reason is thrown); given
    /// names must each be computable (for ONNX any value of the main graph may be named). Nothing
    /// runs here. See `ONNXEvaluator.plan(outputs:)`.
    public func plan(outputs names: [String]? = nil) throws -> OutputPlan {
        switch engine {
        case .onnx(let e): return try e.plan(outputs: names)
        case .keras:
            let all = outputNames
            for name in names ?? [] where !all.contains(name) {
                throw EvalError.invalid("the model has no output `\(name)` (its outputs: \(all.joined(separator: ", ")))")
            }
            return OutputPlan(names: names ?? all, skipped: [], plan: nil)
        }
    }

    /// One run of `plan` on whole inputs (one per model input, in order).
    public func run(_ values: [Value], plan: OutputPlan) throws -> [Value] {
        guard values.count == inputs.count else { throw EvalError.invalid("the model takes \(inputs.count) inputs, \(values.count) given") }
        return try EvaluationThreads.whileRunning { try runOnce(values, plan: plan) }
    }

    private func runOnce(_ values: [Value], plan: OutputPlan) throws -> [Value] {
        switch engine {
        case .onnx(let e): return try e.run(Dictionary(uniqueKeysWithValues: zip(inputs.map(\.name), values)), plan: plan)
        case .keras(let e):
            let all = try e.run(values), names = outputNames
            return plan.names.map { all[names.firstIndex(of: $0)!] }
        }
    }

    /// One run on whole inputs (one per model input, in order), computing the outputs `names` asks
    /// for (nil: every output that can be computed, the others named in `skipped`).
    public func run(_ values: [Value], outputs names: [String]?) throws -> EvaluatedOutputs {
        let plan = try plan(outputs: names)
        return EvaluatedOutputs(names: plan.names, values: try run(values, plan: plan), skipped: plan.skipped)
    }

    /// One run on whole inputs (one per model input, in order): every output, in order; throws,
    /// naming it, if an output cannot be computed.
    public func run(_ values: [Value]) throws -> [Value] {
        try run(values, plan: plan(outputs: outputNames))
    }

    /// Whether inputs may be split into batches along axis 0: every input declares a variable first
    /// dimension, and (ONNX) no node treats axis 0 as something other than independent samples —
    /// time-major recurrent layers, loops and scans, branches, NonZero (`ONNXEvaluator.mixesFirstAxis`).
    public var isBatched: Bool {
        if case .onnx(let e) = engine, e.mixesFirstAxis { return false }
        return inputs.allSatisfy { $0.shape?.first.map { $0 == nil } ?? false }
    }

    /// Runs `values` (each with the batch on axis 0) in batches of `batchSize`, batches spread over
    /// every core (BLAS single-threaded meanwhile), and joins the outputs along axis 0. Models whose
    /// inputs do not declare a variable batch dimension, and `batchSize` 0, run in one piece.
    /// Every output, in order; throws, naming it, if an output cannot be computed.
    public func run(batched values: [Value], batchSize: Int) throws -> [Value] {
        try run(batched: values, batchSize: batchSize, plan: plan(outputs: outputNames))
    }

    /// `run(batched:batchSize:)` computing the outputs `names` asks for (nil: every output that can
    /// be computed, the others named in `skipped`).
    public func run(batched values: [Value], batchSize: Int, outputs names: [String]?) throws -> EvaluatedOutputs {
        let plan = try plan(outputs: names)
        return EvaluatedOutputs(names: plan.names, values: try run(batched: values, batchSize: batchSize, plan: plan), skipped: plan.skipped)
    }

    /// `run(batched:batchSize:)` of `plan`.
    public func run(batched values: [Value], batchSize: Int, plan: OutputPlan) throws -> [Value] {
        guard batchSize > 0, isBatched, let samples = values.first?.shape.first, samples > batchSize else { return try run(values, plan: plan) }
        guard values.allSatisfy({ $0.shape.first == samples }) else {
            throw EvalError.invalid("inputs hold different numbers of samples: \(values.map { $0.shape.first ?? 0 })")
        }
        let size = max(1, batchSize)
        let starts = Array(stride(from: 0, to: samples, by: size))
        let progress = ProgressReport.Counter("eval", total: samples, unit: "samples")
        let batches = try EvaluationThreads.whileRunning {
            try Parallel.map(starts) { start in
                let outputs = try run(values.map { $0.rows(start..<min(start + size, samples)) }, plan: plan)
                progress.advance(by: min(size, samples - start))
                return outputs
            }
        }
        guard let first = batches.first else { return [] }
        return first.indices.map { k in Value.joinRows(batches.map { $0[k] }) }
    }

    /// `value` shaped for input `index`: cast to float when the model computes floats, and each
    /// sample reshaped to the declared shape when the element counts agree (an MNIST image of
    /// 28×28 for an input of 784, or the reverse). Data whose shape cannot be the declared one is
    /// refused here, with the shape the model expects — not deep inside the graph — and data laid
    /// out channels-last for a channels-first input (or the reverse) is named as such rather than
    /// reshaped into nonsense.
    public func prepare(_ value: Value, forInput index: Int) throws -> Value {
        var v = value
        if let dtype = inputs[index].dtype, dtype.isFloatingPoint, !v.isFloat { v = try v.cast(to: dtype) }
        // Exporters write -1 (or 0) for a dimension they do not fix: as a symbolic one.
        guard let declared = inputs[index].shape?.map({ $0.flatMap { $0 > 0 ? $0 : nil } }), declared.count >= 1, let samples = v.shape.first else {
            return v
        }
        // Already of the declared shape (symbolic dimensions match anything).
        if declared.count == v.rank, zip(declared, v.shape).allSatisfy({ $0 == nil || $0 == $1 }) { return v }
        let name = inputs[index].name
        let expected = "[" + declared.enumerated().map { $1.map(String.init) ?? ($0 == 0 ? "N" : "?") }.joined(separator: ", ") + "]"
        if declared.count == v.rank, v.rank >= 3 {
            // The same sizes in another order, with an axis of more than one element moved: a
            // layout mistake (NHWC data for an NCHW model), which a reshape would scramble.
            let want = declared.dropFirst(), have = Array(v.shape.dropFirst())
            let fixed = want.enumerated().compactMap { axis, size in size.map { (axis, $0) } }
            let moved = fixed.filter { have[$0.0] != $0.1 }
            if let (axis, size) = moved.first(where: { $0.1 > 1 }), have.contains(size) {
                let from = have.firstIndex(of: size)! + 1, to = axis + 1
                var order = Array(0..<v.rank)
                order.remove(at: from)
                order.insert(from, at: to)
                throw EvalError.invalid(
                    "input `\(name)` expects \(expected), the data has \(v.shape): its axis \(from) of \(size) belongs at axis \(to) "
                        + "(\(to < from ? "channels first, the data is channels last" : "channels last, the data is channels first")); "
                        + "transpose it, e.g. numpy's x.transpose(\(order.map(String.init).joined(separator: ", ")))")
            }
        }
        let perSample = declared.dropFirst()
        guard declared[0] == nil, perSample.allSatisfy({ $0 != nil }), samples > 0 else {
            // A fixed-shape input: the data is taken as it is, as far as its element count allows.
            if declared.allSatisfy({ $0 != nil }), declared.reduce(1, { $0 * $1! }) == v.count { return v.reshaped(declared.map { $0! }) }
            if declared.count == v.rank, zip(declared, v.shape).contains(where: { $0 != nil && $0 != $1 }) || declared.count != v.rank {
                throw EvalError.invalid("input `\(name)` expects \(expected), the data has \(v.shape)")
            }
            return v
        }
        let size = perSample.reduce(1) { $0 * $1! }
        let have = v.count / samples
        guard have == size else {
            throw EvalError.invalid(
                "input `\(name)` expects \(expected): samples of shape \(perSample.map { $0! }), the data has samples of shape \(Array(v.shape.dropFirst())) (\(have) values)"
            )
        }
        return v.reshaped([samples] + perSample.map { $0! })
    }
}

/// One pool of threads while the evaluator runs: its kernels split each operator's work over the
/// cores themselves (`Parallel.map`, on Dispatch's threads), so OpenBLAS runs single-threaded and
/// its own idle threads, which wait by yielding the processor, are stopped; a batched run's
/// batches share the same pool (nested parallel loops run serially inside a busy worker). BLAS
/// gets every core back when the last evaluation in the process ends.
///
/// The first evaluator made also keeps freed activations in the heap for the next node rather than returning
/// them to the system (glibc's `M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD`): a fresh mapping per
/// tensor costs a page fault and a page clearing per 4 KiB, a reused block nothing. And it grows the
/// heap once by `hugePageHeapBytes` of address space, untouched, marked for transparent huge pages
/// (`MADV_HUGEPAGE`): the activations a run first writes there fault in 2 MiB at a time, not 4 KiB
/// (what glibc's own `glibc.malloc.hugetlb=1` tunable does, which a process cannot set for itself),
/// in one arena for every thread.
/// On PP-OCRv4 det, batch 8, a `pith eval` took 24,600 page faults and 0.07 s of system time; with
/// the huge pages, about 4,000 and 0.01 s.
enum EvaluationThreads {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var running = 0

    private static let heapTuned: Bool = {
        #if canImport(Glibc)
        // `mallopt` is not in Swift's Glibc module; M_TRIM_THRESHOLD is -1, M_MMAP_THRESHOLD -3,
        // M_ARENA_MAX -8 (malloc.h). One arena: what worker threads allocate (a model loaded beside
        // the data file, scratch, the batches of a batched run) comes from the same huge pages.
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "mallopt") else { return false }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        guard mallopt(-3, 32 << 20) == 1 && mallopt(-1, 1 << 30) == 1 && mallopt(-8, 1) == 1 else { return false }
        reserveHugePageHeap()
        return true
        #else
        return false
        #endif
    }()

    /// Address space the heap grows by, for huge pages: more than the activations of the largest
    /// model measured (PP-OCRv4 det, batch 8: about 100 MB); only the pages a run touches cost memory.
    static let hugePageHeapBytes = 256 << 20

    /// Grows the heap by `hugePageHeapBytes` (blocks below the mapping threshold, so that they come
    /// from the heap, allocated and freed untouched: freed, they join the heap's top, which is never
    /// trimmed) and marks the range for transparent huge pages, when the blocks lie end to end.
    private static func reserveHugePageHeap() {
        #if canImport(Glibc)
        let block = 24 << 20, huge = 1 << 21
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<hugePageHeapBytes / block {
            guard let p = malloc(block) else { break }
            blocks.append(p)
        }
        defer { for p in blocks { free(p) } }
        let addresses = blocks.map { UInt(bitPattern: $0) }.sorted()
        guard let first = addresses.first, let last = addresses.last,
            zip(addresses, addresses.dropFirst()).allSatisfy({ $1 - $0 >= UInt(block) && $1 - $0 <= UInt(block + 64) })
        else { return }
        let start = (first + UInt(huge - 1)) & ~UInt(huge - 1), end = (last + UInt(block)) & ~UInt(huge - 1)
        guard end > start, let region = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(region, Int(end - start), 14)  // MADV_HUGEPAGE
        #endif
    }

    /// Keeps freed blocks in the heap from now on (once per process); reading the inputs then
    /// already reuses memory the run will reuse.
    static func prepareHeap() { _ = heapTuned }

    static func whileRunning<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        running += 1
        if running == 1 {
            _ = heapTuned
            LinearAlgebra.setBLASThreads(1)
            LinearAlgebra.releaseIdleThreads()
        }
        lock.unlock()
        defer {
            lock.lock()
            running -= 1
            if running == 0 { LinearAlgebra.setBLASThreads(Parallel.cores) }
            lock.unlock()
        }
        return try body()
    }
}

extension Value {
    /// Rows `range` along axis 0.
    func rows(_ range: Range<Int>) -> Value {
        let inner = shape.dropFirst().reduce(1, *)
        var out = self
        out.shape[0] = range.count
        let slice = range.lowerBound * inner..<range.upperBound * inner
        if isString { out.strings = Array(strings[slice]) } else if isFloat { out.floats = Array(floats[slice]) } else { out.ints = Array(ints[slice]) }
        return out
    }

    /// Values joined along axis 0.
    static func joinRows(_ parts: [Value]) -> Value {
        var out = parts[0]
        guard out.rank > 0 else { return out }
        out.shape[0] = parts.reduce(0) { $0 + ($1.shape.first ?? 0) }
        if out.isString {
            out.strings = parts.flatMap(\.strings)
        } else if out.isFloat {
            out.floats = parts.flatMap(\.floats)
        } else {
            out.ints = parts.flatMap(\.ints)
        }
        return out
    }

    /// For each sample (row of a 2-D or higher output), the index of its largest score.
    public var argmaxRows: [Int] {
        guard let samples = shape.first, samples > 0 else { return [] }
        let width = count / samples
        let values = asFloats
        return (0..<samples).map { s in
            var best = 0
            for k in 1..<max(width, 1) where values[s * width + k] > values[s * width + best] { best = k }
            return best
        }
    }
}

extension KerasEvaluator {
    /// How many outputs the model has: its output layers (Functional), else one.
    var outputCount: Int { root.className == "Sequential" || root.outputLayers.isEmpty ? 1 : root.outputLayers.count }
}
