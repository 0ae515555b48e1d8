import Foundation
import PithIR

/// The `Reduce*` family and ArgMin.
///
/// Every reduction reads its axes from the `axes` attribute before the opset that made them an
/// input (13 for ReduceSum, 18 for the others) and from input 1 from then on. No axes (absent or
/// empty) reduce every axis, unless `noop_with_empty_axes` is set: then no axis is reduced and, as
/// in onnx's reference, only the element-wise part of the reduction applies (ReduceSumSquare
/// squares, ReduceL1 takes absolute values, ReduceLogSum takes logarithms).
///
/// Floating-point inputs accumulate in `Double`; integer inputs in `Int64`, wrapped to their type
/// (ReduceMean, ReduceL2 and the logarithmic ones truncate their `Double` result toward zero, as
/// numpy's cast does). Empty reductions give the identity: 0, 1, −∞ for ReduceMax (the type's
/// minimum for integers), +∞ for ReduceMin, NaN for ReduceMean, −∞ for the logarithmic ones.
extension Operators {
    enum Reduction {
        case sum, mean, max, min, prod, l1, l2, logSum, logSumExp, sumSquare

        init?(operator name: String) {
            switch name {
            case "ReduceSum": self = .sum
            case "ReduceMean": self = .mean
            case "ReduceMax": self = .max
            case "ReduceMin": self = .min
            case "ReduceProd": self = .prod
            case "ReduceL1": self = .l1
            case "ReduceL2": self = .l2
            case "ReduceLogSum": self = .logSum
            case "ReduceLogSumExp": self = .logSumExp
            case "ReduceSumSquare": self = .sumSquare
            default: return nil
            }
        }
    }

    /// The axes a `Reduce*` node reduces, normalised and sorted; empty for none.
    func reductionAxes(_ inputs: [Value?], rank: Int) throws -> [Int] {
        let fromInput = node.opType == "ReduceSum" ? opset >= 13 : opset >= 18
        var axes: [Int]?
        if fromInput {
            if inputs.count > 1, let a = inputs[1], a.count > 0 {
                guard !a.isFloat, a.rank <= 1 else { throw EvalError.invalid("axes must be a 1-D integer tensor, not \(a.dtype.rawValue) \(a.shape)") }
                axes = a.ints.map { Int($0) }
            }
        } else if let a = ints("axes"), !a.isEmpty {
            axes = a
        }
        guard let axes else {
            if fromInput, int("noop_with_empty_axes", 0) != 0 { return [] }
            return Array(0..<rank)
        }
        let normalized = try axes.map { try normalizedAxis($0, rank: rank, op: node.opType) }
        guard Set(normalized).count == normalized.count else { throw EvalError.invalid("axes \(axes) name an axis twice") }
        return normalized.filter { $0 < rank }.sorted()
    }

    func reduce(_ inputs: [Value?], _ kind: Reduction) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.unsupported("\(node.opType) of strings") }
        let axes = try reductionAxes(inputs, rank: x.rank)
        return try reduced(x, axes: axes, kind, keepDimensions: int("keepdims", 1) != 0)
    }

    /// `x` reduced over `axes` (sorted, normalised).
    func reduced(_ x: Value, axes: [Int], _ kind: Reduction, keepDimensions: Bool) throws -> Value {
        let axisSet = Set(axes)
        let kept = x.shape.indices.map { axisSet.contains($0) ? 1 : x.shape[$0] }
        let shape = keepDimensions ? kept : x.shape.indices.filter { !axisSet.contains($0) }.map { x.shape[$0] }
        let outCount = kept.reduce(1, *)
        let n = axes.reduce(1) { $0 * x.shape[$1] }
        let trailing = axisSet.count == axes.count && axisSet == Set((x.rank - axisSet.count)..<x.rank)
        if x.isFloat, trailing, n > 0, [.sum, .mean, .l1, .l2, .sumSquare, .logSum].contains(kind) {
            // The last axes: each output sums one contiguous row, in order (the same sums as below).
            var acc = [Double](repeating: 0, count: outCount)
            x.floats.withUnsafeBufferPointer { v in
                for r in 0..<outCount {
                    var sum: Double = 0
                    let row = v.baseAddress! + r * n
                    switch kind {
                    case .l1: for j in 0..<n { sum += abs(Double(row[j])) }
                    case .l2, .sumSquare: for j in 0..<n { let d = Double(row[j]); sum += d * d }
                    default: for j in 0..<n { sum += Double(row[j]) }
                    }
                    acc[r] = sum
                }
            }
            switch kind {
            case .mean: acc = acc.map { $0 / Double(n) }
            case .l2: acc = acc.map { $0.squareRoot() }
            case .logSum: acc = acc.map { Foundation.log($0) }
            default: break
            }
            return roundedValue(acc.map { Float($0) }, shape: shape, dtype: x.dtype)
        }
        // For each input element, the output element it folds into.
        let target = broadcastIndices(from: kept, to: x.shape)
        if x.isFloat {
            let values = x.floats
            var acc: [Double]
            switch kind {
            case .sum, .mean, .l1, .l2, .sumSquare, .logSum:
                acc = [Double](repeating: 0, count: outCount)
                switch kind {
                case .l1: for i in values.indices { acc[target[i]] += abs(Double(values[i])) }
                case .l2, .sumSquare: for i in values.indices { let v = Double(values[i]); acc[target[i]] += v * v }
                default: for i in values.indices { acc[target[i]] += Double(values[i]) }
                }
                switch kind {
                case .mean: acc = acc.map { $0 / Double(n) }
                case .l2: acc = acc.map { $0.squareRoot() }
                case .logSum: acc = acc.map { Foundation.log($0) }
                default: break
                }
            case .prod:
                acc = [Double](repeating: 1, count: outCount)
                for i in values.indices { acc[target[i]] *= Double(values[i]) }
            case .max, .min:
                let isMax = kind == .max
                acc = [Double](repeating: isMax ? -.infinity : .infinity, count: outCount)
                for i in values.indices {
                    let v = Double(values[i]), t = target[i], a = acc[t]
                    if v.isNaN || a.isNaN { acc[t] = .nan } else if isMax ? v > a : v < a { acc[t] = v }
                }
            case .logSumExp:
                // log Σ exp(v − m) + m with m the largest finite value, so that large values do not overflow.
                var top = [Double](repeating: -.infinity, count: outCount)
                for i in values.indices where values[i].isFinite { top[target[i]] = Swift.max(top[target[i]], Double(values[i])) }
                for t in top.indices where !top[t].isFinite { top[t] = 0 }
                acc = [Double](repeating: 0, count: outCount)
                for i in values.indices { acc[target[i]] += exp(Double(values[i]) - top[target[i]]) }
                for t in acc.indices { acc[t] = Foundation.log(acc[t]) + top[t] }
            }
            return roundedValue(acc.map { Float($0) }, shape: shape, dtype: x.dtype)
        }
        let values = x.ints
        var acc: [Int64]
        switch kind {
        case .sum, .l1, .sumSquare:
            acc = [Int64](repeating: 0, count: outCount)
            switch kind {
            case .l1: for i in values.indices { acc[target[i]] &+= values[i] == .min ? .min : abs(values[i]) }
            case .sumSquare: for i in values.indices { acc[target[i]] &+= values[i] &* values[i] }
            default: for i in values.indices { acc[target[i]] &+= values[i] }
            }
        case .prod:
            acc = [Int64](repeating: 1, count: outCount)
            for i in values.indices { acc[target[i]] &*= values[i] }
        case .max, .min:
            let range = integerRange(x.dtype)
            acc = [Int64](repeating: kind == .max ? range.lowerBound : range.upperBound, count: outCount)
            if kind == .max {
                for i in values.indices { acc[target[i]] = Swift.max(acc[target[i]], values[i]) }
            } else {
                for i in values.indices { acc[target[i]] = Swift.min(acc[target[i]], values[i]) }
            }
        case .mean, .l2, .logSum, .logSumExp:
            // Computed in Double and truncated toward zero, as numpy casts the float result back.
            var sums = [Double](repeating: 0, count: outCount)
            switch kind {
            case .l2: for i in values.indices { let v = Double(values[i]); sums[target[i]] += v * v }
            case .logSumExp: for i in values.indices { sums[target[i]] += exp(Double(values[i])) }
            default: for i in values.indices { sums[target[i]] += Double(values[i]) }
            }
            let results: [Double]
            switch kind {
            case .mean: results = sums.map { $0 / Double(n) }
            case .l2: results = sums.map { $0.squareRoot() }
            default: results = sums.map { Foundation.log($0) }
            }
            acc = results.map { $0.isFinite && abs($0) < 9.2e18 ? Int64($0) : ($0 > 0 ? .max : .min) }
        }
        return Value(ints: acc.map { wrap($0, to: x.dtype) }, shape: shape, dtype: x.dtype)
    }

    /// ArgMin (and ArgMax for integers, exactly): the index of the smallest (largest) element
    /// along `axis`, the first one unless `select_last_index`. NaN counts as the extreme, as
    /// numpy's argmin and argmax take the first NaN.
    func argExtreme(_ inputs: [Value?], largest: Bool) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.unsupported("\(node.opType) of strings") }
        guard x.rank >= 1 else { throw EvalError.invalid("\(node.opType) needs an input of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", 0), rank: x.rank, op: node.opType)
        let keep = int("keepdims", 1) != 0, last = int("select_last_index", 0) != 0
        let n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        guard n > 0 || outer * inner == 0 else { throw EvalError.invalid("\(node.opType) over axis \(axis) of size 0") }
        var out = [Int64](repeating: 0, count: outer * inner)
        // `better(a, b)`: whether element a replaces the best so far b.
        func scan(_ better: (Int, Int) -> Bool, _ equal: (Int, Int) -> Bool) {
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = o * n * inner + i, bestK = 0
                    for k in 1..<Swift.max(n, 1) {
                        let e = (o * n + k) * inner + i
                        if better(e, best) || (last && equal(e, best)) { best = e; bestK = k }
                    }
                    out[o * inner + i] = Int64(bestK)
                }
            }
        }
        if x.isFloat {
            let v = x.floats
            // NaN wins over everything but an earlier NaN (a later one with select_last_index).
            scan(
                { a, b in
                    if v[b].isNaN { return false }
                    if v[a].isNaN { return true }
                    return largest ? v[a] > v[b] : v[a] < v[b]
                }, { a, b in v[a] == v[b] || (v[a].isNaN && v[b].isNaN) })
        } else {
            let v = x.ints
            scan({ a, b in largest ? v[a] > v[b] : v[a] < v[b] }, { a, b in v[a] == v[b] })
        }
        var shape = x.shape
        if keep { shape[axis] = 1 } else { shape.remove(at: axis) }
        return Value(ints: out, shape: shape)
    }
}

/// The values an integer `dtype` holds (as `Int64`; uint64 is limited to `Int64.max`).
func integerRange(_ dtype: DType) -> ClosedRange<Int64> {
    switch dtype {
    case .int8: return -128...127
    case .uint8: return 0...255
    case .int16: return -32768...32767
    case .uint16: return 0...65535
    case .int32: return Int64(Int32.min)...Int64(Int32.max)
    case .uint32: return 0...Int64(UInt32.max)
    case .uint64: return 0...Int64.max
    case .int4: return -8...7
    case .uint4: return 0...15
    case .int2: return -2...1
    case .uint2: return 0...3
    case .bool: return 0...1
    default: return Int64.min...Int64.max
    }
}

/// A floating-point value of `dtype` from `Float` results, rounded to that type's precision
/// (float16, bfloat16) as storing it would.
func roundedValue(_ values: [Float], shape: [Int], dtype: DType) -> Value {
    switch dtype {
    case .float16: return Value(floats: values.map { FloatRounding.float16($0) }, shape: shape, dtype: dtype)
    case .bfloat16: return Value(floats: values.map { FloatRounding.bfloat16($0) }, shape: shape, dtype: dtype)
    default: return Value(floats: values, shape: shape, dtype: dtype.isFloatingPoint ? dtype : .float32)
    }
}
