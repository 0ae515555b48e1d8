import Testing
@testable import PithIR

@Suite struct DTypeTests {
    /// Decodes one element stored as `bytes` of `dtype`.
    func value(_ dtype: DType, _ bytes: [UInt8], element: Int = 0) -> Double {
        var output = [Double](repeating: .nan, count: 1)
        bytes.withUnsafeBytes { raw in
            output.withUnsafeMutableBufferPointer { dtype.decode(raw, elements: element..<element + 1, into: $0.baseAddress!) }
        }
        return output[0]
    }

    @Test func float16MatchesSwiftFloat16ForEveryBitPattern() {
        for bits in 0...UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let decoded = MiniFloat.float16ToFloat(bits)
            if expected.isNaN {
                #expect(decoded.isNaN, "0x\(String(bits, radix: 16))")
            } else {
                #expect(decoded.bitPattern == expected.bitPattern, "0x\(String(bits, radix: 16))")
            }
        }
    }

    @Test func bfloat16IsTheHighHalfOfBinary32() {
        #expect(MiniFloat.bfloat16ToFloat(0x3F80) == 1)
        #expect(MiniFloat.bfloat16ToFloat(0xC040) == -3)
        #expect(MiniFloat.bfloat16ToFloat(0x7F80) == .infinity)
        #expect(MiniFloat.bfloat16ToFloat(0x0001) == Float(bitPattern: 0x0001_0000))
    }

    /// Reference values from the ONNX specification (docs/Operators.md, Cast; OCP MX spec).
    @Test(arguments: [
        (DType.float8e4m3fn, UInt8(0x7E), 448.0), (.float8e4m3fn, 0x01, 0x1p-9), (.float8e4m3fn, 0xB8, -1.0),
        (.float8e4m3fnuz, 0x7F, 240.0), (.float8e4m3fnuz, 0x01, 0x1p-10), (.float8e4m3fnuz, 0x40, 1.0),
        (.float8e5m2, 0x7B, 57344.0), (.float8e5m2, 0x7C, .infinity), (.float8e5m2, 0xFC, -.infinity), (.float8e5m2, 0x01, 0x1p-16),
        (.float8e5m2fnuz, 0x7F, 57344.0), (.float8e5m2fnuz, 0x01, 0x1p-17),
        (.float8e8m0, 0x7F, 1.0), (.float8e8m0, 0x00, 0x1p-127), (.float8e8m0, 0xFE, 0x1p127),
    ])
    func eightBitFloats(dtype: DType, code: UInt8, expected: Double) {
        #expect(value(dtype, [code]) == expected)
    }

    @Test func eightBitNaNs() {
        #expect(value(.float8e4m3fn, [0x7F]).isNaN)
        #expect(value(.float8e4m3fn, [0xFF]).isNaN)
        #expect(value(.float8e4m3fnuz, [0x80]).isNaN)
        #expect(value(.float8e5m2fnuz, [0x80]).isNaN)
        #expect(value(.float8e5m2, [0x7D]).isNaN)
        #expect(value(.float8e8m0, [0xFF]).isNaN)
        #expect(value(.float8e4m3fn, [0x80]) == 0)  // −0 is zero, not NaN, in the FN formats
    }

    @Test func fourBitFloatHasTheEightMagnitudesOfTheSpec() {
        let magnitudes: [Double] = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
        for code in 0..<16 {
            // Element 1 of a byte sits in the high nibble.
            let expected = (code >= 8 ? -1 : 1) * magnitudes[code & 7]
            #expect(value(.float4e2m1, [UInt8(code)]) == expected)
            #expect(value(.float4e2m1, [UInt8(code) << 4], element: 1) == expected)
        }
    }

    @Test func sixBitFloatsSpanTheirRanges() {
        #expect(value(.float6e2m3, [0x1F]) == 7.5)
        #expect(value(.float6e2m3, [0x01]) == 0.125)
        #expect(value(.float6e3m2, [0x1F]) == 28)
        #expect(value(.float6e3m2, [0x01]) == 0.0625)
        // Element 1 straddles bytes 0 and 1: bits 6..11.
        let packed: [UInt8] = [0xC0, 0x07, 0x00]  // x1 = 0b011111 = 0x1F
        #expect(value(.float6e2m3, packed, element: 1) == 7.5)
    }

    @Test func subByteIntegersSignExtend() {
        for code in 0..<16 {
            #expect(value(.int4, [UInt8(code)]) == Double(code >= 8 ? code - 16 : code))
            #expect(value(.uint4, [UInt8(code) << 4], element: 1) == Double(code))
        }
        // Four 2-bit values per byte, first in bits 0-1: [1, -2, -1, 0] = 0b00_11_10_01.
        let byte: [UInt8] = [0b0011_1001]
        #expect((0..<4).map { value(.int2, byte, element: $0) } == [1, -2, -1, 0])
        #expect((0..<4).map { value(.uint2, byte, element: $0) } == [1, 2, 3, 0])
    }

    @Test func storageBytesRoundsSubByteTypesUpAndCatchesOverflow() {
        #expect(DType.int4.storageBytes(count: 3) == 2)
        #expect(DType.float6e2m3.storageBytes(count: 5) == 4)
        #expect(DType.int2.storageBytes(count: 5) == 2)
        #expect(DType.float32.storageBytes(count: 10) == 40)
        #expect(DType.float64.storageBytes(count: Int.max / 4) == nil)
        #expect(DType.string.storageBytes(count: 1) == nil)
    }

    @Test func exactFloat32Conversion() {
        for dtype in DType.allCases where dtype.convertsExactlyToFloat32 {
            #expect(dtype.isReal)
            #expect(dtype.bitWidth <= 16 || dtype == .float32)
        }
        #expect(!DType.float64.convertsExactlyToFloat32)
        #expect(!DType.int32.convertsExactlyToFloat32)
    }
}

@Suite struct ShapeTests {
    @Test func elementCount() {
        #expect(Shape.elementCount([]) == 1)
        #expect(Shape.elementCount([3, 0, 5]) == 0)
        #expect(Shape.elementCount([300, 784]) == 235_200)
        #expect(Shape.elementCount([-1, 4]) == nil)
        #expect(Shape.elementCount([1 << 40, 1 << 40]) == nil)
    }

    @Test func floatValuesOfATensor() {
        let values: [UInt16] = [0x3C00, 0xC000, 0x0000, 0x7BFF]  // 1, -2, 0, 65504 in float16
        let tensor = Tensor(
            name: "t", dtype: .float16, shape: [2, 2], storage: .dense(TensorBuffer(values: values)),
            origin: .dataset(path: "t"))
        #expect(tensor.floatValues() == [1, -2, 0, 65504])
        #expect(tensor.storedBytes == 8)
    }
}
