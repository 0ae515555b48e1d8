import Foundation
import PithIR

/// Operators that build tensors from shapes and counts (ConstantOfShape, Range, Expand, Tile),
/// cut them (Split) or describe them (Size, NonZero). Every size that comes from a value is
/// checked against `maximumElements` before anything is allocated.
extension Operators {
    /// Input `index` as a list of sizes (a 1-D integer tensor), each checked to be non-negative.
    func sizesInput(_ inputs: [Value?], _ index: Int, what: String) throws -> [Int] {
        let value = try required(inputs, index)
        guard !value.isFloat, !value.isString else { throw EvalError.invalid("\(what) must be integers, not \(value.dtype.rawValue)") }
        guard value.rank <= 1 else { throw EvalError.invalid("\(what) must be a 1-D tensor, not of shape \(value.shape)") }
        return try value.ints.map { d in
            guard d >= 0, d <= Int64(maximumElements) else { throw EvalError.invalid("\(what) \(value.ints) holds \(d), which is not a size") }
            return Int(d)
        }
    }

    /// ConstantOfShape(shape): a tensor of that shape filled with the one element of the `value`
    /// attribute (float 0 when absent), of its type. `value` is the decoded attribute tensor; nil
    /// with the attribute present means it could not be decoded.
    func constantOfShape(_ inputs: [Value?], value: Value?) throws -> Value {
        let shape = try sizesInput(inputs, 0, what: "the shape")
        try checkSize(shape, op: "ConstantOfShape")
        let count = shape.reduce(1, *)
        guard let fill = value else {
            if node.attribute("value") != nil { throw EvalError.unsupported("ConstantOfShape with a `value` tensor of a type the evaluator does not compute") }
            return Value(floats: [Float](repeating: 0, count: count), shape: shape)
        }
        guard fill.count == 1 else { throw EvalError.invalid("`value` must hold one element, it holds \(fill.count)") }
        if fill.isString { return Value(strings: [String](repeating: fill.strings[0], count: count), shape: shape) }
        if fill.isFloat { return Value(floats: [Float](repeating: fill.floats[0], count: count), shape: shape, dtype: fill.dtype) }
        return Value(ints: [Int64](repeating: fill.ints[0], count: count), shape: shape, dtype: fill.dtype)
    }

    /// Range(start, limit, delta): start, start + delta, … up to (excluding) limit; of start's type.
    /// The count is max(⌈(limit − start) / delta⌉, 0), computed exactly for integers.
    func range(_ inputs: [Value?]) throws -> Value {
        let start = try required(inputs, 0), limit = try required(inputs, 1), delta = try required(inputs, 2)
        for (name, v) in [("start", start), ("limit", limit), ("delta", delta)] where v.count != 1 || v.isString {
            throw EvalError.invalid("`\(name)` must be a numeric scalar, it has shape \(v.shape)")
        }
        if start.isFloat || limit.isFloat || delta.isFloat {
            let s = Double(start.asFloats[0]), l = Double(limit.asFloats[0]), d = Double(delta.asFloats[0])
            guard d != 0 else { throw EvalError.invalid("delta is 0") }
            let steps = ((l - s) / d).rounded(.up)
            guard steps.isFinite || steps < 0 else { throw EvalError.invalid("start \(s), limit \(l), delta \(d) give no finite count") }
            let count = steps > 0 ? steps : 0
            guard count <= Double(maximumElements) else { throw EvalError.invalid("Range: \(count) elements is larger than \(maximumElements)") }
            let values = (0..<Int(count)).map { Float(s + Double($0) * d) }
            return try Value(floats: values, shape: [values.count]).cast(to: start.dtype)
        }
        let s = start.ints[0], l = limit.ints[0], d = delta.ints[0]
        guard d != 0 else { throw EvalError.invalid("delta is 0") }
        // ⌈(l − s) / d⌉ without overflow: the span as a magnitude, in the direction of delta.
        let span = d > 0 ? l.subtractingReportingOverflow(s) : s.subtractingReportingOverflow(l)
        let step = d.magnitude
        let count: UInt64
        if span.overflow {
            count = UInt64.max  // the span is beyond Int64 (and positive, since it overflowed)
        } else if span.partialValue <= 0 {
            count = 0
        } else {
            let m = UInt64(span.partialValue)
            count = m / step + (m % step == 0 ? 0 : 1)
        }
        guard count <= UInt64(maximumElements) else { throw EvalError.invalid("Range: from \(s) to \(l) by \(d) is larger than \(maximumElements) elements") }
        let values = (0..<Int64(count)).map { wrap(s &+ $0 &* d, to: start.dtype) }
        return Value(ints: values, shape: [values.count], dtype: start.dtype)
    }

    /// Expand(input, shape): the input broadcast with `shape` (numpy rules in both directions).
    func expand(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        let requested = try sizesInput(inputs, 1, what: "the shape")
        let shape = try broadcastShape(x.shape, requested, op: "Expand")
        try checkSize(shape, op: "Expand")
        if shape == x.shape { return x }
        return pick(x, broadcastIndices(from: x.shape, to: shape), shape: shape)
    }

    /// Tile(input, repeats): the input repeated `repeats[i]` times along each axis i (Tile-1:
    /// `tiles` times along `axis`).
    func tile(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        var repeats: [Int]
        if opset < 6 {
            let tiles = try sizesInput(inputs, 1, what: "tiles"), axis = try required(inputs, 2).asInts
            guard tiles.count == 1, axis.count == 1 else { throw EvalError.invalid("tiles and axis must be scalars") }
            let a = try normalizedAxis(Int(axis[0]), rank: x.rank, op: "Tile")
            repeats = [Int](repeating: 1, count: x.rank)
            if x.rank > 0 { repeats[a] = tiles[0] }
        } else {
            repeats = try sizesInput(inputs, 1, what: "repeats")
        }
        guard repeats.count == x.rank else { throw EvalError.invalid("repeats \(repeats) must have one value per axis of the input \(x.shape)") }
        var shape: [Int] = []
        for (d, r) in zip(x.shape, repeats) {
            let (p, overflow) = d.multipliedReportingOverflow(by: r)
            guard !overflow else { throw EvalError.invalid("Tile: \(x.shape) repeated \(repeats) is larger than \(maximumElements) elements") }
            shape.append(p)
        }
        try checkSize(shape, op: "Tile")
        if repeats.allSatisfy({ $0 == 1 }) { return x }
        // Output index along axis i is k·dᵢ + c (k < rᵢ, c < dᵢ): a view of shape [r₀, d₀, r₁, d₁, …]
        // whose repeat axes have stride 0.
        let source = strides(x.shape)
        let viewShape = zip(repeats, x.shape).flatMap { [$0, $1] }
        let viewStrides = source.flatMap { [0, $0] }
        return pick(x, stridedOffsets(viewShape, strides: viewStrides), shape: shape)
    }

    /// Split(input[, split]): consecutive parts along `axis`, of the sizes `split` gives (the
    /// attribute before opset 13, the input from 13), else `num_outputs` (opset 18) or one per
    /// output: equal parts, the last smaller when the axis does not divide evenly.
    func split(_ inputs: [Value?]) throws -> [Value] {
        let x = try required(inputs, 0)
        guard x.rank >= 1 else { throw EvalError.invalid("Split needs an input of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", 0), rank: x.rank, op: "Split")
        let n = x.shape[axis]
        let outputs = node.outputs.count
        var sizes: [Int]
        if opset >= 13, inputs.count > 1, inputs[1] != nil {
            sizes = try sizesInput(inputs, 1, what: "split")
        } else if opset < 13, let attribute = ints("split") {
            sizes = attribute
        } else {
            let parts = opset >= 18 && node.attribute("num_outputs") != nil ? int("num_outputs", outputs) : outputs
            guard parts >= 1 else { throw EvalError.invalid("num_outputs \(parts) must be at least 1") }
            if opset >= 18, node.attribute("num_outputs") != nil, parts != outputs {
                throw EvalError.invalid("num_outputs is \(parts), the node has \(outputs) outputs")
            }
            let chunk = n % parts == 0 ? n / parts : n / parts + 1
            sizes = [Int](repeating: chunk, count: parts)
            sizes[parts - 1] = n - chunk * (parts - 1)
        }
        guard sizes.count == outputs else { throw EvalError.invalid("split \(sizes) gives \(sizes.count) parts, the node has \(outputs) outputs") }
        guard sizes.allSatisfy({ $0 >= 0 && $0 <= n }), sizes.reduce(0, +) == n else {
            throw EvalError.invalid("split \(sizes) does not add up to \(n), the size of axis \(axis) of \(x.shape)")
        }
        let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
        var begin = 0
        return sizes.map { size in
            var shape = x.shape
            shape[axis] = size
            var indices: [Int] = []
            indices.reserveCapacity(outer * size * inner)
            for o in 0..<outer { indices.append(contentsOf: (o * n + begin) * inner..<(o * n + begin + size) * inner) }
            begin += size
            return pick(x, indices, shape: shape)
        }
    }

    /// Size(input): its element count, an int64 scalar.
    func size(_ inputs: [Value?]) throws -> Value {
        Value(ints: [Int64(try required(inputs, 0).count)], shape: [])
    }

    /// NonZero(input): the indices of its nonzero elements, an int64 [rank, count] tensor in
    /// row-major order (a scalar counts as rank 1, as numpy and onnxruntime take it).
    func nonZero(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.unsupported("NonZero on strings") }
        let nonzero: [Int] = x.isFloat ? x.floats.indices.filter { x.floats[$0] != 0 } : x.ints.indices.filter { x.ints[$0] != 0 }
        let shape = x.rank == 0 ? [1] : x.shape
        let rank = shape.count, step = strides(shape)
        var out = [Int64](repeating: 0, count: rank * nonzero.count)
        for (k, flat) in nonzero.enumerated() {
            var rest = flat
            for axis in 0..<rank {
                out[axis * nonzero.count + k] = Int64(rest / step[axis])
                rest %= step[axis]
            }
        }
        return Value(ints: out, shape: [rank, nonzero.count])
    }
}
