import Foundation

/// The inner loops of the evaluator's kernels, written on `SIMD8<Float>` with a scalar tail: the
/// compiler does not vectorize plain loops over pointers here (overflow-checked induction
/// variables, possible aliasing), so these say it.
enum VectorLoops {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }

    /// Lane-wise max and min that compile to one instruction each (the standard library's
    /// `pointwiseMax` stays a call). A NaN in `a` is kept, as `Swift.max(a, b)` keeps it.
    @inline(__always)
    static func maximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }

    @inline(__always)
    static func minimum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .< a) }

    /// p[i] = f(p[i]) for i in 0..<count, eight at a time (`g` for the tail).
    @inline(__always)
    static func map(_ p: UnsafeMutablePointer<Float>, count: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>, _ g: (Float) -> Float) {
        var i = 0
        while i &+ 8 <= count {
            store(f(load(p + i)), p + i)
            i &+= 8
        }
        while i < count {
            p[i] = g(p[i])
            i &+= 1
        }
    }

    /// o[i] = f(o[i], y[i]) for i in 0..<count.
    @inline(__always)
    static func zip(
        _ o: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>,
        _ g: (Float, Float) -> Float
    ) {
        var i = 0
        while i &+ 8 <= count {
            store(f(load(o + i), load(y + i)), o + i)
            i &+= 8
        }
        while i < count {
            o[i] = g(o[i], y[i])
            i &+= 1
        }
    }

    /// y[i] += a · x[i] for i in 0..<count.
    @inline(__always)
    static func axpy(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ a: Float, count: Int) {
        let va = SIMD8<Float>(repeating: a)
        var i = 0
        while i &+ 8 <= count {
            store(load(y + i) + va * load(x + i), y + i)
            i &+= 8
        }
        while i < count {
            y[i] += a * x[i]
            i &+= 1
        }
    }

    /// y[i] += a · x[2i] for i in 0..<count; reads x[0...2·(count − 1)] only.
    @inline(__always)
    static func axpyEven(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ a: Float, count: Int) {
        let va = SIMD8<Float>(repeating: a)
        var i = 0
        while i &+ 8 < count {
            let pair = UnsafeRawPointer(x + 2 &* i).loadUnaligned(as: SIMD16<Float>.self)
            store(load(y + i) + va * pair.evenHalf, y + i)
            i &+= 8
        }
        while i < count {
            y[i] += a * x[2 &* i]
            i &+= 1
        }
    }

    /// e^x lane by lane, within 2 ulp of `Foundation.exp` wherever the result is a normal float
    /// (Cephes' single-precision method, the one onnxruntime's MLAS also follows): x = n·ln 2 + r
    /// with |r| ≤ ln 2 / 2, e^r by a degree-6 polynomial, 2^n put into the exponent bits. x is first
    /// clamped to [−110, 89], which makes e^−∞ exactly 0 and e^∞ exactly +∞ with no lane masks
    /// (Swift's masked `replacing` compiles to a loop over the lanes); NaN stays NaN.
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let v = minimum(maximum(x, SIMD8(repeating: -110)), SIMD8(repeating: 89))
        // n = round(v / ln 2), by adding 1.5 · 2^23 (the low bits of the sum are then n).
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = v * SIMD8(repeating: 1.442_695_040_888_963_4) + magic
        let n = shifted - magic
        let r = v - n * SIMD8(repeating: 0.693_359_375) - n * SIMD8(repeating: -2.121_944_4e-4)
        var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
        p = p * r + SIMD8(repeating: 1.398_199_950_7e-3)
        p = p * r + SIMD8(repeating: 8.333_451_907_3e-3)
        p = p * r + SIMD8(repeating: 4.166_579_589_4e-2)
        p = p * r + SIMD8(repeating: 1.666_666_545_9e-1)
        p = p * r + SIMD8(repeating: 5.000_000_120_1e-1)
        p = p * (r * r) + r + SIMD8(repeating: 1)
        // 2^n as two factors 2^(n/2) · 2^(n − n/2), each a normal float for n in [−159, 128]; their
        // product with p underflows to 0 or overflows to +∞ where e^x does.
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        let half = integer &>> 1
        let first = unsafeBitCast((half &+ 127) &<< 23, to: SIMD8<Float>.self)
        let second = unsafeBitCast((integer &- half &+ 127) &<< 23, to: SIMD8<Float>.self)
        return p * first * second
    }

    /// p[i] = e^(p[i] − shift) for i in 0..<count; returns their sum.
    @inline(__always)
    static func exponentiate(_ p: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
        let vs = SIMD8<Float>(repeating: shift)
        var sums = SIMD8<Float>(repeating: 0)
        var i = 0
        while i &+ 8 <= count {
            let e = exp(load(p + i) - vs)
            store(e, p + i)
            sums += e
            i &+= 8
        }
        var sum = sums.sum()
        while i < count {
            let e = Foundation.exp(p[i] - shift)
            p[i] = e
            sum += e
            i &+= 1
        }
        return sum
    }

    /// The largest of p[0..<count], −∞ for none. A NaN may or may not win: callers that go on to
    /// sum every element see it anyway.
    @inline(__always)
    static func maximum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var tops = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i &+ 8 <= count {
            tops = maximum(tops, load(p + i))
            i &+= 8
        }
        var top = tops.max()
        while i < count {
            top = Swift.max(top, p[i])
            i &+= 1
        }
        return top
    }
}
