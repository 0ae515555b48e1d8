import PithIR

/// A node's computation made ready when the graph is built (`GraphBuild`), run in place of
/// `Operators.run`. `inputs` holds, by value, the inputs this node is the last reader of (the
/// evaluator hands them over instead of keeping a copy), so a kernel may take one and write its
/// result into the same memory; any other input is shared and copied on write as usual.
protocol PreparedKernel: Sendable {
    func run(_ inputs: inout [Value?], _ operators: Operators) throws -> [Value]
}

/// Add, Sub, Mul and Div of floating-point values of one type, with loops for the broadcasts
/// networks use: same shape, a scalar, a bias along the last axes, a per-channel or per-plane value
/// (no per-element index arithmetic). The result is written into the memory of whichever input
/// already has the result's shape. Other cases go to `Operators.run`.
struct ArithmeticKernel: PreparedKernel {
    enum Operation: Sendable {
        case add, sub, mul, div
    }

    let operation: Operation

    init?(_ node: Node) {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return nil }
        switch node.opType {
        case "Add": operation = .add
        case "Sub": operation = .sub
        case "Mul": operation = .mul
        case "Div": operation = .div
        default: return nil
        }
    }

    func run(_ inputs: inout [Value?], _ operators: Operators) throws -> [Value] {
        guard inputs.count == 2, let a = inputs[0], let b = inputs[1], a.isFloat, a.dtype == b.dtype else { return try operators.run(inputs) }
        let shape = try broadcastShape(a.shape, b.shape, op: operators.node.opType)
        let intoA = a.shape == shape
        guard intoA || b.shape == shape else { return try operators.run(inputs) }
        let otherShape = intoA ? b.shape : a.shape
        // Take the value the result overwrites, so that it is uniquely held when it was handed over.
        var out = (intoA ? inputs[0].take() : inputs[1].take())!
        let other = (intoA ? inputs[1] : inputs[0])!
        let pattern = BroadcastPattern(otherShape, to: shape)
        out.floats.withUnsafeMutableBufferPointer { po in
            other.floats.withUnsafeBufferPointer { py in
                guard let base = po.baseAddress, let source = py.baseAddress else { return }
                let o = SharedPointer(base), y = SharedPointer(source)
                // Pieces of about 64K values over the cores (runs split when they are longer).
                let total = pattern.offsets.count * pattern.inner
                let piecesPerRun = max(1, pattern.inner / (1 << 16))
                let runsPerPiece = max(1, (1 << 16) / max(pattern.inner, 1))
                let pieces =
                    total < 1 << 17 ? 1 : piecesPerRun > 1 ? pattern.offsets.count * piecesPerRun : (pattern.offsets.count + runsPerPiece - 1) / runsPerPiece
                _ = Parallel.map(count: pieces, workers: pieces == 1 ? 1 : Parallel.cores, makeWorker: {}) { (_: inout Void, piece: Int) in
                    if pieces == 1 || piecesPerRun == 1 {
                        let runs = pieces == 1 ? 0..<pattern.offsets.count : piece * runsPerPiece..<min(pattern.offsets.count, (piece + 1) * runsPerPiece)
                        for k in runs {
                            apply(
                                o.pointer + k * pattern.inner, y.pointer + pattern.offsets[k], count: pattern.inner, scalar: pattern.scalarRuns,
                                outIsLeft: intoA)
                        }
                    } else {
                        let k = piece / piecesPerRun, part = piece % piecesPerRun
                        let length = (pattern.inner + piecesPerRun - 1) / piecesPerRun
                        let start = part * length, count = min(pattern.inner - start, length)
                        guard count > 0 else { return }
                        let y0 = y.pointer + pattern.offsets[k] + (pattern.scalarRuns ? 0 : start)
                        apply(o.pointer + k * pattern.inner + start, y0, count: count, scalar: pattern.scalarRuns, outIsLeft: intoA)
                    }
                }
            }
        }
        out.shape = shape
        return [out]
    }

    /// o[i] = o[i] ∘ y[i] (or y[i] ∘ o[i] when the output is the right operand); y[0] throughout
    /// when `scalar`.
    @inline(__always)
    private func apply(_ o: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, scalar: Bool, outIsLeft: Bool) {
        switch (operation, outIsLeft) {
        case (.add, _): Self.loop(o, y, count, scalar, { $0 + $1 }, { $0 + $1 })
        case (.mul, _): Self.loop(o, y, count, scalar, { $0 * $1 }, { $0 * $1 })
        case (.sub, true): Self.loop(o, y, count, scalar, { $0 - $1 }, { $0 - $1 })
        case (.sub, false): Self.loop(o, y, count, scalar, { $1 - $0 }, { $1 - $0 })
        case (.div, true): Self.loop(o, y, count, scalar, { $0 / $1 }, { $0 / $1 })
        case (.div, false): Self.loop(o, y, count, scalar, { $1 / $0 }, { $1 / $0 })
        }
    }

    @inline(__always)
    private static func loop(
        _ o: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ count: Int, _ scalar: Bool, _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>,
        _ g: (Float, Float) -> Float
    ) {
        if scalar {
            let s = y[0], vs = SIMD8<Float>(repeating: s)
            VectorLoops.map(o, count: count, { f($0, vs) }, { g($0, s) })
        } else {
            VectorLoops.zip(o, y, count: count, f, g)
        }
    }
}

/// How a value of `shape` broadcast to `output` is read, as runs: the output in runs of `inner`
/// contiguous elements; for run k, the source starts at `offsets[k]` and is contiguous with the
/// run, or (`scalarRuns`) one element repeated over it.
struct BroadcastPattern {
    let inner: Int
    let scalarRuns: Bool
    let offsets: [Int]

    init(_ shape: [Int], to output: [Int]) {
        let rank = output.count
        let padded = [Int](repeating: 1, count: rank - shape.count) + shape
        let total = output.reduce(1, *)
        if padded.reduce(1, *) == 1 {
            inner = total
            scalarRuns = true
            offsets = total == 0 ? [] : [0]
            return
        }
        // The longest run of trailing axes the source has in full; failing that, the longest it repeats.
        var split = rank
        while split > 0, padded[split - 1] == output[split - 1] { split -= 1 }
        var scalar = false
        if split == rank {
            while split > 0, padded[split - 1] == 1 { split -= 1 }
            scalar = true
        }
        inner = output[split...].reduce(1, *)
        scalarRuns = scalar && inner > 1
        let sourceStrides = strides(padded)
        let effective = (0..<split).map { padded[$0] == 1 ? 0 : sourceStrides[$0] }
        offsets = inner == 0 ? [] : stridedOffsets(Array(output[..<split]), strides: effective)
    }
}

/// Relu, LeakyRelu, HardSigmoid, HardSwish, Sigmoid, Tanh and Clip on float32 or float64 values,
/// written over their input when it was handed over. Other types go to `Operators.run`.
struct ActivationKernel: PreparedKernel {
    /// The activation; nil for Clip, whose bounds may be inputs.
    let step: EpilogueStep?

    init?(_ node: Node, _ operators: Operators) {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return nil }
        if node.opType == "Clip" {
            step = nil
        } else if let step = EpilogueStep.activation(node, operators) {
            self.step = step
        } else {
            return nil
        }
    }

    func run(_ inputs: inout [Value?], _ operators: Operators) throws -> [Value] {
        guard let dtype = inputs.first??.dtype, dtype == .float32 || dtype == .float64 else { return try operators.run(inputs) }
        let step: EpilogueStep
        if let activation = self.step {
            step = activation
        } else {
            var low: Float = -.infinity, high: Float = .infinity
            if operators.opset < 11 {
                low = operators.float("min", low)
                high = operators.float("max", high)
            } else {
                if inputs.count > 1, let m = inputs[1] { low = m.asFloats.first ?? low }
                if inputs.count > 2, let m = inputs[2] { high = m.asFloats.first ?? high }
            }
            step = .clip(low: low, high: high)
        }
        var out = inputs[0].take()!
        out.floats.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            let shared = SharedPointer(base), count = p.count
            // Pieces of 64K values over the cores for large tensors.
            let piece = 1 << 16, pieces = count < 1 << 17 ? 1 : (count + piece - 1) / piece
            _ = Parallel.map(count: pieces, workers: pieces == 1 ? 1 : Parallel.cores, makeWorker: {}) { (_: inout Void, k: Int) in
                let start = pieces == 1 ? 0 : k * piece
                step.apply(shared.pointer + start, count: pieces == 1 ? count : min(piece, count - start), channel: 0)
            }
        }
        return [out]
    }
}

/// BatchNormalization in inference mode with constant parameters, computed in place as one scale
/// and shift per channel (the one left after `ConvBatchNormFusion`, when no Conv precedes it), planes
/// shared out over the cores. Other cases go to `Operators.run`.
struct BatchNormKernel: PreparedKernel {
    let scale: [Float]
    let shift: [Float]

    init?(_ node: Node, opset: Int, constants: [String: Value]) {
        let operators = Operators(node: node, opset: opset)
        guard node.domain.isEmpty || node.domain == "ai.onnx", node.opType == "BatchNormalization", node.inputs.count == 5,
            node.outputs.filter({ !$0.isEmpty }).count == 1, !(opset >= 14 && operators.int("training_mode", 0) != 0)
        else { return nil }
        let parameters = node.inputs[1...].map { constants[$0] }
        guard let first = parameters.first??.count, first > 0, parameters.allSatisfy({ $0?.isFloat == true && $0?.count == first }) else { return nil }
        let gamma = parameters[0]!.floats, beta = parameters[1]!.floats, mean = parameters[2]!.floats, variance = parameters[3]!.floats
        let epsilon = operators.float("epsilon", 1e-5)
        scale = (0..<first).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
        shift = (0..<first).map { beta[$0] - mean[$0] * gamma[$0] / (variance[$0] + epsilon).squareRoot() }
    }

    func run(_ inputs: inout [Value?], _ operators: Operators) throws -> [Value] {
        guard let x = inputs.first ?? nil, x.dtype == .float32 || x.dtype == .float64, x.rank >= 2, x.shape[1] == scale.count else {
            return try operators.run(inputs)
        }
        let channels = x.shape[1], inner = x.shape.dropFirst(2).reduce(1, *), planes = x.shape[0] * channels
        var out = inputs[0].take()!
        let step = EpilogueStep.affine(scale: scale, shift: shift)
        out.floats.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            let shared = SharedPointer(base)
            _ = Parallel.map(count: planes, workers: planes * inner < 1 << 17 ? 1 : Parallel.cores, makeWorker: {}) { (_: inout Void, plane: Int) in
                step.apply(shared.pointer + plane * inner, count: inner, channel: plane % channels)
            }
        }
        return [out]
    }
}

/// A Gemm with the activations `ActivationFusion` fused after it, applied in place to its result.
struct GemmKernel: PreparedKernel {
    let epilogue: [EpilogueStep]

    func run(_ inputs: inout [Value?], _ operators: Operators) throws -> [Value] {
        var out = try operators.gemm(inputs)
        out.floats.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            for step in epilogue { step.apply(base, count: p.count, channel: 0) }
        }
        return [out]
    }
}
