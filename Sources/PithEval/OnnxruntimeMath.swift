import Foundation

/// onnxruntime's float32 logistic and hyperbolic tangent, bit for bit: MLAS's `MlasComputeLogistic`
/// and `MlasComputeTanh` (core/mlas/lib/logistic.cpp, tanh.cpp), the rational approximations Eigen
/// uses, evaluated as onnxruntime's x86-64 kernels evaluate them — each multiply-add fused (FMA3).
/// onnxruntime computes its Sigmoid and Tanh operators, the activations it fuses into convolutions
/// and the gates of its LSTM with them.
///
/// They differ from the correctly rounded functions by an ulp or two on about half of all inputs.
/// That is far inside any tolerance on its own, but a model that quantizes activations as it runs
/// (DynamicQuantizeLinear after a Sigmoid, DynamicQuantizeLSTM) rounds to the nearest step: an ulp
/// that moves a value across a step's midpoint moves it one step, and the steps compound through
/// the layers. Computing as onnxruntime does keeps every quantized value the same.
enum OnnxruntimeMath {
    /// 1 / (1 + e⁻ˣ): x clamped to ±18, then x·p(x²) / q(x²) + 1/2 (p of degree 4, q of degree 5)
    /// clamped to 0…1. NaN stays NaN.
    static func logistic(_ x: Float) -> Float {
        let v = x < -18 ? -18 : (x > 18 ? 18 : x)
        let v2 = v * v
        var p = Float(4.37031012579801e-11).fused(v2, 1.15627324459942e-07)
        p = p.fused(v2, 6.08574864600143e-05)
        p = p.fused(v2, 8.51377133304701e-03)
        p = p.fused(v2, 2.48287947061529e-01)
        p = p * v
        var q = Float(6.10247389755681e-13).fused(v2, 5.76102136993427e-09)
        q = q.fused(v2, 6.29106785017040e-06)
        q = q.fused(v2, 1.70198817374094e-03)
        q = q.fused(v2, 1.16817656904453e-01)
        q = q.fused(v2, 9.93151921023180e-01)
        let y = p / q + 0.5
        return y < 0 ? 0 : (y > 1 ? 1 : y)
    }

    /// tanh x: x clamped to ±9, then x·p(x²) / q(x²) (p of degree 6, q of degree 3). NaN stays NaN.
    static func tanh(_ x: Float) -> Float {
        let v = x < -9 ? -9 : (x > 9 ? 9 : x)
        let v2 = v * v
        var p = Float(-2.76076847742355e-16).fused(v2, 2.00018790482477e-13)
        p = p.fused(v2, -8.60467152213735e-11)
        p = p.fused(v2, 5.12229709037114e-08)
        p = p.fused(v2, 1.48572235717979e-05)
        p = p.fused(v2, 6.37261928875436e-04)
        p = p.fused(v2, 4.89352455891786e-03)
        p = p * v
        var q = Float(1.19825839466702e-06).fused(v2, 1.18534705686654e-04)
        q = q.fused(v2, 2.26843463243900e-03)
        q = q.fused(v2, 4.89352518554385e-03)
        return p / q
    }
}

extension OnnxruntimeMath {
    /// `logistic` of eight values, bit for bit the same, about five times faster: the fused
    /// multiply-adds emulated in double lanes (`FusedLanes`); when some lane's double sits halfway
    /// between two floats, the eight values are computed again one by one.
    @inline(__always)
    static func logistic(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var v = x.replacing(with: -18, where: x .< -18)
        v = v.replacing(with: 18, where: v .> 18)
        var lanes = FusedLanes(v * v)
        var p = lanes.fused(4.37031012579801e-11, 1.15627324459942e-07)
        p = lanes.fused(p, 6.08574864600143e-05)
        p = lanes.fused(p, 8.51377133304701e-03)
        p = lanes.fused(p, 2.48287947061529e-01)
        var q = lanes.fused(6.10247389755681e-13, 5.76102136993427e-09)
        q = lanes.fused(q, 6.29106785017040e-06)
        q = lanes.fused(q, 1.70198817374094e-03)
        q = lanes.fused(q, 1.16817656904453e-01)
        q = lanes.fused(q, 9.93151921023180e-01)
        guard !lanes.metHalfway else { return SIMD8(x.indices.map { logistic(x[$0]) }) }
        let y = p.floats * v / q.floats + 0.5
        return VectorLoops.minimum(y.replacing(with: 0, where: y .< 0), SIMD8(repeating: 1))
    }

    /// `tanh` of eight values, bit for bit the same (see `logistic(_:)` of eight).
    @inline(__always)
    static func tanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var v = x.replacing(with: -9, where: x .< -9)
        v = v.replacing(with: 9, where: v .> 9)
        var lanes = FusedLanes(v * v)
        var p = lanes.fused(-2.76076847742355e-16, 2.00018790482477e-13)
        p = lanes.fused(p, -8.60467152213735e-11)
        p = lanes.fused(p, 5.12229709037114e-08)
        p = lanes.fused(p, 1.48572235717979e-05)
        p = lanes.fused(p, 6.37261928875436e-04)
        p = lanes.fused(p, 4.89352455891786e-03)
        var q = lanes.fused(1.19825839466702e-06, 1.18534705686654e-04)
        q = lanes.fused(q, 2.26843463243900e-03)
        q = lanes.fused(q, 4.89352518554385e-03)
        guard !lanes.metHalfway else { return SIMD8(x.indices.map { tanh(x[$0]) }) }
        return p.floats * v / q.floats
    }

    /// Fused multiply-adds `a · x² + c` of eight lanes at once, each rounded once to a float, as
    /// `Float.fused` computes them: in double precision, then rounded to float. Records whether
    /// any double sat exactly halfway between two floats, where that second rounding may differ
    /// from the fused operation's single one. (Written on halves of four doubles: those convert and
    /// compare in single instructions.)
    struct FusedLanes {
        /// Eight doubles, as two halves.
        struct Doubles {
            var low: SIMD4<Double>
            var high: SIMD4<Double>
        }

        /// x², exact in double.
        let square: Doubles
        /// Per 32-bit word of the doubles, or'ed over the operations: the word's low 29 bits
        /// xor 1000…0, minus one, whose top bit is set only where those bits were 1000…0 (a
        /// halfway double). Integer lane arithmetic only: comparison masks compile to lane loops.
        private var halfway = SIMD8<UInt32>(repeating: 0)

        @inline(__always)
        init(_ square: SIMD8<Float>) { self.square = Doubles(low: widened(square.lowHalf), high: widened(square.highHalf)) }

        /// Whether some operation met a double halfway between two floats.
        @inline(__always)
        var metHalfway: Bool {
            // Only the low word of each double (the even words, little-endian) counts.
            let flags = halfway & SIMD8(0x8000_0000, 0, 0x8000_0000, 0, 0x8000_0000, 0, 0x8000_0000, 0)
            let folded = flags.lowHalf | flags.highHalf
            return (folded[0] | folded[2]) != 0
        }

        /// a · x² + c for four lanes, rounded to float and widened back to double (exactly).
        @inline(__always)
        private mutating func fused(_ a: SIMD4<Double>, _ square: SIMD4<Double>, _ c: Double) -> SIMD4<Double> {
            let s = a * square + SIMD4(repeating: c)
            halfway |= ((unsafeBitCast(s, to: SIMD8<UInt32>.self) & 0x1FFF_FFFF) ^ 0x1000_0000) &- 1
            return widened(narrowed(s))
        }

        @inline(__always)
        mutating func fused(_ a: Doubles, _ c: Float) -> Doubles {
            Doubles(low: fused(a.low, square.low, Double(c)), high: fused(a.high, square.high, Double(c)))
        }

        /// The first step, from a constant: a · x² + c.
        @inline(__always)
        mutating func fused(_ a: Float, _ c: Float) -> Doubles {
            let splat = SIMD4<Double>(repeating: Double(a))
            return fused(Doubles(low: splat, high: splat), c)
        }
    }
}

extension OnnxruntimeMath.FusedLanes.Doubles {
    /// The eight values as floats (exact: each is a float widened).
    @inline(__always)
    var floats: SIMD8<Float> { SIMD8(lowHalf: narrowed(low), highHalf: narrowed(high)) }
}

// Lane by lane, which compiles to one conversion instruction per pair of lanes; the standard
// library's generic conversions between SIMD types stay calls in the evaluator's large loops.
@inline(__always)
private func widened(_ v: SIMD4<Float>) -> SIMD4<Double> { SIMD4(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3])) }

@inline(__always)
private func narrowed(_ v: SIMD4<Double>) -> SIMD4<Float> { SIMD4(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3])) }

extension Float {
    /// self · x + c, rounded once (a fused multiply-add), for results in the normal range.
    ///
    /// Emulated in double precision: the package is built for baseline x86-64, where
    /// `Float.addingProduct` is a call to the C library's `fmaf`, several times slower. self · x is
    /// exact in a double; self · x + c is rounded once to a double, then to a float. The second
    /// rounding gives the correctly rounded result unless the double sits exactly halfway between two
    /// floats (the 29 bits it drops are 1000…0), where the exact sum may lie on either side: there
    /// `fmaf` decides (13 of 50 million random operations went there; every result equalled `fmaf`'s,
    /// and `logistic` and `tanh` equal their `fmaf` forms on every float of [−18, 18] and [−9, 9]).
    @inline(__always)
    fileprivate func fused(_ x: Float, _ c: Float) -> Float {
        let s = Double(self) * Double(x) + Double(c)
        if s.bitPattern & 0x1FFF_FFFF == 0x1000_0000 { return c.addingProduct(self, x) }
        return Float(s)
    }
}
