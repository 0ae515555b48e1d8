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
    /// `x · min(max(x + 3, 0), 6) / 6`, as the decomposed form exporters write computes it (the
    /// division done as a multiplication by 1/6).
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
            let vs = SIMD8<Float>(repeating: s), vb = SIMD8<Float>(repeating: b)
            VectorLoops.map(p, count: count, { $0 * vs + vb }, { $0 * s + b })
        case .relu:
            let zero = SIMD8<Float>(repeating: 0)
            VectorLoops.map(p, count: count, { VectorLoops.maximum($0, zero) }, { max($0, 0) })
        case .clip(let low, let high):
            let vl = SIMD8<Float>(repeating: low), vh = SIMD8<Float>(repeating: high)
            VectorLoops.map(p, count: count, { VectorLoops.minimum(VectorLoops.maximum($0, vl), vh) }, { min(max($0, low), high) })
        case .leakyRelu(let alpha):
            VectorLoops.map(p, count: count, { $0.replacing(with: $0 * alpha, where: $0 .< 0) }, { $0 >= 0 ? $0 : alpha * $0 })
        case .hardSigmoid(let alpha, let beta):
            let zero = SIMD8<Float>(repeating: 0), one = SIMD8<Float>(repeating: 1), va = SIMD8<Float>(repeating: alpha), vb = SIMD8<Float>(repeating: beta)
            VectorLoops.map(p, count: count, { VectorLoops.maximum(VectorLoops.minimum(va * $0 + vb, one), zero) }, { max(0, min(1, alpha * $0 + beta)) })
        case .hardSwish:
            let zero = SIMD8<Float>(repeating: 0), three = SIMD8<Float>(repeating: 3), six = SIMD8<Float>(repeating: 6),
                sixth = SIMD8<Float>(repeating: 1.0 / 6)
            VectorLoops.map(
                p, count: count, { $0 * VectorLoops.minimum(VectorLoops.maximum($0 + three, zero), six) * sixth }, { $0 * min(max($0 + 3, 0), 6) * (1 / 6) })
        case .sigmoid:
            for i in 0..<count { p[i] = OnnxruntimeMath.logistic(p[i]) }
        case .tanh:
            for i in 0..<count { p[i] = OnnxruntimeMath.tanh(p[i]) }
        }
    }
}

extension EpilogueStep {
    /// Whether the step has a vector form (`vector`): every step but Sigmoid and Tanh, which are
    /// computed as onnxruntime computes them (`OnnxruntimeMath`).
    var isVectorizable: Bool {
        switch self {
        case .sigmoid, .tanh: return false
        default: return true
        }
    }

    /// The step on eight values of channel `channel` (only for `isVectorizable` steps).
    @inline(__always)
    func vector(_ v: SIMD8<Float>, channel: Int) -> SIMD8<Float> {
        switch self {
        case .affine(let scale, let shift):
            return v * (scale.count == 1 ? scale[0] : scale[channel]) + (shift.count == 1 ? shift[0] : shift[channel])
        case .relu: return VectorLoops.maximum(v, .zero)
        case .clip(let low, let high): return VectorLoops.minimum(VectorLoops.maximum(v, SIMD8(repeating: low)), SIMD8(repeating: high))
        case .leakyRelu(let alpha): return v.replacing(with: v * alpha, where: v .< 0)
        case .hardSigmoid(let alpha, let beta): return VectorLoops.maximum(VectorLoops.minimum(v * alpha + beta, SIMD8(repeating: 1)), .zero)
        case .hardSwish: return v * VectorLoops.minimum(VectorLoops.maximum(v + 3, .zero), SIMD8(repeating: 6)) * (1 / 6)
        case .sigmoid, .tanh: return v
        }
    }
}

extension [EpilogueStep] {
    /// Adds `bias` to `count` values of channel `channel`, then applies every step, in place: in one
    /// pass, eight values at a time, when every step has a vector form.
    func finish(_ p: UnsafeMutablePointer<Float>, count: Int, bias: Float, channel: Int) {
        if count >= 8, allSatisfy(\.isVectorizable) {
            let vb = SIMD8<Float>(repeating: bias)
            var i = 0
            while i &+ 8 <= count {
                var v = VectorLoops.load(p + i) + vb
                for step in self { v = step.vector(v, channel: channel) }
                VectorLoops.store(v, p + i)
                i &+= 8
            }
            if i < count {
                // The last eight values again, from a copy of the tail: no scalar form to keep in step.
                var tail = SIMD8<Float>(repeating: 0)
                for k in 0..<(count - i) { tail[k] = p[i + k] + bias }
                for step in self { tail = step.vector(tail, channel: channel) }
                for k in 0..<(count - i) { p[i + k] = tail[k] }
            }
            return
        }
        if bias != 0 {
            let vb = SIMD8<Float>(repeating: bias)
            VectorLoops.map(p, count: count, { $0 + vb }, { $0 + bias })
        }
        for step in self { step.apply(p, count: count, channel: channel) }
    }
}
