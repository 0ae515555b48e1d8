internal import CONNXProto

/// The structure of an ONNX model without its tensor data: the `ModelProto` with the data fields
/// of every tensor cleared (raw_data, typed fields, external data references), everything else —
/// graph, attributes, metadata, unknown fields — kept byte for byte by protobuf-c.
///
/// Tensors are visited in the order `ONNXReader` lists them, so the i-th tensor of the IR is the
/// i-th tensor cleared here; restore fills them back in that order.
public enum ONNXSkeleton {
    public static func strip(contentsOf path: String) throws -> [UInt8] {
        let file = try mappedFile(path)
        return try withExtendedLifetime(file) {
            try ONNXReader.withParsedModel(file.bytes, file: path) { model in try strip(model, file: path) }
        }
    }

    /// The skeleton of an unpacked model; the model is left as it was.
    static func strip(_ model: UnsafeMutablePointer<Onnx__ModelProto>, file: String) throws -> [UInt8] {
        let clearer = Clearer()
        defer { clearer.restoreAll() }  // so that free_unpacked frees every element it allocated
        if let graph = model.pointee.graph { clearer.clear(graph) }
        for function in messages(model.pointee.n_functions, model.pointee.functions) {
            for node in messages(function.pointee.n_node, function.pointee.node) { clearer.clear(node) }
        }
        return ProtobufCalls.pack(model)
    }
}

/// Clears data fields and remembers how to put the counts back before the message is freed.
private final class Clearer {
    private var undo: [() -> Void] = []

    func restoreAll() {
        for action in undo.reversed() { action() }
        undo.removeAll()
    }

    func clear(_ graph: UnsafeMutablePointer<Onnx__GraphProto>) {
        for tensor in messages(graph.pointee.n_initializer, graph.pointee.initializer) { clear(tensor) }
        for sparse in messages(graph.pointee.n_sparse_initializer, graph.pointee.sparse_initializer) { clear(sparse) }
        for node in messages(graph.pointee.n_node, graph.pointee.node) { clear(node) }
    }

    func clear(_ node: UnsafeMutablePointer<Onnx__NodeProto>) {
        for attribute in messages(node.pointee.n_attribute, node.pointee.attribute) {
            let a = attribute.pointee
            if let t = a.t { clear(t) }
            if let s = a.sparse_tensor { clear(s) }
            for t in messages(a.n_tensors, a.tensors) { clear(t) }
            for s in messages(a.n_sparse_tensors, a.sparse_tensors) { clear(s) }
            if let g = a.g { clear(g) }
            for g in messages(a.n_graphs, a.graphs) { clear(g) }
            // value_float(s) / value_int(s) of Constant nodes are tensors in the IR: keep the attribute,
            // clear its numbers.
            if (string(node.pointee.op_type) == "Constant") {
                let name = string(a.name)
                let saved = (a.n_floats, a.n_ints, a.n_strings)
                undo.append { attribute.pointee.n_floats = saved.0; attribute.pointee.n_ints = saved.1; attribute.pointee.n_strings = saved.2 }
                if name == "value_floats" { attribute.pointee.n_floats = 0 }
                if name == "value_ints" { attribute.pointee.n_ints = 0 }
                if name == "value_strings" { attribute.pointee.n_strings = 0 }
            }
        }
    }

    func clear(_ sparse: UnsafeMutablePointer<Onnx__SparseTensorProto>) {
        if let values = sparse.pointee.values { clear(values) }
        if let indices = sparse.pointee.indices { clear(indices) }
    }

    /// Empties the data fields; the arrays stay allocated and are freed with the message.
    func clear(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>) {
        let saved = tensor.pointee
        undo.append {
            tensor.pointee.has_raw_data = saved.has_raw_data
            tensor.pointee.raw_data.len = saved.raw_data.len
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
        tensor.pointee.n_external_data = 0
        tensor.pointee.has_data_location = 0
    }
}
