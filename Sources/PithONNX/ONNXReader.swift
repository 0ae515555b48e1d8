public import PithIR
internal import CONNXProto

/// Reads ONNX model files into the IR.
///
/// Weights are collected from everywhere ONNX allows them: `graph.initializer`,
/// `graph.sparse_initializer` (expanded to dense), nodes of ONNX's `Constant`
/// operator (default domain; every `value*` attribute), tensor-valued attributes
/// of other nodes, every subgraph held by GRAPH/GRAPHS attributes (`If`, `Loop`,
/// `Scan`, nested to any depth), and the bodies of model-local functions — the
/// slots `TensorSlots` defines, in its order. Tensor data may be in `raw_data`,
/// in any typed field (packed or not), or in external files next to the model.
public enum ONNXReader {
    /// Reads the model at `path`. External data files are looked up relative to its folder.
    ///
    /// The large `raw_data` of the main graph's initializers is not copied: those tensors are views
    /// of the mapped file (`InitializerViews`), which lives as long as they do.
    public static func read(contentsOf path: String) throws -> Model {
        try withFile(path) { proto, importer in try importer.model(proto) }
    }

    /// Reads the model at `path` and its skeleton (`ONNXSkeleton`) from one parse of the file:
    /// the same model as `read(contentsOf:)` and the same bytes as `ONNXSkeleton.strip(contentsOf:)`.
    public static func readWithSkeleton(contentsOf path: String) throws -> (model: Model, skeleton: [UInt8]) {
        try withFile(path) { proto, importer in
            let views = Set(importer.decoder.views.map { Array($0.rawData.keys) } ?? [])
            return (try importer.model(proto), try ONNXSkeleton.strip(proto, file: path, rawDataViews: views))
        }
    }

    /// The model file at `path`, mapped and parsed with its initializers' large `raw_data` left in
    /// the mapping, and an importer whose tensors view it and whose external data is looked up
    /// beside the file.
    private static func withFile<R>(_ path: String, _ body: (UnsafeMutablePointer<Onnx__ModelProto>, inout Importer) throws -> R) throws -> R {
        let file = try mappedFile(path)
        return try withParsedModel(file.bytes, file: path, viewsOf: file) { proto, views in
            var importer = Importer(decoder: TensorDecoder(file: path, externalData: ExternalDataReader(modelFile: path), views: views))
            return try body(proto, &importer)
        }
    }

    /// Reads a model from memory. `name` is used in messages; external data is refused.
    public static func read(bytes: UnsafeRawBufferPointer, name: String) throws -> Model {
        try read(bytes: bytes, file: name, externalData: nil)
    }

    /// Reads a model and its skeleton from memory, as `readWithSkeleton(contentsOf:)` reads a file;
    /// `name` is used in messages; external data is refused.
    public static func readWithSkeleton(bytes: UnsafeRawBufferPointer, name: String) throws -> (model: Model, skeleton: [UInt8]) {
        try withParsedModel(bytes, file: name) { proto in
            var importer = Importer(decoder: TensorDecoder(file: name, externalData: nil))
            return (try importer.model(proto), try ONNXSkeleton.strip(proto, file: name))
        }
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
    static func withParsedModel<R>(
        _ bytes: UnsafeRawBufferPointer, file: String,
        _ body: (UnsafeMutablePointer<Onnx__ModelProto>) throws -> R
    ) throws -> R {
        try withParsedModel(bytes, file: file, viewsOf: nil) { proto, _ in try body(proto) }
    }

    /// As above; with `mapped` (the file `bytes` are), the large `raw_data` of the main graph's
    /// initializers is left out of the unpacked message (`InitializerViews`) and given to `body` as
    /// views of the file, by tensor message.
    static func withParsedModel<R>(
        _ bytes: UnsafeRawBufferPointer, file: String, viewsOf mapped: MappedFile?,
        _ body: (UnsafeMutablePointer<Onnx__ModelProto>, TensorDecoder.Views?) throws -> R
    ) throws -> R {
        guard !bytes.isEmpty else { throw ONNXError(.malformed, file: file, "the file is empty") }
        // The scan is cheap (it skips over tensor data by length) and bounds the nesting depth
        // before protobuf-c, which recurses without a limit, sees the bytes.
        if let problem = WireScanner(bytes: bytes).firstProblem() {
            throw ONNXError(.malformed, file: file, "not a valid ONNX model: \(problem)")
        }
        let stripped = mapped.flatMap { _ in InitializerViews(bytes) }
        func unpack(_ wire: UnsafeRawBufferPointer) throws -> R? {
            try ProtobufCalls.withUnpackedModel(wire) { proto in
                guard let stripped, let mapped else { return try body(proto, nil) }
                return try body(proto, try views(stripped, of: mapped, in: proto, file: file))
            }
        }
        let unpacked = try withExtendedLifetime(mapped) { try stripped.map { try $0.stripped.withUnsafeBytes(unpack) } ?? unpack(bytes) }
        guard let result = unpacked else {
            throw ONNXError(
                .malformed, file: file,
                "not a valid ONNX model: protobuf-c rejected the message (a field holds a value of the wrong type, or a string is not UTF-8)")
        }
        return result
    }

    /// The views `stripped` recorded, by the initializer message each belongs to.
    private static func views(
        _ stripped: InitializerViews, of mapped: MappedFile, in proto: UnsafeMutablePointer<Onnx__ModelProto>, file: String
    ) throws -> TensorDecoder.Views {
        let initializers = proto.pointee.graph.map { messages($0.pointee.n_initializer, $0.pointee.initializer) } ?? []
        guard initializers.count == stripped.ranges.count else {
            throw ONNXError(
                .malformed, file: file,
                "not a valid ONNX model: the graph holds \(stripped.ranges.count) initializers on the wire, \(initializers.count) once unpacked")
        }
        var views = TensorDecoder.Views(owner: mapped)
        for (message, range) in zip(initializers, stripped.ranges) {
            guard let range else { continue }
            views.rawData[UnsafeMutableRawPointer(message)] = UnsafeRawBufferPointer(rebasing: mapped.bytes[range])
        }
        return views
    }
}

/// Converts one unpacked `ModelProto`: first every tensor slot, in `TensorSlots` order, into
/// `tensors`; then the graphs, nodes and attributes, which refer to those tensors by their slot.
private struct Importer {
    let decoder: TensorDecoder
    var tensors: [Tensor] = []
    /// Reading a skeleton: the tensors to put where the skeleton's cleared ones are, in order.
    let supplied: [Tensor]?
    /// The tensor read from each slot, by the slot's message.
    private var slotTensors: [UnsafeMutableRawPointer: TensorID] = [:]

    init(decoder: TensorDecoder, supplied: [Tensor]? = nil) {
        self.decoder = decoder
        self.supplied = supplied
    }

    var file: String { decoder.file }

    mutating func model(_ proto: UnsafeMutablePointer<Onnx__ModelProto>) throws -> Model {
        let p = proto.pointee
        guard let graphProto = p.graph else {
            throw ONNXError(.malformed, file: file, "not an ONNX model: `ModelProto.graph` (field 7) is missing")
        }
        try TensorSlots.forEach(in: proto, file: file) { slot, place in
            slotTensors[slot.message] = try add(slot, at: place)
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
            let path = TensorSlots.functionPath(function)
            var body = Graph(name: name, docString: string(f.doc_string))
            body.nodes = try nodes(f.n_node, f.node, path: path)
            try assignConsumers(in: body, path: path)
            functions.append(
                Function(
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

    // MARK: - Tensor slots

    /// The tensor in `slot`, named, with its origin and (for a node's own tensor) its consumer; or in
    /// a skeleton the supplied tensor in its place.
    private mutating func add(_ slot: TensorSlots.Slot, at place: TensorSlots.Place) throws -> TensorID {
        let name = TensorSlots.tensorName(slot, at: place)
        let origin: TensorOrigin, consumer: Consumer?
        if let node = place.node {
            origin = .nodeAttribute(graph: place.graph, node: node.label, attribute: node.attribute, index: node.index)
            consumer = node.isConstant ? nil : Consumer(op: node.opType, name: place.graph.description + node.label)
        } else {
            switch slot {
            case .tensor: origin = .initializer(graph: place.graph)
            case .sparseTensor: origin = .sparseInitializer(graph: place.graph)
            case .constantValue: preconditionFailure("TensorSlots yields Constant values with their node only")
            }
            consumer = nil  // assigned from the graph's nodes by `assignConsumers`
        }
        if let supplied, tensors.count < supplied.count {
            var tensor = supplied[tensors.count]
            try TensorSlots.checkPairing(
                slot, at: place, index: tensors.count, name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, kind: .malformed, file: file)
            tensor.origin = origin
            tensor.consumer = consumer
            tensors.append(tensor)
            return tensors.count - 1
        }
        let decoded = try decode(slot, name: name)
        tensors.append(
            Tensor(
                name: name, dtype: decoded.dtype, shape: decoded.shape, storage: decoded.storage,
                origin: origin, consumer: consumer))
        return tensors.count - 1
    }

    /// The data in `slot`; in a skeleton (whose data is cleared) a stand-in.
    private func decode(_ slot: TensorSlots.Slot, name: String) throws -> TensorDecoder.Decoded {
        if supplied != nil { return TensorDecoder.Decoded(dtype: .float32, shape: [0], storage: .dense(TensorBuffer(bytes: []))) }
        func dense(_ dtype: DType, _ shape: [Int], _ buffer: TensorBuffer) -> TensorDecoder.Decoded {
            TensorDecoder.Decoded(dtype: dtype, shape: shape, storage: .dense(buffer))
        }
        func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
            Array(UnsafeBufferPointer(start: data.data, count: data.data == nil ? 0 : data.len))
        }
        switch slot {
        case .tensor(let t): return try decoder.decode(t, name: name)
        case .sparseTensor(let s): return try decoder.decodeSparse(s, name: name)
        case .constantValue(let attribute, let value):
            let a = attribute.pointee
            switch value {
            case .float: return dense(.float32, [], TensorBuffer(values: [a.f]))
            case .int: return dense(.int64, [], TensorBuffer(values: [a.i]))
            case .string: return TensorDecoder.Decoded(dtype: .string, shape: [], storage: .strings([bytes(a.s)]))
            case .floats:
                let values = Array(repeated(a.n_floats, a.floats))
                return dense(.float32, [values.count], TensorBuffer(values: values))
            case .ints:
                let values = Array(repeated(a.n_ints, a.ints))
                return dense(.int64, [values.count], TensorBuffer(values: values))
            case .strings:
                let values = repeated(a.n_strings, a.strings).map(bytes)
                return TensorDecoder.Decoded(dtype: .string, shape: [values.count], storage: .strings(values))
            }
        }
    }

    /// The tensor read from the slot that is `message`.
    private func tensor<T>(at message: UnsafeMutablePointer<T>) -> TensorID {
        guard let id = slotTensors[UnsafeMutableRawPointer(message)] else {
            preconditionFailure("a tensor slot that TensorSlots did not visit: the walks disagree")
        }
        return id
    }

    // MARK: - Structure

    mutating func graph(_ proto: UnsafeMutablePointer<Onnx__GraphProto>, path: GraphPath) throws -> Graph {
        let p = proto.pointee
        var graph = Graph(name: string(p.name), docString: string(p.doc_string))
        graph.initializers = messages(p.n_initializer, p.initializer).map { tensor(at: $0) }
        graph.sparseInitializers = messages(p.n_sparse_initializer, p.sparse_initializer).map { tensor(at: $0) }
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
            let label = TensorSlots.label(nodeProto, index: index)
            let isConstant = TensorSlots.isConstantOperator(nodeProto)
            for attribute in messages(p.n_attribute, p.attribute) {
                node.attributes.append(try self.attribute(attribute, inConstant: isConstant, label: label, path: path))
            }
            result.append(node)
        }
        return result
    }

    private mutating func attribute(
        _ proto: UnsafeMutablePointer<Onnx__AttributeProto>, inConstant: Bool, label: String, path: GraphPath
    ) throws -> Attribute {
        let a = proto.pointee
        let name = string(a.name)
        let value: AttributeValue
        switch try TensorSlots.role(of: proto, inConstant: inConstant, label: label, file: file) {
        case .constantValue: value = .tensor(tensor(at: proto))
        case .tensor(let t): value = .tensor(tensor(at: t))
        case .sparseTensor(let s): value = .sparseTensor(tensor(at: s))
        case .tensors(let ts): value = .tensors(ts.map { tensor(at: $0) })
        case .sparseTensors(let ss): value = .sparseTensors(ss.map { tensor(at: $0) })
        case .graph(let g): value = .graph(try graph(g, path: path.appending(.init(node: label, attribute: name))))
        case .graphs(let gs):
            var graphs: [Graph] = []
            for (index, g) in gs.enumerated() {
                graphs.append(try graph(g, path: path.appending(.init(node: label, attribute: name, index: index))))
            }
            value = .graphs(graphs)
        case .plain(let kind):
            switch kind {
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: value = .float(a.f)
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: value = .int(a.i)
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
                value = .string(Array(UnsafeBufferPointer(start: a.s.data, count: a.s.data == nil ? 0 : a.s.len)))
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: value = .floats(Array(repeated(a.n_floats, a.floats)))
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: value = .ints(Array(repeated(a.n_ints, a.ints)))
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
                value = .strings(repeated(a.n_strings, a.strings).map { Array(UnsafeBufferPointer(start: $0.data, count: $0.data == nil ? 0 : $0.len)) })
            default: value = .opaque(kind: "attribute", encoded: ProtobufCalls.encode(proto))
            }
        }
        let reference = string(a.ref_attr_name)
        return Attribute(
            name: name, value: value, referencedAttribute: reference.isEmpty ? nil : reference,
            docString: string(a.doc_string))
    }

    private func valueInfo(_ proto: UnsafeMutablePointer<Onnx__ValueInfoProto>) -> ValueInfo {
        let p = proto.pointee
        var info = ValueInfo(name: string(p.name), docString: string(p.doc_string))
        if let type = p.type, type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
            let tensorType = type.pointee.tensor_type
        {
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
        for node in graph.nodes where TensorSlots.isConstantOperator(opType: node.opType, domain: node.domain) {
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
