import PithIR

/// Comparisons, boolean logic and `Where`: element-wise with numpy broadcasting. Booleans are
/// held as the evaluator holds them, `Int64` 0 or 1 with dtype `bool`; any nonzero input counts
/// as true.
extension Operators {
    /// Equal, Less, Greater, LessOrEqual, GreaterOrEqual. Floating-point inputs compare as
    /// IEEE floats (NaN equals nothing), integers exactly, strings (Equal only) by their bytes.
    func compare(_ inputs: [Value?]) throws -> Value {
        let a = try required(inputs, 0), b = try required(inputs, 1)
        let shape = try broadcastShape(a.shape, b.shape, op: node.opType)
        try checkSize(shape, op: node.opType)
        let count = shape.reduce(1, *)
        let ia = a.shape == shape ? nil : broadcastIndices(from: a.shape, to: shape)
        let ib = b.shape == shape ? nil : broadcastIndices(from: b.shape, to: shape)
        var out = [Int64](repeating: 0, count: count)
        if a.isString || b.isString {
            guard a.isString, b.isString else {
                throw EvalError.invalid("compares a string tensor with a \(a.isString ? b.dtype.rawValue : a.dtype.rawValue) one")
            }
            guard node.opType == "Equal" else { throw EvalError.unsupported("\(node.opType) on strings") }
            for i in 0..<count where a.strings[ia?[i] ?? i] == b.strings[ib?[i] ?? i] { out[i] = 1 }
        } else if a.isFloat || b.isFloat {
            let x = a.asFloats, y = b.asFloats
            let test: (Float, Float) -> Bool = Self.comparison(node.opType)
            for i in 0..<count where test(x[ia?[i] ?? i], y[ib?[i] ?? i]) { out[i] = 1 }
        } else {
            let x = a.ints, y = b.ints
            let test: (Int64, Int64) -> Bool = Self.comparison(node.opType)
            for i in 0..<count where test(x[ia?[i] ?? i], y[ib?[i] ?? i]) { out[i] = 1 }
        }
        return Value(ints: out, shape: shape, dtype: .bool)
    }

    /// Not, And, Or, Xor.
    func logical(_ inputs: [Value?]) throws -> Value {
        let a = try boolInput(inputs, 0)
        if node.opType == "Not" {
            return Value(ints: a.map { $0 ? 0 : 1 }, shape: try required(inputs, 0).shape, dtype: .bool)
        }
        let b = try boolInput(inputs, 1)
        let sa = try required(inputs, 0).shape, sb = try required(inputs, 1).shape
        let shape = try broadcastShape(sa, sb, op: node.opType)
        try checkSize(shape, op: node.opType)
        let ia = broadcastIndices(from: sa, to: shape), ib = broadcastIndices(from: sb, to: shape)
        let test: (Bool, Bool) -> Bool
        switch node.opType {
        case "And": test = { $0 && $1 }
        case "Or": test = { $0 || $1 }
        default: test = { $0 != $1 }
        }
        return Value(ints: ia.indices.map { test(a[ia[$0]], b[ib[$0]]) ? 1 : 0 }, shape: shape, dtype: .bool)
    }

    /// Input `index` as booleans: nonzero is true.
    func boolInput(_ inputs: [Value?], _ index: Int) throws -> [Bool] {
        let value = try required(inputs, index)
        guard !value.isString else { throw EvalError.invalid("input \(index) is a string tensor; \(node.opType) takes booleans") }
        return value.isFloat ? value.floats.map { $0 != 0 } : value.ints.map { $0 != 0 }
    }

    /// Where(condition, X, Y): X where the condition holds, else Y, all three broadcast together.
    func select(_ inputs: [Value?]) throws -> Value {
        let condition = try boolInput(inputs, 0)
        let c = try required(inputs, 0), x = try required(inputs, 1), y = try required(inputs, 2)
        let shape = try broadcastShape(try broadcastShape(c.shape, x.shape, op: "Where"), y.shape, op: "Where")
        try checkSize(shape, op: "Where")
        let ic = broadcastIndices(from: c.shape, to: shape), ix = broadcastIndices(from: x.shape, to: shape), iy = broadcastIndices(from: y.shape, to: shape)
        var out = x
        out.shape = shape
        if x.isString || y.isString {
            guard x.isString, y.isString else { throw EvalError.invalid("X is \(x.dtype.rawValue) and Y \(y.dtype.rawValue); they must be of one type") }
            out.strings = ic.indices.map { condition[ic[$0]] ? x.strings[ix[$0]] : y.strings[iy[$0]] }
        } else if x.isFloat || y.isFloat {
            let a = x.asFloats, b = y.asFloats
            out.floats = ic.indices.map { condition[ic[$0]] ? a[ix[$0]] : b[iy[$0]] }
            out.ints = []
            if !out.isFloat { out.dtype = y.dtype }
        } else {
            out.ints = ic.indices.map { condition[ic[$0]] ? x.ints[ix[$0]] : y.ints[iy[$0]] }
        }
        return out
    }

    /// Neg of integers (shape arithmetic negates int64 axes: onnx's LayerNormalization expansion),
    /// wrapping like the type (−(−128) is −128 in int8).
    func negateIntegers(_ inputs: [Value?]) throws -> Value {
        var x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.invalid("Neg of a string tensor") }
        x.ints = x.ints.map { wrap(0 &- $0, to: x.dtype) }
        return x
    }
}

extension Operators {
    /// The test of a comparison operator (`Equal`, `Less`, `Greater`, `LessOrEqual`, `GreaterOrEqual`).
    static func comparison<T: Comparable>(_ opType: String) -> (T, T) -> Bool {
        switch opType {
        case "Equal": return { $0 == $1 }
        case "Less": return { $0 < $1 }
        case "Greater": return { $0 > $1 }
        case "LessOrEqual": return { $0 <= $1 }
        default: return { $0 >= $1 }
        }
    }
}
