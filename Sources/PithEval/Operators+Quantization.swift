import Foundation
import PithIR
import PithLinearAlgebra

/// Linear quantization: QuantizeLinear and DequantizeLinear (per tensor, per axis, and blocked
/// from opset 21), DynamicQuantizeLinear, MatMulInteger and ConvInteger.
///
/// Quantized integers are int8, uint8, int16, uint16, int4 and uint4 (held as `Int64` like every
/// integer); quantizing rounds x / scale half to even, adds the zero point and saturates to the
/// type's range (NaN to its minimum, as onnx's reference casts it). Quantizing to float8 is not
/// implemented (the evaluator has no float8 rounding); dequantizing float8 is.
///
/// MatMulInteger and ConvInteger compute exactly: with 8-bit operands every product is at most
/// 255² and a sum of 256 of them stays below 2²⁴, so BLAS's float products over chunks of 256
/// terms are exact integers, added up in `Int64`.
extension Operators {
    /// The quantized type named by an ONNX type code (`output_dtype`), or nil for none (0).
    func quantizedType(code: Int) throws -> DType? {
        switch code {
        case 0: return nil
        case 2: return .uint8
        case 3: return .int8
        case 4: return .uint16
        case 5: return .int16
        case 21: return .uint4
        case 22: return .int4
        case 17: return .float8e4m3fn
        case 18: return .float8e4m3fnuz
        case 19: return .float8e5m2
        case 20: return .float8e5m2fnuz
        case 23: return .float4e2m1
        default: throw EvalError.invalid("output_dtype \(code) is not a quantized type")
        }
    }

    /// For each element of a tensor of `shape`, the index of its quantization parameter: per
    /// tensor (one value), per axis (a 1-D tensor of shape[axis] values) or, with a block size,
    /// blocked (the shape of x but ⌈shape[axis] / blockSize⌉ along axis).
    func quantizationIndices(_ shape: [Int], _ parameter: [Int], axis requested: Int, blockSize: Int, name: String) throws -> [Int] {
        let total = shape.reduce(1, *)
        if parameter.reduce(1, *) == 1 { return [Int](repeating: 0, count: total) }
        let axis = try normalizedAxis(requested, rank: shape.count, op: node.opType)
        guard axis < shape.count else { throw EvalError.invalid("\(name) \(parameter) for a scalar input") }
        let n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *), outer = shape[..<axis].reduce(1, *)
        var indices = [Int](repeating: 0, count: total)
        if blockSize <= 0 {
            guard parameter == [n] else {
                throw EvalError.invalid("\(name) of shape \(parameter) for axis \(axis) of \(shape): per-axis parameters are \([n])")
            }
            for o in 0..<outer { for a in 0..<n { for i in 0..<inner { indices[(o * n + a) * inner + i] = a } } }
            return indices
        }
        var expected = shape
        expected[axis] = (n + blockSize - 1) / blockSize
        guard parameter == expected else {
            throw EvalError.invalid(
                "\(name) of shape \(parameter) for blocks of \(blockSize) along axis \(axis) of \(shape): blocked parameters are \(expected)")
        }
        let m = expected[axis]
        for o in 0..<outer { for a in 0..<n { for i in 0..<inner { indices[(o * n + a) * inner + i] = (o * m + a / blockSize) * inner + i } } }
        return indices
    }

    func quantizeLinear(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0), scale = try floatInput(inputs, 1)
        guard !x.isString else { throw EvalError.invalid("QuantizeLinear of strings") }
        let zeroPoint = inputs.count > 2 ? inputs[2] : nil
        let requested = opset >= 21 ? try quantizedType(code: int("output_dtype", 0)) : nil
        if let requested, let zeroPoint, zeroPoint.dtype != requested {
            throw EvalError.invalid("output_dtype \(requested.rawValue) and a zero point of type \(zeroPoint.dtype.rawValue)")
        }
        let type = zeroPoint?.dtype ?? requested ?? .uint8
        guard [.uint8, .int8, .uint16, .int16, .uint4, .int4].contains(type) else {
            if type.isFloatingPoint { throw EvalError.unsupported("QuantizeLinear to \(type.rawValue)") }
            throw EvalError.invalid("QuantizeLinear to \(type.rawValue), which is not a quantized type")
        }
        let blockSize = opset >= 21 ? int("block_size", 0) : 0
        guard blockSize >= 0 else { throw EvalError.invalid("block_size \(blockSize) is negative") }
        let axis = int("axis", 1)
        let scaleIndex = try quantizationIndices(x.shape, scale.shape, axis: axis, blockSize: blockSize, name: "y_scale")
        let zeroIndex = try zeroPoint.map { zp in
            zp.shape == scale.shape ? scaleIndex : try quantizationIndices(x.shape, zp.shape, axis: axis, blockSize: blockSize, name: "y_zero_point")
        }
        let zeros = zeroPoint?.asInts ?? []
        let range = integerRange(type)
        let low = Double(range.lowerBound), high = Double(range.upperBound)
        var out = [Int64](repeating: 0, count: x.count)
        for i in 0..<x.count {
            // x / scale in the input's precision (float16 inputs divide in float16, as numpy does).
            var q: Double
            if x.isFloat {
                var f = x.floats[i] / scale.floats[scaleIndex[i]]
                if x.dtype == .float16 { f = FloatRounding.float16(f) }
                q = Double(f)
            } else {
                q = Double(x.ints[i]) / Double(scale.floats[scaleIndex[i]])
            }
            q = q.rounded(.toNearestOrEven)
            if let zeroIndex { q += Double(zeros[zeroIndex[i]]) }
            out[i] = q.isNaN ? range.lowerBound : Int64(Swift.min(Swift.max(q, low), high))
        }
        return Value(ints: out, shape: x.shape, dtype: type)
    }

    func dequantizeLinear(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0), scale = try floatInput(inputs, 1)
        guard !x.isString else { throw EvalError.invalid("DequantizeLinear of strings") }
        let zeroPoint = inputs.count > 2 ? inputs[2] : nil
        let blockSize = opset >= 21 ? int("block_size", 0) : 0
        guard blockSize >= 0 else { throw EvalError.invalid("block_size \(blockSize) is negative") }
        let axis = int("axis", 1)
        let scaleIndex = try quantizationIndices(x.shape, scale.shape, axis: axis, blockSize: blockSize, name: "x_scale")
        var zeros: [Float] = [], zeroIndex: [Int]?
        if let zeroPoint {
            if x.isFloat {
                // float8: a zero point, if any, must be 0.
                guard zeroPoint.asFloats.allSatisfy({ $0 == 0 }) else { throw EvalError.invalid("a float8 input's zero point must be 0") }
            } else {
                guard zeroPoint.dtype == x.dtype else {
                    throw EvalError.invalid("zero point of type \(zeroPoint.dtype.rawValue) for x of type \(x.dtype.rawValue)")
                }
                zeros = zeroPoint.ints.map { Float($0) }
                zeroIndex =
                    zeroPoint.shape == scale.shape
                    ? scaleIndex : try quantizationIndices(x.shape, zeroPoint.shape, axis: axis, blockSize: blockSize, name: "x_zero_point")
            }
        }
        let values = x.asFloats
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let shifted = zeroIndex.map { values[i] - zeros[$0[i]] } ?? values[i]
            out[i] = shifted * scale.floats[scaleIndex[i]]
        }
        return roundedValue(out, shape: x.shape, dtype: scale.dtype)
    }

    /// DynamicQuantizeLinear: uint8 quantization of x over [min(0, x), max(0, x)], computed in
    /// float32 step by step as the operator's definition does. Outputs y, its scale and zero point.
    func dynamicQuantizeLinear(_ inputs: [Value?]) throws -> [Value] {
        let x = try floatInput(inputs, 0)
        var top: Float = 0, bottom: Float = 0
        for v in x.floats {
            if v.isNaN { throw EvalError.invalid("DynamicQuantizeLinear of NaN") }
            top = Swift.max(top, v)
            bottom = Swift.min(bottom, v)
        }
        let scale = (top == bottom ? 1 : top - bottom) / 255
        let zeroPoint = Swift.min(255, Swift.max(0, 0 - bottom / scale)).rounded(.toNearestOrEven)
        let y = x.floats.map { Int64(Swift.min(255, Swift.max(0, ($0 / scale).rounded(.toNearestOrEven) + zeroPoint))) }
        return [
            Value(ints: y, shape: x.shape, dtype: .uint8), roundedValue([scale], shape: [], dtype: x.dtype),
            Value(ints: [Int64(zeroPoint)], shape: [], dtype: .uint8),
        ]
    }

    /// An 8-bit integer operand of MatMulInteger or ConvInteger, checked.
    func eightBitInput(_ inputs: [Value?], _ index: Int) throws -> Value {
        let v = try required(inputs, index)
        guard v.dtype == .uint8 || v.dtype == .int8 else { throw EvalError.unsupported("\(node.opType) of \(v.dtype.rawValue) (it takes int8 and uint8)") }
        return v
    }

    /// A zero point input as floats: one value, or `count` values (per filter of ConvInteger).
    func zeroPoints(_ inputs: [Value?], _ index: Int, of operand: Value, count: Int, name: String) throws -> [Float] {
        guard inputs.count > index, let zp = inputs[index] else { return [0] }
        guard zp.dtype == operand.dtype else {
            throw EvalError.invalid("\(name) of type \(zp.dtype.rawValue) for an operand of type \(operand.dtype.rawValue)")
        }
        guard zp.count == 1 || (zp.rank == 1 && zp.count == count) else { throw EvalError.invalid("\(name) of shape \(zp.shape): one value or \(count)") }
        return zp.ints.map { Float($0) }
    }

    /// A MatMulInteger operand minus its zero point (input `index`), as floats: the zero point is a
    /// scalar, or broadcasts to the operand — per row of A ([M] standing for [M, 1], or
    /// [D1, D2, M, 1]), per column of B ([N] or [D1, D2, 1, N]).
    func shiftedOperand(_ operand: Value, _ inputs: [Value?], _ index: Int, name: String, perRow: Bool) throws -> [Float] {
        let values = operand.ints.map { Float($0) }
        guard inputs.count > index, let zp = inputs[index] else { return values }
        guard zp.dtype == operand.dtype else {
            throw EvalError.invalid("\(name) of type \(zp.dtype.rawValue) for an operand of type \(operand.dtype.rawValue)")
        }
        if zp.count == 1 { return values.map { $0 - Float(zp.ints[0]) } }
        let shape = perRow && zp.rank == 1 ? [zp.count, 1] : zp.shape
        guard shape.count <= operand.rank, (try? broadcastShape(operand.shape, shape, op: node.opType)) == operand.shape else {
            throw EvalError.invalid("\(name) of shape \(zp.shape) does not fit an operand of shape \(operand.shape)")
        }
        let source = broadcastIndices(from: shape, to: operand.shape)
        return values.indices.map { values[$0] - Float(zp.ints[source[$0]]) }
    }

    /// Adds the exact integer product of an m × k by k × n product, given as float operands whose
    /// entries are below 256 in magnitude, into `acc` — BLAS over chunks of 256 terms.
    static func exactProduct(
        m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, into acc: inout [Int64], at offset: Int
    ) {
        guard m > 0, n > 0, k > 0 else { return }
        var partial = [Float](repeating: 0, count: m * n)
        partial.withUnsafeMutableBufferPointer { pc in
            for start in stride(from: 0, to: k, by: 256) {
                let width = Swift.min(256, k - start)
                LinearAlgebra.gemm(
                    transposeA: false, transposeB: false, m: m, n: n, k: width, a + start, lda: lda, b + start * ldb, ldb: ldb, pc.baseAddress!, ldc: n)
                for i in 0..<(m * n) { acc[offset + i] += Int64(pc[i]) }
            }
        }
    }

    /// MatMulInteger: (A − a_zero_point) · (B − b_zero_point) in int32, with MatMul's broadcasting.
    func matMulInteger(_ inputs: [Value?]) throws -> Value {
        var a = try eightBitInput(inputs, 0), b = try eightBitInput(inputs, 1)
        guard a.rank >= 1, b.rank >= 1 else { throw EvalError.invalid("MatMulInteger needs inputs of rank 1 or more, not \(a.shape) and \(b.shape)") }
        let aVector = a.rank == 1, bVector = b.rank == 1
        if aVector { a = a.reshaped([1, a.shape[0]]) }
        if bVector { b = b.reshaped([b.shape[0], 1]) }
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], kB = b.shape[b.rank - 2], n = b.shape[b.rank - 1]
        guard k == kB else { throw EvalError.invalid("shapes \(a.shape) and \(b.shape) do not multiply") }
        let left = try shiftedOperand(a, inputs, 2, name: "a_zero_point", perRow: true)
        let right = try shiftedOperand(b, inputs, 3, name: "b_zero_point", perRow: false)
        let batch = try broadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), op: "MatMulInteger")
        try checkSize(batch + [m, n], op: "MatMulInteger")
        let batches = batch.reduce(1, *)
        let ia = broadcastIndices(from: Array(a.shape.dropLast(2)), to: batch), ib = broadcastIndices(from: Array(b.shape.dropLast(2)), to: batch)
        var out = [Int64](repeating: 0, count: batches * m * n)
        left.withUnsafeBufferPointer { pa in
            right.withUnsafeBufferPointer { pb in
                for t in 0..<batches where m * k > 0 && k * n > 0 {
                    Self.exactProduct(
                        m: m, n: n, k: k, pa.baseAddress! + ia[t] * m * k, lda: k, pb.baseAddress! + ib[t] * k * n, ldb: n, into: &out, at: t * m * n)
                }
            }
        }
        var shape = batch + [m, n]
        if bVector { shape.removeLast() }
        if aVector { shape.remove(at: shape.count - (bVector ? 1 : 2)) }
        return Value(ints: out.map { wrap($0, to: .int32) }, shape: shape, dtype: .int32)
    }

    /// ConvInteger: Conv of (x − x_zero_point) by (w − w_zero_point) in int32 (padding counts as
    /// the zero point, so contributes nothing); w_zero_point per filter when not a scalar.
    func convInteger(_ inputs: [Value?]) throws -> Value {
        let x = try eightBitInput(inputs, 0), w = try eightBitInput(inputs, 1)
        guard x.rank >= 3, w.rank == x.rank else { throw EvalError.invalid("X \(x.shape) and W \(w.shape) must be [N, C, spatial…] and [M, C/group, kernel…]") }
        let spatial = x.rank - 2, group = int("group", 1)
        let batch = x.shape[0], channels = x.shape[1], filters = w.shape[0]
        guard group >= 1, channels % group == 0, filters % group == 0, w.shape[1] * group == channels else {
            throw EvalError.invalid("X has \(channels) channels, W \(w.shape) with group \(group)")
        }
        let xZero = try zeroPoints(inputs, 2, of: x, count: 1, name: "x_zero_point")[0]
        let wZero = try zeroPoints(inputs, 3, of: w, count: filters, name: "w_zero_point")
        let kernelShape = Array(w.shape[2...])
        let dilations = try spatialInts("dilations", spatial, default: 1, minimum: 1)
        let stride = try spatialInts("strides", spatial, default: 1, minimum: 1)
        let dilated = (0..<spatial).map { (kernelShape[$0] - 1) * dilations[$0] + 1 }
        let inSpatial = Array(x.shape[2...])
        let (begin, _, outSpatial) = try window(input: inSpatial, kernel: dilated, strides: stride)
        try checkSize([batch, filters] + outSpatial, op: "ConvInteger")
        try checkSize([channels / group] + kernelShape + outSpatial, op: "ConvInteger (unfolded input)")
        let outCount = outSpatial.reduce(1, *), inCount = inSpatial.reduce(1, *), kernelCount = kernelShape.reduce(1, *)
        let cg = channels / group, mg = filters / group, rows = cg * kernelCount
        let image = x.ints.map { Float($0) - xZero }
        let weights = w.ints.enumerated().map { Float($0.element) - wZero[wZero.count == 1 ? 0 : $0.offset / rows] }
        let plan = Im2Col(inSpatial: inSpatial, outSpatial: outSpatial, kernel: kernelShape, strides: stride, dilations: dilations, begin: begin)
        var columns = [Float](repeating: 0, count: plan.isIdentity ? 0 : rows * outCount)
        var out = [Int64](repeating: 0, count: batch * filters * outCount)
        image.withUnsafeBufferPointer { px in
            weights.withUnsafeBufferPointer { pw in
                columns.withUnsafeMutableBufferPointer { pc in
                    guard rows > 0, outCount > 0, mg > 0 else { return }
                    for n in 0..<batch {
                        for g in 0..<group {
                            let source = px.baseAddress! + (n * channels + g * cg) * inCount
                            let unfolded: UnsafePointer<Float>
                            if plan.isIdentity {
                                unfolded = source
                            } else {
                                plan.fill(pc.baseAddress!, from: source, channels: cg)
                                unfolded = UnsafePointer(pc.baseAddress!)
                            }
                            Self.exactProduct(
                                m: mg, n: outCount, k: rows, pw.baseAddress! + g * mg * rows, lda: rows, unfolded, ldb: outCount,
                                into: &out, at: (n * filters + g * mg) * outCount)
                        }
                    }
                }
            }
        }
        return Value(ints: out.map { wrap($0, to: .int32) }, shape: [batch, filters] + outSpatial, dtype: .int32)
    }
}
