import PithIR
@testable import PithEval

/// A model of `nodes` with graph inputs `inputs` (untyped, in order), outputs `outputs`, and
/// `tensors` (initializers listed in `initializers`; Constant and attribute tensors by id).
func graphModel(_ nodes: [Node], inputs: [String], outputs: [String], tensors: [Tensor] = [], initializers: [TensorID] = [], opset: Int64 = 17) -> Model {
    let graph = Graph(nodes: nodes, inputs: inputs.map { ValueInfo(name: $0) }, outputs: outputs.map { ValueInfo(name: $0) }, initializers: initializers)
    var metadata = ModelMetadata()
    metadata.opsets = [.init(domain: "", version: opset)]
    return Model(format: .onnx, metadata: metadata, tensors: tensors, graph: graph)
}

/// Runs `nodes` as a graph fed `feeds` and returns `outputs`.
func runGraph(
    _ nodes: [Node], feeds: [String: Value], outputs: [String], tensors: [Tensor] = [], initializers: [TensorID] = [], opset: Int64 = 17
) throws -> [Value] {
    let model = graphModel(nodes, inputs: feeds.keys.sorted(), outputs: outputs, tensors: tensors, initializers: initializers, opset: opset)
    return try ONNXEvaluator(model: model).run(feeds)
}

/// A subgraph: inputs and outputs by name, initializers by id.
func subgraph(_ nodes: [Node], inputs: [String] = [], outputs: [String], initializers: [TensorID] = []) -> Graph {
    Graph(nodes: nodes, inputs: inputs.map { ValueInfo(name: $0) }, outputs: outputs.map { ValueInfo(name: $0) }, initializers: initializers)
}

/// A float32 tensor for `Model.tensors`.
func floatTensor(_ name: String, _ values: [Float], shape: [Int], origin: TensorOrigin = .initializer(graph: .main)) -> Tensor {
    Tensor(name: name, dtype: .float32, shape: shape, storage: .dense(TensorBuffer(values: values)), origin: origin)
}

/// An int64 tensor for `Model.tensors`.
func intTensor(_ name: String, _ values: [Int64], shape: [Int], origin: TensorOrigin = .initializer(graph: .main)) -> Tensor {
    Tensor(name: name, dtype: .int64, shape: shape, storage: .dense(TensorBuffer(values: values)), origin: origin)
}

func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "", _ attributes: [Attribute] = []) -> Node {
    Node(name: name, opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
}

func intsAttr(_ name: String, _ values: [Int]) -> Attribute { Attribute(name: name, value: .ints(values.map(Int64.init))) }
func intAttr(_ name: String, _ value: Int) -> Attribute { Attribute(name: name, value: .int(Int64(value))) }
