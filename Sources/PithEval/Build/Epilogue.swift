import Foundation
import PithIR

/// One element-wise step a fused Conv applies to its output while the output is still in cache
/// (`ActivationFusion` builds them; `ConvKernel` applies them): an activation, or an affine map
/// with one scale and shift per output channel (or one for every channel).
enum EpilogueStep: Sendable {
    /// `x · scale[c] + shift[c]`; arrays of one value apply to every channel.
    case affine(scale: [Float], shift: [Float])
    case relu
    case clip(low: Float, high: Float)
    case leakyRelu(alpha: Float)
    /// `max(0, min(1, alpha · x + beta))`.
    case hardSigmoid(alpha: Float, beta: Float)
    /// `x · min(max(x + 3, 0), 6) / 6`, as the decomposed form exporters write computes it.
    case hardSwish
    case sigmoid
    case tanh

    /// The step for an activation node (`Relu`, `LeakyRelu`, `HardSigmoid`, `HardSwish`,
    /// `Sigmoid`, `Tanh`), or nil. `Clip` needs its bounds: see `ActivationFusion`.
    static func activation(_ node: Node, _ operators: Operators) -> EpilogueStep? {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return nil }
        switch node.opType {
        case "Relu": return .relu
        case "LeakyRelu": return .leakyRelu(alpha: operators.float("alpha", 0.01))
        case "HardSigmoid": return .hardSigmoid(alpha: operators.float("alpha", 0.2), beta: operators.float("beta", 0.5))
        case "HardSwish": return .hardSwish
        case "Sigmoid": return .sigmoid
        case "Tanh": return .tanh
        default: return nil
        }
    }

    /// Applies the step to `count` values of channel `channel`, in place.
    func apply(_ p: UnsafeMutablePointer<Float>, count: Int, channel: Int) {
        switch self {
        case .affine(let scale, let shift):
            let s = scale.count == 1 ? scale[0] : scale[channel], b = shift.count == 1 ? shift[0] : shift[channel]
            for i in 0..<count { p[i] = p[i] * s + b }
        case .relu:
            for i in 0..<count { p[i] = max(p[i], 0) }
        case .clip(let low, let high):
            for i in 0..<count { p[i] = min(max(p[i], low), high) }
        case .leakyRelu(let alpha):
            for i in 0..<count { p[i] = p[i] >= 0 ? p[i] : alpha * p[i] }
        case .hardSigmoid(let alpha, let beta):
            for i in 0..<count { p[i] = max(0, min(1, alpha * p[i] + beta)) }
        case .hardSwish:
            for i in 0..<count { p[i] = p[i] * min(max(p[i] + 3, 0), 6) / 6 }
        case .sigmoid:
            for i in 0..<count { p[i] = 1 / (1 + exp(-p[i])) }
        case .tanh:
            for i in 0..<count { p[i] = Foundation.tanh(p[i]) }
        }
    }
}

extension [EpilogueStep] {
    /// Adds `bias` to `count` values of channel `channel`, then applies every step, in place.
    func finish(_ p: UnsafeMutablePointer<Float>, count: Int, bias: Float, channel: Int) {
        if bias != 0 { for i in 0..<count { p[i] += bias } }
        for step in self { step.apply(p, count: count, channel: channel) }
    }
}
