public import PithIR

/// ONNX's `TensorProto.DataType` code of an element type.
public struct ONNXDataType: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The corresponding ONNX constant is `UNDEFINED`.
    public static let undefined = ONNXDataType(rawValue: 0)

    /// Codes in order: 1 FLOAT … 28 FLOAT6E3M2, as onnx.proto numbers them.
    private static let table: [Int32: DType] = [
        1: .float32, 2: .uint8, 3: .int8, 4: .uint16, 5: .int16, 6: .int32, 7: .int64, 8: .string,
        9: .bool, 10: .float16, 11: .float64, 12: .uint32, 13: .uint64, 14: .complex64, 15: .complex128,
        16: .bfloat16, 17: .float8e4m3fn, 18: .float8e4m3fnuz, 19: .float8e5m2, 20: .float8e5m2fnuz,
        21: .uint4, 22: .int4, 23: .float4e2m1, 24: .float8e8m0, 25: .uint2, 26: .int2,
        27: .float6e2m3, 28: .float6e3m2,
    ]
    private static let codes: [DType: Int32] = Dictionary(uniqueKeysWithValues: table.map { ($1, $0) })

    /// The IR type, or nil for `UNDEFINED` and codes this version does not know.
    public var dtype: DType? { Self.table[rawValue] }

    public init(_ dtype: DType) { self.init(rawValue: Self.codes[dtype]!) }
}
