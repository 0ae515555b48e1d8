import Foundation
import PithIR

/// Operators of the `com.microsoft` domain (onnxruntime's contrib operators) that models from the
/// wild carry: DynamicQuantizeLSTM, which onnxruntime's dynamic quantizer writes for an LSTM.
///
/// DynamicQuantizeLSTM is LSTM with 8-bit weights, computed as onnxruntime's CPU kernel computes it
/// (contrib_ops/cpu/quantization/dynamic_quantize_lstm.cc, through providers/cpu/rnn/lstm_base.cc,
/// uni_directional_lstm.cc and the quantized `ComputeGemm` of rnn_helpers.cc):
///
/// 1. W is [num_directions, input_size, 4·hidden_size] and R [num_directions, hidden_size,
///    4·hidden_size], int8 or uint8 — transposed from LSTM's W and R. Their scales and zero points
///    are [num_directions] (per tensor) or [num_directions, 4·hidden_size] (per column); a zero
///    point is one value per direction (onnxruntime takes the direction's first).
/// 2. Per direction, X's rows of the first max(sequence_lens) steps are quantized to uint8 together
///    and multiplied by W in integers; each step, the previous hidden state of the whole batch is
///    quantized and multiplied by R. A quantization takes DynamicQuantizeLinear's arithmetic: range
///    [min(0, lowest), max(0, highest)], scale = range / 255 (1 for an empty range), zero point
///    −lowest / scale rounded half to even into 0…255, q = round-half-even(v / scale) + zero point
///    clamped to 0…255.
/// 3. An integer product Σ (q − zero point)(w − w_zero_point), exact, becomes a float as
///    float(product) · (activation scale · weight scale), the two scales multiplied first; the step's
///    H·R part is added to the X·W part, then the bias, then the gates run as LSTM's.
///
/// onnxruntime with several threads and a batch of more than 4 entries (or 2 to 4 with a hidden size of
/// 256 or less) quantizes each thread's share of the batch on its own range; the evaluator quantizes
/// the batch as one, as onnxruntime does with one thread and with any batch of one.
extension ONNXEvaluator {
    /// The `com.microsoft` operators the evaluator runs.
    public static let supportedMicrosoftOperators: [String] = ["DynamicQuantizeLSTM"]
}

extension Operators {
    /// Runs a `com.microsoft` node.
    func microsoftOperator(_ inputs: [Value?]) throws -> [Value] {
        switch node.opType {
        case "DynamicQuantizeLSTM": return try dynamicQuantizeLSTM(inputs)
        default: throw EvalError.unsupported("operator `com.microsoft.\(node.opType)`")
        }
    }

    /// DynamicQuantizeLSTM: [Y, Y_h, Y_c] of an LSTM whose products are 8-bit (see above). Inputs X,
    /// W, R, B, sequence_lens, initial_h, initial_c, P, W_scale, W_zero_point, R_scale, R_zero_point;
    /// LSTM's attributes but `layout`.
    func dynamicQuantizeLSTM(_ inputs: [Value?]) throws -> [Value] {
        let x = try floatInput(inputs, 0)
        let w = try quantizedWeight(inputs, 1, "W"), r = try quantizedWeight(inputs, 2, "R")
        guard x.rank == 3, w.rank == 3, r.rank == 3 else { throw EvalError.invalid("X \(x.shape), W \(w.shape) and R \(r.shape) must have rank 3") }
        let layer = try recurrentLayer(inputs, cell: .lstm, layout: 0, hiddenFallback: r.shape[1])
        let (directions, hidden, inputSize) = (layer.directions, layer.hidden, layer.inputSize)
        let g = 4 * hidden
        guard w.shape == [directions, inputSize, g] else {
            throw EvalError.invalid(
                "W has shape \(w.shape); DynamicQuantizeLSTM's W is [num_directions, input_size, 4·hidden_size], and direction \(layer.direction), "
                    + "hidden size \(hidden) and input size \(inputSize) need \([directions, inputSize, g])")
        }
        guard r.shape == [directions, hidden, g] else {
            throw EvalError.invalid(
                "R has shape \(r.shape); DynamicQuantizeLSTM's R is [num_directions, hidden_size, 4·hidden_size], and direction \(layer.direction) "
                    + "and hidden size \(hidden) need \([directions, hidden, g])")
        }
        let products = QuantizedRecurrentProducts(
            w: shiftedWeight(w, zeroPoint: try weightZeroPoints(inputs, 9, "W_zero_point", of: w, directions: directions, columns: g)),
            r: shiftedWeight(r, zeroPoint: try weightZeroPoints(inputs, 11, "R_zero_point", of: r, directions: directions, columns: g)),
            wScale: try weightScales(inputs, 8, "W_scale", directions: directions, columns: g),
            rScale: try weightScales(inputs, 10, "R_scale", directions: directions, columns: g),
            inputSize: inputSize, hidden: hidden)
        return try recurrence(layer, products)
    }

    /// W or R: an int8 or uint8 tensor.
    private func quantizedWeight(_ inputs: [Value?], _ index: Int, _ name: String) throws -> Value {
        guard index < inputs.count, let v = inputs[index] else { throw EvalError.invalid("DynamicQuantizeLSTM needs \(name) (input \(index))") }
        guard v.dtype == .int8 || v.dtype == .uint8 else {
            throw EvalError.unsupported("DynamicQuantizeLSTM with \(name) of type \(v.dtype.rawValue) (it takes int8 and uint8)")
        }
        return v
    }

    /// W_scale or R_scale: floats of shape [directions] (per tensor) or [directions, columns] (per
    /// column), as one value per column of every direction, [directions · columns].
    private func weightScales(_ inputs: [Value?], _ index: Int, _ name: String, directions: Int, columns: Int) throws -> [Float] {
        guard index < inputs.count, let v = inputs[index] else { throw EvalError.invalid("DynamicQuantizeLSTM needs \(name) (input \(index))") }
        guard v.isFloat else { throw EvalError.invalid("\(name) has type \(v.dtype.rawValue); scales are floating point") }
        if v.shape == [directions] { return v.floats.flatMap { [Float](repeating: $0, count: columns) } }
        guard v.shape == [directions, columns] else {
            throw EvalError.invalid("\(name) has shape \(v.shape); it must be \([directions]) (per tensor) or \([directions, columns]) (per column)")
        }
        return v.floats
    }

    /// W_zero_point or R_zero_point: of the weight's type, shape [directions] or [directions, columns]
    /// with one value throughout each direction (as onnxruntime requires); one value per direction.
    private func weightZeroPoints(_ inputs: [Value?], _ index: Int, _ name: String, of weight: Value, directions: Int, columns: Int) throws -> [Int64] {
        guard index < inputs.count, let v = inputs[index] else { throw EvalError.invalid("DynamicQuantizeLSTM needs \(name) (input \(index))") }
        guard v.dtype == weight.dtype else {
            throw EvalError.invalid("\(name) has type \(v.dtype.rawValue); its weight has type \(weight.dtype.rawValue)")
        }
        if v.shape == [directions] { return v.ints }
        guard v.shape == [directions, columns] else {
            throw EvalError.invalid("\(name) has shape \(v.shape); it must be \([directions]) (per tensor) or \([directions, columns]) (per column)")
        }
        return try (0..<directions).map { d in
            let values = v.ints[d * columns..<(d + 1) * columns]
            guard let first = values.first, values.allSatisfy({ $0 == first }) else {
                throw EvalError.unsupported("\(name) with different zero points within direction \(d) (onnxruntime takes one per direction)")
            }
            return first
        }
    }

    /// A weight minus its direction's zero point, as floats (exact: below 256 in magnitude).
    private func shiftedWeight(_ weight: Value, zeroPoint: [Int64]) -> [Float] {
        let perDirection = weight.count / max(zeroPoint.count, 1)
        return weight.ints.enumerated().map { k, v in Float(v - zeroPoint[k / perDirection]) }
    }

    /// The 8-bit products of DynamicQuantizeLSTM: activations quantized as they come, integer
    /// products, float results (see the file's comment).
    struct QuantizedRecurrentProducts: RecurrentProducts {
        /// W − W_zero_point, [directions, input_size, 4·hidden].
        let w: [Float]
        /// R − R_zero_point, [directions, hidden, 4·hidden].
        let r: [Float]
        /// W_scale and R_scale per column, [directions, 4·hidden].
        let wScale: [Float], rScale: [Float]
        let inputSize: Int, hidden: Int

        func inputProducts(_ x: [Float], rows: Int, direction d: Int) throws -> [Float] {
            let g = 4 * hidden
            return try Self.product(
                x, rows: rows, width: inputSize, counted: { _ in true }, weights: w, offset: d * inputSize * g, ldb: g, columns: g,
                scales: wScale[d * g..<(d + 1) * g])
        }

        func hiddenProducts(_ h: [Float], counted: [Bool], direction d: Int, gates: Range<Int>, into product: inout [Float]) throws {
            let g = 4 * hidden, first = d * g + gates.lowerBound * hidden
            product = try Self.product(
                h, rows: counted.count, width: hidden, counted: { counted[$0] }, weights: r, offset: d * hidden * g + gates.lowerBound * hidden, ldb: g,
                columns: gates.count * hidden, scales: rScale[first..<first + gates.count * hidden])
        }

        /// The first `rows` rows of `a` ([rows, width]), quantized on the range of the rows
        /// `counted`, times `columns` columns of a weight ([width, ldb] from `offset`), as floats:
        /// [rows, columns].
        static func product(
            _ a: [Float], rows: Int, width: Int, counted: (Int) -> Bool, weights: [Float], offset: Int, ldb: Int, columns: Int, scales: ArraySlice<Float>
        ) throws -> [Float] {
            var out = [Float](repeating: 0, count: rows * columns)
            guard rows > 0, width > 0, columns > 0 else { return out }
            let (shifted, scale) = try quantizedActivations(a, rows: rows, width: width, counted: counted)
            var acc = [Int64](repeating: 0, count: rows * columns)
            shifted.withUnsafeBufferPointer { pa in
                weights.withUnsafeBufferPointer { pb in
                    Operators.exactProduct(m: rows, n: columns, k: width, pa.baseAddress!, lda: width, pb.baseAddress! + offset, ldb: ldb, into: &acc, at: 0)
                }
            }
            // onnxruntime multiplies the two scales first, then the product by that.
            let multipliers = scales.map { scale * $0 }
            for i in 0..<rows {
                for j in 0..<columns { out[i * columns + j] = Float(acc[i * columns + j]) * multipliers[j] }
            }
            return out
        }

        /// The first `rows` rows of `values` ([rows, width]) quantized to uint8 on the range of the
        /// rows `counted` (and 0), as onnxruntime quantizes a product's activations: q − zero point
        /// (exact in floats) and the scale.
        static func quantizedActivations(_ values: [Float], rows: Int, width: Int, counted: (Int) -> Bool) throws -> (shifted: [Float], scale: Float) {
            var lowest: Float = 0, highest: Float = 0
            for i in 0..<rows where counted(i) {
                for v in values[i * width..<(i + 1) * width] {
                    guard v.isFinite else { throw EvalError.invalid("DynamicQuantizeLSTM cannot quantize \(v) (an input or a state holds it)") }
                    lowest = Swift.min(lowest, v)
                    highest = Swift.max(highest, v)
                }
            }
            // DynamicQuantizeLinear's arithmetic, with onnxruntime's scale of 1 for an empty range.
            let scale = highest == lowest ? 1 : (highest - lowest) / 255
            let zeroPoint = Swift.min(255, Swift.max(0, 0 - lowest / scale)).rounded(.toNearestOrEven)
            let shifted = values[0..<rows * width].map { Swift.min(255, Swift.max(0, ($0 / scale).rounded(.toNearestOrEven) + zeroPoint)) - zeroPoint }
            return (shifted, scale)
        }
    }
}
