import PithIR
internal import CONNXProto

/// The one definition of where an ONNX model keeps tensor data, and in which order: the walk
/// every reader and writer of the tree follows, so that the i-th tensor `ONNXReader` lists is the
/// i-th one `ONNXSkeleton` clears and the i-th one `ONNXWriter` fills back in.
///
/// A *slot* is one place holding a tensor's data:
/// - a `TensorProto` (an initializer, or a TENSOR / TENSORS attribute),
/// - a `SparseTensorProto` (a sparse initializer, or a SPARSE_TENSOR / SPARSE_TENSORS attribute),
/// - a number or string attribute of ONNX's own `Constant` operator (`value_float`,
///   `value_floats`, `value_int`, `value_ints`, `value_string`, `value_strings`), which stands for a
///   scalar or 1-D tensor.
///
/// The order (docs/container-format.md, "ONNX skeleton: tensor slots and their order"):
/// 1. the main graph (`ModelProto.graph`), walked as below;
/// 2. then each function of `ModelProto.functions` in order: its nodes, walked as below.
///
/// A graph: its `initializer`s in order, then its `sparse_initializer`s in order, then its nodes
/// in order. A node: its attributes in order; each attribute by its kind (`AttributeProto.type`,
/// or when that is unset the first field that is set, as IR version 1 files write them):
/// TENSOR → `t`; SPARSE_TENSOR → `sparse_tensor`; TENSORS → each of `tensors`; SPARSE_TENSORS →
/// each of `sparse_tensors`; GRAPH → the graph `g`, walked here, recursively; GRAPHS → each graph
/// of `graphs`; a number or string kind → a slot only for the matching `value_*` attribute of a
/// Constant operator (`value_floats` of kind FLOATS, …); any other attribute holds no slot.
///
/// The Constant operator is op_type `Constant` in the default domain (`""` or `"ai.onnx"`). A node
/// named `Constant` of any other domain is a custom operator: its attributes are ordinary
/// attributes, so its `value_floats` stay where they are and only its tensor-kind attributes are
/// slots, as on any node.
enum TensorSlots {
    /// A number or string attribute of a Constant operator that stands for a tensor.
    enum ConstantValue {
        case float, floats, int, ints, string, strings
    }

    /// One place holding a tensor's data.
    enum Slot {
        case tensor(UnsafeMutablePointer<Onnx__TensorProto>)
        case sparseTensor(UnsafeMutablePointer<Onnx__SparseTensorProto>)
        case constantValue(UnsafeMutablePointer<Onnx__AttributeProto>, ConstantValue)

        /// The message the slot is: a key unique within one unpacked model.
        var message: UnsafeMutableRawPointer {
            switch self {
            case .tensor(let t): return UnsafeMutableRawPointer(t)
            case .sparseTensor(let s): return UnsafeMutableRawPointer(s)
            case .constantValue(let a, _): return UnsafeMutableRawPointer(a)
            }
        }
    }

    /// Where a slot is, for naming the tensor in it.
    struct Place {
        /// The graph holding the slot (for a function body, its `function`).
        var graph: GraphPath
        /// Nil for initializers and sparse initializers.
        var node: NodePlace?
        /// The message whose lists hold the slot or its node, for writers that edit the graph.
        var owner: Owner
    }

    /// A list of nodes: a graph's (main graph or subgraph), or a model-local function's body.
    enum Owner {
        case graph(UnsafeMutablePointer<Onnx__GraphProto>)
        case function(UnsafeMutablePointer<Onnx__FunctionProto>)
    }

    /// A slot held by a node's attribute.
    struct NodePlace {
        /// The node's name, or `op_type#index` (its position in its graph) when it has none.
        var label: String
        var opType: String
        /// The node's first output, or "" when it has none.
        var firstOutput: String
        /// Whether the node is ONNX's Constant operator (`isConstantOperator`).
        var isConstant: Bool
        var attribute: String
        /// Position within a TENSORS / SPARSE_TENSORS attribute; 0 otherwise.
        var index: Int
        /// The node itself.
        var message: UnsafeMutablePointer<Onnx__NodeProto>
    }

    /// What an attribute holds, as far as tensor slots go.
    enum Role {
        case constantValue(ConstantValue)
        case tensor(UnsafeMutablePointer<Onnx__TensorProto>)
        case sparseTensor(UnsafeMutablePointer<Onnx__SparseTensorProto>)
        case tensors([UnsafeMutablePointer<Onnx__TensorProto>])
        case sparseTensors([UnsafeMutablePointer<Onnx__SparseTensorProto>])
        case graph(UnsafeMutablePointer<Onnx__GraphProto>)
        case graphs([UnsafeMutablePointer<Onnx__GraphProto>])
        /// An ordinary attribute of the given kind: no slot, no subgraph.
        case plain(Onnx__AttributeProto__AttributeType)
    }

    /// Whether a node is ONNX's `Constant` operator: op_type `Constant` in the default domain.
    static func isConstantOperator(opType: String, domain: String) -> Bool {
        opType == "Constant" && (domain.isEmpty || domain == "ai.onnx")
    }

    static func isConstantOperator(_ node: UnsafeMutablePointer<Onnx__NodeProto>) -> Bool {
        isConstantOperator(opType: string(node.pointee.op_type), domain: string(node.pointee.domain))
    }

    /// The node's label in names and messages: its name, or `op_type#index` when it has none.
    static func label(_ node: UnsafeMutablePointer<Onnx__NodeProto>, index: Int) -> String {
        let name = string(node.pointee.name)
        return name.isEmpty ? "\(string(node.pointee.op_type))#\(index)" : name
    }

    /// The attribute's kind; files from IR version 1 lack `type`, so it is inferred from the field set.
    static func kind(of a: Onnx__AttributeProto) -> Onnx__AttributeProto__AttributeType {
        if a.has_type != 0, a.type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED { return a.type }
        if a.has_f != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT }
        if a.has_i != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT }
        if a.has_s != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING }
        if a.t != nil { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR }
        if a.g != nil { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH }
        if a.sparse_tensor != nil { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR }
        if a.n_floats > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS }
        if a.n_ints > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS }
        if a.n_strings > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS }
        if a.n_tensors > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS }
        if a.n_graphs > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS }
        if a.n_sparse_tensors > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS }
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED
    }

    /// The attribute's role in a node that is (`inConstant`) or is not ONNX's Constant operator.
    /// A TENSOR, SPARSE_TENSOR or GRAPH attribute without its message is malformed: `file` and
    /// `label` (the node) name it in the error.
    static func role(of attribute: UnsafeMutablePointer<Onnx__AttributeProto>, inConstant: Bool, label: String, file: String) throws -> Role {
        let a = attribute.pointee
        let kind = kind(of: a)
        func missing(_ what: String) -> ONNXError {
            ONNXError(.malformed, file: file, "node `\(label)`: attribute `\(string(a.name))` is a \(what) but holds none")
        }
        switch kind {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
            guard let t = a.t else { throw missing("TENSOR") }
            return .tensor(t)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
            guard let s = a.sparse_tensor else { throw missing("SPARSE_TENSOR") }
            return .sparseTensor(s)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
            return .tensors(messages(a.n_tensors, a.tensors))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
            return .sparseTensors(messages(a.n_sparse_tensors, a.sparse_tensors))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
            guard let g = a.g else { throw missing("GRAPH") }
            return .graph(g)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
            return .graphs(messages(a.n_graphs, a.graphs))
        default:
            guard inConstant else { return .plain(kind) }
            switch (kind, string(a.name)) {
            case (ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, "value_float"): return .constantValue(.float)
            case (ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS, "value_floats"): return .constantValue(.floats)
            case (ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, "value_int"): return .constantValue(.int)
            case (ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, "value_ints"): return .constantValue(.ints)
            case (ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, "value_string"): return .constantValue(.string)
            case (ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS, "value_strings"): return .constantValue(.strings)
            default: return .plain(kind)
            }
        }
    }

    /// The path of the body of a model-local function: `function:domain.name/`.
    static func functionPath(_ function: UnsafeMutablePointer<Onnx__FunctionProto>) -> GraphPath {
        let name = string(function.pointee.name), domain = string(function.pointee.domain)
        return GraphPath(function: domain.isEmpty ? name : domain + "." + name)
    }

    /// The name of the tensor in `slot`, as the IR lists it: an initializer's own name; a Constant's
    /// tensor named after the value it produces; any other node's tensor after the node and
    /// attribute (`node/attribute`, `[i]` for the i-th of a list); prefixed with the graph's path.
    static func tensorName(_ slot: Slot, at place: Place) -> String {
        let prefix = place.graph.description
        if let node = place.node {
            return node.isConstant && !node.firstOutput.isEmpty
                ? prefix + node.firstOutput : prefix + node.label + "/" + node.attribute + (node.index > 0 ? "[\(node.index)]" : "")
        }
        switch slot {
        case .tensor(let t): return prefix + string(t.pointee.name)
        case .sparseTensor(let s): return prefix + (s.pointee.values.map { string($0.pointee.name) } ?? "")
        case .constantValue: return prefix
        }
    }

    /// Checks that tensor `index` of a container (`name`, `dtype`, `shape`) is what `slot` of the
    /// skeleton it fills holds: the same name, a tag of the data field (`TensorDataField`) that
    /// fits the type, and for an initializer the type and shape it declares. A manifest listing
    /// tensors in another order, or with other shapes or types, is refused here rather than
    /// restored or evaluated into a model its own checker rejects.
    static func checkPairing(
        _ slot: Slot, at place: Place, index: Int, name: String, dtype: DType, shape: [Int], kind: ONNXError.Kind, file: String
    ) throws {
        let expected = tensorName(slot, at: place)
        guard name == expected else {
            throw ONNXError(
                kind, file: file,
                "tensor \(index + 1) of the container is `\(name)` but slot \(index + 1) of its graph holds `\(expected)`: "
                    + "the container's manifest and its ONNX skeleton disagree")
        }
        switch slot {
        case .tensor(let t): _ = try TensorDataField.inSkeleton(t.pointee, dtype: dtype, name: name, file: file)
        case .sparseTensor(let s):
            if let values = s.pointee.values { _ = try TensorDataField.inSkeleton(values.pointee, dtype: dtype, name: name, file: file) }
            if let indices = s.pointee.indices { _ = try TensorDataField.inSkeleton(indices.pointee, dtype: .int64, name: name, file: file) }
        case .constantValue: break
        }
        guard case .tensor(let t) = slot, t.pointee.has_data_type != 0 else { return }
        let dims = Array(UnsafeBufferPointer(start: t.pointee.dims, count: t.pointee.dims == nil ? 0 : t.pointee.n_dims)).map(Int.init)
        guard t.pointee.data_type != ONNXDataType(dtype).rawValue || dims != shape else { return }
        let declared = ONNXDataType(rawValue: t.pointee.data_type).dtype.map(\.rawValue) ?? "data type \(t.pointee.data_type)"
        throw ONNXError(kind, file: file, "tensor `\(name)`: the container holds \(dtype.rawValue) \(shape) but its ONNX skeleton declares \(declared) \(dims)")
    }

    /// Calls `visit` for every slot of `model`, in the order above. `file` names the model in errors.
    static func forEach(
        in model: UnsafeMutablePointer<Onnx__ModelProto>, file: String,
        _ visit: (Slot, Place) throws -> Void
    ) throws {
        if let graph = model.pointee.graph { try walk(graph, path: .main, file: file, visit) }
        for function in messages(model.pointee.n_functions, model.pointee.functions) {
            try walk(function.pointee.n_node, function.pointee.node, path: functionPath(function), owner: .function(function), file: file, visit)
        }
    }

    /// Calls `visit` for every node of `model` with the list holding it: the main graph's nodes, each
    /// followed depth first by the nodes of its subgraphs (attributes of kind GRAPH or GRAPHS, the kind
    /// found as `kind(of:)` finds it), then each function's. Unlike `forEach` it never throws: a GRAPH
    /// attribute without its graph is skipped.
    static func forEachNode(in model: UnsafeMutablePointer<Onnx__ModelProto>, _ visit: (UnsafeMutablePointer<Onnx__NodeProto>, Owner) -> Void) {
        func walk(_ count: Int, _ nodes: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__NodeProto>?>?, owner: Owner) {
            for node in messages(count, nodes) {
                visit(node, owner)
                for attribute in messages(node.pointee.n_attribute, node.pointee.attribute) {
                    let graphs: [UnsafeMutablePointer<Onnx__GraphProto>]
                    switch kind(of: attribute.pointee) {
                    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH: graphs = attribute.pointee.g.map { [$0] } ?? []
                    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: graphs = messages(attribute.pointee.n_graphs, attribute.pointee.graphs)
                    default: graphs = []
                    }
                    for g in graphs { walk(g.pointee.n_node, g.pointee.node, owner: .graph(g)) }
                }
            }
        }
        if let graph = model.pointee.graph { walk(graph.pointee.n_node, graph.pointee.node, owner: .graph(graph)) }
        for function in messages(model.pointee.n_functions, model.pointee.functions) {
            walk(function.pointee.n_node, function.pointee.node, owner: .function(function))
        }
    }

    private static func walk(
        _ graph: UnsafeMutablePointer<Onnx__GraphProto>, path: GraphPath, file: String,
        _ visit: (Slot, Place) throws -> Void
    ) throws {
        let g = graph.pointee
        let place = Place(graph: path, node: nil, owner: .graph(graph))
        for t in messages(g.n_initializer, g.initializer) { try visit(.tensor(t), place) }
        for s in messages(g.n_sparse_initializer, g.sparse_initializer) { try visit(.sparseTensor(s), place) }
        try walk(g.n_node, g.node, path: path, owner: .graph(graph), file: file, visit)
    }

    private static func walk(
        _ count: Int, _ nodes: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__NodeProto>?>?, path: GraphPath, owner: Owner,
        file: String, _ visit: (Slot, Place) throws -> Void
    ) throws {
        for (index, node) in messages(count, nodes).enumerated() {
            let n = node.pointee
            let isConstant = isConstantOperator(node)
            let label = label(node, index: index)
            for attribute in messages(n.n_attribute, n.attribute) {
                let name = string(attribute.pointee.name)
                func place(_ i: Int) -> Place {
                    Place(
                        graph: path,
                        node: NodePlace(
                            label: label, opType: string(n.op_type), firstOutput: repeated(n.n_output, n.output).first.map(string) ?? "",
                            isConstant: isConstant, attribute: name, index: i, message: node),
                        owner: owner)
                }
                switch try role(of: attribute, inConstant: isConstant, label: label, file: file) {
                case .constantValue(let value): try visit(.constantValue(attribute, value), place(0))
                case .tensor(let t): try visit(.tensor(t), place(0))
                case .sparseTensor(let s): try visit(.sparseTensor(s), place(0))
                case .tensors(let ts): for (i, t) in ts.enumerated() { try visit(.tensor(t), place(i)) }
                case .sparseTensors(let ss): for (i, s) in ss.enumerated() { try visit(.sparseTensor(s), place(i)) }
                case .graph(let g): try walk(g, path: path.appending(.init(node: label, attribute: name)), file: file, visit)
                case .graphs(let gs):
                    for (i, g) in gs.enumerated() { try walk(g, path: path.appending(.init(node: label, attribute: name, index: i)), file: file, visit) }
                case .plain: break
                }
            }
        }
    }
}
