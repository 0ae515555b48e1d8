import Foundation
import PithIR

/// Operators that pick, place or rearrange elements by index or position: TopK, CumSum, OneHot,
/// GatherElements, GatherND, ScatterND, ScatterElements (and the older Scatter), DepthToSpace,
/// SpaceToDepth and Trilu. Every index read from data is checked against the axis it indexes
/// (negative indices count from the end), and every size read from data against
/// `maximumElements`, before anything is allocated.
extension Operators {
    /// A single integer from a scalar or one-element input (`k`, `depth`, `axis`).
    func scalarInput(_ inputs: [Value?], _ index: Int, name: String) throws -> Int64 {
        let v = try required(inputs, index)
        guard v.count == 1, v.rank <= 1, !v.isString else {
            throw EvalError.invalid("\(name) must be a scalar or a one-element tensor, not \(v.dtype.rawValue) \(v.shape)")
        }
        if v.isFloat {
            let f = v.floats[0]
            guard f.isFinite, abs(f) < 9e18 else { throw EvalError.invalid("\(name) is \(f)") }
            return Int64(f)
        }
        return v.ints[0]
    }

    /// `index` (negative from the end) checked against an axis of size `n`.
    @inline(__always)
    func checkedIndex(_ index: Int64, _ n: Int, axis: Int) throws -> Int {
        let k = index < 0 ? index + Int64(n) : index
        guard k >= 0, k < Int64(n) else { throw EvalError.invalid("index \(index) is outside axis \(axis) of size \(n)") }
        return Int(k)
    }

    func integerIndices(_ inputs: [Value?], _ index: Int) throws -> Value {
        let v = try required(inputs, index)
        guard !v.isFloat, !v.isString else { throw EvalError.invalid("indices must be integers, not \(v.dtype.rawValue)") }
        return v
    }

    // MARK: TopK

    /// TopK: the `k` largest (or smallest) elements along `axis` and their indices, always sorted;
    /// equal values in index order, NaN counted larger than every number (as numpy sorts it).
    func topK(_ inputs: [Value?]) throws -> [Value] {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.unsupported("TopK of strings") }
        guard x.rank >= 1 else { throw EvalError.invalid("TopK needs an input of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", -1), rank: x.rank, op: "TopK")
        let k: Int64
        if opset < 10 {
            guard case .int(let a) = node.attribute("k") else { throw EvalError.invalid("the k attribute is required") }
            k = a
        } else {
            k = try scalarInput(inputs, 1, name: "k")
        }
        let n = x.shape[axis]
        guard k >= 0, k <= Int64(n) else { throw EvalError.invalid("k \(k) is outside 0…\(n), the size of axis \(axis)") }
        let largest = opset < 11 || int("largest", 1) != 0
        let count = Int(k), inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        var shape = x.shape
        shape[axis] = count
        var sources = [Int](repeating: 0, count: outer * count * inner), positions = [Int64](repeating: 0, count: sources.count)
        var order = Array(0..<n)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                // `before(a, b)`: whether element a of the row sorts before element b.
                if x.isFloat {
                    let v = x.floats
                    func greater(_ a: Float, _ b: Float) -> Bool { a.isNaN ? !b.isNaN : (!b.isNaN && a > b) }
                    order.sort { a, b in
                        let va = v[base + a * inner], vb = v[base + b * inner]
                        if largest ? greater(va, vb) : greater(vb, va) { return true }
                        if largest ? greater(vb, va) : greater(va, vb) { return false }
                        return a < b
                    }
                } else {
                    let v = x.ints
                    order.sort { a, b in
                        let va = v[base + a * inner], vb = v[base + b * inner]
                        return va == vb ? a < b : (largest ? va > vb : va < vb)
                    }
                }
                for j in 0..<count {
                    sources[(o * count + j) * inner + i] = base + order[j] * inner
                    positions[(o * count + j) * inner + i] = Int64(order[j])
                }
                for j in 0..<n { order[j] = j }
            }
        }
        return [pick(x, sources, shape: shape), Value(ints: positions, shape: shape)]
    }

    // MARK: CumSum

    /// CumSum along the axis given as input 1; `exclusive` leaves each element out of its own sum,
    /// `reverse` sums from the end. Floats accumulate in `Double`.
    func cumSum(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.unsupported("CumSum of strings") }
        guard x.rank >= 1 else { throw EvalError.invalid("CumSum needs an input of rank 1 or more") }
        let axis = try normalizedAxis(Int(try scalarInput(inputs, 1, name: "axis")), rank: x.rank, op: "CumSum")
        let exclusive = int("exclusive", 0) != 0, reverse = int("reverse", 0) != 0
        let n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        var out = x
        for o in 0..<outer {
            for i in 0..<inner {
                var sum = 0.0, total: Int64 = 0
                for step in 0..<n {
                    let k = reverse ? n - 1 - step : step
                    let e = (o * n + k) * inner + i
                    if x.isFloat {
                        if exclusive { out.floats[e] = Float(sum); sum += Double(x.floats[e]) } else { sum += Double(x.floats[e]); out.floats[e] = Float(sum) }
                    } else {
                        if exclusive {
                            out.ints[e] = wrap(total, to: x.dtype); total &+= x.ints[e]
                        } else {
                            total &+= x.ints[e]; out.ints[e] = wrap(total, to: x.dtype)
                        }
                    }
                }
            }
        }
        return x.isFloat ? roundedValue(out.floats, shape: x.shape, dtype: x.dtype) : out
    }

    // MARK: OneHot

    /// OneHot: a new axis of `depth` holding on_value where the index (negative from the end)
    /// equals the position and off_value elsewhere; indices outside [−depth, depth) give a row of
    /// off_value. Non-integer indices and depth are truncated toward zero.
    func oneHot(_ inputs: [Value?]) throws -> Value {
        let indices = try required(inputs, 0)
        guard !indices.isString else { throw EvalError.invalid("OneHot indices must be numbers") }
        let depth = try scalarInput(inputs, 1, name: "depth")
        let values = try required(inputs, 2)
        guard values.count == 2, values.rank <= 1 else { throw EvalError.invalid("values must hold [off_value, on_value], not shape \(values.shape)") }
        guard depth >= 1, depth <= Int64(maximumElements) else { throw EvalError.invalid("depth \(depth) must be at least 1 (and at most \(maximumElements))") }
        let d = Int(depth)
        let axis = try normalizedAxis(int("axis", -1), rank: indices.rank + 1, op: "OneHot")
        let shape = Array(indices.shape[..<axis]) + [d] + Array(indices.shape[axis...])
        try checkSize(shape, op: "OneHot")
        let inner = indices.shape[axis...].reduce(1, *), outer = indices.shape[..<axis].reduce(1, *)
        let positions = indices.asInts
        var selection = [Int](repeating: 0, count: outer * d * inner)  // 0: off, 1: on
        for o in 0..<outer {
            for i in 0..<inner {
                var k = positions[o * inner + i]
                if k < 0 { k += depth }
                if k >= 0, k < depth { selection[(o * d + Int(k)) * inner + i] = 1 }
            }
        }
        return pick(values.reshaped([2]), selection, shape: shape)
    }

    // MARK: Gather and scatter

    /// For every element of `indices` (odometer order), the offset in `data` of the element with
    /// the same coordinates but the index read along `axis`.
    func elementOffsets(dataShape: [Int], indices: Value, axis: Int) throws -> [Int] {
        guard indices.rank == dataShape.count else { throw EvalError.invalid("indices \(indices.shape) and data \(dataShape) differ in rank") }
        for a in dataShape.indices where a != axis && indices.shape[a] > dataShape[a] {
            throw EvalError.invalid("indices \(indices.shape) are larger than data \(dataShape) on axis \(a)")
        }
        let dataStrides = strides(dataShape), n = dataShape[axis]
        var offsets = [Int](repeating: 0, count: indices.count)
        var position = [Int](repeating: 0, count: indices.rank)
        for e in 0..<indices.count {
            var offset = try checkedIndex(indices.ints[e], n, axis: axis) * dataStrides[axis]
            for a in 0..<indices.rank where a != axis { offset += position[a] * dataStrides[a] }
            offsets[e] = offset
            advance(&position, within: indices.shape)
        }
        return offsets
    }

    func gatherElements(_ inputs: [Value?]) throws -> Value {
        let data = try required(inputs, 0), indices = try integerIndices(inputs, 1)
        guard data.rank >= 1 else { throw EvalError.invalid("GatherElements needs data of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", 0), rank: data.rank, op: "GatherElements")
        return pick(data, try elementOffsets(dataShape: data.shape, indices: indices, axis: axis), shape: indices.shape)
    }

    /// For GatherND and ScatterND: for each index tuple (the last axis of `indices`), the offset
    /// of the slice it names in `data`, and the slice's size. `batchDimensions` leading axes are
    /// shared by data and indices.
    func sliceOffsets(dataShape: [Int], indices: Value, batchDimensions b: Int) throws -> (offsets: [Int], sliceSize: Int) {
        guard indices.rank >= 1, let last = indices.shape.last else { throw EvalError.invalid("indices must have rank 1 or more") }
        guard b >= 0, b < indices.rank, b < dataShape.count else {
            throw EvalError.invalid("batch_dims \(b) must be less than the ranks of data \(dataShape) and indices \(indices.shape)")
        }
        guard Array(indices.shape[..<b]) == Array(dataShape[..<b]) else {
            throw EvalError.invalid("the batch axes of data \(dataShape) and indices \(indices.shape) differ")
        }
        guard last <= dataShape.count - b else { throw EvalError.invalid("index tuples of \(last) values for data \(dataShape) with \(b) batch axes") }
        let dataStrides = strides(dataShape)
        let sliceSize = dataShape[(b + last)...].reduce(1, *)
        let batches = dataShape[..<b].reduce(1, *), batchStride = b == 0 ? 0 : dataStrides[b - 1]
        let tuples = indices.shape.dropLast().reduce(1, *)
        let perBatch = tuples / Swift.max(batches, 1)
        var offsets = [Int](repeating: 0, count: tuples)
        for t in 0..<tuples {
            var offset = (t / Swift.max(perBatch, 1)) * batchStride
            for j in 0..<last { offset += try checkedIndex(indices.ints[t * last + j], dataShape[b + j], axis: b + j) * dataStrides[b + j] }
            offsets[t] = offset
        }
        return (offsets, sliceSize)
    }

    func gatherND(_ inputs: [Value?]) throws -> Value {
        let data = try required(inputs, 0), indices = try integerIndices(inputs, 1)
        let b = opset >= 12 ? int("batch_dims", 0) : 0
        let (offsets, sliceSize) = try sliceOffsets(dataShape: data.shape, indices: indices, batchDimensions: b)
        let last = indices.shape[indices.rank - 1]
        let shape = Array(indices.shape.dropLast()) + Array(data.shape[(b + last)...])
        try checkSize(shape, op: "GatherND")
        var order: [Int] = []
        order.reserveCapacity(offsets.count * sliceSize)
        for offset in offsets { for k in 0..<sliceSize { order.append(offset + k) } }
        return pick(data, order, shape: shape)
    }

    /// `data` with each `updates` element `sources[i]` combined into element `destinations[i]`,
    /// in order, by `reduction` (none, add, mul, max, min).
    func scattered(_ data: Value, destinations: [Int], sources: [Int], updates: Value) throws -> Value {
        let reduction = string("reduction", "none")
        guard ["none", "add", "mul", "max", "min"].contains(reduction) else { throw EvalError.invalid("reduction `\(reduction)` (none, add, mul, max or min)") }
        guard data.isString == updates.isString, data.isFloat == updates.isFloat else {
            throw EvalError.invalid("updates of type \(updates.dtype.rawValue) for data of type \(data.dtype.rawValue)")
        }
        var out = data
        if data.isString {
            guard reduction == "none" else { throw EvalError.unsupported("\(node.opType) reduction `\(reduction)` of strings") }
            for (d, s) in zip(destinations, sources) { out.strings[d] = updates.strings[s] }
        } else if data.isFloat {
            let u = updates.floats
            switch reduction {
            case "add": for (d, s) in zip(destinations, sources) { out.floats[d] += u[s] }
            case "mul": for (d, s) in zip(destinations, sources) { out.floats[d] *= u[s] }
            case "max": for (d, s) in zip(destinations, sources) { out.floats[d] = out.floats[d].isNaN || u[s].isNaN ? .nan : Swift.max(out.floats[d], u[s]) }
            case "min": for (d, s) in zip(destinations, sources) { out.floats[d] = out.floats[d].isNaN || u[s].isNaN ? .nan : Swift.min(out.floats[d], u[s]) }
            default: for (d, s) in zip(destinations, sources) { out.floats[d] = u[s] }
            }
            out = roundedValue(out.floats, shape: out.shape, dtype: out.dtype)
        } else {
            let u = updates.ints
            switch reduction {
            case "add": for (d, s) in zip(destinations, sources) { out.ints[d] = wrap(out.ints[d] &+ u[s], to: data.dtype) }
            case "mul": for (d, s) in zip(destinations, sources) { out.ints[d] = wrap(out.ints[d] &* u[s], to: data.dtype) }
            case "max": for (d, s) in zip(destinations, sources) { out.ints[d] = Swift.max(out.ints[d], u[s]) }
            case "min": for (d, s) in zip(destinations, sources) { out.ints[d] = Swift.min(out.ints[d], u[s]) }
            default: for (d, s) in zip(destinations, sources) { out.ints[d] = u[s] }
            }
        }
        return out
    }

    func scatterND(_ inputs: [Value?]) throws -> Value {
        let data = try required(inputs, 0), indices = try integerIndices(inputs, 1), updates = try required(inputs, 2)
        let (offsets, sliceSize) = try sliceOffsets(dataShape: data.shape, indices: indices, batchDimensions: 0)
        let last = indices.shape[indices.rank - 1]
        let expected = Array(indices.shape.dropLast()) + Array(data.shape[last...])
        guard updates.shape == expected else { throw EvalError.invalid("updates \(updates.shape) must be of shape \(expected)") }
        var destinations: [Int] = [], sources: [Int] = []
        destinations.reserveCapacity(updates.count)
        sources.reserveCapacity(updates.count)
        for (t, offset) in offsets.enumerated() {
            for k in 0..<sliceSize { destinations.append(offset + k); sources.append(t * sliceSize + k) }
        }
        return try scattered(data, destinations: destinations, sources: sources, updates: updates)
    }

    /// ScatterElements, and Scatter (opsets 9–10, the same without reduction).
    func scatterElements(_ inputs: [Value?]) throws -> Value {
        let data = try required(inputs, 0), indices = try integerIndices(inputs, 1), updates = try required(inputs, 2)
        guard data.rank >= 1 else { throw EvalError.invalid("\(node.opType) needs data of rank 1 or more") }
        guard updates.shape == indices.shape else { throw EvalError.invalid("updates \(updates.shape) and indices \(indices.shape) differ in shape") }
        let axis = try normalizedAxis(int("axis", 0), rank: data.rank, op: node.opType)
        let destinations = try elementOffsets(dataShape: data.shape, indices: indices, axis: axis)
        return try scattered(data, destinations: destinations, sources: Array(0..<updates.count), updates: updates)
    }

    // MARK: Rearrangements

    func blockSize(_ x: Value) throws -> Int {
        guard x.rank == 4 else { throw EvalError.invalid("\(node.opType) needs an input of shape [N, C, H, W], not \(x.shape)") }
        let b = int("blocksize", 0)
        guard b >= 1, b <= 1 << 16 else { throw EvalError.invalid("blocksize \(b) must be at least 1") }
        return b
    }

    /// DepthToSpace: channels moved into b×b spatial blocks, channel-major within a block ("DCR",
    /// the default) or block-major ("CRD").
    func depthToSpace(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let b = try blockSize(x)
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        guard c % (b * b) == 0 else { throw EvalError.invalid("\(c) channels are not a multiple of blocksize² \(b * b)") }
        let mode = string("mode", "DCR")
        let moved: Value
        switch mode {
        case "DCR": moved = try transposed(x.reshaped([n, b, b, c / (b * b), h, w]), [0, 3, 4, 1, 5, 2])
        case "CRD": moved = try transposed(x.reshaped([n, c / (b * b), b, b, h, w]), [0, 1, 4, 2, 5, 3])
        default: throw EvalError.invalid("DepthToSpace mode `\(mode)` (DCR or CRD)")
        }
        return moved.reshaped([n, c / (b * b), h * b, w * b])
    }

    /// SpaceToDepth: the inverse of DepthToSpace in DCR mode.
    func spaceToDepth(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let b = try blockSize(x)
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        guard h % b == 0, w % b == 0 else { throw EvalError.invalid("spatial size \(h)×\(w) is not a multiple of blocksize \(b)") }
        let moved = try transposed(x.reshaped([n, c, h / b, b, w / b, b]), [0, 3, 5, 1, 2, 4])
        return moved.reshaped([n, c * b * b, h / b, w / b])
    }

    /// Trilu: the upper (j − i ≥ k) or lower (j − i ≤ k) triangle of the last two axes, zeros elsewhere.
    func trilu(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard x.rank >= 2 else { throw EvalError.invalid("Trilu needs an input of rank 2 or more") }
        let k = inputs.count > 1 && inputs[1] != nil ? try scalarInput(inputs, 1, name: "k") : 0
        let upper = int("upper", 1) != 0
        let rows = x.shape[x.rank - 2], columns = x.shape[x.rank - 1]
        var out = x
        for e in 0..<x.count {
            let j = Int64(e % columns), i = Int64((e / columns) % rows)
            // j − i compared in Int64: k may be anything.
            let keep = upper ? j - i >= k : j - i <= k
            if keep { continue }
            if x.isString { out.strings[e] = "" } else if x.isFloat { out.floats[e] = 0 } else { out.ints[e] = 0 }
        }
        return out
    }
}
