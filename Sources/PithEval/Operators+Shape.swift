import Foundation
import PithIR

/// Operators that move elements without arithmetic, and Resize.
extension Operators {
    /// Elements of `x` gathered at `indices`, keeping the value's type.
    func pick(_ x: Value, _ indices: [Int], shape: [Int]) -> Value { x.gathered(indices, shape: shape) }

    func flatten(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        var axis = int("axis", 1)
        if axis < 0 { axis += x.rank }
        guard axis >= 0, axis <= x.rank else { throw EvalError.invalid("axis \(int("axis", 1)) is outside rank \(x.rank)") }
        let outer = x.shape[..<axis].reduce(1, *)
        return x.reshaped([outer, x.count / max(outer, 1)])
    }

    func reshape(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let requested: [Int]
        if opset < 5 { requested = ints("shape") ?? [] } else { requested = try required(inputs, 1).asInts.map { Int($0) } }
        let allowZero = int("allowzero", 0) != 0
        var shape = requested.enumerated().map { i, d in d == 0 && !allowZero && i < x.rank ? x.shape[i] : d }
        if let unknown = shape.firstIndex(of: -1) {
            let known = shape.enumerated().filter { $0.offset != unknown }.reduce(1) { $0 * $1.element }
            guard known > 0, x.count % known == 0 else { throw EvalError.invalid("cannot reshape \(x.shape) to \(requested)") }
            shape[unknown] = x.count / known
        }
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == x.count else {
            throw EvalError.invalid("cannot reshape \(x.shape) (\(x.count) elements) to \(requested)")
        }
        return x.reshaped(shape)
    }

    func transpose(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let perm = ints("perm") ?? Array((0..<x.rank).reversed())
        return try transposed(x, perm)
    }

    func transposed(_ x: Value, _ perm: [Int]) throws -> Value {
        guard perm.sorted() == Array(0..<x.rank) else { throw EvalError.invalid("perm \(perm) is not a permutation of \(x.rank) axes") }
        let shape = perm.map { x.shape[$0] }
        let source = strides(x.shape)
        let indices = stridedOffsets(shape, strides: perm.map { source[$0] })
        return pick(x, indices, shape: shape)
    }

    func concat(_ inputs: [Value?]) throws -> Value {
        let parts = inputs.compactMap { $0 }
        guard let first = parts.first, first.rank >= 1 else { throw EvalError.invalid("Concat needs inputs of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", 0), rank: first.rank, op: "Concat")
        for p in parts where p.rank != first.rank || p.shape.enumerated().contains(where: { $0.offset != axis && $0.element != first.shape[$0.offset] }) {
            throw EvalError.invalid("inputs of shapes \(first.shape) and \(p.shape) do not concatenate on axis \(axis)")
        }
        var shape = first.shape
        shape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
        let outer = first.shape[..<axis].reduce(1, *)
        var out = first
        out.shape = shape
        out.floats = []
        out.ints = []
        let isFloat = parts.contains { $0.isFloat }
        if isFloat { out.floats.reserveCapacity(shape.reduce(1, *)) } else { out.ints.reserveCapacity(shape.reduce(1, *)) }
        for o in 0..<outer {
            for p in parts {
                let block = p.shape[axis...].reduce(1, *)
                if isFloat { out.floats += p.asFloats[o * block..<(o + 1) * block] } else { out.ints += p.ints[o * block..<(o + 1) * block] }
            }
        }
        if isFloat, !out.isFloat { out.dtype = .float32 }
        return out
    }

    func axesInput(_ inputs: [Value?], attributeBefore version: Int) -> [Int]? {
        if opset < version { return ints("axes") }
        if inputs.count > 1, let a = inputs[1] { return a.asInts.map { Int($0) } }
        return nil
    }

    func squeeze(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let axes = try axesInput(inputs, attributeBefore: 13).map { try $0.map { try normalizedAxis($0, rank: x.rank, op: "Squeeze") } }
        let drop = Set(axes ?? x.shape.indices.filter { x.shape[$0] == 1 })
        for a in drop where x.shape[a] != 1 { throw EvalError.invalid("axis \(a) of shape \(x.shape) is not 1") }
        return x.reshaped(x.shape.enumerated().filter { !drop.contains($0.offset) }.map(\.element))
    }

    func unsqueeze(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard let axes = axesInput(inputs, attributeBefore: 13) else { throw EvalError.invalid("axes are required") }
        let rank = x.rank + axes.count
        let inserted = Set(try axes.map { try normalizedAxis($0, rank: rank, op: "Unsqueeze") })
        var shape: [Int] = [], next = 0
        for a in 0..<rank {
            if inserted.contains(a) { shape.append(1) } else { shape.append(x.shape[next]); next += 1 }
        }
        return x.reshaped(shape)
    }

    func shape(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let rank = x.rank
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
        let start = clamp(int("start", 0))
        let end = node.attribute("end") == nil ? rank : clamp(int("end", rank))
        let dims = start < end ? Array(x.shape[start..<end]) : []
        return Value(ints: dims.map { Int64($0) }, shape: [dims.count])
    }

    func gather(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0), indices = try required(inputs, 1)
        guard x.rank >= 1 else { throw EvalError.invalid("Gather needs data of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", 0), rank: x.rank, op: "Gather")
        let n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        let picks = try indices.asInts.map { i -> Int in
            let k = Int(i < 0 ? i + Int64(n) : i)
            guard k >= 0, k < n else { throw EvalError.invalid("index \(i) is outside axis \(axis) of size \(n)") }
            return k
        }
        try checkSize(Array(x.shape[..<axis]) + indices.shape + Array(x.shape[(axis + 1)...]), op: "Gather")
        var order: [Int] = []
        order.reserveCapacity(outer * picks.count * inner)
        for o in 0..<outer { for k in picks { for i in 0..<inner { order.append((o * n + k) * inner + i) } } }
        return pick(x, order, shape: Array(x.shape[..<axis]) + indices.shape + Array(x.shape[(axis + 1)...]))
    }

    func slice(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let starts: [Int], ends: [Int]
        var axes: [Int]?, steps: [Int]?
        if opset < 10 {
            starts = ints("starts") ?? []
            ends = ints("ends") ?? []
            axes = ints("axes")
        } else {
            starts = try required(inputs, 1).asInts.map { Int(clamping: $0) }
            ends = try required(inputs, 2).asInts.map { Int(clamping: $0) }
            if inputs.count > 3, let a = inputs[3] { axes = a.asInts.map { Int($0) } }
            if inputs.count > 4, let s = inputs[4] { steps = s.asInts.map { Int($0) } }
        }
        let axisList = try (axes ?? Array(0..<starts.count)).map { try normalizedAxis($0, rank: x.rank, op: "Slice") }
        guard starts.count == ends.count, axisList.count == starts.count else { throw EvalError.invalid("starts, ends and axes differ in length") }
        var begin = [Int](repeating: 0, count: x.rank), step = [Int](repeating: 1, count: x.rank), shape = x.shape
        for (j, axis) in axisList.enumerated() {
            let n = x.shape[axis]
            let s = steps?[j] ?? 1
            guard s != 0 else { throw EvalError.invalid("a step is 0") }
            var b = starts[j] < 0 ? starts[j] + n : starts[j]
            var e = ends[j] < 0 ? ends[j] + n : ends[j]
            if s > 0 {
                b = min(max(b, 0), n); e = min(max(e, 0), n)
                shape[axis] = e > b ? (e - b + s - 1) / s : 0
            } else {
                b = min(max(b, -1), n - 1); e = min(max(e, -1), n - 1)
                shape[axis] = b > e ? (b - e - s - 1) / -s : 0
            }
            begin[axis] = b
            step[axis] = s
        }
        let source = strides(x.shape)
        let total = shape.reduce(1, *)
        if x.isFloat, total > 0, step.allSatisfy({ $0 == 1 }) {
            // Unit steps: runs of the innermost axes copied whole (the axes after `k` are not sliced).
            var k = x.rank - 1
            while k > 0, shape[k] == x.shape[k] { k -= 1 }
            let run = shape[k...].reduce(1, *), outer = total / run
            var out = [Float](repeating: 0, count: total)
            var index = [Int](repeating: 0, count: k)
            let outerShape = Array(shape[..<k])
            x.floats.withUnsafeBufferPointer { v in
                out.withUnsafeMutableBufferPointer { o in
                    for r in 0..<outer {
                        var offset = begin[k] * source[k]
                        for a in 0..<k { offset += (begin[a] + index[a]) * source[a] }
                        (o.baseAddress! + r * run).update(from: v.baseAddress! + offset, count: run)
                        advance(&index, within: outerShape)
                    }
                }
            }
            return Value(floats: out, shape: shape, dtype: x.dtype)
        }
        var order = [Int](repeating: 0, count: total)
        var index = [Int](repeating: 0, count: x.rank)
        for i in 0..<total {
            var offset = 0
            for a in 0..<x.rank { offset += (begin[a] + index[a] * step[a]) * source[a] }
            order[i] = offset
            advance(&index, within: shape)
        }
        return pick(x, order, shape: shape)
    }

    func pad(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let mode = string("mode", "constant")
        var pads: [Int]
        var constant: Float = 0
        if opset < 11 {
            pads = ints("pads") ?? ints("paddings") ?? []
            constant = float("value", 0)
        } else {
            pads = try required(inputs, 1).asInts.map { Int($0) }
            if inputs.count > 2, let c = inputs[2] { constant = c.asFloats.first ?? 0 }
        }
        var axes = Array(0..<x.rank)
        if inputs.count > 3, let a = inputs[3] { axes = try a.asInts.map { try normalizedAxis(Int($0), rank: x.rank, op: "Pad") } }
        guard pads.count == 2 * axes.count else { throw EvalError.invalid("\(pads.count) pads for \(axes.count) axes") }
        var before = [Int](repeating: 0, count: x.rank), after = before
        for (j, a) in axes.enumerated() { before[a] = pads[j]; after[a] = pads[j + axes.count] }
        let shape = x.shape.indices.map { x.shape[$0] + before[$0] + after[$0] }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw EvalError.invalid("pads \(pads) remove more than shape \(x.shape)") }
        try checkSize(shape, op: "Pad")
        let source = strides(x.shape)
        let total = shape.reduce(1, *)
        var order = [Int](repeating: -1, count: total)
        var index = [Int](repeating: 0, count: x.rank)
        for i in 0..<total {
            var offset = 0, inside = true
            for a in 0..<x.rank {
                var k = index[a] - before[a]
                let n = x.shape[a]
                if k < 0 || k >= n {
                    switch mode {
                    case "constant": inside = false
                    case "edge": k = min(max(k, 0), n - 1)
                    case "reflect":
                        if n == 1 {
                            k = 0
                        } else {
                            let period = 2 * (n - 1)
                            k = ((k % period) + period) % period
                            if k >= n { k = period - k }
                        }
                    case "wrap": k = ((k % n) + n) % n
                    default: throw EvalError.unsupported("Pad mode `\(mode)`")
                    }
                }
                if !inside { break }
                offset += k * source[a]
            }
            order[i] = inside ? offset : -1
            advance(&index, within: shape)
        }
        var out = x
        out.shape = shape
        if x.isFloat { out.floats = order.map { $0 < 0 ? constant : x.floats[$0] } } else { out.ints = order.map { $0 < 0 ? Int64(constant) : x.ints[$0] } }
        return out
    }

    // MARK: Resize

    func resize(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        let mode = string("mode", "nearest")
        guard ["nearest", "linear", "cubic"].contains(mode) else { throw EvalError.unsupported("Resize mode `\(mode)`") }
        let transform = opset < 11 ? "asymmetric" : string("coordinate_transformation_mode", "half_pixel")
        let supportedTransforms = [
            "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn", "half_pixel_symmetric", "tf_crop_and_resize",
        ]
        let cubicA = float("cubic_coeff_a", -0.75), excludeOutside = int("exclude_outside", 0) != 0
        let extrapolation = float("extrapolation_value", 0)
        guard supportedTransforms.contains(transform) else { throw EvalError.unsupported("Resize coordinate_transformation_mode `\(transform)`") }
        if int("antialias", 0) != 0 { throw EvalError.unsupported("Resize with antialias") }
        if ints("axes") != nil { throw EvalError.unsupported("Resize with axes") }
        if string("keep_aspect_ratio_policy", "stretch") != "stretch" { throw EvalError.unsupported("Resize keep_aspect_ratio_policy") }
        let nearestMode = string("nearest_mode", "round_prefer_floor")
        var scales: [Float] = [], sizes: [Int] = [], roi: [Float] = []
        if transform == "tf_crop_and_resize" {
            guard inputs.count > 1, let r = inputs[1], r.count == 2 * x.rank else {
                throw EvalError.invalid("tf_crop_and_resize needs a roi of \(2 * x.rank) values")
            }
            roi = r.asFloats
        }
        if opset < 11 {
            scales = try required(inputs, 1).asFloats
        } else {
            if inputs.count > 2, let s = inputs[2], s.count > 0 { scales = s.asFloats }
            if inputs.count > 3, let s = inputs[3], s.count > 0 { sizes = s.asInts.map { Int($0) } }
        }
        // The resized length the coordinate transforms use: the size asked for, or the input
        // length times the scale, unrounded (as the ONNX reference computes it).
        let lengths: [Float]
        if !sizes.isEmpty {
            guard sizes.count == x.rank else { throw EvalError.invalid("\(sizes.count) sizes for rank \(x.rank)") }
            scales = zip(sizes, x.shape).map { Float($0) / Float($1) }
            lengths = sizes.map(Float.init)
        } else {
            guard scales.count == x.rank else { throw EvalError.invalid("\(scales.count) scales for rank \(x.rank)") }
            guard scales.allSatisfy({ $0.isFinite && $0 > 0 && $0 < 1e9 }) else { throw EvalError.invalid("scales \(scales) must be positive and finite") }
            sizes = zip(scales, x.shape).map { Int(floor(Float($1) * $0)) }
            lengths = zip(scales, x.shape).map { Float($1) * $0 }
        }
        try checkSize(sizes, op: "Resize")
        // Source coordinate of output index `i` along an axis.
        func source(_ i: Int, axis: Int) -> Float {
            let scale = scales[axis], inSize = Float(x.shape[axis]), outSize = lengths[axis]
            let fi = Float(i)
            switch transform {
            case "align_corners": return outSize <= 1 ? 0 : fi * (inSize - 1) / (outSize - 1)
            case "asymmetric": return fi / scale
            case "pytorch_half_pixel": return outSize > 1 ? (fi + 0.5) / scale - 0.5 : 0
            case "tf_half_pixel_for_nn": return (fi + 0.5) / scale
            case "tf_crop_and_resize":
                let start = roi[axis], end = roi[axis + x.rank]
                return outSize > 1 ? start * (inSize - 1) + fi * (end - start) * (inSize - 1) / (outSize - 1) : 0.5 * (start + end) * (inSize - 1)
            case "half_pixel_symmetric":
                let adjustment = outSize / (scale * inSize)
                let center = inSize / 2
                let offset = center * (1 - adjustment)
                return offset + (fi + 0.5) / scale - 0.5
            default: return (fi + 0.5) / scale - 0.5
            }
        }
        // Per axis: for every output index, the source indices and weights it mixes.
        var taps: [[[(Int, Float)]]] = []
        for axis in 0..<x.rank {
            let n = x.shape[axis]
            var axisTaps: [[(Int, Float)]] = []
            for i in 0..<sizes[axis] {
                let s = source(i, axis: axis)
                if transform == "tf_crop_and_resize", s < 0 || s > Float(n - 1) {
                    axisTaps.append([])  // outside the input: the extrapolation value
                    continue
                }
                if mode == "cubic" {
                    // Cubic convolution (Keys) over four neighbours, edges replicated or, with
                    // exclude_outside, left out and the weights renormalised.
                    let base = Int(floor(s)), t = s - Float(base)
                    func kernel(_ d: Float) -> Float {
                        let x = abs(d)
                        if x <= 1 { return ((cubicA + 2) * x - (cubicA + 3)) * x * x + 1 }
                        if x < 2 { return ((cubicA * x - 5 * cubicA) * x + 8 * cubicA) * x - 4 * cubicA }
                        return 0
                    }
                    var entries: [(Int, Float)] = []
                    for offset in -1...2 {
                        let k = base + offset
                        let w = kernel(Float(offset) - t)
                        if excludeOutside, k < 0 || k >= n { continue }
                        entries.append((min(max(k, 0), n - 1), w))
                    }
                    if excludeOutside {
                        let total = entries.reduce(0) { $0 + $1.1 }
                        entries = entries.map { ($0.0, total == 0 ? 0 : $0.1 / total) }
                    }
                    axisTaps.append(entries)
                    continue
                }
                if mode == "nearest" || n == 1 {
                    var k: Int
                    switch nearestMode {
                    case "floor": k = Int(floor(s))
                    case "ceil": k = Int(ceil(s))
                    case "round_prefer_ceil": k = Int((s + 0.5).rounded(.down))
                    default: k = s == floor(s) + 0.5 ? Int(floor(s)) : Int(s.rounded())
                    }
                    if mode == "linear" { k = 0 }
                    axisTaps.append([(min(max(k, 0), n - 1), Float(1))])
                } else {
                    let c = min(max(s, 0), Float(n - 1))
                    let low = min(Int(floor(c)), n - 1), high = min(low + 1, n - 1)
                    let t = c - Float(low)
                    axisTaps.append(t == 0 || low == high ? [(low, Float(1))] : [(low, 1 - t), (high, t)])
                }
            }
            taps.append(axisTaps)
        }
        // Separable: resize one axis at a time. Positions outside the crop (tf_crop_and_resize)
        // take the extrapolation value at the end.
        var outside = [Bool](repeating: false, count: sizes.reduce(1, *))
        if transform == "tf_crop_and_resize" {
            let outStrides = strides(sizes)
            for axis in 0..<x.rank {
                for (j, entries) in taps[axis].enumerated() where entries.isEmpty {
                    let inner = outStrides[axis], outer = outside.count / (inner * sizes[axis])
                    for o in 0..<outer { for i in 0..<inner { outside[(o * sizes[axis] + j) * inner + i] = true } }
                }
            }
        }
        var current = x.floats, shape = x.shape
        for axis in 0..<x.rank
        where sizes[axis] != shape[axis] || taps[axis].enumerated().contains(where: { $0.element.count != 1 || $0.element[0].0 != $0.offset }) {
            let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *), n = shape[axis], m = sizes[axis]
            var next = [Float](repeating: 0, count: outer * m * inner)
            for o in 0..<outer {
                for j in 0..<m {
                    let destination = (o * m + j) * inner
                    for (k, w) in taps[axis][j] {
                        let from = (o * n + k) * inner
                        for i in 0..<inner { next[destination + i] += w * current[from + i] }
                    }
                }
            }
            current = next
            shape[axis] = m
        }
        for i in outside.indices where outside[i] { current[i] = extrapolation }
        return Value(floats: current, shape: shape, dtype: x.dtype)
    }
}

/// Steps a row-major multi-index to the next position within `shape` (the last axis fastest).
@inline(__always)
func advance(_ index: inout [Int], within shape: [Int]) {
    var a = shape.count - 1
    while a >= 0 {
        index[a] += 1
        if index[a] < shape[a] { return }
        index[a] = 0
        a -= 1
    }
}
