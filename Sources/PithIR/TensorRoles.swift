/// What a tensor is to the layer that reads it: the weight of a linear layer, its bias, a
/// normalization parameter, an embedding table, a shape or index constant, or something else.
///
/// Roles come from the graph (ONNX: the operator and input slot each tensor is read in) or from the
/// layer configuration (Keras: the layer class and the weight's name, `kernel` or `bias`), never
/// from a tensor's shape: skl2onnx stores a bias as a 1×N matrix, which a shape rule takes for a
/// weight. `Model.tensorRoles()` assigns them.
public struct TensorRole: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// The weight of a linear map: `Gemm` B, `MatMul` B (or A), `Conv` / `ConvTranspose` W, the
        /// W and R of recurrent layers, a Keras kernel.
        case weight
        /// A bias: `Gemm` C, `Conv` B, the constant `Add`ed to a `MatMul` / `Conv` output, a Keras bias.
        case bias
        /// A normalization parameter: BatchNorm scale, shift, running mean and variance; LayerNorm, …
        case normalization
        /// The table a `Gather` (a Keras `Embedding`) reads rows of.
        case embedding
        /// A shape, axis, index, pad or size: a parameter that is not a learned value.
        case shape
        /// Read by an operator in another slot (a `Mul` scale, an `Add` constant, …) or by none.
        case other
        /// Nothing says: no graph or layer configuration (plain HDF5, Keras 3 weights of unknown class).
        case unknown
        /// Optimizer state saved with a Keras model (`optimizer_weights/…`, Keras 3 `optimizer/…`): kept
        /// exactly, never selected by a pass, and counted apart from the model's weights.
        case optimizer
    }

    public var kind: Kind
    /// The operator type or Keras layer class the role is played for; empty when unknown.
    public var op: String
    /// The node or layer name; empty when unknown.
    public var layer: String
    /// The node's index in the main graph's `nodes` (ONNX main-graph tensors).
    public var node: Int?
    /// The node's input slot the tensor fills (ONNX): 1 for `Gemm` B, 2 for its C.
    public var slot: Int?
    /// For a weight: the axis of its output channels in the stored tensor (`Gemm` transB = 1 and
    /// `Conv`: 0; `MatMul`, `Gemm` transB = 0 and Keras kernels: the last; `ConvTranspose`: 1).
    public var outputAxis: Int?
    /// For a weight: the axis its input features run along (nil when they span several axes only
    /// through the output one, as in a depthwise kernel).
    public var inputAxis: Int?

    public init(
        _ kind: Kind, op: String = "", layer: String = "", node: Int? = nil, slot: Int? = nil, outputAxis: Int? = nil, inputAxis: Int? = nil
    ) {
        self.kind = kind
        self.op = op
        self.layer = layer
        self.node = node
        self.slot = slot
        self.outputAxis = outputAxis
        self.inputAxis = inputAxis
    }

    /// `weight of Gemm `fc1``, `bias (input 2) of Conv `conv1``, `shape constant of Reshape `r``.
    public var description: String {
        let noun: String
        switch kind {
        case .weight: noun = "weight"
        case .bias: noun = "bias"
        case .normalization: noun = "normalization parameter"
        case .embedding: noun = "embedding table"
        case .shape: noun = "shape or index constant"
        case .other: noun = op.isEmpty ? "read by no node" : "constant"
        case .unknown: return "role unknown (no graph or layer configuration)"
        case .optimizer: return "optimizer state"
        }
        guard !op.isEmpty || !layer.isEmpty else { return noun }
        let place = slot.map { " (input \($0))" } ?? ""
        return "\(noun)\(place) of \([op, layer.isEmpty ? "" : "`\(layer)`"].filter { !$0.isEmpty }.joined(separator: " "))"
    }
}

extension Model {
    /// Every tensor's role, in `tensors` order: from the graph for ONNX (each tensor's strongest use
    /// over every node that reads it, subgraphs included), from the layer class and weight name for
    /// Keras, `unknown` for plain HDF5 datasets.
    public func tensorRoles() -> [TensorRole] {
        if let graph {
            var roles = ONNXRoles(model: self)
            return roles.assign(main: graph)
        }
        return tensors.map(KerasRoles.role)
    }
}

/// Roles from an ONNX graph: every node's constant inputs by operator and slot.
private struct ONNXRoles {
    let model: Model
    var byName: [String: TensorID] = [:]
    var roles: [TensorRole]

    init(model: Model) {
        self.model = model
        for (id, tensor) in model.tensors.enumerated() where byName[tensor.name] == nil { byName[tensor.name] = id }
        roles = model.tensors.map { tensor in
            tensor.dtype.isFloatingPoint ? TensorRole(.other) : TensorRole(.shape)
        }
    }

    /// Uses of one tensor, strongest first: a tensor that is both a weight and something else is a weight.
    static let strength: [TensorRole.Kind: Int] = [
        .weight: 6, .embedding: 5, .bias: 4, .normalization: 3, .other: 2, .shape: 1, .unknown: 0, .optimizer: 0,
    ]

    static let shapeSlots: [String: Set<Int>] = [
        "Reshape": [1], "Expand": [1], "Tile": [1], "Slice": [1, 2, 3, 4], "Pad": [1, 3], "Squeeze": [1], "Unsqueeze": [1],
        "Resize": [1, 2, 3], "Upsample": [1], "ConstantOfShape": [0], "Range": [0, 1, 2], "TopK": [1], "OneHot": [0, 1],
        "Split": [1], "CumSum": [1], "ScatterND": [1], "ScatterElements": [1], "GatherElements": [1], "GatherND": [1],
        "Trilu": [1], "NonMaxSuppression": [2, 3, 4], "ReduceSum": [1], "ReduceMean": [1], "ReduceMax": [1], "ReduceMin": [1],
        "ReduceProd": [1], "ReduceL1": [1], "ReduceL2": [1], "ReduceLogSum": [1], "ReduceLogSumExp": [1], "ReduceSumSquare": [1],
    ]
    static let normalizations: [String: Set<Int>] = [
        "BatchNormalization": [1, 2, 3, 4], "InstanceNormalization": [1, 2], "LayerNormalization": [1, 2],
        "GroupNormalization": [1, 2], "SimplifiedLayerNormalization": [1], "SkipLayerNormalization": [2, 3, 4],
    ]
    static let linear: Set<String> = ["Gemm", "MatMul", "Conv", "ConvTranspose"]

    mutating func assign(main: Graph) -> [TensorRole] {
        visit(main, path: .main, scopes: [""])
        return roles
    }

    /// The tensor a value name refers to in a graph whose enclosing scopes have the name prefixes
    /// `scopes` (innermost last): a subgraph may read its ancestors' constants.
    func tensor(_ name: String, scopes: [String]) -> TensorID? {
        guard !name.isEmpty else { return nil }
        for prefix in scopes.reversed() { if let id = byName[prefix + name] { return id } }
        return nil
    }

    mutating func visit(_ graph: Graph, path: GraphPath, scopes: [String]) {
        let isMain = path == .main
        let prefix = path.description
        // Which node produced each value (for a bias `Add`ed to a linear layer's output).
        var producer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() { for output in node.outputs where !output.isEmpty { producer[output] = index } }
        for (index, node) in graph.nodes.enumerated() {
            let label = prefix + (node.name.isEmpty ? "\(node.opType)#\(index)" : node.name)
            for (slot, input) in node.inputs.enumerated() {
                guard let id = tensor(input, scopes: scopes) else { continue }
                var role = classify(node, slot: slot, id: id, graph: graph, producer: producer, scopes: scopes)
                role.op = node.opType
                role.layer = label
                role.slot = slot
                role.node = isMain ? index : nil
                offer(role, to: id)
            }
            for attribute in node.attributes {
                let holder = node.name.isEmpty ? "\(node.opType)#\(index)" : node.name
                switch attribute.value {
                case .graph(let sub):
                    let subPath = path.appending(.init(node: holder, attribute: attribute.name))
                    visit(sub, path: subPath, scopes: scopes + [subPath.description])
                case .graphs(let subs):
                    for (k, sub) in subs.enumerated() {
                        let subPath = path.appending(.init(node: holder, attribute: attribute.name, index: k))
                        visit(sub, path: subPath, scopes: scopes + [subPath.description])
                    }
                default: break
                }
            }
        }
    }

    /// Keeps the strongest use of a tensor (the first of equal strength).
    mutating func offer(_ role: TensorRole, to id: TensorID) {
        let current = roles[id]
        let isPlaceholder = current.op.isEmpty && current.layer.isEmpty
        if isPlaceholder || Self.strength[role.kind]! > Self.strength[current.kind]! { roles[id] = role }
    }

    func classify(_ node: Node, slot: Int, id: TensorID, graph: Graph, producer: [String: Int], scopes: [String]) -> TensorRole {
        let tensor = model.tensors[id]
        guard tensor.dtype.isFloatingPoint else { return TensorRole(.shape) }
        let rank = tensor.shape.count
        guard node.domain.isEmpty || node.domain == "ai.onnx" || node.domain == "com.microsoft" else { return TensorRole(.other) }
        switch node.opType {
        case "Gemm":
            if slot == 1 {
                let transB: Bool
                if case .int(let t)? = node.attribute("transB") { transB = t != 0 } else { transB = false }
                return TensorRole(.weight, outputAxis: transB ? 0 : 1, inputAxis: transB ? 1 : 0)
            }
            if slot == 2 { return TensorRole(.bias) }
        case "MatMul":
            if slot == 1, rank >= 2 { return TensorRole(.weight, outputAxis: rank - 1, inputAxis: rank - 2) }
            if slot == 0, rank >= 2 { return TensorRole(.weight, outputAxis: rank - 2, inputAxis: rank - 1) }
        case "Conv":
            if slot == 1 { return TensorRole(.weight, outputAxis: 0, inputAxis: rank > 1 ? 1 : nil) }
            if slot == 2 { return TensorRole(.bias) }
        case "ConvTranspose":
            if slot == 1 { return TensorRole(.weight, outputAxis: Swift.min(1, Swift.max(0, rank - 1)), inputAxis: 0) }
            if slot == 2 { return TensorRole(.bias) }
        case "LSTM", "GRU", "RNN":
            if slot == 1 || slot == 2 { return TensorRole(.weight, outputAxis: rank >= 2 ? 1 : nil, inputAxis: rank >= 3 ? 2 : nil) }
            if slot == 3 { return TensorRole(.bias) }
        case "Gather":
            if slot == 0 { return TensorRole(.embedding, outputAxis: rank >= 2 ? rank - 1 : nil) }
        case "Add":
            if isBias(node, slot: slot, tensor: tensor, graph: graph, producer: producer, scopes: scopes) { return TensorRole(.bias) }
        default:
            break
        }
        if Self.normalizations[node.opType]?.contains(slot) == true { return TensorRole(.normalization) }
        if Self.shapeSlots[node.opType]?.contains(slot) == true { return TensorRole(.shape) }
        return TensorRole(.other)
    }

    /// A constant `Add`ed to the output of a `MatMul`, `Gemm` or `Conv` whose weight is a constant,
    /// with one value per output channel (as PyTorch exports `nn.Linear` without `Gemm`).
    func isBias(_ node: Node, slot: Int, tensor: Tensor, graph: Graph, producer: [String: Int], scopes: [String]) -> Bool {
        guard node.inputs.count == 2 else { return false }
        let other = node.inputs[1 - slot]
        guard let index = producer[other] else { return false }
        let layer = graph.nodes[index]
        guard Self.linear.contains(layer.opType), layer.inputs.count >= 2, let weight = self.tensor(layer.inputs[1], scopes: scopes) else { return false }
        let shape = model.tensors[weight].shape
        guard !shape.isEmpty else { return false }
        let channels: Int
        switch layer.opType {
        case "Conv": channels = shape[0]
        case "ConvTranspose": channels = shape.count > 1 ? shape[1] : shape[0]
        case "Gemm":
            if case .int(let t)? = layer.attribute("transB"), t != 0 { channels = shape[0] } else { channels = shape[shape.count - 1] }
        default: channels = shape[shape.count - 1]
        }
        return tensor.count == channels && tensor.shape.filter { $0 != 1 }.count <= 1
    }
}

/// Roles from a Keras layer's class and the weight's name (`kernel`, `bias`, `gamma`, …).
private enum KerasRoles {
    static func role(_ tensor: Tensor) -> TensorRole {
        guard case .kerasWeight(let layer, let weight, _) = tensor.origin else { return TensorRole(.unknown) }
        if tensor.isOptimizerState { return TensorRole(.optimizer, op: "", layer: layer) }
        let op = tensor.consumer?.op ?? ""
        let rank = tensor.shape.count
        var name = weight.split(separator: "/").last.map(String.init) ?? weight
        if let colon = name.lastIndex(of: ":") { name = String(name[..<colon]) }
        guard tensor.dtype.isFloatingPoint else { return TensorRole(.shape, op: op, layer: layer) }
        switch name {
        case "kernel", "pointwise_kernel", "recurrent_kernel":
            if op.hasSuffix("Transpose") {
                // Conv2DTranspose: (…, out, in).
                return TensorRole(.weight, op: op, layer: layer, outputAxis: Swift.max(0, rank - 2), inputAxis: rank - 1)
            }
            return TensorRole(.weight, op: op, layer: layer, outputAxis: rank - 1, inputAxis: Swift.max(0, rank - 2))
        case "depthwise_kernel":
            return TensorRole(.weight, op: op, layer: layer, outputAxis: rank - 1, inputAxis: nil)
        case "bias", "recurrent_bias":
            return TensorRole(.bias, op: op, layer: layer)
        case "gamma", "beta", "moving_mean", "moving_variance", "scale":
            return TensorRole(.normalization, op: op, layer: layer)
        case "embeddings":
            return TensorRole(.embedding, op: op, layer: layer, outputAxis: rank >= 2 ? rank - 1 : nil)
        default:
            return TensorRole(.unknown, op: op, layer: layer)
        }
    }
}

extension Tensor {
    /// Whether this is optimizer state saved with a Keras model: a weight of no layer below the
    /// file's top-level `optimizer_weights` (Keras 2, Keras 3 legacy `.h5`) or `optimizer` (Keras 3
    /// `.weights.h5`) group, as `HDF5Reader` reads it.
    public var isOptimizerState: Bool {
        guard case .kerasWeight(let layer, _, let path) = origin, layer.isEmpty else { return false }
        let top = path.split(separator: "/", maxSplits: 1).first ?? ""
        return top == "optimizer_weights" || top == "optimizer"
    }
}

extension Model {
    /// The model without its optimizer state (`Tensor.isOptimizerState`), which is added to
    /// `optimizerState` as descriptions, and the indices in `tensors` of the tensors kept: what
    /// reports count as the model's weights.
    public func separatingOptimizerState() -> (model: Model, kept: [Int]) {
        let kept = tensors.indices.filter { !tensors[$0].isOptimizerState }
        guard kept.count < tensors.count else { return (self, kept) }
        var model = self
        model.tensors = kept.map { tensors[$0] }
        model.optimizerState += tensors.filter(\.isOptimizerState).map { TensorInfo(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        return (model, kept)
    }
}
