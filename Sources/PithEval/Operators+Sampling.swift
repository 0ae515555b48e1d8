import Foundation
import PithIR

/// Sampling an input at computed positions: GridSample (opsets 16 and 20) and the old Upsample
/// (opsets 7 and 9, run as Resize with asymmetric coordinates).
extension Operators {
    // MARK: GridSample

    /// How GridSample reads a position outside the input.
    private enum GridPadding: String {
        case zeros, border, reflection
    }

    /// How GridSample interpolates between the input's elements.
    private enum GridMode {
        case nearest, linear, cubic
    }

    /// GridSample: Y[n, c, o…] = X[n, c] interpolated at grid[n, o…], whose last axis holds
    /// normalized coordinates in [−1, 1] for the spatial axes in reverse order (x for the last
    /// axis first). `align_corners` maps −1 and 1 to the centres of the corner elements, else to
    /// their outer edges. Positions outside the input are first moved inside (clamped with
    /// "border", reflected with "reflection"), then the taps of the interpolation read the input
    /// with the same padding ("zeros": 0 outside). With "cubic" and "border" the position is not
    /// clamped, only its taps, as onnxruntime and PyTorch compute it (onnx's reference clamps the
    /// position too, which flattens the curve beyond the last element).
    /// "nearest" rounds half to even; "cubic" is Keys' cubic convolution with A = −0.75.
    /// Opset 16 takes 4-D inputs with modes bilinear, nearest, bicubic; opset 20 any rank with
    /// linear, nearest, cubic. Computed in `Float`, as onnxruntime does.
    func gridSample(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0), grid = try floatInput(inputs, 1)
        let names: [String: GridMode] =
            opset >= 20 ? ["nearest": .nearest, "linear": .linear, "cubic": .cubic] : ["nearest": .nearest, "bilinear": .linear, "bicubic": .cubic]
        let modeName = string("mode", opset >= 20 ? "linear" : "bilinear")
        guard let mode = names[modeName] else {
            throw EvalError.invalid("mode `\(modeName)` is not one of \(names.keys.sorted().joined(separator: ", ")) (opset \(opset))")
        }
        let paddingName = string("padding_mode", "zeros")
        guard let padding = GridPadding(rawValue: paddingName) else {
            throw EvalError.invalid("padding_mode `\(paddingName)` is not one of zeros, border, reflection")
        }
        let alignCorners = int("align_corners", 0) != 0
        let spatial = x.rank - 2
        guard x.rank >= 3, opset >= 20 || x.rank == 4 else {
            throw EvalError.invalid("X of shape \(x.shape): GridSample needs [N, C, H, W]\(opset >= 20 ? " or [N, C, D1, …]" : "") at opset \(opset)")
        }
        guard grid.rank == x.rank, grid.shape[0] == x.shape[0], grid.shape[grid.rank - 1] == spatial else {
            throw EvalError.invalid("grid of shape \(grid.shape) for X of shape \(x.shape): it must be [\(x.shape[0]), output sizes…, \(spatial)]")
        }
        guard spatial <= 6 else { throw EvalError.unsupported("GridSample over \(spatial) spatial axes (at most 6)") }
        let outSpatial = Array(grid.shape[1..<(grid.rank - 1)])
        let shape = Array(x.shape[..<2]) + outSpatial
        try checkSize(shape, op: "GridSample")

        let dims = Array(x.shape[2...]), inCount = dims.reduce(1, *), outCount = outSpatial.reduce(1, *)
        guard inCount > 0 || shape.reduce(1, *) == 0 else { throw EvalError.invalid("X of shape \(x.shape) has no elements to sample") }
        let dimStrides = strides(dims)
        let low = dims.map { _ in alignCorners ? Float(0) : -0.5 }, high = dims.map { alignCorners ? Float($0 - 1) : Float($0) - 0.5 }
        /// `v` reflected by the borders [lo, hi] until it lies between them.
        func reflect(_ v: Float, _ lo: Float, _ hi: Float) -> Float {
            let range = hi - lo
            guard range > 0 else { return lo }
            if v < lo {
                let d = lo - v, n = (d / range).rounded(.towardZero), r = d - n * range
                return n.truncatingRemainder(dividingBy: 2) == 0 ? lo + r : hi - r
            }
            if v > hi {
                let d = v - hi, n = (d / range).rounded(.towardZero), r = d - n * range
                return n.truncatingRemainder(dividingBy: 2) == 0 ? hi - r : lo + r
            }
            return v
        }
        /// The element index a tap at integer position `i` of axis `a` reads, or nil for zero.
        func tapIndex(_ i: Int, axis a: Int) -> Int? {
            let d = dims[a]
            if i >= 0 && i < d { return i }
            switch padding {
            case .zeros: return nil
            case .border: return Swift.min(Swift.max(i, 0), d - 1)
            case .reflection: return Swift.min(Swift.max(Int(reflect(Float(i), low[a], high[a])), 0), d - 1)
            }
        }
        func cubicWeights(_ t: Float) -> [Float] {
            let a: Float = -0.75
            func near(_ s: Float) -> Float { ((a + 2) * s - (a + 3)) * s * s + 1 }
            func far(_ s: Float) -> Float { ((a * s - 5 * a) * s + 8 * a) * s - 4 * a }
            return [far(t + 1), near(t), near(1 - t), far(2 - t)]
        }

        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        let channels = x.shape[1]
        // Per spatial axis: the input offsets and weights of the taps, for one output position.
        var taps = [[(offset: Int, weight: Float)]](repeating: [], count: spatial)
        var counter = [Int](repeating: 0, count: spatial)
        for n in 0..<x.shape[0] {
            for o in 0..<outCount {
                var outside = false
                for a in 0..<spatial {
                    let g = grid.floats[(n * outCount + o) * spatial + (spatial - 1 - a)]
                    let d = Float(dims[a])
                    var v = alignCorners ? (g + 1) / 2 * (d - 1) : ((g + 1) * d - 1) / 2
                    if mode == .nearest { v = v.rounded(.toNearestOrEven) }
                    if v < low[a] || v > high[a] {
                        switch padding {
                        case .zeros: break
                        case .border: if mode != .cubic { v = Swift.min(Swift.max(v, 0), d - 1) }
                        case .reflection: v = reflect(v, low[a], high[a])
                        }
                    }
                    // NaN, or far outside with zeros padding: every tap reads 0.
                    guard v.isFinite, Swift.abs(v) < Float(1 << 30) else { outside = true; break }
                    let base = Int(v.rounded(.down)), t = v - Float(base)
                    let positions: [(Int, Float)]
                    switch mode {
                    case .nearest: positions = [(Int(v.rounded(.towardZero)), 1)]
                    case .linear: positions = [(base, 1 - t), (base + 1, t)]
                    case .cubic: positions = zip(base - 1...base + 2, cubicWeights(t)).map { ($0, $1) }
                    }
                    taps[a] = positions.compactMap { i, w in tapIndex(i, axis: a).map { ($0 * dimStrides[a], w) } }
                    if taps[a].isEmpty { outside = true; break }
                }
                guard !outside else { continue }
                for c in 0..<channels {
                    let plane = (n * channels + c) * inCount
                    var sum: Float = 0
                    for a in 0..<spatial { counter[a] = 0 }
                    while true {
                        var offset = plane, weight: Float = 1
                        for a in 0..<spatial {
                            offset += taps[a][counter[a]].offset
                            weight *= taps[a][counter[a]].weight
                        }
                        sum += weight * x.floats[offset]
                        var a = spatial - 1
                        while a >= 0 {
                            counter[a] += 1
                            if counter[a] < taps[a].count { break }
                            counter[a] = 0
                            a -= 1
                        }
                        if a < 0 { break }
                    }
                    out[(n * channels + c) * outCount + o] = sum
                }
            }
        }
        return roundedValue(out, shape: shape, dtype: x.dtype)
    }

    // MARK: Upsample

    /// Upsample (opsets 7 and 9; Resize replaced it at 10): output size ⌊input · scale⌋ per axis,
    /// output element i reading input position i / scale — the nearest element below it
    /// ("nearest") or the linear interpolation of its neighbours ("linear", "bilinear"). The
    /// scales come from the `scales` attribute (opset 7) or input 1 (opset 9), each at least 1.
    func upsample(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let scales: [Float]
        if opset < 9 {
            guard let given = floats("scales") else { throw EvalError.invalid("the scales attribute is required") }
            scales = given
        } else {
            scales = try floatInput(inputs, 1).floats
        }
        guard scales.count == x.rank, scales.allSatisfy({ $0 >= 1 && $0.isFinite }) else {
            throw EvalError.invalid("scales \(scales) for an input of rank \(x.rank): one scale of at least 1 per axis")
        }
        let modeName = string("mode", "nearest")
        guard ["nearest", "linear", "bilinear"].contains(modeName) else {
            throw EvalError.invalid("mode `\(modeName)` is not one of nearest, linear, bilinear")
        }
        let attributes = [
            Attribute(name: "mode", value: .string(Array((modeName == "nearest" ? "nearest" : "linear").utf8))),
            Attribute(name: "coordinate_transformation_mode", value: .string(Array("asymmetric".utf8))),
            Attribute(name: "nearest_mode", value: .string(Array("floor".utf8))),
        ]
        let resize = Operators(node: Node(name: node.name, opType: "Resize", inputs: [], outputs: [], attributes: attributes), opset: 13)
        return try resize.resize([x, nil, Value(floats: scales, shape: [scales.count])])
    }
}
