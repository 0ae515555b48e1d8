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
    func apply(_ p: UnsafeMutablePointer<Float>, count: Int, channel: Int) { self.channel(channel).apply(p, count: count) }

    /// The step as it applies to channel `channel`: its numbers picked out.
    func channel(_ channel: Int) -> ChannelStep {
        switch self {
        case .affine(let scale, let shift):
            return .affine(scale: scale.count == 1 ? scale[0] : scale[channel], shift: shift.count == 1 ? shift[0] : shift[channel])
        case .relu: return .relu
        case .clip(let low, let high): return .clip(low: low, high: high)
        case .leakyRelu(let alpha): return .leakyRelu(alpha: alpha)
        case .hardSigmoid(let alpha, let beta): return .hardSigmoid(alpha: alpha, beta: beta)
        case .hardSwish: return .hardSwish
        case .sigmoid: return .sigmoid
        case .tanh: return .tanh
        }
    }
}

/// An `EpilogueStep` of one channel: plain numbers, so that the loops applying it touch no
/// reference counts.
enum ChannelStep: Sendable {
    case affine(scale: Float, shift: Float)
    case relu
    case clip(low: Float, high: Float)
    case leakyRelu(alpha: Float)
    case hardSigmoid(alpha: Float, beta: Float)
    case hardSwish
    case sigmoid
    case tanh

    /// The step on `count` values in place, `bias` added first when given: a loop of its own per
    /// kind of step (`StepForm`), eight values at a time.
    func apply(_ p: UnsafeMutablePointer<Float>, count: Int, adding bias: Float? = nil) {
        switch self {
        case .affine(let scale, let shift): AffineForm(scale: scale, shift: shift).apply(p, count: count, adding: bias)
        case .relu: ReluForm().apply(p, count: count, adding: bias)
        case .clip(let low, let high): ClipForm(low: low, high: high).apply(p, count: count, adding: bias)
        case .leakyRelu(let alpha): LeakyReluForm(alpha: alpha).apply(p, count: count, adding: bias)
        case .hardSigmoid(let alpha, let beta): HardSigmoidForm(alpha: alpha, beta: beta).apply(p, count: count, adding: bias)
        case .hardSwish: HardSwishForm().apply(p, count: count, adding: bias)
        case .sigmoid: SigmoidForm().apply(p, count: count, adding: bias)
        case .tanh: TanhForm().apply(p, count: count, adding: bias)
        }
    }
}

/// One kind of step as a type, so that the loop applying it is specialized for it (closures
/// passed down stay calls here): its vector form and its scalar form, the same arithmetic.
private protocol StepForm {
    func callAsFunction(_ v: SIMD8<Float>) -> SIMD8<Float>
    func callAsFunction(_ x: Float) -> Float
}

extension StepForm {
    /// p[i] = step(p[i] + bias) (or step(p[i])) for i in 0..<count.
    @inline(__always)
    func apply(_ p: UnsafeMutablePointer<Float>, count: Int, adding bias: Float?) {
        var i = 0
        if let bias {
            let vb = SIMD8<Float>(repeating: bias)
            while i &+ 8 <= count {
                VectorLoops.store(self(VectorLoops.load(p + i) + vb), p + i)
                i &+= 8
            }
            while i < count {
                p[i] = self(p[i] + bias)
                i &+= 1
            }
        } else {
            while i &+ 8 <= count {
                VectorLoops.store(self(VectorLoops.load(p + i)), p + i)
                i &+= 8
            }
            while i < count {
                p[i] = self(p[i])
                i &+= 1
            }
        }
    }
}

private struct AffineForm: StepForm {
    let scale: Float, shift: Float
    @inline(__always) func callAsFunction(_ v: SIMD8<Float>) -> SIMD8<Float> { v * scale + shift }
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x * scale + shift }
}

private struct ReluForm: StepForm {
    @inline(__always) func callAsFunction(_ v: SIMD8<Float>) -> SIMD8<Float> { VectorLoops.maximum(v, .zero) }
    @inline(__always) func callAsFunction(_ x: Float) -> Float { max(x, 0) }
}

private struct ClipForm: StepForm {
    let low: Float, high: Float
    @inline(__always) func callAsFunction(_ v: SIMD8<Float>) -> SIMD8<Float> {
        VectorLoops.minimum(VectorLoops.maximum(v, SIMD8(repeating: low)), SIMD8(repeating: high))
    }
    @inline(__always) func callAsFunction(_ x: Float) -> Float { min(max(x, low), high) }
}

private struct LeakyReluForm: StepForm {
    let alpha: Float
    @inline(__always) func callAsFunction(_ v: SIMD8<Float>) -> SIMD8<Float> { v.replacing(with: v * alpha, where: v .< 0) }
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x >= 0 ? x : alpha * x }
}

/// `max(0, min(1, alpha · x + beta))`.
private struct HardSigmoidForm: StepForm {
    let alpha: Float, beta: Float
    @inline(__always) func callAsFunction(_ v: SIMD8<Float>) -> SIMD8<Float> {
        VectorLoops.maximum(VectorLoops.minimum(v * alpha + beta, SIMD8(repeating: 1)), .zero)
    }
    @inline(__always) func callAsFunction(_ x: Float) -> Float { max(0, min(1, alpha * x + beta)) }
}

/// `x · min(max(x + 3, 0), 6) · (1/6)`.
private struct HardSwishForm: StepForm {
    @inline(__always) func callAsFunction(_ v: SIMD8<Float>) -> SIMD8<Float> {
        v * VectorLoops.minimum(VectorLoops.maximum(v + 3, .zero), SIMD8(repeating: 6)) * (1 / 6)
    }
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x * min(max(x + 3, 0), 6) * (1 / 6) }
}

private struct SigmoidForm: StepForm {
    @inline(__always) func callAsFunction(_ v: SIMD8<Float>) -> SIMD8<Float> { OnnxruntimeMath.logistic(v) }
    @inline(__always) func callAsFunction(_ x: Float) -> Float { OnnxruntimeMath.logistic(x) }
}

private struct TanhForm: StepForm {
    @inline(__always) func callAsFunction(_ v: SIMD8<Float>) -> SIMD8<Float> { OnnxruntimeMath.tanh(v) }
    @inline(__always) func callAsFunction(_ x: Float) -> Float { OnnxruntimeMath.tanh(x) }
}

/// The steps of one channel, read where they lie (in a `ResolvedEpilogue`).
struct ChannelSteps {
    let start: UnsafePointer<ChannelStep>?
    let count: Int

    /// Applies every step to `count` values, in place: a pass per step, over values the caller
    /// has just written (in cache).
    func apply(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<self.count { start.unsafelyUnwrapped[i].apply(p, count: count) }
    }

    /// Adds `bias` to `count` values, then applies every step, in place (the bias in the first
    /// step's pass).
    func finish(_ p: UnsafeMutablePointer<Float>, count: Int, bias: Float) {
        guard self.count > 0 else {
            let vb = SIMD8<Float>(repeating: bias)
            VectorLoops.map(p, count: count, { $0 + vb }, { $0 + bias })
            return
        }
        start.unsafelyUnwrapped[0].apply(p, count: count, adding: bias)
        for i in 1..<self.count { start.unsafelyUnwrapped[i].apply(p, count: count) }
    }
}

/// A Conv's epilogue with each channel's steps picked out once (`EpilogueStep.channel`), when the
/// kernel is built.
struct ResolvedEpilogue: Sendable {
    /// Channel c's steps are `steps[c · perChannel ..< (c + 1) · perChannel]`.
    let steps: [ChannelStep]
    let perChannel: Int

    init(_ epilogue: [EpilogueStep], channels: Int) {
        perChannel = epilogue.count
        steps = (0..<channels).flatMap { c in epilogue.map { $0.channel(c) } }
    }

    /// `body` with a way to each channel's steps, valid during the call.
    func withSteps<R>(_ body: (Channels) throws -> R) rethrows -> R {
        try steps.withUnsafeBufferPointer { try body(Channels(base: $0.baseAddress, perChannel: perChannel)) }
    }

    /// Each channel's steps, for the workers of a parallel loop.
    struct Channels: @unchecked Sendable {
        let base: UnsafePointer<ChannelStep>?
        let perChannel: Int

        @inline(__always)
        subscript(channel: Int) -> ChannelSteps {
            ChannelSteps(start: perChannel == 0 ? nil : base.unsafelyUnwrapped + channel * perChannel, count: perChannel)
        }
    }
}
