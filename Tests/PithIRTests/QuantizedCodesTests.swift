import Testing
import PithIR

@Suite struct QuantizedCodesTests {
    @Test func codesAreHeldInTheNarrowestTypeAndReadBackAsGiven() {
        let cases: [([Int32], QuantizedCodes.Width)] = [
            ([], .uint8), ([0, 255], .uint8), ([-128, 127], .int8), ([-129, 0], .int16), ([0, 256], .uint16),
            ([-32768, 32767], .int16), ([0, 65535], .uint16), ([-1, 65535], .int32), ([Int32.min, Int32.max], .int32),
        ]
        for (codes, width) in cases {
            let held = QuantizedCodes(codes)
            #expect(held.width == width, "\(codes)")
            #expect(Array(held) == codes)
        }
        #expect(QuantizedCodes.Width(bits: 4, signed: true) == .int8)
        #expect(QuantizedCodes.Width(bits: 8, signed: false) == .uint8)
        #expect(QuantizedCodes.Width(bits: 12, signed: true) == .int16)
    }

    @Test func writingACodeTheStorageCannotHoldWidensIt() {
        var codes = QuantizedCodes(count: 4, width: .int8)
        codes[1] = -7
        #expect(codes.width == .int8)
        codes[2] = 300
        #expect(codes.width == .int16 && Array(codes) == [0, -7, 300, 0])
        codes.append(70_000)
        #expect(codes.width == .int32 && Array(codes) == [0, -7, 300, 0, 70_000])
        var unsigned = QuantizedCodes(count: 0, width: .uint8)
        unsigned.append(200)
        unsigned.append(-1)
        #expect(unsigned.width == .int16 && Array(unsigned) == [200, -1])
    }

    @Test func equalityComparesCodesNotWidths() {
        #expect(QuantizedCodes(int8: [1, -2, 3]) == QuantizedCodes(int16: [1, -2, 3]))
        #expect(QuantizedCodes(uint8: [1, 2]) == [1, 2])
        #expect(QuantizedCodes(uint8: [1, 2]) != [1, 2, 0])
        #expect(QuantizedCodes(int8: [1, -2]) != [1, 2])
    }

    @Test func lowBitsAreTwosComplementWithinTheirWidth() {
        let codes = QuantizedCodes(int8: [-8, -1, 0, 7])
        #expect(codes.lowBytes(bits: 4) == [8, 15, 0, 7])
        #expect(codes.lowBytes(bits: 8) == [248, 255, 0, 7])
        #expect(QuantizedCodes(int16: [-2, 300]).lowHalfwords(bits: 12) == [0xFFE, 300])
        #expect(QuantizedCodes(uint8: [3, 250]).lowHalfwords(bits: 16) == [3, 250])
    }
}
