import PithIR
internal import CONNXProto
internal import CProtobufC

extension Arena {
    /// A tensor of `dtype` whose `raw_data` is `bytes`, already in ONNX's layout for that type.
    func tensor(_ name: String, dtype: DType, dims: [Int], bytes: [UInt8]) -> UnsafeMutablePointer<Onnx__TensorProto> {
        message(Onnx__TensorProto.self) { t in
            ProtobufCalls.initialize(t)
            t.pointee.name = cString(name)
            t.pointee.n_dims = dims.count
            t.pointee.dims = array(dims.map(Int64.init))
            t.pointee.has_data_type = 1
            t.pointee.data_type = ONNXDataType(dtype).rawValue
            t.pointee.has_raw_data = 1
            t.pointee.raw_data = ProtobufCBinaryData(len: bytes.count, data: array(bytes))
        }
    }

    /// A `Constant` node whose `sparse_value` is the tensor of `dims` holding `values` (raw data of
    /// `dtype`, one element per position) at the row-major linear `positions`, zero elsewhere.
    func sparseConstant(
        name: String, output: String, dtype: DType, dims: [Int], values: [UInt8], positions: [Int64]
    ) -> UnsafeMutablePointer<Onnx__NodeProto> {
        let sparse = message(Onnx__SparseTensorProto.self) { s in
            ProtobufCalls.initialize(s)
            s.pointee.values = tensor(output, dtype: dtype, dims: [positions.count], bytes: values)
            s.pointee.indices = tensor(output + "_indices", dtype: .int64, dims: [positions.count], bytes: positions.withUnsafeBytes { Array($0) })
            s.pointee.n_dims = dims.count
            s.pointee.dims = array(dims.map(Int64.init))
        }
        let attribute = message(Onnx__AttributeProto.self) { a in
            ProtobufCalls.initialize(a)
            a.pointee.name = cString("sparse_value")
            a.pointee.has_type = 1
            a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR
            a.pointee.sparse_tensor = sparse
        }
        return node("Constant", name: name, inputs: [], outputs: [output], attributes: [attribute])
    }
}
