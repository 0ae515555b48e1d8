import PithIR

/// BatchNormalization after a Conv, and multiplications and additions by per-channel constants
/// (the "learnable affine" blocks of PP-LCNet, a BatchNormalization exported as Mul and Add), are
/// folded into the Conv's weights and bias: for a scale `s` and shift `t` of channel `c`,
/// `W[c] ← s·W[c]` and `B[c] ← s·B[c] + t`. BatchNormalization in inference mode is the scale
/// `γ / √(σ² + ε)` and the shift `β − μ·γ / √(σ² + ε)`.
///
/// Preconditions, checked first: a Conv of constant floating-point weights (and bias, if any) with
/// nothing fused after it yet; the node after it the only reader of its output, which is not a
/// graph output; a BatchNormalization with constant parameters, not in training mode, with one
/// output, or an Add, Sub, Mul or Div whose other operand is a constant scalar or one value per
/// channel (Div only by the constant). Repeats while the next node qualifies.
enum ConvBatchNormFusion {
    static func apply(to build: inout GraphBuild) {
        for k in build.nodes.indices where build.isOperator(k, "Conv") {
            while let conv = build.node(k), let output = conv.outputs.first, let next = build.soleReader(of: output),
                var fused = build.fusedConv(k), fused.epilogue.isEmpty,
                let (scale, shift) = batchNorm(next, of: output, channels: fused.weightShape[0], build)
                    ?? build.channelAffine(next, of: output, channels: fused.weightShape[0], rank: fused.weightShape.count)
            {
                build.convs[k] = nil  // so that `fused` holds the only reference to the weights, changed in place
                build.releaseWeights(of: k)
                let filters = fused.weightShape[0], perFilter = fused.weights.count / filters
                var bias = fused.bias ?? [Float](repeating: 0, count: filters)
                fused.weights.withUnsafeMutableBufferPointer { w in
                    for f in 0..<filters {
                        let s = scale.count == 1 ? scale[0] : scale[f], t = shift.count == 1 ? shift[0] : shift[f]
                        ChannelStep.affine(scale: s, shift: 0).apply(w.baseAddress! + f * perFilter, count: perFilter)
                        bias[f] = bias[f] * s + t
                    }
                }
                fused.bias = bias
                build.convs[k] = fused
                build.absorb(next, into: k)
            }
        }
    }

    /// The scale and shift of the BatchNormalization at `k`, reading `value`, if it qualifies.
    private static func batchNorm(_ k: Int, of value: String, channels: Int, _ build: GraphBuild) -> (scale: [Float], shift: [Float])? {
        guard build.isOperator(k, "BatchNormalization"), let node = build.node(k), node.inputs.count == 5, node.inputs[0] == value,
            node.outputs.filter({ !$0.isEmpty }).count == 1
        else { return nil }
        let operators = Operators(node: node, opset: build.opset)
        guard !(build.opset >= 14 && operators.int("training_mode", 0) != 0) else { return nil }
        let parameters = node.inputs[1...].map { build.floatConstant($0) }
        guard parameters.allSatisfy({ $0?.count == channels }) else { return nil }
        let gamma = parameters[0]!.floats, beta = parameters[1]!.floats, mean = parameters[2]!.floats, variance = parameters[3]!.floats
        let epsilon = operators.float("epsilon", 1e-5)
        let scale = (0..<channels).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
        return (scale, (0..<channels).map { beta[$0] - mean[$0] * scale[$0] })
    }
}
