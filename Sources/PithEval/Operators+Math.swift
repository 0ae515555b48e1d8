import Foundation
import PithIR

/// Element-wise arithmetic beyond the basic operators: activations, rounding, trigonometry,
/// Mod, BitShift, the variadic Max/Min/Sum/Mean, and LogSoftmax and Hardmax.
extension Operators {
    /// Float operators computed in `Double` (the result rounded to the input's type), for the
    /// functions whose `Float` versions are less accurate than numpy's.
    func unaryDouble(_ inputs: [Value?], _ f: (Double) -> Double) throws -> Value {
        let x = try floatInput(inputs, 0)
        return roundedValue(x.floats.map { Float(f(Double($0))) }, shape: x.shape, dtype: x.dtype)
    }

    /// An element-wise operator defined for integers too: `f` on floats, `g` on integers (the
    /// result wrapped to the input's type).
    func unaryNumeric(_ inputs: [Value?], _ f: (Float) -> Float, _ g: (Int64) -> Int64) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.unsupported("\(node.opType) of strings") }
        if x.isFloat { return roundedValue(x.floats.map(f), shape: x.shape, dtype: x.dtype) }
        return Value(ints: x.ints.map { wrap(g($0), to: x.dtype) }, shape: x.shape, dtype: x.dtype)
    }

    /// IsNaN and IsInf: booleans of the input's shape.
    func classify(_ inputs: [Value?], _ test: (Float) -> Bool) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.unsupported("\(node.opType) of strings") }
        let flags: [Int64] = x.isFloat ? x.floats.map { test($0) ? 1 : 0 } : [Int64](repeating: 0, count: x.count)
        return Value(ints: flags, shape: x.shape, dtype: .bool)
    }

    /// The element-wise operators of this file, by name.
    func mathOperator(_ inputs: [Value?]) throws -> Value {
        switch node.opType {
        case "Erf": return try unaryDouble(inputs) { erf($0) }
        case "Gelu":
            // Opset 20: x·Φ(x), or its tanh approximation.
            switch string("approximate", "none") {
            case "none": return try unaryDouble(inputs) { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
            case "tanh":
                let c = (2 / Double.pi).squareRoot()
                return try unaryDouble(inputs) { 0.5 * $0 * (1 + tanh(c * ($0 + 0.044715 * $0 * $0 * $0))) }
            case let other: throw EvalError.unsupported("Gelu approximate `\(other)`")
            }
        case "Log": return try unaryDouble(inputs) { Foundation.log($0) }
        case "Sign": return try unaryNumeric(inputs, { $0 > 0 ? 1 : $0 < 0 ? -1 : $0 }, { $0.signum() })
        case "Floor": return try unary(inputs) { $0.rounded(.down) }
        case "Ceil": return try unary(inputs) { $0.rounded(.up) }
        case "Round": return try unary(inputs) { $0.rounded(.toNearestOrEven) }
        case "Softplus":
            // log(1 + eˣ) = max(x, 0) + log1p(e^−|x|), which neither overflows nor loses small values.
            return try unaryDouble(inputs) { Swift.max($0, 0) + log1p(exp(-abs($0))) }
        case "Softsign": return try unary(inputs) { $0 / (1 + abs($0)) }
        case "Elu":
            let alpha = Double(float("alpha", 1))
            return try unaryDouble(inputs) { $0 > 0 ? $0 : alpha * expm1($0) }
        case "Selu":
            let alpha = Double(float("alpha", 1.67326319217681884765625)), gamma = Double(float("gamma", 1.05070102214813232421875))
            return try unaryDouble(inputs) { gamma * ($0 > 0 ? $0 : alpha * expm1($0)) }
        case "Celu":
            let alpha = Double(float("alpha", 1))
            guard alpha != 0 else { throw EvalError.invalid("Celu alpha is 0") }
            return try unaryDouble(inputs) { Swift.max(0, $0) + Swift.min(0, alpha * expm1($0 / alpha)) }
        case "ThresholdedRelu":
            let alpha = float("alpha", 1)
            return try unary(inputs) { $0 > alpha ? $0 : 0 }
        case "Sin": return try unaryDouble(inputs) { sin($0) }
        case "Cos": return try unaryDouble(inputs) { cos($0) }
        case "Tan": return try unaryDouble(inputs) { tan($0) }
        case "Asin": return try unaryDouble(inputs) { asin($0) }
        case "Acos": return try unaryDouble(inputs) { acos($0) }
        case "Atan": return try unaryDouble(inputs) { atan($0) }
        case "Sinh": return try unaryDouble(inputs) { sinh($0) }
        case "Cosh": return try unaryDouble(inputs) { cosh($0) }
        case "Asinh": return try unaryDouble(inputs) { asinh($0) }
        case "Acosh": return try unaryDouble(inputs) { acosh($0) }
        case "Atanh": return try unaryDouble(inputs) { atanh($0) }
        case "IsNaN": return try classify(inputs) { $0.isNaN }
        case "IsInf":
            let negative = int("detect_negative", 1) != 0, positive = int("detect_positive", 1) != 0
            return try classify(inputs) { $0.isInfinite && ($0 > 0 ? positive : negative) }
        case "PRelu":
            // The slope broadcasts to X (unidirectionally); before opset 7 a 1-D slope is per channel (axis 1).
            let x = try required(inputs, 0)
            var slope = try required(inputs, 1)
            if opset < 7, slope.rank == 1, x.rank >= 2, slope.count == x.shape[1], slope.count > 1 {
                slope = slope.reshaped([slope.count] + [Int](repeating: 1, count: x.rank - 2))
            }
            guard (try? broadcastShape(x.shape, slope.shape, op: "PRelu")) == x.shape else {
                throw EvalError.invalid("slope \(slope.shape) does not broadcast to X \(x.shape)")
            }
            return try binary([x, slope], { $0 > 0 ? $0 : $0 * $1 }, { $0 > 0 ? $0 : $0 &* $1 })
        case "Mod": return try mod(inputs)
        case "BitShift": return try bitShift(inputs)
        case "Max", "Min", "Sum", "Mean": return try variadic(inputs)
        case "LogSoftmax", "Hardmax": return try softmaxLike(inputs)
        default: throw EvalError.unsupported("operator `\(node.opType)`")
        }
    }

    /// Mod: with `fmod` 1 the C remainder (sign of the dividend), otherwise the floored modulus
    /// (sign of the divisor), as numpy's `fmod` and `mod`. An integer remainder by 0 is 0, as numpy
    /// gives; a float one NaN.
    func mod(_ inputs: [Value?]) throws -> Value {
        let truncated = int("fmod", 0) != 0
        let a = try required(inputs, 0), b = try required(inputs, 1)
        guard !a.isString, !b.isString else { throw EvalError.unsupported("Mod of strings") }
        if a.isFloat != b.isFloat { throw EvalError.invalid("Mod of \(a.dtype.rawValue) and \(b.dtype.rawValue)") }
        return try binary(
            inputs,
            { x, y in
                let r = fmod(x, y)
                if truncated || y == 0 || r.isNaN { return r }
                if r == 0 { return copysign(0, y) }
                return (r < 0) != (y < 0) ? r + y : r
            },
            { x, y in
                guard y != 0, y != -1 else { return 0 }
                let r = x % y
                return !truncated && r != 0 && (r < 0) != (y < 0) ? r + y : r
            })
    }

    /// BitShift of unsigned integers; shifts by the type's width or more give 0.
    func bitShift(_ inputs: [Value?]) throws -> Value {
        let a = try required(inputs, 0), b = try required(inputs, 1)
        let width: Int64
        switch a.dtype {
        case .uint8: width = 8
        case .uint16: width = 16
        case .uint32: width = 32
        case .uint64: width = 64
        default: throw EvalError.unsupported("BitShift of \(a.dtype.rawValue) (the operator is defined for unsigned integers)")
        }
        guard !b.isFloat, !b.isString else { throw EvalError.invalid("BitShift amounts of type \(b.dtype.rawValue)") }
        let left: Bool
        switch string("direction", "") {
        case "LEFT": left = true
        case "RIGHT": left = false
        case let other: throw EvalError.invalid("BitShift direction `\(other)` (LEFT or RIGHT)")
        }
        return try binary(
            inputs, { x, _ in x },
            { x, s in
                guard s >= 0, s < width else { return 0 }
                let bits = UInt64(bitPattern: x)
                return Int64(bitPattern: left ? bits << UInt64(s) : bits >> UInt64(s))
            })
    }

    /// Max, Min, Sum and Mean of any number of inputs, broadcast together (numpy rules). Max and
    /// Min propagate NaN.
    func variadic(_ inputs: [Value?]) throws -> Value {
        let parts = inputs.compactMap { $0 }
        guard var result = parts.first else { throw EvalError.invalid("\(node.opType) needs at least one input") }
        guard !parts.contains(where: \.isString) else { throw EvalError.unsupported("\(node.opType) of strings") }
        let f: (Float, Float) -> Float, g: (Int64, Int64) -> Int64
        switch node.opType {
        case "Max": f = { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }; g = { Swift.max($0, $1) }
        case "Min": f = { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }; g = { Swift.min($0, $1) }
        default: f = { $0 + $1 }; g = { $0 &+ $1 }
        }
        for next in parts.dropFirst() {
            if result.isFloat != next.isFloat { throw EvalError.invalid("\(node.opType) of \(result.dtype.rawValue) and \(next.dtype.rawValue)") }
            result = try binary([result, next], f, g)
        }
        if node.opType == "Mean" {
            let n = Float(parts.count)
            if result.isFloat { return roundedValue(result.floats.map { $0 / n }, shape: result.shape, dtype: result.dtype) }
            result.ints = result.ints.map { $0 / Int64(parts.count) }
        }
        return result.isFloat ? roundedValue(result.floats, shape: result.shape, dtype: result.dtype) : result
    }

    /// LogSoftmax and Hardmax along `axis` (before opset 13: over the input viewed as 2-D, all
    /// axes from `axis` on flattened into one). Hardmax marks the first largest element.
    func softmaxLike(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        let legacy = opset < 13
        guard x.rank >= 1 else { throw EvalError.invalid("\(node.opType) needs an input of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", legacy ? 1 : -1), rank: x.rank, op: node.opType)
        let n: Int, inner: Int
        if legacy { n = x.shape[axis...].reduce(1, *); inner = 1 } else { n = x.shape[axis]; inner = x.shape[(axis + 1)...].reduce(1, *) }
        let outer = n * inner == 0 ? 0 : x.count / (n * inner)
        var out = [Float](repeating: 0, count: x.count)
        let isLog = node.opType == "LogSoftmax"
        x.floats.withUnsafeBufferPointer { p in
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = o * n * inner + i
                    guard n > 0 else { continue }
                    var top = p[base], best = 0
                    for k in 1..<n {
                        let v = p[base + k * inner]
                        if v > top || (v.isNaN && !top.isNaN) { top = v; best = k }
                    }
                    if isLog {
                        var sum = 0.0
                        for k in 0..<n { sum += exp(Double(p[base + k * inner] - top)) }
                        let shift = Float(Foundation.log(sum))
                        for k in 0..<n { out[base + k * inner] = p[base + k * inner] - top - shift }
                    } else {
                        out[base + best * inner] = 1
                    }
                }
            }
        }
        return roundedValue(out, shape: x.shape, dtype: x.dtype)
    }
}
