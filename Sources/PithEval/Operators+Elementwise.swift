import Foundation
import PithIR

/// Element-wise operators added with the ops of issue 12's last part: CastLike and Shrink.
extension Operators {
    /// CastLike: input 0 converted to the element type of input 1, as Cast converts (the types
    /// Cast computes; float8 and the sub-byte types are refused).
    func castLike(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0), like = try required(inputs, 1)
        guard (0...16).compactMap(onnxType).contains(like.dtype) else { throw EvalError.unsupported("CastLike to \(like.dtype.rawValue)") }
        return try x.cast(to: like.dtype)
    }

    /// Shrink: x + bias where x < −lambd, x − bias where x > lambd, 0 between (integers computed in
    /// `Double` and truncated back to their type).
    func shrink(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.unsupported("Shrink of strings") }
        let bias = Double(float("bias", 0)), lambd = Double(float("lambd", 0.5))
        func f(_ v: Double) -> Double { v < -lambd ? v + bias : v > lambd ? v - bias : 0 }
        if x.isFloat { return roundedValue(x.floats.map { Float(f(Double($0))) }, shape: x.shape, dtype: x.dtype) }
        return Value(ints: x.ints.map { wrap(Int64(exactly: f(Double($0)).rounded(.towardZero)) ?? 0, to: x.dtype) }, shape: x.shape, dtype: x.dtype)
    }
}
