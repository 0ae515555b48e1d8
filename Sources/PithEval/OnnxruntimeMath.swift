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
