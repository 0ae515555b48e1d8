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
}
