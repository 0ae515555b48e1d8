import Foundation
import PithIR

/// Training losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (which is the first
/// applied to the log-softmax of its scores, and can also return those log-probabilities).
///
/// Scores are [N, C] or [N, C, d1, …, dk]; targets [N] or [N, d1, …, dk] hold class indices.
/// Element (n, d) loses −input[n, target, d] · weight[target]; a target equal to `ignore_index`
/// loses nothing and weighs nothing. `reduction` "none" keeps the target's shape, "sum" adds the
/// losses, "mean" (the default) divides that sum by the sum of the weights used (without a weight
/// input, by the number of targets not ignored), as onnxruntime does. Sums are taken in `Double`.
extension Operators {
    /// The two losses, by operator name.
    func loss(_ inputs: [Value?]) throws -> [Value] {
        let x = try floatInput(inputs, 0)
        let target = try integerIndices(inputs, 1)
        let weight = inputs.count > 2 ? inputs[2] : nil
        let reduction = string("reduction", "mean")
        guard ["none", "sum", "mean"].contains(reduction) else {
            throw EvalError.invalid("reduction `\(reduction)` is not one of none, sum, mean")
        }
        guard x.rank >= 2 else { throw EvalError.invalid("scores of shape \(x.shape): they must be [N, C] or [N, C, d1, …]") }
        let expected = [x.shape[0]] + Array(x.shape[2...])
        guard target.shape == expected else {
            throw EvalError.invalid("target of shape \(target.shape) for scores of shape \(x.shape): it must be \(expected)")
        }
        let classes = x.shape[1]
        if let weight {
            guard weight.isFloat, weight.shape == [classes] else {
                throw EvalError.invalid("weight of type \(weight.dtype.rawValue) and shape \(weight.shape): it must be \(classes) floats, one per class")
            }
        }
        let ignored: Int64? = node.attribute("ignore_index").map { _ in Int64(int("ignore_index", 0)) }
        let isCrossEntropy = node.opType == "SoftmaxCrossEntropyLoss"
        // The log-probabilities (cross entropy) or the scores themselves, read as log-probabilities.
        let logProbabilities = isCrossEntropy ? logSoftmaxOverClasses(x) : x.floats

        let batch = x.shape[0], inner = x.shape[2...].reduce(1, *)
        var losses = [Double](repeating: 0, count: target.count)
        var totalLoss = 0.0, totalWeight = 0.0
        for n in 0..<batch {
            for d in 0..<inner {
                let t = target.ints[n * inner + d]
                if t == ignored { continue }
                guard t >= 0, t < Int64(classes) else {
                    throw EvalError.invalid("target \(t) is outside the \(classes) classes (and is not the ignore_index)")
                }
                let w = weight.map { Double($0.floats[Int(t)]) } ?? 1
                let loss = -Double(logProbabilities[(n * classes + Int(t)) * inner + d]) * w
                losses[n * inner + d] = loss
                totalLoss += loss
                totalWeight += w
            }
        }
        let result: Value
        switch reduction {
        case "none": result = roundedValue(losses.map { Float($0) }, shape: target.shape, dtype: x.dtype)
        case "sum": result = roundedValue([Float(totalLoss)], shape: [], dtype: x.dtype)
        default: result = roundedValue([Float(totalLoss / totalWeight)], shape: [], dtype: x.dtype)
        }
        guard isCrossEntropy, node.outputs.count > 1 else { return [result] }
        return [result, roundedValue(logProbabilities, shape: x.shape, dtype: x.dtype)]
    }

    /// log softmax of `x` ([N, C, …]) along axis 1, computed in `Double`.
    private func logSoftmaxOverClasses(_ x: Value) -> [Float] {
        let batch = x.shape[0], classes = x.shape[1], inner = x.shape[2...].reduce(1, *)
        var out = [Float](repeating: 0, count: x.count)
        guard classes > 0 else { return out }
        for n in 0..<batch {
            for d in 0..<inner {
                let base = n * classes * inner + d
                var top = -Double.infinity
                for c in 0..<classes { top = Swift.max(top, Double(x.floats[base + c * inner])) }
                var sum = 0.0
                for c in 0..<classes { sum += exp(Double(x.floats[base + c * inner]) - top) }
                let shift = top + Foundation.log(sum)
                for c in 0..<classes { out[base + c * inner] = Float(Double(x.floats[base + c * inner]) - shift) }
            }
        }
        return out
    }
}
