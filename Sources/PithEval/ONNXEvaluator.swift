public import PithIR

/// Runs ONNX graphs from the IR on the CPU: nodes in file order (ONNX requires a topological order),
/// values computed in `Float` (floating-point types) or `Int64` (integers and bool), matrix products
/// and convolutions through BLAS.
///
/// The operators are those of inference networks: see `ONNXEvaluator.supportedOperators`. Anything
/// else — another operator, an attribute value an operator does not implement here, a type the
/// evaluator does not compute — stops evaluation with an `EvalError` that names it.
public struct ONNXEvaluator: Sendable {
    public static let supportedOperators: [String] = [
        "Abs", "Add", "ArgMax", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv",
        "ConvTranspose", "Div", "Dropout", "Exp", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "HardSigmoid",
        "HardSwish", "Identity", "LeakyRelu", "MatMul", "MaxPool", "Mul", "Neg", "Pad", "Pow", "Reciprocal", "ReduceMean",
        "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Softmax", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose",
        "Unsqueeze",
        // Reductions, element-wise math, normalizations, indexing and quantization (issue 12, part B).
        "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
        "ArgMin", "Erf", "Gelu", "Log", "Sign", "Floor", "Ceil", "Round", "Softplus", "Softsign", "Elu", "Selu", "Celu", "ThresholdedRelu",
        "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf", "PRelu", "Mod",
        "BitShift", "Max", "Min", "Sum", "Mean", "LogSoftmax", "Hardmax",
        "LayerNormalization", "InstanceNormalization", "GroupNormalization", "LpNormalization", "MeanVarianceNormalization",
        "TopK", "Einsum", "CumSum", "OneHot", "GatherElements", "GatherND", "ScatterND", "ScatterElements", "Scatter",
        "DepthToSpace", "SpaceToDepth", "Trilu",
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
    ]

    let graph: Graph
    /// Initializers and constant tensors, by value name.
    let constants: [String: Value]
    /// Constants of types the evaluator does not compute (strings): an error only if read.
    let uncomputable: [String: DType]
    /// The default-domain operator set version.
    public let opset: Int

    public init(model: Model) throws {
        guard let graph = model.graph else { throw EvalError.invalid("the model has no graph to evaluate (Keras models are evaluated from their configuration)") }
        self.graph = graph
        opset = Int(model.metadata.opsets.first { $0.domain == "" || $0.domain == "ai.onnx" }?.version ?? 13)
        var constants: [String: Value] = [:]
        var uncomputable: [String: DType] = [:]
        // A constant of a type the evaluator does not compute (complex, sub-byte floats) is an error
        // only when something reads it.
        func load(_ tensor: Tensor, as name: String) throws {
            do { constants[name] = try Value(tensor) } catch let error as EvalError where error.uncomputableType != nil { uncomputable[name] = error.uncomputableType }
        }
        for id in graph.initializers + graph.sparseInitializers {
            try load(model.tensors[id], as: model.tensors[id].name)
        }
        // Constant nodes: their tensor is held in the attribute.
        for node in graph.nodes where node.opType == "Constant" {
            for attribute in node.attributes {
                if case .tensor(let id) = attribute.value, let output = node.outputs.first {
                    try load(model.tensors[id], as: output)
                } else if case .sparseTensor(let id) = attribute.value, let output = node.outputs.first {
                    try load(model.tensors[id], as: output)
                }
            }
        }
        self.constants = constants
        self.uncomputable = uncomputable
        for node in graph.nodes where node.domain != "" && node.domain != "ai.onnx" && !(node.domain == "ai.onnx.ml" && Self.supportedMLOperators.contains(node.opType)) {
            throw EvalError.unsupported(Self.refusal(node))
        }
        for node in graph.nodes where node.domain != "ai.onnx.ml" && !Self.supportedOperators.contains(node.opType) {
            throw EvalError.unsupported("operator `\(node.opType)` (node `\(node.name)`)")
        }
    }

    /// The graph inputs that are not initializers: what the caller must feed.
    public var inputs: [ValueInfo] { graph.inputs.filter { constants[$0.name] == nil } }
    public var outputs: [ValueInfo] { graph.outputs }

    /// Runs the graph on `feeds` (by input name) and returns every graph output, in order.
    public func run(_ feeds: [String: Value]) throws -> [Value] {
        var values = constants
        for input in inputs {
            guard var value = feeds[input.name] else { throw EvalError.invalid("no value given for graph input `\(input.name)`") }
            if let dtype = input.dtype, dtype != value.dtype { value = try value.cast(to: dtype) }
            values[input.name] = value
        }
        var remaining: [String: Int] = [:]  // readers left for each value, to free memory as we go
        for node in graph.nodes { for name in node.inputs where !name.isEmpty { remaining[name, default: 0] += 1 } }
        let keep = Set(graph.outputs.map(\.name))
        for node in graph.nodes {
            if node.opType == "Constant" { continue }
            let inputs: [Value?] = try node.inputs.map { name in
                if name.isEmpty { return nil }
                guard let value = values[name] else {
                    if let dtype = uncomputable[name] { throw EvalError.unsupportedType(name, dtype) }
                    throw EvalError.invalid("node `\(node.name)` (\(node.opType)): input `\(name)` has no value yet")
                }
                return value
            }
            let results: [Value]
            do {
                results = try Operators(node: node, opset: opset).run(inputs)
            } catch let error as EvalError {
                throw error.in(node)
            }
            for (name, value) in zip(node.outputs, results) where !name.isEmpty { values[name] = value }
            for name in node.inputs where !name.isEmpty {
                remaining[name, default: 1] -= 1
                if remaining[name] == 0, !keep.contains(name), constants[name] == nil { values[name] = nil }
            }
        }
        return try graph.outputs.map { output in
            guard let value = values[output.name] else {
                if let dtype = uncomputable[output.name] { throw EvalError.unsupportedType(output.name, dtype) }
                throw EvalError.invalid("graph output `\(output.name)` was never computed")
            }
            return value
        }
    }
}

extension EvalError {
    /// The error with the node it happened in.
    func `in`(_ node: Node) -> EvalError {
        guard uncomputableType == nil else { return self }
        let label = node.name.isEmpty ? node.opType : "\(node.opType) node `\(node.name)`"
        switch kind {
        case .unsupported:
            let what = message.hasPrefix("not supported by the reference evaluator: ") ? String(message.dropFirst("not supported by the reference evaluator: ".count)) : message
            return .unsupported("\(label): \(what)")
        case .invalid: return .invalid("\(label): \(message)")
        }
    }
}
