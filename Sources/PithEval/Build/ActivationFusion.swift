import PithIR

/// Activations after a Conv become its epilogue (`EpilogueStep`), applied to each band of output
/// while it is in cache instead of in a pass of their own over a new tensor: Relu, LeakyRelu,
/// Clip (Relu6), HardSigmoid, HardSwish (after `HardSwishRecognition`), Sigmoid and Tanh. Once an
/// activation is fused, multiplications and additions by per-channel constants after it (which
/// cannot be folded into the weights) join the epilogue too.
///
/// Preconditions, checked first: a Conv of constant floating-point weights; the node after it the
/// only reader of its output, which is not a graph output; an activation of one input (a Clip with
/// constant bounds), or, after an activation, an Add, Sub, Mul or Div by a constant scalar or one
/// value per channel. Repeats while the next node qualifies. After a Gemm, activations are fused the
/// same way (`GemmKernel`).
enum ActivationFusion {
    static func apply(to build: inout GraphBuild) {
        for k in build.nodes.indices where build.isOperator(k, "Conv") {
            while let conv = build.node(k), let output = conv.outputs.first, let next = build.soleReader(of: output),
                var fused = build.fusedConv(k), let step = step(next, of: output, after: fused, build)
            {
                build.convs[k] = nil  // so that `fused` holds the only reference to its arrays
                if case .affine(let scale, let shift) = step, case .affine(let s0, let t0)? = fused.epilogue.last {
                    // Two affine maps in a row are one: (x·s0 + t0)·s + t.
                    let count = max(scale.count, s0.count)
                    func at(_ a: [Float], _ i: Int) -> Float { a.count == 1 ? a[0] : a[i] }
                    fused.epilogue[fused.epilogue.count - 1] = .affine(
                        scale: (0..<count).map { at(s0, $0) * at(scale, $0) }, shift: (0..<count).map { at(t0, $0) * at(scale, $0) + at(shift, $0) })
                } else {
                    fused.epilogue.append(step)
                }
                build.convs[k] = fused
                build.absorb(next, into: k)
            }
        }
        // Gemm: activations only (a per-column scale would need the output's layout).
        for k in build.nodes.indices where build.isOperator(k, "Gemm") {
            while let gemm = build.node(k), gemm.outputs.count == 1, let next = build.soleReader(of: gemm.outputs[0]), let node = build.node(next),
                node.inputs.first == gemm.outputs[0], node.outputs.filter({ !$0.isEmpty }).count == 1,
                let step = (node.inputs.count == 1 ? EpilogueStep.activation(node, Operators(node: node, opset: build.opset)) : nil)
                    ?? build.clipBounds(next).map({ EpilogueStep.clip(low: $0.low, high: $0.high) })
            {
                build.gemmEpilogues[k, default: []].append(step)
                build.absorb(next, into: k)
            }
        }
    }

    /// The epilogue step node `k` (reading `value`) computes, if it qualifies.
    private static func step(_ k: Int, of value: String, after fused: GraphBuild.FusedConv, _ build: GraphBuild) -> EpilogueStep? {
        guard let node = build.node(k), node.inputs.contains(value), node.outputs.filter({ !$0.isEmpty }).count == 1 else { return nil }
        if node.inputs.count == 1, let activation = EpilogueStep.activation(node, Operators(node: node, opset: build.opset)) { return activation }
        if node.inputs.first == value, let bounds = build.clipBounds(k) { return .clip(low: bounds.low, high: bounds.high) }
        guard !fused.epilogue.isEmpty, let (scale, shift) = build.channelAffine(k, of: value, channels: fused.weightShape[0], rank: fused.weightShape.count)
        else { return nil }
        return .affine(scale: scale, shift: shift)
    }
}
