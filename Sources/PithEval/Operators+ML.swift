import Foundation
import PithIR

/// Operators of the `ai.onnx.ml` domain that work on tensors: ArrayFeatureExtractor, Normalizer
/// and Scaler (their outputs are float32, as the domain declares). ZipMap is refused: it makes a
/// sequence of maps, which no `Value` holds.
extension ONNXEvaluator {
    /// The `ai.onnx.ml` operators the evaluator runs.
    public static let supportedMLOperators: [String] =
        ["ArrayFeatureExtractor", "Normalizer", "Scaler"]
        + supportedMLModelOperators

    /// Why an operator outside the evaluator's lists is refused, when there is more to say than
    /// that it is not implemented.
    static func refusal(_ node: Node) -> String {
        let name = node.domain.isEmpty ? node.opType : "\(node.domain).\(node.opType)"
        let reason = node.domain == "ai.onnx.ml" ? mapRefusal(node.opType) : ""
        return "operator `\(name)` (node `\(node.name)`)\(reason)"
    }
}

extension Operators {
    /// ArrayFeatureExtractor: the elements of the last axis at `indices` (flattened); a 1-D input
    /// is taken as one row, giving [1, count].
    func arrayFeatureExtractor(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0), indices = try integerIndices(inputs, 1)
        guard x.rank >= 1 else { throw EvalError.invalid("ArrayFeatureExtractor needs an input of rank 1 or more") }
        let width = x.shape[x.rank - 1], rows = x.count / Swift.max(width, 1)
        let picks = try indices.ints.map { i -> Int in
            guard i >= 0, i < Int64(width) else { throw EvalError.invalid("index \(i) is outside the last axis, of size \(width)") }
            return Int(i)
        }
        let shape = (x.rank == 1 ? [1] : Array(x.shape.dropLast())) + [picks.count]
        try checkSize(shape, op: "ArrayFeatureExtractor")
        var order: [Int] = []
        order.reserveCapacity(rows * picks.count)
        for r in 0..<(width == 0 ? 0 : rows) { for k in picks { order.append(r * width + k) } }
        return pick(x, order, shape: shape)
    }

    /// Normalizer: each row (the last axis of a 1-D or 2-D input) divided by its largest element
    /// ("MAX"), the sum of its absolute values ("L1") or its Euclidean norm ("L2"); a row whose
    /// divisor is 0 is left as it is. This is the specification's MAX and onnxruntime's three
    /// (onnx's reference divides by the largest absolute value; the specification's L2 formula
    /// would drop signs).
    func normalizer(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString, x.rank == 1 || x.rank == 2 else {
            throw EvalError.invalid("Normalizer takes a numeric input of shape [C] or [N, C], not \(x.dtype.rawValue) \(x.shape)")
        }
        let norm = string("norm", "MAX")
        guard ["MAX", "L1", "L2"].contains(norm) else { throw EvalError.invalid("norm `\(norm)` (MAX, L1 or L2)") }
        let width = x.shape[x.rank - 1], rows = x.count / Swift.max(width, 1)
        let values = x.asFloats
        var out = values
        for r in 0..<(width == 0 ? 0 : rows) {
            let row = values[(r * width)..<((r + 1) * width)]
            let divisor: Double
            switch norm {
            case "MAX": divisor = row.reduce(-Double.infinity) { Swift.max($0, Double($1)) }
            case "L1": divisor = row.reduce(0.0) { $0 + abs(Double($1)) }
            default: divisor = row.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            }
            guard divisor != 0 else { continue }
            for k in 0..<width { out[r * width + k] = Float(Double(values[r * width + k]) / divisor) }
        }
        return Value(floats: out, shape: x.shape)
    }

    /// Scaler: (x − offset) · scale, offset and scale one value or one per element of the last axis.
    func scaler(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.invalid("Scaler of strings") }
        let width = x.rank == 0 ? 1 : x.shape[x.rank - 1]
        let offset = floats("offset") ?? [0], scale = floats("scale") ?? [1]
        for (name, v) in [("offset", offset), ("scale", scale)] where v.count != 1 && v.count != width {
            throw EvalError.invalid("\(name) holds \(v.count) values for rows of \(width): one value or \(width)")
        }
        let values = x.asFloats
        let out = values.indices.map { i in
            let k = i % Swift.max(width, 1)
            return (values[i] - offset[offset.count == 1 ? 0 : k]) * scale[scale.count == 1 ? 0 : k]
        }
        return Value(floats: out, shape: x.shape)
    }
}
