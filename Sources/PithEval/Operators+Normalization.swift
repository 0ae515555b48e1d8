import Foundation
import PithIR

/// Normalizations computed from the data itself: LayerNormalization, InstanceNormalization,
/// GroupNormalization, LpNormalization and MeanVarianceNormalization. Statistics accumulate in
/// `Double`; variances are population variances (divided by the count).
extension Operators {
    /// For each element of a tensor of `shape`, the element of `parameter` broadcast to it;
    /// the parameter must broadcast to `shape` without enlarging it.
    func parameterIndices(_ parameter: Value, to shape: [Int], name: String) throws -> [Int] {
        guard parameter.rank <= shape.count, (try? broadcastShape(shape, parameter.shape, op: node.opType)) == shape else {
            throw EvalError.invalid("\(name) \(parameter.shape) does not broadcast to \(shape)")
        }
        return broadcastIndices(from: parameter.shape, to: shape)
    }

    /// Mean and 1/√(variance + ε) of `count` values starting at `base`, `stride` apart.
    @inline(__always)
    func moments(_ p: UnsafeBufferPointer<Float>, base: Int, count: Int, stride: Int = 1, epsilon: Double) -> (mean: Double, inverse: Double) {
        var sum = 0.0
        for k in 0..<count { sum += Double(p[base + k * stride]) }
        let mean = sum / Double(count)
        var squares = 0.0
        for k in 0..<count { let d = Double(p[base + k * stride]) - mean; squares += d * d }
        return (mean, 1 / (squares / Double(count) + epsilon).squareRoot())
    }

    /// LayerNormalization (opset 17): each row of the axes from `axis` on standardised, then
    /// scaled and shifted by Scale and B (broadcast to X). Outputs Y, and the Mean and InvStdDev of
    /// each row (float32, the stash type) of shape X.shape[..<axis] + 1s.
    func layerNormalization(_ inputs: [Value?]) throws -> [Value] {
        let x = try floatInput(inputs, 0), scale = try floatInput(inputs, 1)
        let bias = inputs.count > 2 ? inputs[2] : nil
        guard x.rank >= 1 else { throw EvalError.invalid("LayerNormalization needs an input of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", -1), rank: x.rank, op: "LayerNormalization")
        let epsilon = Double(float("epsilon", 1e-5))
        let inner = x.shape[axis...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        let scaleIndex = try parameterIndices(scale, to: x.shape, name: "Scale")
        let biasIndex = try bias.map { try parameterIndices($0, to: x.shape, name: "B") }
        let biasValues = bias?.asFloats ?? []
        var y = [Float](repeating: 0, count: x.count)
        var means = [Float](repeating: 0, count: outer), inverses = means
        x.floats.withUnsafeBufferPointer { p in
            for o in 0..<outer where inner > 0 {
                let (mean, inverse) = moments(p, base: o * inner, count: inner, epsilon: epsilon)
                means[o] = Float(mean)
                inverses[o] = Float(inverse)
                for k in o * inner..<(o + 1) * inner {
                    var v = Float((Double(p[k]) - mean) * inverse) * scale.floats[scaleIndex[k]]
                    if let biasIndex { v += biasValues[biasIndex[k]] }
                    y[k] = v
                }
            }
        }
        let statsShape = Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.rank - axis)
        return [roundedValue(y, shape: x.shape, dtype: x.dtype), Value(floats: means, shape: statsShape), Value(floats: inverses, shape: statsShape)]
    }

    /// InstanceNormalization: each (sample, channel) plane standardised, then scaled and shifted
    /// per channel.
    func instanceNormalization(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0), scale = try required(inputs, 1).asFloats, bias = try required(inputs, 2).asFloats
        guard x.rank >= 3 else { throw EvalError.invalid("X \(x.shape) must be [N, C, D1, …]") }
        let channels = x.shape[1], inner = x.shape[2...].reduce(1, *)
        guard scale.count == channels, bias.count == channels else { throw EvalError.invalid("scale and B must hold \(channels) values, one per channel") }
        return try normalizedGroups(x, groups: channels, inner: inner, epsilon: Double(float("epsilon", 1e-5))) { c in (scale[c], bias[c]) }
    }

    /// GroupNormalization: the channels split into `num_groups` groups, each group of each sample
    /// standardised. Opset 18 scales and shifts by group (scale and bias of `num_groups` values),
    /// opset 21 by channel (of C values).
    func groupNormalization(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0), scale = try required(inputs, 1).asFloats, bias = try required(inputs, 2).asFloats
        guard x.rank >= 2 else { throw EvalError.invalid("X \(x.shape) must be [N, C, …]") }
        guard case .int(let g) = node.attribute("num_groups") else { throw EvalError.invalid("the num_groups attribute is required") }
        let channels = x.shape[1], groups = Int(g)
        guard groups >= 1, channels % groups == 0 else { throw EvalError.invalid("\(channels) channels do not split into \(g) groups") }
        let perChannel = opset >= 21
        let wanted = perChannel ? channels : groups
        guard scale.count == wanted, bias.count == wanted else {
            throw EvalError.invalid("scale and bias must hold \(wanted) values (one per \(perChannel ? "channel" : "group") in opset \(opset))")
        }
        let spatial = x.shape[2...].reduce(1, *), size = channels / groups
        let normalized = try normalizedGroups(x, groups: groups, inner: size * spatial, epsilon: Double(float("epsilon", 1e-5))) { _ in (1, 0) }
        var out = normalized.floats
        for n in 0..<x.shape[0] {
            for c in 0..<channels {
                let k = perChannel ? c : c / size
                let base = (n * channels + c) * spatial
                for i in base..<base + spatial { out[i] = out[i] * scale[k] + bias[k] }
            }
        }
        return roundedValue(out, shape: x.shape, dtype: x.dtype)
    }

    /// `x` viewed as [N, groups, inner] with each row standardised, then scaled and shifted by the
    /// `affine` of its group.
    func normalizedGroups(_ x: Value, groups: Int, inner: Int, epsilon: Double, affine: (Int) -> (Float, Float)) throws -> Value {
        var out = [Float](repeating: 0, count: x.count)
        let rows = x.shape[0] * groups
        x.floats.withUnsafeBufferPointer { p in
            for row in 0..<rows where inner > 0 {
                let (mean, inverse) = moments(p, base: row * inner, count: inner, epsilon: epsilon)
                let (s, b) = affine(row % groups)
                for k in row * inner..<(row + 1) * inner { out[k] = Float((Double(p[k]) - mean) * inverse) * s + b }
            }
        }
        return roundedValue(out, shape: x.shape, dtype: x.dtype)
    }

    /// LpNormalization: x divided by its L1 or L2 norm along `axis` (a zero norm gives 0). The L1
    /// norm sums absolute values, as the specification and onnxruntime do.
    func lpNormalization(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        guard x.rank >= 1 else { throw EvalError.invalid("LpNormalization needs an input of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", -1), rank: x.rank, op: "LpNormalization")
        let p = int("p", 2)
        guard p == 1 || p == 2 else { throw EvalError.invalid("p is \(p); LpNormalization takes 1 or 2") }
        let n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        var out = [Float](repeating: 0, count: x.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                var norm = 0.0
                for k in 0..<n { let v = Double(x.floats[base + k * inner]); norm += p == 1 ? abs(v) : v * v }
                if p == 2 { norm = norm.squareRoot() }
                for k in 0..<n where norm != 0 { out[base + k * inner] = Float(Double(x.floats[base + k * inner]) / norm) }
            }
        }
        return roundedValue(out, shape: x.shape, dtype: x.dtype)
    }

    /// MeanVarianceNormalization: (X − E[X]) / (√(E[X²] − E[X]²) + 1e-9) over `axes` (default
    /// [0, 2, 3]), as the operator's function body computes it.
    func meanVarianceNormalization(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        let axes = Set(try (ints("axes") ?? [0, 2, 3]).map { try normalizedAxis($0, rank: x.rank, op: "MeanVarianceNormalization") })
        let kept = x.shape.indices.map { axes.contains($0) ? 1 : x.shape[$0] }
        let outCount = kept.reduce(1, *)
        let n = Double(x.count / Swift.max(outCount, 1))
        let target = broadcastIndices(from: kept, to: x.shape)
        var sums = [Double](repeating: 0, count: outCount), squares = sums
        for i in 0..<x.count {
            let v = Double(x.floats[i])
            sums[target[i]] += v
            squares[target[i]] += v * v
        }
        let means = sums.map { $0 / n }
        let deviations = (0..<outCount).map { Swift.max(0, squares[$0] / n - means[$0] * means[$0]).squareRoot() + 1e-9 }
        let out = (0..<x.count).map { Float((Double(x.floats[$0]) - means[target[$0]]) / deviations[target[$0]]) }
        return roundedValue(out, shape: x.shape, dtype: x.dtype)
    }
}
