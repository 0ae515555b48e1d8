import Foundation
import PithIR

/// QLinearMatMul and QLinearConv: the exact integer product of MatMulInteger or ConvInteger (the
/// zero points subtracted), requantized: y = saturate(round(acc · a_scale · b_scale / y_scale) +
/// y_zero_point), rounding half to even, the multiplier computed in `Float` as onnxruntime does.
/// The output has y_zero_point's type (uint8 or int8).
extension Operators {
    /// QLinearMatMul (opsets 10 and 21): a's scale per tensor or per row ([M], or a shape ending
    /// in [M, 1] that broadcasts to a), b's per tensor or per column ([N], or ending in [1, N]),
    /// y_scale per tensor.
    func qLinearMatMul(_ inputs: [Value?]) throws -> Value {
        let a = try eightBitInput(inputs, 0), b = try eightBitInput(inputs, 3)
        let aScale = try floatInput(inputs, 1), bScale = try floatInput(inputs, 4), yScale = try floatInput(inputs, 6)
        let yZero = try required(inputs, 7)
        let accumulated = try matMulInteger([a, b, inputs[2], inputs[5]])
        guard yScale.count == 1 else { throw EvalError.invalid("y_scale of shape \(yScale.shape): it must be one value") }
        let shape = accumulated.shape
        /// For each output element, the index of its scale in `scale` (per row of a, or per column of b).
        func scaleIndices(_ scale: Value, name: String, perRow: Bool) throws -> [Int] {
            if scale.count == 1 { return [Int](repeating: 0, count: accumulated.count) }
            let given = scale.rank == 1 ? (perRow ? [scale.count, 1] : [scale.count]) : scale.shape
            let lastAxes = Array(given.suffix(2))
            guard a.rank >= 2, b.rank >= 2, given.count <= shape.count, (try? broadcastShape(shape, given, op: node.opType)) == shape,
                perRow ? lastAxes.last == 1 : (lastAxes.count < 2 || lastAxes.first == 1)
            else {
                throw EvalError.invalid(
                    "\(name) of shape \(scale.shape) for a product of shape \(shape): one value, or one per \(perRow ? "row of a" : "column of b")")
            }
            return broadcastIndices(from: given, to: shape)
        }
        let rowScale = try scaleIndices(aScale, name: "a_scale", perRow: true)
        let columnScale = try scaleIndices(bScale, name: "b_scale", perRow: false)
        return try requantized(accumulated.ints, shape: shape, zeroPoint: yZero) { e in
            aScale.floats[rowScale[e]] * bScale.floats[columnScale[e]] / yScale.floats[0]
        }
    }

    /// QLinearConv (opset 10): ConvInteger's attributes; w_scale per tensor or per output channel;
    /// B (int32, per output channel) is added to the accumulator before requantizing.
    func qLinearConv(_ inputs: [Value?]) throws -> Value {
        let x = try eightBitInput(inputs, 0), w = try eightBitInput(inputs, 3)
        let xScale = try floatInput(inputs, 1), wScale = try floatInput(inputs, 4), yScale = try floatInput(inputs, 6)
        let yZero = try required(inputs, 7)
        var accumulated = try convInteger([x, w, inputs[2], inputs[5]])
        let filters = w.shape[0], planeSize = accumulated.shape[2...].reduce(1, *)
        guard xScale.count == 1, yScale.count == 1, wScale.count == 1 || (wScale.rank == 1 && wScale.count == filters) else {
            throw EvalError.invalid("x_scale \(xScale.shape), w_scale \(wScale.shape) and y_scale \(yScale.shape): one value each, or \(filters) for w_scale")
        }
        if inputs.count > 8, let bias = inputs[8] {
            guard bias.dtype == .int32, bias.shape == [filters] else {
                throw EvalError.invalid("B of type \(bias.dtype.rawValue) and shape \(bias.shape): it must be \(filters) int32 values")
            }
            for e in accumulated.ints.indices {
                accumulated.ints[e] = wrap(accumulated.ints[e] &+ bias.ints[(e / Swift.max(planeSize, 1)) % filters], to: .int32)
            }
        }
        let multipliers = wScale.floats.map { xScale.floats[0] * $0 / yScale.floats[0] }
        return try requantized(accumulated.ints, shape: accumulated.shape, zeroPoint: yZero) { e in
            multipliers.count == 1 ? multipliers[0] : multipliers[(e / Swift.max(planeSize, 1)) % filters]
        }
    }

    /// `accumulators` scaled by `multiplier(element)`, rounded half to even, shifted by the zero
    /// point and saturated to its type.
    private func requantized(_ accumulators: [Int64], shape: [Int], zeroPoint: Value, multiplier: (Int) -> Float) throws -> Value {
        guard zeroPoint.dtype == .uint8 || zeroPoint.dtype == .int8, zeroPoint.count == 1 else {
            throw EvalError.invalid("y_zero_point of type \(zeroPoint.dtype.rawValue) and shape \(zeroPoint.shape): it must be one uint8 or int8 value")
        }
        let range = integerRange(zeroPoint.dtype), zero = Float(zeroPoint.ints[0])
        let out = accumulators.enumerated().map { e, acc -> Int64 in
            let v = (Float(acc) * multiplier(e)).rounded(.toNearestOrEven) + zero
            return v.isNaN ? range.lowerBound : Int64(Swift.min(Swift.max(v, Float(range.lowerBound)), Float(range.upperBound)))
        }
        return Value(ints: out, shape: shape, dtype: zeroPoint.dtype)
    }
}
