internal import CONNXProto
internal import CProtobufC
import PithIR

/// Turns `TensorProto` and `SparseTensorProto` messages into IR tensor data,
/// checking every size against the others before allocating.
struct TensorDecoder {
    /// The model file, for messages.
    let file: String
    let externalData: ExternalDataReader?
    /// The `raw_data` of tensors whose bytes were left in the mapped model file (`InitializerViews`).
    var views: Views? = nil

    /// Raw data in the mapped model file, by the tensor message it was taken out of.
    struct Views {
        /// The mapping, kept alive by every tensor that views it.
        var owner: MappedFile
        var rawData: [UnsafeMutableRawPointer: UnsafeRawBufferPointer] = [:]
    }

    /// A sparse tensor may expand to this many bytes, or to `maximumExpansion` times the
    /// bytes of its values and indices, whichever is larger: a few bytes cannot demand gigabytes.
    static let minimumDensifiedAllowance = 16 << 20
    static let maximumExpansion = 1024

    struct Decoded {
        var dtype: DType
        var shape: [Int]
        var storage: TensorStorage
    }

    func fail(_ kind: ONNXError.Kind, _ tensor: String, _ message: String) -> ONNXError {
        ONNXError(kind, file: file, "tensor `\(tensor)`: \(message)")
    }

    func decode(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, name: String) throws -> Decoded {
        let p = proto.pointee
        guard p.has_data_type != 0, p.data_type != 0 else {
            throw fail(.invalidTensor, name, "data_type is missing or UNDEFINED")
        }
        guard let dtype = ONNXDataType(rawValue: p.data_type).dtype else {
            throw fail(.unsupported, name, "data_type \(p.data_type) is not an ONNX type this version of Pith knows (1…28)")
        }
        if p.segment != nil {
            throw fail(.unsupported, name, "uses `segment` (a tensor split across messages), which Pith does not support")
        }
        var shape: [Int] = []
        for dimension in repeated(p.n_dims, p.dims) {
            guard dimension >= 0 else { throw fail(.invalidTensor, name, "dimension \(dimension) is negative") }
            shape.append(Int(dimension))
        }
        guard let count = Shape.elementCount(shape) else {
            throw fail(.invalidTensor, name, "shape \(Shape.describe(shape)) has more elements than can be addressed")
        }

        if dtype == .string {
            if p.has_data_location != 0, p.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
                throw fail(.unsupported, name, "string tensors in external data are not supported")
            }
            let values = repeated(p.n_string_data, p.string_data)
            guard values.count == count else {
                throw fail(.invalidTensor, name, "string_data holds \(values.count) strings; shape \(Shape.describe(shape)) needs \(count)")
            }
            let strings = values.map { Array(UnsafeBufferPointer(start: $0.data, count: $0.data == nil ? 0 : $0.len)) }
            return Decoded(dtype: dtype, shape: shape, storage: .strings(strings))
        }

        guard let byteCount = dtype.storageBytes(count: count) else {
            throw fail(.invalidTensor, name, "shape \(Shape.describe(shape)) of \(dtype.rawValue) is too large to address")
        }
        if p.has_data_location != 0, p.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            guard let externalData else {
                throw fail(.externalData, name, "uses external data, but the model was not read from a file")
            }
            let entries = messages(p.n_external_data, p.external_data).map { (string($0.pointee.key), string($0.pointee.value)) }
            let buffer = try externalData.read(entries: entries, byteCount: byteCount, tensor: name)
            return Decoded(dtype: dtype, shape: shape, storage: .dense(buffer))
        }
        if let views, let raw = views.rawData[UnsafeMutableRawPointer(proto)] {
            guard raw.count == byteCount else {
                throw fail(.invalidTensor, name, "raw_data holds \(raw.count) bytes; shape \(Shape.describe(shape)) of \(dtype.rawValue) needs \(byteCount)")
            }
            return Decoded(dtype: dtype, shape: shape, storage: .dense(TensorBuffer.viewing(raw, of: views.owner, unaligned: true)))
        }
        if p.has_raw_data != 0 {
            let raw = UnsafeRawBufferPointer(start: p.raw_data.data, count: p.raw_data.data == nil ? 0 : p.raw_data.len)
            guard raw.count == byteCount else {
                throw fail(.invalidTensor, name, "raw_data holds \(raw.count) bytes; shape \(Shape.describe(shape)) of \(dtype.rawValue) needs \(byteCount)")
            }
            return Decoded(dtype: dtype, shape: shape, storage: .dense(TensorBuffer(copying: raw)))
        }
        let buffer = try decodeTypedField(p, dtype: dtype, count: count, byteCount: byteCount, shape: shape, name: name)
        return Decoded(dtype: dtype, shape: shape, storage: .dense(buffer))
    }

    /// Data held in `float_data`, `int32_data`, `int64_data`, `double_data` or `uint64_data`.
    private func decodeTypedField(
        _ p: Onnx__TensorProto, dtype: DType, count: Int, byteCount: Int, shape: [Int], name: String
    ) throws -> TensorBuffer {
        func check(_ field: String, _ found: Int, _ expected: Int) throws {
            guard found == expected else {
                if found == 0 {
                    throw fail(
                        .invalidTensor, name,
                        "has no data: shape \(Shape.describe(shape)) of \(dtype.rawValue) needs \(expected) values in raw_data or \(field)")
                }
                throw fail(.invalidTensor, name, "\(field) holds \(found) values; shape \(Shape.describe(shape)) of \(dtype.rawValue) needs \(expected)")
            }
        }
        func copy<T: BitwiseCopyable>(_ values: UnsafeBufferPointer<T>) -> TensorBuffer {
            TensorBuffer(copying: UnsafeRawBufferPointer(values))
        }
        switch dtype {
        case .float32, .complex64:
            let values = repeated(p.n_float_data, p.float_data)
            try check("float_data", values.count, dtype == .complex64 ? 2 * count : count)
            return copy(values)
        case .float64, .complex128:
            let values = repeated(p.n_double_data, p.double_data)
            try check("double_data", values.count, dtype == .complex128 ? 2 * count : count)
            return copy(values)
        case .int64:
            let values = repeated(p.n_int64_data, p.int64_data)
            try check("int64_data", values.count, count)
            return copy(values)
        case .uint32:
            let values = repeated(p.n_uint64_data, p.uint64_data)
            try check("uint64_data", values.count, count)
            return TensorBuffer(values: values.map { UInt32(truncatingIfNeeded: $0) })
        case .uint64:
            let values = repeated(p.n_uint64_data, p.uint64_data)
            try check("uint64_data", values.count, count)
            return copy(values)
        case .int32:
            let values = repeated(p.n_int32_data, p.int32_data)
            try check("int32_data", values.count, count)
            return copy(values)
        case .int16, .uint16, .float16, .bfloat16:
            let values = repeated(p.n_int32_data, p.int32_data)
            try check("int32_data", values.count, count)
            return TensorBuffer(values: values.map { UInt16(truncatingIfNeeded: $0) })
        case .int8, .uint8, .bool, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0:
            let values = repeated(p.n_int32_data, p.int32_data)
            try check("int32_data", values.count, count)
            return TensorBuffer(values: values.map { UInt8(truncatingIfNeeded: $0) })
        case .int4, .uint4, .float4e2m1, .int2, .uint2:
            // Each int32 holds one byte of the packed stream: 2 (4-bit) or 4 (2-bit) elements.
            let values = repeated(p.n_int32_data, p.int32_data)
            try check("int32_data", values.count, byteCount)
            return TensorBuffer(values: values.map { UInt8(truncatingIfNeeded: $0) })
        case .float6e2m3, .float6e3m2:
            // One element per int32 (bits 0–5), packed here into the 6-bit LSB-first stream.
            let values = repeated(p.n_int32_data, p.int32_data)
            try check("int32_data", values.count, count)
            return TensorBuffer(count: byteCount) { out in
                for (i, value) in values.enumerated() {
                    let bitOffset = i * 6, byte = bitOffset >> 3, shift = bitOffset & 7
                    let code = UInt16(value & 0x3F) << UInt16(shift)
                    out[byte] |= UInt8(truncatingIfNeeded: code)
                    if shift > 2 { out[byte + 1] |= UInt8(truncatingIfNeeded: code >> 8) }
                }
            }
        case .string:
            preconditionFailure("unreachable: strings handled by the caller")
        }
    }

    /// A `SparseTensorProto` expanded to a dense tensor.
    func decodeSparse(_ proto: UnsafeMutablePointer<Onnx__SparseTensorProto>, name: String) throws -> Decoded {
        let p = proto.pointee
        guard let valuesProto = p.values else { throw fail(.invalidTensor, name, "sparse tensor has no `values`") }
        guard let indicesProto = p.indices else { throw fail(.invalidTensor, name, "sparse tensor has no `indices`") }
        var shape: [Int] = []
        for dimension in repeated(p.n_dims, p.dims) {
            guard dimension >= 0 else { throw fail(.invalidTensor, name, "sparse dimension \(dimension) is negative") }
            shape.append(Int(dimension))
        }
        let values = try decode(valuesProto, name: name + " (values)")
        let indices = try decode(indicesProto, name: name + " (indices)")
        guard values.shape.count == 1, values.dtype != .string, values.dtype.bitWidth % 8 == 0 else {
            throw fail(
                .invalidTensor, name,
                "sparse `values` must be a 1-D tensor of a byte-aligned numeric type, found \(values.dtype.rawValue) of shape \(Shape.describe(values.shape))")
        }
        guard indices.dtype == .int64 else {
            throw fail(.invalidTensor, name, "sparse `indices` must be int64, found \(indices.dtype.rawValue)")
        }
        let nonzero = values.shape[0]
        let rank = shape.count
        let linear = indices.shape == [nonzero]
        guard linear || indices.shape == [nonzero, rank] else {
            throw fail(.invalidTensor, name, "sparse `indices` has shape \(Shape.describe(indices.shape)); expected [\(nonzero)] or [\(nonzero), \(rank)]")
        }
        guard case .dense(let valueBytes) = values.storage, case .dense(let indexBytes) = indices.storage else {
            preconditionFailure("unreachable: numeric tensors are dense")
        }
        let allowance = max(Self.minimumDensifiedAllowance, Self.maximumExpansion * (valueBytes.count + indexBytes.count))
        guard let count = Shape.elementCount(shape), let byteCount = values.dtype.storageBytes(count: count),
            byteCount <= allowance
        else {
            throw fail(
                .invalidTensor, name,
                "sparse tensor of shape \(Shape.describe(shape)) with \(nonzero) values would expand to more than \(allowance) bytes; refusing")
        }
        let width = values.dtype.bitWidth / 8
        let buffer = try TensorBuffer(count: byteCount) { out in
            try indexBytes.withUnsafeBufferPointer(as: Int64.self) { index in
                try valueBytes.withUnsafeBytes { source in
                    for k in 0..<nonzero {
                        var position: Int64 = 0
                        if linear {
                            position = index[k]
                        } else {
                            for axis in 0..<rank {
                                let coordinate = index[k * rank + axis]
                                guard coordinate >= 0, coordinate < shape[axis] else {
                                    throw fail(.invalidTensor, name, "sparse index \(coordinate) on axis \(axis) is outside dimension \(shape[axis])")
                                }
                                position = position * Int64(shape[axis]) + coordinate
                            }
                        }
                        guard position >= 0, position < count else {
                            throw fail(.invalidTensor, name, "sparse index \(position) is outside the \(count) elements of shape \(Shape.describe(shape))")
                        }
                        let offset = Int(position) * width
                        (out.baseAddress! + offset).copyMemory(from: source.baseAddress! + k * width, byteCount: width)
                    }
                }
            }
        }
        return Decoded(dtype: values.dtype, shape: shape, storage: .dense(buffer))
    }
}
