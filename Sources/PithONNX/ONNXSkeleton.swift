internal import CONNXProto
internal import CProtobufC

/// The structure of an ONNX model without its tensor data: the `ModelProto` with the data fields
/// of every tensor slot cleared (raw_data, typed fields, the numbers of a Constant's
/// `value_floats` / `value_ints` / `value_strings`), everything else — graph, attributes,
/// metadata, unknown fields, a `data_location` of `DEFAULT` set explicitly, and the
/// `external_data` entries (`location`, `offset`, `length`) of a tensor stored outside the model
/// (its `data_location` is cleared) — kept byte for byte by protobuf-c, so that restore can write
/// external data back in the source's layout. A tensor whose data was in its type's typed field,
/// or that had no data field at all, is tagged (`TensorDataField`), so that restore writes it the
/// same way.
///
/// Slots are visited in `TensorSlots` order, the order `ONNXReader` lists tensors, so the i-th
/// tensor of the IR is the i-th slot cleared here; restore fills them back in that order.
public enum ONNXSkeleton {
    /// The skeleton of the model at `path`. To read the model as well, `ONNXReader.readWithSkeleton`
    /// gives both from one parse of the file.
    public static func strip(contentsOf path: String) throws -> [UInt8] {
        let file = try mappedFile(path)
        return try withExtendedLifetime(file) {
            try ONNXReader.withParsedModel(file.bytes, file: path) { model in try strip(model, file: path) }
        }
    }

    /// The skeleton of an unpacked model; the model is left as it was. `rawDataViews` are the
    /// tensors whose `raw_data` was taken out of the message before it was unpacked
    /// (`InitializerViews`): their data was in `raw_data` although the message has none.
    static func strip(
        _ model: UnsafeMutablePointer<Onnx__ModelProto>, file: String, rawDataViews: Set<UnsafeMutableRawPointer> = []
    ) throws -> [UInt8] {
        let clearer = Clearer(rawDataViews: rawDataViews)
        defer { clearer.restoreAll() }  // so that free_unpacked frees every element it allocated
        try TensorSlots.forEach(in: model, file: file) { slot, _ in clearer.clear(slot) }
        return ProtobufCalls.pack(model)
    }
}

/// Clears data fields and remembers how to put the counts back before the message is freed.
private final class Clearer {
    private var undo: [() -> Void] = []
    private let rawDataViews: Set<UnsafeMutableRawPointer>
    /// Byte i is i: the one-byte `raw_data` each tag points into, alive until packing is done.
    private let tags: UnsafeMutablePointer<UInt8>

    init(rawDataViews: Set<UnsafeMutableRawPointer>) {
        self.rawDataViews = rawDataViews
        tags = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for i in 0..<256 { tags[i] = UInt8(i) }
    }

    deinit { tags.deallocate() }

    func restoreAll() {
        for action in undo.reversed() { action() }
        undo.removeAll()
    }

    func clear(_ slot: TensorSlots.Slot) {
        switch slot {
        case .tensor(let t): clear(t)
        case .sparseTensor(let s):
            if let values = s.pointee.values { clear(values) }
            if let indices = s.pointee.indices { clear(indices) }
        case .constantValue(let attribute, let value):
            // The attribute stays (name, type); its list is emptied. The scalars `value_float`,
            // `value_int` and `value_string` are kept as they are: restore overwrites them.
            let saved = (attribute.pointee.n_floats, attribute.pointee.n_ints, attribute.pointee.n_strings)
            undo.append {
                attribute.pointee.n_floats = saved.0; attribute.pointee.n_ints = saved.1; attribute.pointee.n_strings = saved.2
            }
            switch value {
            case .floats: attribute.pointee.n_floats = 0
            case .ints: attribute.pointee.n_ints = 0
            case .strings: attribute.pointee.n_strings = 0
            case .float, .int, .string: break
            }
        }
    }

    /// Empties the data fields; the arrays stay allocated and are freed with the message. An
    /// external data reference (its entries) stays: it holds no data, only where the data was. A
    /// tensor whose data was not in `raw_data` gets its tag (`TensorDataField`).
    func clear(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>) {
        let saved = tensor.pointee
        let field = TensorDataField.ofSource(saved, hasView: rawDataViews.contains(UnsafeMutableRawPointer(tensor)))
        undo.append {
            tensor.pointee.has_raw_data = saved.has_raw_data
            tensor.pointee.raw_data = saved.raw_data
            tensor.pointee.n_float_data = saved.n_float_data
            tensor.pointee.n_int32_data = saved.n_int32_data
            tensor.pointee.n_int64_data = saved.n_int64_data
            tensor.pointee.n_double_data = saved.n_double_data
            tensor.pointee.n_uint64_data = saved.n_uint64_data
            tensor.pointee.n_string_data = saved.n_string_data
            tensor.pointee.n_external_data = saved.n_external_data
            tensor.pointee.has_data_location = saved.has_data_location
        }
        tensor.pointee.has_raw_data = 0
        tensor.pointee.raw_data.len = 0
        tensor.pointee.n_float_data = 0
        tensor.pointee.n_int32_data = 0
        tensor.pointee.n_int64_data = 0
        tensor.pointee.n_double_data = 0
        tensor.pointee.n_uint64_data = 0
        tensor.pointee.n_string_data = 0
        // A tensor stored outside the model keeps its `external_data` entries (where its data was)
        // but not `data_location`: a restorer that knows the entries writes the data back there and
        // sets `data_location = EXTERNAL`; one that does not (Pith 0.1.0) puts the data in
        // `raw_data`, which onnx and onnxruntime read with the entries ignored.
        // Any other `data_location` (an explicit DEFAULT) stays, for restore to write back.
        let external = saved.has_data_location != 0 && saved.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
        if external {
            tensor.pointee.has_data_location = 0
        } else {
            tensor.pointee.n_external_data = 0
        }
        if let tag = field?.tag {
            tensor.pointee.has_raw_data = 1
            tensor.pointee.raw_data = ProtobufCBinaryData(len: 1, data: tags + Int(tag))
        }
    }
}

extension ONNXSkeleton {
    /// `skeleton` after a pass changed the width of layers (structured pruning): the main graph's
    /// initializers named in `shapes` declare their new dimensions (of the same rank), and the main
    /// graph's `value_info` entries named in `droppingValueInfo` (values whose shape no longer holds)
    /// are gone. Everything else stays byte for byte.
    public static func reshaping(_ skeleton: [UInt8], shapes: [String: [Int]], droppingValueInfo dropped: Set<String>, file: String) throws -> [UInt8] {
        try skeleton.withUnsafeBytes { bytes in
            try ONNXReader.withParsedModel(bytes, file: file) { model -> [UInt8] in
                guard let graph = model.pointee.graph else { return ProtobufCalls.pack(model) }
                for tensor in messages(graph.pointee.n_initializer, graph.pointee.initializer) {
                    let name = string(tensor.pointee.name)
                    guard let shape = shapes[name] else { continue }
                    guard tensor.pointee.n_dims == shape.count, let dims = tensor.pointee.dims else {
                        throw ONNXError(
                            .invalidTensor, file: file,
                            "tensor `\(name)`: its skeleton declares \(tensor.pointee.n_dims) dimensions, the compressed tensor has \(shape.count)")
                    }
                    for (axis, size) in shape.enumerated() { dims[axis] = Int64(size) }
                }
                // The dropped entries move to the end of the list and out of its count while packing;
                // the count comes back before the message is freed, so that every entry is freed.
                let count = graph.pointee.n_value_info
                guard !dropped.isEmpty, count > 0, let list = graph.pointee.value_info else { return ProtobufCalls.pack(model) }
                let entries = Array(UnsafeBufferPointer(start: list, count: count))
                let kept = entries.filter { entry in entry.map { !dropped.contains(string($0.pointee.name)) } ?? true }
                let gone = entries.filter { entry in entry.map { dropped.contains(string($0.pointee.name)) } ?? false }
                for (index, entry) in (kept + gone).enumerated() { list[index] = entry }
                graph.pointee.n_value_info = kept.count
                defer { graph.pointee.n_value_info = count }
                return ProtobufCalls.pack(model)
            }
        }
    }
}
