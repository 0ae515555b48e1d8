import Foundation
import PithIR

/// One node's computation: its attributes, and the operator functions (split by kind over the
/// `Operators+*.swift` files).
struct Operators {
    let node: Node
    let opset: Int

    // MARK: Attributes

    func int(_ name: String, _ fallback: Int) -> Int {
        if case .int(let v) = node.attribute(name) { return Int(v) }
        return fallback
    }

    func float(_ name: String, _ fallback: Float) -> Float {
        if case .float(let v) = node.attribute(name) { return v }
        return fallback
    }

    func ints(_ name: String) -> [Int]? {
        if case .ints(let v) = node.attribute(name) { return v.map { Int($0) } }
        return nil
    }

    func floats(_ name: String) -> [Float]? {
        if case .floats(let v) = node.attribute(name) { return v }
        return nil
    }

    func string(_ name: String, _ fallback: String) -> String {
        if case .string(let v) = node.attribute(name) { return String(decoding: v, as: UTF8.self) }
        return fallback
    }

    func strings(_ name: String) -> [String]? {
        if case .strings(let v) = node.attribute(name) { return v.map { String(decoding: $0, as: UTF8.self) } }
        return nil
    }

    func required(_ inputs: [Value?], _ index: Int) throws -> Value {
        guard index < inputs.count, let value = inputs[index] else {
            throw EvalError.invalid("input \(index) is required")
        }
        return value
    }

    func floatInput(_ inputs: [Value?], _ index: Int) throws -> Value {
        let value = try required(inputs, index)
        guard value.isFloat else {
            throw EvalError.unsupported("input \(index) of type \(value.dtype.rawValue); this operator is computed for floating-point inputs")
        }
        return value
    }

    // MARK: Dispatch

    func run(_ inputs: [Value?]) throws -> [Value] {
        switch node.opType {
        case "Add": return [try binary(inputs, { $0 + $1 }, { $0 &+ $1 })]
        case "Sub": return [try binary(inputs, { $0 - $1 }, { $0 &- $1 })]
        case "Mul": return [try binary(inputs, { $0 * $1 }, { $0 &* $1 })]
        case "Div":
            return [
                try binary(
                    inputs, { $0 / $1 },
                    { a, b in
                        guard b != 0 else { return 0 }
                        return a / b
                    })
            ]
        case "Pow" where inputs.count == 2 && inputs[0]?.isFloat == true && inputs[1]?.count == 1 && inputs[1]?.asFloats.first == 2:
            // A square (the variance of a normalization): x·x, the correctly rounded x², without a call per value.
            return [try unary(inputs) { $0 * $0 }]
        case "Pow": return [try binary(inputs, { pow($0, $1) }, { a, b in b < 0 ? 0 : (0..<b).reduce(Int64(1)) { r, _ in r &* a } })]
        case "Sqrt": return [try unary(inputs) { $0.squareRoot() }]
        case "Exp": return [try unary(inputs) { exp($0) }]
        case "Abs": return [try unary(inputs) { abs($0) }]
        case "Neg" where inputs.first??.isFloat == false: return [try negateIntegers(inputs)]
        case "Neg": return [try unary(inputs) { -$0 }]
        case "Reciprocal": return [try unary(inputs) { 1 / $0 }]
        case "Relu": return [try unary(inputs) { max($0, 0) }]
        case "LeakyRelu":
            let alpha = float("alpha", 0.01)
            return [try unary(inputs) { $0 >= 0 ? $0 : alpha * $0 }]
        case "Sigmoid": return [try unary(inputs) { OnnxruntimeMath.logistic($0) }]
        case "Tanh": return [try unary(inputs) { OnnxruntimeMath.tanh($0) }]
        case "HardSigmoid":
            let alpha = float("alpha", 0.2), beta = float("beta", 0.5)
            return [try unary(inputs) { max(0, min(1, alpha * $0 + beta)) }]
        case "HardSwish": return [try unary(inputs) { $0 * max(0, min(1, $0 / 6 + 0.5)) }]
        case "Identity": return [try required(inputs, 0)]
        case "Dropout": return try dropout(inputs)
        case "Softmax": return [try softmax(inputs)]
        case "Clip": return [try clip(inputs)]
        case "Cast":
            let to = int("to", 0)
            guard let dtype = onnxType(to) else { throw EvalError.unsupported("Cast to ONNX type \(to)") }
            return [try required(inputs, 0).cast(to: dtype)]
        case "ArgMax": return [try argMax(inputs)]
        case "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare":
            guard let kind = Reduction(operator: node.opType) else { throw EvalError.unsupported("operator `\(node.opType)`") }
            return [try reduce(inputs, kind)]
        case "ArgMin": return [try argExtreme(inputs, largest: false)]
        case "Erf", "Gelu", "Log", "Sign", "Floor", "Ceil", "Round", "Softplus", "Softsign", "Elu", "Selu", "Celu", "ThresholdedRelu",
            "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf", "PRelu", "Mod",
            "BitShift", "Max", "Min", "Sum", "Mean", "LogSoftmax", "Hardmax":
            return [try mathOperator(inputs)]
        case "LayerNormalization": return try layerNormalization(inputs)
        case "InstanceNormalization": return [try instanceNormalization(inputs)]
        case "GroupNormalization": return [try groupNormalization(inputs)]
        case "LpNormalization": return [try lpNormalization(inputs)]
        case "MeanVarianceNormalization": return [try meanVarianceNormalization(inputs)]
        case "TopK": return try topK(inputs)
        case "Einsum": return [try einsum(inputs)]
        case "CumSum": return [try cumSum(inputs)]
        case "OneHot": return [try oneHot(inputs)]
        case "GatherElements": return [try gatherElements(inputs)]
        case "GatherND": return [try gatherND(inputs)]
        case "ScatterND": return [try scatterND(inputs)]
        case "ScatterElements", "Scatter": return [try scatterElements(inputs)]
        case "DepthToSpace": return [try depthToSpace(inputs)]
        case "SpaceToDepth": return [try spaceToDepth(inputs)]
        case "Trilu": return [try trilu(inputs)]
        case "QuantizeLinear": return [try quantizeLinear(inputs)]
        case "DequantizeLinear": return [try dequantizeLinear(inputs)]
        case "DynamicQuantizeLinear": return try dynamicQuantizeLinear(inputs)
        case "MatMulInteger": return [try matMulInteger(inputs)]
        case "ConvInteger": return [try convInteger(inputs)]
        case "ArrayFeatureExtractor": return [try arrayFeatureExtractor(inputs)]
        case "Normalizer": return [try normalizer(inputs)]
        case "Scaler": return [try scaler(inputs)]
        case "LinearClassifier", "LinearRegressor", "TreeEnsembleClassifier", "TreeEnsembleRegressor", "SVMClassifier", "SVMRegressor", "Binarizer",
            "Imputer", "LabelEncoder", "OneHotEncoder":
            return try mlModel(inputs, tensors: [:])
        case "Gemm": return [try gemm(inputs)]
        case "MatMul": return [try matMul(inputs)]
        case "Conv": return [try conv(inputs)]
        case "ConvTranspose": return [try convTranspose(inputs)]
        case "MaxPool": return try pool(inputs, max: true)
        case "AveragePool": return try pool(inputs, max: false)
        case "GlobalAveragePool": return [try globalAveragePool(inputs)]
        case "BatchNormalization": return try batchNormalization(inputs)
        case "Flatten": return [try flatten(inputs)]
        case "Reshape": return [try reshape(inputs)]
        case "Transpose": return [try transpose(inputs)]
        case "Concat": return [try concat(inputs)]
        case "Squeeze": return [try squeeze(inputs)]
        case "Unsqueeze": return [try unsqueeze(inputs)]
        case "Shape": return [try shape(inputs)]
        case "Gather": return [try gather(inputs)]
        case "Slice": return [try slice(inputs)]
        case "Pad": return [try pad(inputs)]
        case "Resize": return [try resize(inputs)]
        case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual": return [try compare(inputs)]
        case "Not", "And", "Or", "Xor": return [try logical(inputs)]
        case "Where": return [try select(inputs)]
        case "Range": return [try range(inputs)]
        case "Expand": return [try expand(inputs)]
        case "Tile": return [try tile(inputs)]
        case "Split": return try split(inputs)
        case "Size": return [try size(inputs)]
        case "NonZero": return [try nonZero(inputs)]
        case "LSTM", "GRU", "RNN": return try recurrent(inputs)
        case "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss": return try loss(inputs)
        case "DFT": return [try dft(inputs)]
        case "STFT": return [try stft(inputs)]
        case "HannWindow", "HammingWindow", "BlackmanWindow": return [try window(inputs)]
        case "MelWeightMatrix": return [try melWeightMatrix(inputs)]
        case "NonMaxSuppression": return [try nonMaxSuppression(inputs)]
        case "RoiAlign": return [try roiAlign(inputs)]
        case "GridSample": return [try gridSample(inputs)]
        case "Upsample": return [try upsample(inputs)]
        case "GlobalMaxPool": return [try globalMaxPool(inputs)]
        case "LRN": return [try lrn(inputs)]
        case "MaxUnpool": return [try maxUnpool(inputs)]
        case "QLinearMatMul": return [try qLinearMatMul(inputs)]
        case "QLinearConv": return [try qLinearConv(inputs)]
        case "StringNormalizer": return [try stringNormalizer(inputs)]
        case "TfIdfVectorizer": return [try tfIdfVectorizer(inputs)]
        case "Unique": return try unique(inputs)
        case "Compress": return [try compress(inputs)]
        case "ReverseSequence": return [try reverseSequence(inputs)]
        case "Det": return [try det(inputs)]
        case "EyeLike": return [try eyeLike(inputs)]
        case "CastLike": return [try castLike(inputs)]
        case "Shrink": return [try shrink(inputs)]
        default: throw EvalError.unsupported("operator `\(node.opType)`")
        }
    }

    /// The IR dtype of an ONNX `TensorProto.DataType` code, for the types the evaluator computes.
    func onnxType(_ code: Int) -> DType? {
        switch code {
        case 1: return .float32
        case 2: return .uint8
        case 3: return .int8
        case 4: return .uint16
        case 5: return .int16
        case 6: return .int32
        case 7: return .int64
        case 8: return .string
        case 9: return .bool
        case 10: return .float16
        case 11: return .float64
        case 12: return .uint32
        case 13: return .uint64
        case 16: return .bfloat16
        default: return nil
        }
    }

    // MARK: Elementwise

    func unary(_ inputs: [Value?], _ f: (Float) -> Float) throws -> Value {
        let x = try floatInput(inputs, 0)
        var out = x
        out.floats = x.floats.map(f)
        return try out.cast(to: x.dtype)
    }

    func binary(_ inputs: [Value?], _ f: (Float, Float) -> Float, _ g: (Int64, Int64) -> Int64) throws -> Value {
        let a = try required(inputs, 0), b = try required(inputs, 1)
        let shape = try broadcastShape(a.shape, b.shape, op: node.opType)
        let count = shape.reduce(1, *)
        if a.isFloat || b.isFloat {
            let x = a.asFloats, y = b.asFloats
            var out = [Float](repeating: 0, count: count)
            if a.shape == b.shape {
                for i in 0..<count { out[i] = f(x[i], y[i]) }
            } else if a.shape == shape, shape.reversed().starts(with: b.shape.reversed()) || y.count == 1 {
                // b repeats along leading axes (a bias): its index cycles.
                let n = y.count
                for i in 0..<count { out[i] = f(x[i], y[i % n]) }
            } else {
                let ia = broadcastIndices(from: a.shape, to: shape), ib = broadcastIndices(from: b.shape, to: shape)
                for i in 0..<count { out[i] = f(x[ia[i]], y[ib[i]]) }
            }
            return Value(floats: out, shape: shape, dtype: a.isFloat ? a.dtype : b.dtype)
        }
        let ia = broadcastIndices(from: a.shape, to: shape), ib = broadcastIndices(from: b.shape, to: shape)
        let out = (0..<count).map { wrap(g(a.ints[ia[$0]], b.ints[ib[$0]]), to: a.dtype) }
        return Value(ints: out, shape: shape, dtype: a.dtype)
    }

    func dropout(_ inputs: [Value?]) throws -> [Value] {
        let x = try required(inputs, 0)
        // Opset 12+: training_mode is input 2; before 7, is_test; before 12, inference unless training.
        var ratio: Float = float("ratio", 0.5)
        if inputs.count > 1, let r = inputs[1] { ratio = r.asFloats.first ?? ratio }
        if inputs.count > 2, let t = inputs[2], t.asInts.first ?? 0 != 0, ratio > 0 {
            throw EvalError.unsupported("Dropout in training mode with ratio \(ratio) (random masks)")
        }
        let mask = Value(ints: [Int64](repeating: 1, count: x.count), shape: x.shape, dtype: .bool)
        return node.outputs.count > 1 ? [x, mask] : [x]
    }

    func clip(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        var low: Float = -.infinity, high: Float = .infinity
        if opset < 11 {
            low = float("min", low)
            high = float("max", high)
        } else {
            if inputs.count > 1, let m = inputs[1] { low = m.asFloats.first ?? low }
            if inputs.count > 2, let m = inputs[2] { high = m.asFloats.first ?? high }
        }
        if x.isFloat {
            var out = x
            out.floats = x.floats.map { min(max($0, low), high) }
            return out
        }
        var out = x
        let lo = low.isFinite ? Int64(low) : Int64.min, hi = high.isFinite ? Int64(high) : Int64.max
        out.ints = x.ints.map { min(max($0, lo), hi) }
        return out
    }

    func softmax(_ inputs: [Value?]) throws -> Value { try softmax(floatInput(inputs, 0)) }

    /// Softmax of `x`, computed in its memory when the caller hands over the only reference to it
    /// (`SoftmaxKernel`), else in a copy.
    func softmax(_ x: consuming Value) throws -> Value {
        var out = x
        guard out.isFloat else {
            throw EvalError.unsupported("input 0 of type \(out.dtype.rawValue); this operator is computed for floating-point inputs")
        }
        guard out.rank >= 1 else { throw EvalError.invalid("Softmax needs an input of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", opset >= 13 ? -1 : 1), rank: out.rank, op: "Softmax")
        // Rows of `length` values, `stride` apart, starting at `(o · length + i) · stride`'s row
        // base: before opset 13 the input is viewed as 2-D, [product of axes before `axis`, product
        // from `axis` on]; from opset 13 the softmax runs along `axis` alone.
        let length: Int, stride: Int
        if opset < 13 {
            length = out.shape[axis...].reduce(1, *)
            stride = 1
        } else {
            length = out.shape[axis]
            stride = out.shape[(axis + 1)...].reduce(1, *)
        }
        guard length > 0, stride > 0 else { return out }
        let count = out.count, rows = count / length
        out.floats.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            let shared = SharedPointer(base)
            // Rows shared out over the cores when there is enough work.
            _ = Parallel.map(count: rows, workers: count < 1 << 16 ? 1 : Parallel.cores, makeWorker: { Scratch() }) {
                (scratch: inout Scratch, row: Int) in
                let o = row / stride, i = row % stride
                let start = shared.pointer + o * length * stride + i
                if stride == 1 {
                    Self.softmaxRow(start, count: length)
                } else {
                    let buffer = scratch.floats(length)
                    for k in 0..<length { buffer[k] = start[k * stride] }
                    Self.softmaxRow(buffer, count: length)
                    for k in 0..<length { start[k * stride] = buffer[k] }
                }
            }
        }
        return out
    }

    /// p[k] = e^(p[k] − max) / Σ e^(p[j] − max), in place.
    private static func softmaxRow(_ p: UnsafeMutablePointer<Float>, count: Int) {
        let top = VectorLoops.maximum(p, count: count)
        let sum = VectorLoops.exponentiate(p, count: count, shift: top)
        let vs = SIMD8<Float>(repeating: sum)
        VectorLoops.map(p, count: count, { $0 / vs }, { $0 / sum })
    }

    func argMax(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard x.rank >= 1 else { throw EvalError.invalid("ArgMax needs an input of rank 1 or more") }
        let axis = try normalizedAxis(int("axis", 0), rank: x.rank, op: "ArgMax")
        let keep = int("keepdims", 1) != 0, last = int("select_last_index", 0) != 0
        let n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        let values = x.asFloats
        var out = [Int64](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0, bestValue = -Float.infinity
                for k in 0..<n {
                    let v = values[(o * n + k) * inner + i]
                    if k == 0 || v > bestValue || (last && v == bestValue) { best = k; bestValue = v }
                }
                out[o * inner + i] = Int64(best)
            }
        }
        var shape = x.shape
        if keep { shape[axis] = 1 } else { shape.remove(at: axis) }
        return Value(ints: out, shape: shape)
    }
}
