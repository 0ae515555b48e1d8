/// The element type of a tensor.
///
/// The set is the union of what ONNX and Keras/HDF5 can store: every numeric
/// ONNX type (including the sub-byte and 8-bit float formats), booleans and
/// byte strings. The raw value is the stable name used in reports and in the
/// `.pith` manifest.
///
/// Storage convention: elements are little-endian and fixed width. Types
/// narrower than a byte (`int4`, `uint4`, `float4e2m1`, `int2`, `uint2`,
/// `float6e2m3`, `float6e3m2`) are packed as one LSB-first bit stream: element
/// `i` occupies bits `i·w ..< (i+1)·w`, so two 4-bit values share a byte with
/// the first in the low nibble, as ONNX specifies. `bool` takes one byte.
public enum DType: String, Sendable, CaseIterable, Hashable, Codable {
    case float32, float64, float16, bfloat16
    case float8e4m3fn, float8e4m3fnuz, float8e5m2, float8e5m2fnuz, float8e8m0
    case float6e2m3, float6e3m2, float4e2m1
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64
    case int4, uint4, int2, uint2
    case bool
    case complex64, complex128
    case string

    /// Bits one element occupies in storage; 0 for `string`, whose elements vary.
    public var bitWidth: Int {
        switch self {
        case .float64, .int64, .uint64, .complex64: return 64
        case .complex128: return 128
        case .float32, .int32, .uint32: return 32
        case .float16, .bfloat16, .int16, .uint16: return 16
        case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0,
            .int8, .uint8, .bool:
            return 8
        case .float6e2m3, .float6e3m2: return 6
        case .float4e2m1, .int4, .uint4: return 4
        case .int2, .uint2: return 2
        case .string: return 0
        }
    }

    /// Real floating-point formats (not complex).
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16, .float8e4m3fn, .float8e4m3fnuz,
            .float8e5m2, .float8e5m2fnuz, .float8e8m0, .float6e2m3, .float6e3m2, .float4e2m1:
            return true
        default: return false
        }
    }

    public var isInteger: Bool {
        switch self {
        case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64,
            .int4, .uint4, .int2, .uint2, .bool:
            return true
        default: return false
        }
    }

    public var isComplex: Bool { self == .complex64 || self == .complex128 }

    /// Real numbers: every type whose elements convert to one `Double`.
    public var isReal: Bool { isFloatingPoint || isInteger }

    /// Whether every value of this type converts to `Float` without rounding.
    /// False for `float64`, 32- and 64-bit integers, complex and strings.
    public var convertsExactlyToFloat32: Bool {
        switch self {
        case .float64, .int32, .uint32, .int64, .uint64, .complex64, .complex128, .string:
            return false
        default: return true
        }
    }

    /// Bytes needed to store `count` elements, or nil when that overflows `Int`
    /// (or for `string`, whose size depends on the values).
    public func storageBytes(count: Int) -> Int? {
        guard self != .string, count >= 0 else { return nil }
        let (bits, overflow) = count.multipliedReportingOverflow(by: bitWidth)
        guard !overflow else { return nil }
        return bits / 8 + (bits % 8 == 0 ? 0 : 1)
    }
}
