public import PithIR

/// Runs ONNX graphs from the IR on the CPU: only the nodes the requested values need, in dependency
/// order, values computed in `Float` (floating-point types) or `Int64` (integers and bool), matrix
/// products, convolutions and recurrent gates through BLAS; `If`, `Loop` and `Scan` run their
/// subgraphs with lexical scoping (`GraphProgram`).
///
/// The operators are those of inference networks: see `ONNXEvaluator.supportedOperators`. Anything
/// else — another operator, an attribute value an operator does not implement here, a type the
/// evaluator does not compute — is named by an `EvalError`: an output that needs it is skipped
/// (or, when asked for, refused), and a run that meets it stops.
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
        // Control flow, recurrent layers, comparison and logic, tensors built from shapes.
        "If", "Loop", "Scan", "LSTM", "GRU", "RNN", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or",
        "Xor", "Where", "ConstantOfShape", "Range", "Expand", "Tile", "Split", "Size", "NonZero",
        // Losses, signal processing, detection and sampling, quantized products, text, selection (issue 12, last part).
        "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss",
        "DFT", "STFT", "HannWindow", "HammingWindow", "BlackmanWindow", "MelWeightMatrix",
        "NonMaxSuppression", "RoiAlign", "GridSample", "Upsample", "GlobalMaxPool", "LRN", "MaxUnpool", "QLinearMatMul", "QLinearConv",
        "StringNormalizer", "TfIdfVectorizer", "Unique", "Compress", "ReverseSequence", "Det", "EyeLike", "CastLike", "Shrink",
    ]

    /// The main graph, prepared: constants decoded, nodes ordered, subgraphs prepared, and rewritten
    /// by the build step (`GraphBuild`: constants folded, BatchNormalization and activations fused).
    let program: GraphProgram
    /// The model, for a plan that asks for a value the build step removed: such a plan runs the
    /// graph as the file gives it (`plan(outputs:)`).
    let model: Model
    let maximumLoopIterations: Int
    /// The default-domain operator set version.
    public let opset: Int

    /// Prepares the model's graph. Refuses, with an `EvalError` naming the node or value, a graph
    /// that contradicts itself: a value produced twice, a cycle, a read of a value nothing defines.
    /// Operators the evaluator lacks are not refused here: only the outputs that need them are
    /// (`plan(outputs:)`), so a model whose unsupported part is not asked for still runs.
    ///
    /// A `Loop` runs at most `maximumLoopIterations` iterations (default 1,048,576): one whose trip
    /// count is larger, with no condition input, is refused before it starts, and one whose condition
    /// still holds at the limit stops with an error.
    public init(model: Model, maximumLoopIterations: Int = ONNXEvaluator.maximumLoopIterations) throws {
        guard let graph = model.graph else {
            throw EvalError.invalid("the model has no graph to evaluate (Keras models are evaluated from their configuration)")
        }
        opset = Int(model.metadata.opsets.first { $0.domain == "" || $0.domain == "ai.onnx" }?.version ?? 13)
        program = try GraphProgram(graph, model: model, opset: opset, maximumLoopIterations: maximumLoopIterations, optimize: true)
        self.model = model
        self.maximumLoopIterations = maximumLoopIterations
    }

    /// Most iterations one `Loop` runs by default.
    public static let maximumLoopIterations = ControlFlow.maximumLoopIterations

    /// Whether some node may combine the entries of axis 0 of its inputs, so that running the graph
    /// on pieces of its inputs split along axis 0 would not give the pieces of its outputs: LSTM,
    /// GRU and RNN in their default time-major layout (axis 0 is time), Loop and Scan (they iterate),
    /// If (one branch for the whole input), NonZero (indices into the whole input).
    public var mixesFirstAxis: Bool { program.mixesFirstAxis }

    /// The graph inputs that are not initializers: what the caller must feed.
    public var inputs: [ValueInfo] { program.inputs.filter { program.constants[$0.name] == nil && program.uncomputable[$0.name] == nil } }
    public var outputs: [ValueInfo] { program.outputs }

    /// Which values a run computes. `names` nil means every graph output that can be computed: the
    /// others are listed in `skipped` with the reason (the operator, domain or type that is missing),
    /// and if none can be computed the first reason is thrown. Given names may be graph outputs or
    /// any other value of the main graph (a node output, an input, an initializer); each must be
    /// computable, or the reason is thrown. Nothing is computed here.
    public func plan(outputs names: [String]? = nil) throws -> OutputPlan {
        if let names {
            var program = self.program
            if !names.allSatisfy(program.defines), let graph = model.graph {
                // A value the build step fused away: the graph as written computes it.
                program = try GraphProgram(graph, model: model, opset: opset, maximumLoopIterations: maximumLoopIterations)
            }
            for name in names {
                guard program.defines(name) else {
                    throw EvalError.invalid("the graph has no value `\(name)` (its outputs: \(program.outputs.map { "`\($0.name)`" }.joined(separator: ", ")))")
                }
                if let problem = program.problem(of: name) { throw problem.forOutput(name) }
            }
            return OutputPlan(names: names, skipped: [], plan: program.plan(names), program: program)
        }
        var computed: [String] = [], skipped: [SkippedOutput] = []
        for output in program.outputs {
            if let problem = program.problem(of: output.name) {
                skipped.append(SkippedOutput(name: output.name, reason: problem.forOutput(output.name)))
            } else {
                computed.append(output.name)
            }
        }
        if computed.isEmpty, let first = skipped.first { throw first.reason }
        return OutputPlan(names: computed, skipped: skipped, plan: program.plan(computed), program: program)
    }

    /// Runs `plan` on `feeds` (by input name; only the inputs the planned values need are read) and
    /// returns the planned values, in the plan's order.
    public func run(_ feeds: [String: Value], plan: OutputPlan) throws -> [Value] {
        guard let graphPlan = plan.plan else { throw EvalError.invalid("the plan was not made for an ONNX graph") }
        var values: [String: Value] = [:]
        for input in inputs {
            guard var value = feeds[input.name] else { continue }
            if let dtype = input.dtype, dtype != value.dtype { value = try value.cast(to: dtype) }
            values[input.name] = value
        }
        return try (plan.program ?? program).run(graphPlan, feeds: values, captured: [:])
    }

    /// Runs the graph on `feeds` and returns the values `outputs` names (nil: every graph output
    /// that can be computed, the others named in `Evaluation.skipped`). See `plan(outputs:)`.
    public func run(_ feeds: [String: Value], outputs names: [String]?) throws -> EvaluatedOutputs {
        let plan = try plan(outputs: names)
        return EvaluatedOutputs(names: plan.names, values: try run(feeds, plan: plan), skipped: plan.skipped)
    }

    /// Runs the graph on `feeds` (by input name) and returns every graph output, in order; throws,
    /// naming it, if one of them cannot be computed.
    public func run(_ feeds: [String: Value]) throws -> [Value] {
        try run(feeds, plan: plan(outputs: program.outputs.map(\.name)))
    }
}

/// Which values an evaluation computes and which requested outputs it leaves out (made by
/// `ONNXEvaluator.plan(outputs:)` or `Evaluator.plan(outputs:)`, before anything runs).
public struct OutputPlan: Sendable {
    /// The values computed, in the order their results come.
    public let names: [String]
    /// Graph outputs left out because they cannot be computed (only when no names were asked for).
    public let skipped: [SkippedOutput]
    /// The steps to run (ONNX); nil for a Keras model.
    let plan: GraphProgram.Plan?
    /// The program `plan` belongs to (ONNX): the rewritten graph, or the graph as written when the
    /// plan asks for a value the rewrites removed.
    var program: GraphProgram? = nil
}

/// A graph output that cannot be computed, and why: the `EvalError` (of kind `.unsupported`) names
/// the operator, domain or type it needs.
public struct SkippedOutput: Sendable {
    public let name: String
    public let reason: EvalError
}

/// The results of one evaluation: the values computed, by name, and the outputs skipped.
public struct EvaluatedOutputs: Sendable {
    /// Names of the values computed, in order.
    public var names: [String]
    /// The values, in the order of `names`.
    public var values: [Value]
    /// Outputs that could not be computed, with the reason for each.
    public var skipped: [SkippedOutput]

    public init(names: [String], values: [Value], skipped: [SkippedOutput]) {
        self.names = names
        self.values = values
        self.skipped = skipped
    }

    /// The value called `name`, if it was computed.
    public subscript(name: String) -> Value? {
        names.firstIndex(of: name).map { values[$0] }
    }
}

extension EvalError {
    /// How `unsupported(_:)` begins its messages.
    static let unsupportedPrefix = "not supported by the reference evaluator: "

    /// The reason graph output `name` cannot be computed: this error, naming the output.
    func forOutput(_ name: String) -> EvalError {
        var error = self
        error.message =
            kind == .unsupported && message.hasPrefix(Self.unsupportedPrefix)
            ? Self.unsupportedPrefix + "output `\(name)` needs " + message.dropFirst(Self.unsupportedPrefix.count)
            : "output `\(name)`: " + message
        return error
    }

    /// The error with the node it happened in.
    func `in`(_ node: Node) -> EvalError {
        guard uncomputableType == nil else { return self }
        let label = node.name.isEmpty ? node.opType : "\(node.opType) node `\(node.name)`"
        // Operators name themselves in some messages (`Expand: output shape …`): said once.
        let message = self.message.hasPrefix("\(node.opType): ") ? String(self.message.dropFirst(node.opType.count + 2)) : self.message
        switch kind {
        case .unsupported:
            let what =
                message.hasPrefix("not supported by the reference evaluator: ")
                ? String(message.dropFirst("not supported by the reference evaluator: ".count)) : message
            return .unsupported("\(label): \(what)")
        case .invalid: return .invalid("\(label): \(message)")
        }
    }
}
