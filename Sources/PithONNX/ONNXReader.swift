public import PithIR
internal import CONNXProto

/// Reads ONNX model files into the IR.
///
/// Weights are collected from everywhere ONNX allows them: `graph.initializer`,
/// `graph.sparse_initializer` (expanded to dense), `Constant` nodes (every
/// `value*` attribute), tensor-valued attributes of other nodes, every subgraph
/// held by GRAPH/GRAPHS attributes (`If`, `Loop`, `Scan`, nested to any
/// depth), and the bodies of model-local functions. Tensor data may be in
/// `raw_data`, in any typed field (packed or not), or in external files next to
/// the model.
public enum ONNXReader {
    /// Reads the model at `path`. External data files are looked up relative to its folder.
    public static func read(contentsOf path: String) throws -> Model {
        let file = try mappedFile(path)
        return try withExtendedLifetime(file) {
            try read(bytes: file.bytes, file: path, externalData: ExternalDataReader(modelFile: path))
        }
    }

    /// Reads a model from memory. `name` is used in messages; external data is refused.
    public static func read(bytes: UnsafeRawBufferPointer, name: String) throws -> Model {
        try read(bytes: bytes, file: name, externalData: nil)
    }

    /// The model of a skeleton (`ONNXSkeleton.strip`) with `tensors` — the ones read from the
    /// file the skeleton was made from, in the same order — in place of its cleared tensors.
    public static func read(skeleton: [UInt8], tensors: [Tensor], file: String) throws -> Model {
        let model = try skeleton.withUnsafeBytes { bytes in
            try read(bytes: bytes, file: file, externalData: nil, supplied: tensors)
        }
        guard model.tensors.count == tensors.count else {
            throw ONNXError(.invalidTensor, file: file, "the skeleton holds \(model.tensors.count) tensors, the container \(tensors.count)")
        }
        return model
    }

    static func read(bytes: UnsafeRawBufferPointer, file: String, externalData: ExternalDataReader?, supplied: [Tensor]? = nil) throws -> Model {
        try withParsedModel(bytes, file: file) { proto in
            var importer = Importer(decoder: TensorDecoder(file: file, externalData: externalData), supplied: supplied)
            return try importer.model(proto)
        }
    }

    /// Checks `bytes` with the wire scanner, unpacks them and runs `body` on the message, which is
    /// freed when `body` returns. `file` names the bytes in errors.
    static func withParsedModel<R>(_ bytes: UnsafeRawBufferPointer, file: String,
                                   _ body: (UnsafeMutablePointer<Onnx__ModelProto>) throws -> R) throws -> R {
        guard !bytes.isEmpty else { throw ONNXError(.malformed, file: file, "the file is empty") }
        // The scan is cheap (it skips over tensor data by length) and bounds the nesting depth
        // before protobuf-c, which recurses without a limit, sees the bytes.
        if let problem = WireScanner(bytes: bytes).firstProblem() {
            throw ONNXError(.malformed, file: file, "not a valid ONNX model: \(problem)")
        }
        guard let result = try ProtobufCalls.withUnpackedModel(bytes, body) else {
            throw ONNXError(.malformed, file: file, "not a valid ONNX model: protobuf-c rejected the message (a field holds a value of the wrong type, or a string is not UTF-8)")
        }
        return result
    }
}

/// Converts one unpacked `ModelProto`, collecting tensors as it goes.
private struct Importer {
    let decoder: TensorDecoder
    var tensors: [Tensor] = []
    /// Reading a skeleton: the tensors to put where the skeleton's cleared ones are, in order.
    let supplied: [Tensor]?

    init(decoder: TensorDecoder, supplied: [Tensor]? = nil) {
        self.decoder = decoder
        self.supplied = supplied
    }

    /// The tensor `t` holds, or in a skeleton a stand-in that `add` replaces with the supplied one.
    func decode(_ t: UnsafeMutablePointer<Onnx__TensorProto>, name: String) throws -> TensorDecoder.Decoded {
        if supplied != nil { return TensorDecoder.Decoded(dtype: .float32, shape: [0], storage: .dense(TensorBuffer(bytes: []))) }
        return try decoder.decode(t, name: name)
    }

    func decodeSparse(_ t: UnsafeMutablePointer<Onnx__SparseTensorProto>, name: String) throws -> TensorDecoder.Decoded {
        if supplied != nil { return TensorDecoder.Decoded(dtype: .float32, shape: [0], storage: .dense(TensorBuffer(bytes: []))) }
        return try decoder.decodeSparse(t, name: name)
    }

    var file: String { decoder.file }

    mutating func model(_ proto: UnsafeMutablePointer<Onnx__ModelProto>) throws -> Model {
        let p = proto.pointee
        guard let graphProto = p.graph else {
            throw ONNXError(.malformed, file: file, "not an ONNX model: `ModelProto.graph` (field 7) is missing")
        }
        var metadata = ModelMetadata()
        metadata.irVersion = p.has_ir_version != 0 ? p.ir_version : 0
        metadata.producerName = string(p.producer_name)
        metadata.producerVersion = string(p.producer_version)
        metadata.domain = string(p.domain)
        metadata.modelVersion = p.has_model_version != 0 ? p.model_version : 0
        metadata.docString = string(p.doc_string)
        metadata.opsets = operatorSets(p.n_opset_import, p.opset_import)
        metadata.properties = messages(p.n_metadata_props, p.metadata_props).map {
            (key: string($0.pointee.key), value: string($0.pointee.value))
        }
        let graph = try self.graph(graphProto, path: .main)
        var functions: [Function] = []
        for function in messages(p.n_functions, p.functions) {
            let f = function.pointee
            let name = string(f.name)
            let path = GraphPath(function: string(f.domain).isEmpty ? name : string(f.domain) + "." + name)
            var body = Graph(name: name, docString: string(f.doc_string))
            body.nodes = try nodes(f.n_node, f.node, path: path)
            try assignConsumers(in: body, path: path)
            functions.append(Function(
                name: name, domain: string(f.domain),
                inputs: repeated(f.n_input, f.input).map(string), outputs: repeated(f.n_output, f.output).map(string),
                attributeNames: repeated(f.n_attribute, f.attribute).map(string), body: body,
                opsets: operatorSets(f.n_opset_import, f.opset_import)))
        }
        return Model(format: .onnx, metadata: metadata, tensors: tensors, graph: graph, functions: functions)
    }

    private func operatorSets(
        _ count: Int, _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__OperatorSetIdProto>?>?
    ) -> [ModelMetadata.OperatorSet] {
        messages(count, pointer).map {
            ModelMetadata.OperatorSet(domain: string($0.pointee.domain), version: $0.pointee.has_version != 0 ? $0.pointee.version : 0)
        }
    }

    private mutating func add(_ decoded: TensorDecoder.Decoded, name: String, origin: TensorOrigin, consumer: Consumer? = nil) -> TensorID {
        if let supplied, tensors.count < supplied.count {
            var tensor = supplied[tensors.count]
            tensor.origin = origin
            tensor.consumer = consumer
            tensors.append(tensor)
            return tensors.count - 1
        }
        tensors.append(Tensor(
            name: name, dtype: decoded.dtype, shape: decoded.shape, storage: decoded.storage,
            origin: origin, consumer: consumer))
        return tensors.count - 1
    }

    mutating func graph(_ proto: UnsafeMutablePointer<Onnx__GraphProto>, path: GraphPath) throws -> Graph {
        let p = proto.pointee
        var graph = Graph(name: string(p.name), docString: string(p.doc_string))
        let prefix = path.description
        for tensor in messages(p.n_initializer, p.initializer) {
            let name = string(tensor.pointee.name)
            let decoded = try decode(tensor, name: prefix + name)
            graph.initializers.append(add(decoded, name: prefix + name, origin: .initializer(graph: path)))
        }
        for sparse in messages(p.n_sparse_initializer, p.sparse_initializer) {
            let name = sparse.pointee.values.map { string($0.pointee.name) } ?? ""
            let decoded = try decodeSparse(sparse, name: prefix + name)
            graph.sparseInitializers.append(add(decoded, name: prefix + name, origin: .sparseInitializer(graph: path)))
        }
        graph.inputs = messages(p.n_input, p.input).map(valueInfo)
        graph.outputs = messages(p.n_output, p.output).map(valueInfo)
        graph.valueInfo = messages(p.n_value_info, p.value_info).map(valueInfo)
        graph.nodes = try nodes(p.n_node, p.node, path: path)
        try assignConsumers(in: graph, path: path)
        return graph
    }

    private mutating func nodes(
        _ count: Int, _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__NodeProto>?>?, path: GraphPath
    ) throws -> [Node] {
        var result: [Node] = []
        for (index, nodeProto) in messages(count, pointer).enumerated() {
            let p = nodeProto.pointee
            var node = Node(
                name: string(p.name), opType: string(p.op_type), domain: string(p.domain),
                inputs: repeated(p.n_input, p.input).map(string), outputs: repeated(p.n_output, p.output).map(string),
                docString: string(p.doc_string))
            let label = node.name.isEmpty ? "\(node.opType)#\(index)" : node.name
            for attribute in messages(p.n_attribute, p.attribute) {
                node.attributes.append(try self.attribute(attribute, node: node, label: label, path: path))
            }
            result.append(node)
        }
        return result
    }

    private mutating func attribute(
        _ proto: UnsafeMutablePointer<Onnx__AttributeProto>, node: Node, label: String, path: GraphPath
    ) throws -> Attribute {
        let a = proto.pointee
        let name = string(a.name)
        let isConstant = node.opType == "Constant" && (node.domain.isEmpty || node.domain == "ai.onnx")
        // A Constant's tensor is named after the value it produces; other tensors after node and attribute.
        let tensorName: (Int) -> String = { index in
            if isConstant, let output = node.outputs.first, !output.isEmpty { return path.description + output }
            return path.description + label + "/" + name + (index > 0 ? "[\(index)]" : "")
        }
        let origin: (Int) -> TensorOrigin = { .nodeAttribute(graph: path, node: label, attribute: name, index: $0) }
        let own = isConstant ? nil : Consumer(op: node.opType, name: path.description + label)
        func constant(_ dtype: DType, _ shape: [Int], _ buffer: TensorBuffer) -> TensorDecoder.Decoded {
            TensorDecoder.Decoded(dtype: dtype, shape: shape, storage: .dense(buffer))
        }

        let value: AttributeValue
        switch kind(of: a) {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
            value = isConstant && name == "value_float"
                ? .tensor(add(constant(.float32, [], TensorBuffer(values: [a.f])), name: tensorName(0), origin: origin(0)))
                : .float(a.f)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
            value = isConstant && name == "value_int"
                ? .tensor(add(constant(.int64, [], TensorBuffer(values: [a.i])), name: tensorName(0), origin: origin(0)))
                : .int(a.i)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
            let bytes = Array(UnsafeBufferPointer(start: a.s.data, count: a.s.data == nil ? 0 : a.s.len))
            value = isConstant && name == "value_string"
                ? .tensor(add(TensorDecoder.Decoded(dtype: .string, shape: [], storage: .strings([bytes])), name: tensorName(0), origin: origin(0)))
                : .string(bytes)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
            let values = Array(repeated(a.n_floats, a.floats))
            value = isConstant && name == "value_floats"
                ? .tensor(add(constant(.float32, [values.count], TensorBuffer(values: values)), name: tensorName(0), origin: origin(0)))
                : .floats(values)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
            let values = Array(repeated(a.n_ints, a.ints))
            value = isConstant && name == "value_ints"
                ? .tensor(add(constant(.int64, [values.count], TensorBuffer(values: values)), name: tensorName(0), origin: origin(0)))
                : .ints(values)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
            let values = repeated(a.n_strings, a.strings).map { Array(UnsafeBufferPointer(start: $0.data, count: $0.data == nil ? 0 : $0.len)) }
            value = isConstant && name == "value_strings"
                ? .tensor(add(TensorDecoder.Decoded(dtype: .string, shape: [values.count], storage: .strings(values)), name: tensorName(0), origin: origin(0)))
                : .strings(values)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
            guard let t = a.t else { throw ONNXError(.malformed, file: file, "node `\(label)`: attribute `\(name)` is a TENSOR but holds none") }
            value = .tensor(add(try decode(t, name: tensorName(0)), name: tensorName(0), origin: origin(0), consumer: own))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
            guard let t = a.sparse_tensor else { throw ONNXError(.malformed, file: file, "node `\(label)`: attribute `\(name)` is a SPARSE_TENSOR but holds none") }
            value = .sparseTensor(add(try decodeSparse(t, name: tensorName(0)), name: tensorName(0), origin: origin(0), consumer: own))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
            var ids: [TensorID] = []
            for (index, t) in messages(a.n_tensors, a.tensors).enumerated() {
                ids.append(add(try decode(t, name: tensorName(index)), name: tensorName(index), origin: origin(index), consumer: own))
            }
            value = .tensors(ids)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
            var ids: [TensorID] = []
            for (index, t) in messages(a.n_sparse_tensors, a.sparse_tensors).enumerated() {
                ids.append(add(try decodeSparse(t, name: tensorName(index)), name: tensorName(index), origin: origin(index), consumer: own))
            }
            value = .sparseTensors(ids)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
            guard let g = a.g else { throw ONNXError(.malformed, file: file, "node `\(label)`: attribute `\(name)` is a GRAPH but holds none") }
            value = .graph(try graph(g, path: path.appending(.init(node: label, attribute: name))))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
            var graphs: [Graph] = []
            for (index, g) in messages(a.n_graphs, a.graphs).enumerated() {
                graphs.append(try graph(g, path: path.appending(.init(node: label, attribute: name, index: index))))
            }
            value = .graphs(graphs)
        default:
            value = .opaque(kind: "attribute", encoded: ProtobufCalls.encode(proto))
        }
        let reference = string(a.ref_attr_name)
        return Attribute(
            name: name, value: value, referencedAttribute: reference.isEmpty ? nil : reference,
            docString: string(a.doc_string))
    }

    /// The attribute's kind; files from IR version 1 lack `type`, so it is inferred from the field set.
    private func kind(of a: Onnx__AttributeProto) -> Onnx__AttributeProto__AttributeType {
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

    private func valueInfo(_ proto: UnsafeMutablePointer<Onnx__ValueInfoProto>) -> ValueInfo {
        let p = proto.pointee
        var info = ValueInfo(name: string(p.name), docString: string(p.doc_string))
        if let type = p.type, type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
           let tensorType = type.pointee.tensor_type {
            let t = tensorType.pointee
            if t.has_elem_type != 0 { info.dtype = ONNXDataType(rawValue: t.elem_type).dtype }
            if let shape = t.shape {
                info.shape = messages(shape.pointee.n_dim, shape.pointee.dim).map { dimension in
                    switch dimension.pointee.value_case {
                    case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE: return .fixed(Int(dimension.pointee.dim_value))
                    case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM: return .symbolic(string(dimension.pointee.dim_param))
                    default: return .unknown
                    }
                }
            }
        }
        return info
    }

    /// Records, for every tensor this graph defines as a value (initializers,
    /// sparse initializers, Constant outputs), the first node that reads it:
    /// directly, or through a subgraph that captures it from this scope.
    private mutating func assignConsumers(in graph: Graph, path: GraphPath) throws {
        var defined: [(TensorID, String)] = []
        let prefix = path.description
        for id in graph.initializers + graph.sparseInitializers {
            defined.append((id, String(tensors[id].name.dropFirst(prefix.count))))
        }
        for node in graph.nodes where node.opType == "Constant" {
            if case .tensor(let id)? = node.attributes.first?.value, let output = node.outputs.first {
                defined.append((id, output))
            }
        }
        guard !defined.isEmpty else { return }
        var firstReader: [String: Consumer] = [:]
        for (index, node) in graph.nodes.enumerated() {
            var names = Set(node.inputs)
            for attribute in node.attributes {
                switch attribute.value {
                case .graph(let sub): names.formUnion(Self.namesRead(by: sub))
                case .graphs(let subs): for sub in subs { names.formUnion(Self.namesRead(by: sub)) }
                default: break
                }
            }
            for name in names where firstReader[name] == nil {
                let label = node.name.isEmpty ? "\(node.opType)#\(index)" : node.name
                firstReader[name] = Consumer(op: node.opType, name: prefix + label)
            }
        }
        for (id, name) in defined where tensors[id].consumer == nil {
            tensors[id].consumer = firstReader[name]
        }
    }

    /// Every value name read anywhere inside `graph` (including its own subgraphs).
    private static func namesRead(by graph: Graph) -> Set<String> {
        var names = Set<String>()
        for node in graph.nodes {
            names.formUnion(node.inputs)
            for attribute in node.attributes {
                switch attribute.value {
                case .graph(let sub): names.formUnion(namesRead(by: sub))
                case .graphs(let subs): for sub in subs { names.formUnion(namesRead(by: sub)) }
                default: break
                }
            }
        }
        return names
    }
}

/// The file at `path`, memory-mapped (PithIR's `MappedFile`: regular files only).
func mappedFile(_ path: String) throws -> MappedFile {
    do {
        return try MappedFile(path)
    } catch {
        throw ONNXError(.io, file: path, error.reason)
    }
}
