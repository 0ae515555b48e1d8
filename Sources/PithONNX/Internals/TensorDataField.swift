import PithIR
internal import CONNXProto
internal import CProtobufC

/// Where a `TensorProto` of the source kept its elements, as its skeleton records it so that restore
/// puts them back in the same field (docs/container-format.md, "What the skeleton keeps of a slot").
///
/// ONNX lets a tensor hold its data in `raw_data` or in the one typed repeated field its type is
/// given (`float_data`, `int32_data`, `int64_data`, `double_data`, `uint64_data`), and a tensor
/// without elements may hold no field at all. The skeleton marks the second and third case with a
/// `raw_data` of one byte, the *tag*: the typed field's number, or 0 for no field. A tensor without
/// a tag (every tensor of a skeleton written before the tag existed) is restored into `raw_data`.
/// Restorers that do not know the tag overwrite it with the data, so they still restore the tensor.
enum TensorDataField: Equatable {
    /// `raw_data`: the skeleton has no tag.
    case raw
    /// The typed field ONNX gives the tensor's type, by its field number (`typedFieldNumber`).
    case typed(UInt8)
    /// No data field at all: the source's tensor had no elements.
    case absent

    /// The tag of `absent`.
    static let absentTag: UInt8 = 0

    /// The number of the typed field ONNX stores elements of `dtype` in: `float_data` (4) for
    /// float32 and complex64, `int32_data` (5) for the types of 32 bits or fewer (sub-byte types one
    /// packed byte per value, float6 one element per value), `int64_data` (7), `double_data` (10) for
    /// float64 and complex128, `uint64_data` (11) for uint32 and uint64; nil for strings, which have
    /// only `string_data`.
    static func typedFieldNumber(for dtype: DType) -> UInt8? {
        switch dtype {
        case .float32, .complex64: return 4
        case .float64, .complex128: return 10
        case .int64: return 7
        case .uint32, .uint64: return 11
        case .string: return nil
        case .int32, .int16, .uint16, .float16, .bfloat16, .int8, .uint8, .bool, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2,
            .float8e5m2fnuz, .float8e8m0, .int4, .uint4, .float4e2m1, .int2, .uint2, .float6e2m3, .float6e3m2:
            return 5
        }
    }

    /// Where the source's `tensor` keeps its data; nil when the skeleton marks nothing: a string
    /// tensor, a tensor of a type Pith does not know, one stored outside the model (its
    /// `external_data` entries say so), and one holding its data somewhere other than `raw_data` or
    /// its type's field (restored into `raw_data`). `hasView` says that the source's `raw_data` was
    /// taken out of the message before it was unpacked (`InitializerViews`).
    static func ofSource(_ tensor: Onnx__TensorProto, hasView: Bool) -> TensorDataField? {
        if tensor.has_data_location != 0, tensor.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL { return nil }
        guard let dtype = ONNXDataType(rawValue: tensor.data_type).dtype, let number = typedFieldNumber(for: dtype) else { return nil }
        if hasView || tensor.has_raw_data != 0 { return .raw }
        let counts: [(UInt8, Int)] = [
            (4, tensor.n_float_data), (5, tensor.n_int32_data), (7, tensor.n_int64_data), (10, tensor.n_double_data),
            (11, tensor.n_uint64_data), (6, tensor.n_string_data),
        ]
        let used = counts.filter { $0.1 > 0 }.map(\.0)
        if used.isEmpty { return .absent }
        return used == [number] ? .typed(number) : .raw
    }

    /// The tag the skeleton holds in `raw_data`; nil for `raw`, which has none.
    var tag: UInt8? {
        switch self {
        case .raw: return nil
        case .typed(let number): return number
        case .absent: return Self.absentTag
        }
    }

    /// What the skeleton's `tensor`, to be filled with a tensor of `dtype`, says: no `raw_data` is
    /// `raw`; a `raw_data` of one byte is a tag, which must be 0 or the number of the typed field
    /// of `dtype` (and strings have none). Anything else is refused: a skeleton holds no data.
    /// `name` and `file` name the tensor and the container in the error.
    static func inSkeleton(_ tensor: Onnx__TensorProto, dtype: DType, name: String, file: String) throws -> TensorDataField {
        guard tensor.has_raw_data != 0 else { return .raw }
        let bytes = UnsafeRawBufferPointer(start: tensor.raw_data.data, count: tensor.raw_data.data == nil ? 0 : tensor.raw_data.len)
        guard bytes.count == 1 else {
            throw ONNXError(
                .malformed, file: file,
                "tensor `\(name)`: its ONNX skeleton holds \(bytes.count) bytes of raw_data, where a skeleton holds at most a one-byte tag")
        }
        let tag = bytes[0]
        if tag == absentTag, dtype != .string { return .absent }
        guard let number = typedFieldNumber(for: dtype), tag == number else {
            throw ONNXError(
                .malformed, file: file,
                "tensor `\(name)`: its ONNX skeleton tags its data as field \(tag), which does not hold \(dtype.rawValue) "
                    + "(the tag is 0 or \(typedFieldNumber(for: dtype).map { "\($0)" } ?? "absent for strings"))")
        }
        return .typed(number)
    }

    /// The elements of the dense `bytes` (`count` elements of `dtype`, in ONNX's `raw_data`
    /// layout) as the values of `int32_data`: signed types sign-extended; unsigned types, booleans
    /// and the bit patterns of float16, bfloat16 and float8 zero-extended; types narrower than a
    /// byte one packed byte per value (as `raw_data` packs them); float6 one 6-bit code per value.
    /// As onnx's `helper.make_tensor` writes them, and the inverse of what the reader accepts.
    static func int32Values(_ bytes: UnsafeRawBufferPointer, dtype: DType, count: Int) -> [Int32] {
        func load<T: FixedWidthInteger>(_: T.Type) -> [Int32] {
            (0..<count).map { Int32(truncatingIfNeeded: bytes.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        }
        switch dtype {
        case .int32: return load(Int32.self)
        case .int16: return load(Int16.self)
        case .uint16, .float16, .bfloat16: return load(UInt16.self)
        case .int8: return load(Int8.self)
        case .float6e2m3, .float6e3m2:
            return (0..<count).map { i in
                let bitOffset = i * 6, byte = bitOffset >> 3, shift = bitOffset & 7
                var code = Int32(bytes[byte]) >> Int32(shift)
                if shift > 2 { code |= Int32(bytes[byte + 1]) << Int32(8 - shift) }
                return code & 0x3F
            }
        default: return bytes.map { Int32($0) }  // one byte per value: 8-bit types, packed sub-byte types
        }
    }
}
