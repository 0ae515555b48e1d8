import PithIR

/// Nearest-neighbour Resize by whole factors on the last two axes (the upsampling of feature
/// pyramids), done as row copies: output pixel (y, x) is input pixel (⌊y / sy⌋, ⌊x / sx⌋).
///
/// Preconditions, checked first when the graph is built: opset 11 or later, mode `nearest`, and a
/// coordinate transformation under which whole factors pick ⌊i / s⌋ — `asymmetric` with
/// `nearest_mode` `floor`, or `half_pixel` / `pytorch_half_pixel` with either rounding mode — and no
/// antialias, axes or aspect-ratio policy. At run time: a float input of rank 2 or more, scales (or
/// sizes) of 1 on the leading axes and positive whole factors on the last two; anything else goes
/// to `Operators.resize`.
struct NearestUpsampleKernel: PreparedKernel {
    init?(_ node: Node, _ operators: Operators) {
        guard operators.opset >= 11, node.opType == "Resize", operators.string("mode", "nearest") == "nearest",
            operators.int("antialias", 0) == 0, operators.ints("axes") == nil, operators.string("keep_aspect_ratio_policy", "stretch") == "stretch"
        else { return nil }
        let transform = operators.string("coordinate_transformation_mode", "half_pixel")
        let rounding = operators.string("nearest_mode", "round_prefer_floor")
        switch (transform, rounding) {
        case ("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"), ("half_pixel", "round_prefer_ceil"),
            ("pytorch_half_pixel", "round_prefer_floor"), ("pytorch_half_pixel", "round_prefer_ceil"):
            break
        default: return nil
        }
    }

    func run(_ inputs: inout [Value?], _ operators: Operators) throws -> [Value] {
        guard let x = inputs.first ?? nil, x.isFloat, x.rank >= 2, let factors = factors(inputs, x.shape) else { return [try operators.resize(inputs)] }
        let (sy, sx) = factors
        let rank = x.rank, height = x.shape[rank - 2], width = x.shape[rank - 1]
        let planes = x.shape.dropLast(2).reduce(1, *)
        let outHeight = height * sy, outWidth = width * sx
        let shape = Array(x.shape.dropLast(2)) + [outHeight, outWidth]
        try checkSize(shape, op: "Resize")
        let total = planes * outHeight * outWidth
        let out = [Float](unsafeUninitializedCapacity: total) { buffer, count in
            x.floats.withUnsafeBufferPointer { source in
                guard let input = source.baseAddress, let output = buffer.baseAddress else { return }
                for p in 0..<planes {
                    for y in 0..<height {
                        let from = input + (p * height + y) * width
                        let row = output + (p * outHeight + y * sy) * outWidth
                        for xi in 0..<width { (row + xi * sx).initialize(repeating: from[xi], count: sx) }
                        for r in 1..<sy { (row + r * outWidth).initialize(from: row, count: outWidth) }
                    }
                }
            }
            count = total
        }
        return [Value(floats: out, shape: shape, dtype: x.dtype)]
    }

    /// The whole factors of the last two axes, when the scales or sizes give 1 on every other axis.
    private func factors(_ inputs: [Value?], _ shape: [Int]) -> (Int, Int)? {
        let rank = shape.count
        var factors: [Int]
        if inputs.count > 3, let sizes = inputs[3], sizes.count > 0 {
            let values = sizes.asInts.map { Int($0) }
            guard values.count == rank, zip(values, shape).allSatisfy({ $1 > 0 && $0 % $1 == 0 }) else { return nil }
            factors = zip(values, shape).map { $0 / $1 }
        } else if inputs.count > 2, let scales = inputs[2], scales.count == rank {
            let values = scales.asFloats
            guard values.allSatisfy({ $0 >= 1 && $0 <= 1024 && $0 == $0.rounded() }) else { return nil }
            factors = values.map { Int($0) }
        } else {
            return nil
        }
        guard factors.dropLast(2).allSatisfy({ $0 == 1 }), factors[rank - 2] >= 1, factors[rank - 1] >= 1 else { return nil }
        return (factors[rank - 2], factors[rank - 1])
    }
}
