import Foundation
import PithIR

/// Pooling-like operators beside MaxPool and AveragePool: GlobalMaxPool, LRN (local response
/// normalization across channels) and MaxUnpool.
extension Operators {
    /// GlobalMaxPool: the largest element of each [N, C] plane (NaN if the plane holds one), as
    /// [N, C, 1, …].
    func globalMaxPool(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        guard x.rank >= 3 else { throw EvalError.invalid("X \(x.shape) must be [N, C, spatial…]") }
        let planes = x.shape[0] * x.shape[1], inner = x.count / Swift.max(planes, 1)
        guard inner > 0 || planes == 0 else { throw EvalError.invalid("X \(x.shape) has empty planes, which have no largest element") }
        let out = (0..<planes).map { p in
            x.floats[(p * inner)..<((p + 1) * inner)].reduce(-Float.infinity) { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }
        }
        return Value(floats: out, shape: Array(x.shape[..<2]) + [Int](repeating: 1, count: x.rank - 2), dtype: x.dtype)
    }

    /// LRN: y = x / (bias + alpha / size · Σ x²)^beta, the sum over the channels from
    /// c − ⌊(size − 1) / 2⌋ to c + ⌈(size − 1) / 2⌉ that exist. Sums in `Double`.
    func lrn(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        guard x.rank >= 3 else { throw EvalError.invalid("X \(x.shape) must be [N, C, spatial…]") }
        guard case .int(let sizeAttribute) = node.attribute("size"), sizeAttribute >= 1 else {
            throw EvalError.invalid("the size attribute must be given, at least 1")
        }
        let size = Int(Swift.min(sizeAttribute, Int64(maximumElements)))
        let alpha = Double(float("alpha", 0.0001)), beta = Double(float("beta", 0.75)), bias = Double(float("bias", 1))
        let batch = x.shape[0], channels = x.shape[1], inner = x.shape[2...].reduce(1, *)
        let before = (size - 1) / 2, after = size / 2  // ⌊(size − 1) / 2⌋ and ⌈(size − 1) / 2⌉
        var out = [Float](repeating: 0, count: x.count)
        for n in 0..<batch {
            for c in 0..<channels {
                let first = Swift.max(0, c - before), last = Swift.min(channels - 1, c + after)
                for i in 0..<inner {
                    var sum = 0.0
                    for k in first...last {
                        let v = Double(x.floats[(n * channels + k) * inner + i])
                        sum += v * v
                    }
                    let e = (n * channels + c) * inner + i
                    out[e] = Float(Double(x.floats[e]) / pow(bias + alpha / Double(size) * sum, beta))
                }
            }
        }
        return roundedValue(out, shape: x.shape, dtype: x.dtype)
    }

    /// MaxUnpool: a tensor of zeros with each element of X placed at its index in I (flat indices
    /// into the whole output, as MaxPool's second output gives them). The output's shape is
    /// `output_shape` (input 2) if given, else (in − 1) · stride − pad begin − pad end + kernel
    /// per spatial axis.
    func maxUnpool(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0), indices = try integerIndices(inputs, 1)
        guard !x.isString else { throw EvalError.unsupported("MaxUnpool of strings") }
        guard x.rank >= 3 else { throw EvalError.invalid("X \(x.shape) must be [N, C, spatial…]") }
        guard indices.shape == x.shape else { throw EvalError.invalid("I of shape \(indices.shape) for X of shape \(x.shape): they must agree") }
        let spatial = x.rank - 2
        guard let kernel = ints("kernel_shape"), kernel.count == spatial, kernel.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
            throw EvalError.invalid("kernel_shape must give \(spatial) sizes of at least 1")
        }
        let stride = try spatialInts("strides", spatial, default: 1, minimum: 1)
        let pads = ints("pads") ?? [Int](repeating: 0, count: 2 * spatial)
        guard pads.count == 2 * spatial, pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else {
            throw EvalError.invalid("pads \(pads) must be \(2 * spatial) sizes of at least 0")
        }
        var shape = Array(x.shape[..<2])
        for a in 0..<spatial { shape.append((x.shape[a + 2] - 1) * stride[a] - pads[a] - pads[a + spatial] + kernel[a]) }
        if inputs.count > 2, inputs[2] != nil {
            let given = try sizesInput(inputs, 2, what: "output_shape")
            guard given.count == x.rank else { throw EvalError.invalid("output_shape \(given) for X of rank \(x.rank)") }
            shape = given
        }
        try checkSize(shape, op: "MaxUnpool")
        let total = shape.reduce(1, *)
        var out = x
        out.shape = shape
        if x.isFloat { out.floats = [Float](repeating: 0, count: total) } else { out.ints = [Int64](repeating: 0, count: total) }
        for (k, index) in indices.ints.enumerated() {
            guard index >= 0, index < Int64(total) else { throw EvalError.invalid("index \(index) is outside the output of shape \(shape)") }
            if x.isFloat { out.floats[Int(index)] = x.floats[k] } else { out.ints[Int(index)] = x.ints[k] }
        }
        return out
    }
}
