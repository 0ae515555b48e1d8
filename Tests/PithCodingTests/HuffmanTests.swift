import Foundation
import Testing
@testable import PithCoding

/// SplitMix64, local: PithCoding's tests depend on nothing else.
struct Generator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Symbols with a skewed distribution over `alphabet` (geometric-like), as codebook indices are.
func skewed(_ n: Int, alphabet: Int, seed: UInt64) -> [UInt16] {
    var g = Generator(state: seed)
    return (0..<n).map { _ in
        var s = 0
        while s < alphabet - 1, Double.random(in: 0..<1, using: &g) < 0.7 { s += 1 }
        return UInt16(s)
    }
}

@Suite struct HuffmanTests {
    @Test func roundTripsAndObeysKraft() throws {
        for seed in 0..<60 as Range<UInt64> {
            var g = Generator(state: seed)
            let alphabet = [1, 2, 3, 16, 64, 256, 1000, 2048][Int(seed) % 8]
            let n = Int.random(in: 0...20_000, using: &g)
            let symbols: [UInt16] =
                seed % 3 == 0
                ? (0..<n).map { _ in UInt16.random(in: 0..<UInt16(alphabet), using: &g) }
                : skewed(n, alphabet: alphabet, seed: seed)
            let frequencies = HuffmanCode.histogram(symbols, alphabetSize: alphabet)
            let lengths = HuffmanCode.codeLengths(frequencies: frequencies)
            let code = try HuffmanCode(lengths: lengths)
            #expect(code.kraftSum <= 1)
            #expect(code.longestLength <= HuffmanCode.maximumLength)
            let encoded = code.encode(symbols)
            #expect(encoded.count == (code.encodedBits(frequencies: frequencies) + 7) / 8)
            var decoded = [UInt16](repeating: 0, count: symbols.count)
            try encoded.withUnsafeBytes { input in
                try decoded.withUnsafeMutableBufferPointer { try HuffmanDecoder(code).decode(input, into: $0) }
            }
            #expect(decoded == symbols, "seed \(seed)")
            // Deterministic: the same input gives the same bytes.
            #expect(code.encode(symbols) == encoded)
        }
    }

    /// Frequencies that make an unlimited Huffman tree very deep (Fibonacci) are limited to 11 bits.
    /// The limiting is the JPEG heuristic, not optimal package-merge: this worst case costs a few
    /// percent over the unlimited tree (1.9% here); real symbol streams rarely need limiting at all.
    @Test func lengthsAreLimited() throws {
        var fibonacci = [1, 1]
        while fibonacci.count < 40 { fibonacci.append(fibonacci[fibonacci.count - 1] + fibonacci[fibonacci.count - 2]) }
        let lengths = HuffmanCode.codeLengths(frequencies: fibonacci)
        #expect(Int(lengths.max()!) == HuffmanCode.maximumLength)
        let code = try HuffmanCode(lengths: lengths)
        #expect(code.kraftSum <= 1)
        let unlimited = HuffmanCode.codeLengths(frequencies: fibonacci, maximumLength: 40)
        #expect(Int(unlimited.max()!) > HuffmanCode.maximumLength)
        let cost = { (l: [UInt8]) in zip(fibonacci, l).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
        #expect(cost(lengths) <= cost(unlimited) * 1.03)
    }

    /// Optimality against the entropy bound: H ≤ average length < H + 1 (for unlimited codes).
    @Test func averageLengthIsWithinOneBitOfEntropy() throws {
        let symbols = skewed(100_000, alphabet: 64, seed: 7)
        let frequencies = HuffmanCode.histogram(symbols, alphabetSize: 64)
        let code = try HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: frequencies))
        let n = Double(symbols.count)
        let entropy = frequencies.filter { $0 > 0 }.reduce(0.0) { $0 - Double($1) / n * log2(Double($1) / n) }
        let average = Double(code.encodedBits(frequencies: frequencies)) / n
        #expect(average >= entropy && average < entropy + 1)
    }

    @Test func canonicalCodesFollowTheRFC1951Example() throws {
        // RFC 1951 §3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) give codes 010 011 100 101 110 00 1110 1111.
        let code = try HuffmanCode(lengths: [3, 3, 3, 3, 3, 2, 4, 4])
        let expected: [(UInt16, Int)] = [(0b010, 3), (0b011, 3), (0b100, 3), (0b101, 3), (0b110, 3), (0b00, 2), (0b1110, 4), (0b1111, 4)]
        for (symbol, (value, bits)) in expected.enumerated() {
            #expect(code.codes[symbol] == HuffmanCode.reverse(value, bits: bits))
        }
    }

    /// The worked example of docs/container-format.md.
    @Test func workedExampleOfTheSpec() throws {
        let code = try HuffmanCode(lengths: [3, 3, 3, 3, 3, 2, 4, 4])
        #expect(code.encode([UInt8(5), 0, 7]) == [0xE8, 0x01])
    }

    @Test func corruptTablesAndStreamsAreRejected() throws {
        #expect(throws: CodingError.self) { try HuffmanCode(lengths: [1, 1, 1]) }  // Kraft 3/2
        #expect(throws: CodingError.self) { try HuffmanCode(lengths: [16, 1]) }  // too long
        let symbols = skewed(1000, alphabet: 20, seed: 3)
        let code = try HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: HuffmanCode.histogram(symbols, alphabetSize: 20)))
        let encoded = code.encode(symbols)
        var decoded = [UInt16](repeating: 0, count: symbols.count + 500)
        #expect(throws: CodingError.self) {  // asks for more symbols than were coded
            try encoded.withUnsafeBytes { input in try decoded.withUnsafeMutableBufferPointer { try HuffmanDecoder(code).decode(input, into: $0) } }
        }
        // A single-symbol code leaves half the patterns unused: a stream of 1 bits is rejected.
        let single = try HuffmanCode(lengths: [0, 1])
        var out = [UInt8](repeating: 0, count: 8)
        #expect(throws: CodingError.self) {
            try [UInt8(0xFF)].withUnsafeBytes { input in try out.withUnsafeMutableBufferPointer { try HuffmanDecoder(single).decode(input, into: $0) } }
        }
        // Truncations never crash: they decode or throw.
        for cut in 0..<encoded.count {
            var small = [UInt16](repeating: 0, count: symbols.count)
            _ = try? Array(encoded.prefix(cut)).withUnsafeBytes { input in
                try small.withUnsafeMutableBufferPointer { try HuffmanDecoder(code).decode(input, into: $0) }
            }
        }
    }
}

@Suite struct ChecksumTests {
    @Test func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // 32 zero bytes (RFC 3720 B.4): 0x8A9136AA.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    }

    @Test func crc32cContinues() {
        var g = Generator(state: 1)
        let bytes = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &g) }
        let whole = CRC32C.checksum(bytes)
        let first = bytes[..<377].withUnsafeBytes { CRC32C.checksum($0) }
        let both = bytes[377...].withUnsafeBytes { CRC32C.checksum($0, continuing: first) }
        #expect(both == whole)
    }

    /// The instruction and the tables agree at every length and alignment (tables only where the
    /// machine lacks the instruction: then both sides are the tables).
    @Test func crc32cInstructionAndTablesAgree() {
        var g = Generator(state: 3)
        let bytes = (0..<4200).map { _ in UInt8.random(in: 0...255, using: &g) }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for count in [0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 1000, 4096] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<start + count])
                    #expect(
                        CRC32C.checksum(slice, continuing: 0x1234_5678) == CRC32C.softwareChecksum(slice, continuing: 0x1234_5678),
                        "start \(start) count \(count)")
                }
            }
        }
    }

    /// The encoder stores four codes at a time when they are at most 13 bits long and one at a time
    /// otherwise; both must give the bits of writing each code in turn.
    @Test func encodingIsEachCodeInTurnAtEveryLength() throws {
        var g = Generator(state: 9)
        let deep = (1...15).map { UInt8($0) } + [15]  // complete: 2^-1 + … + 2^-15 + 2^-15 = 1
        let shallow = try HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: (0..<256).map { 1 + $0 % 7 }))
        for code in [try HuffmanCode(lengths: deep), shallow] {
            for n in [0, 1, 3, 4, 5, 7, 8, 1001, 4096] {
                let symbols = (0..<n).map { _ in UInt8(Int.random(in: 0..<code.lengths.count, using: &g)) }
                var writer = BitWriter()
                for s in symbols { writer.write(UInt64(code.codes[Int(s)]), width: Int(code.lengths[Int(s)])) }
                #expect(code.encode(symbols) == writer.finish(), "longest \(code.longestLength), \(n) symbols")
            }
        }
    }

    @Test func bitWriterAndReaderAgree() {
        var g = Generator(state: 2)
        var writer = BitWriter()
        var items: [(UInt64, Int)] = []
        for _ in 0..<5000 {
            let width = Int.random(in: 0...56, using: &g)
            let value = UInt64.random(in: 0...UInt64.max, using: &g) & ((1 << UInt64(width)) &- 1)
            items.append((value, width))
            writer.write(value, width: width)
        }
        let bytes = writer.finish()
        bytes.withUnsafeBytes { raw in
            var reader = BitReader(raw)
            for (value, width) in items { #expect(reader.read(width: width) == value) }
            #expect(reader.read(width: 8) == nil || bytes.count * 8 - items.reduce(0) { $0 + $1.1 } >= 8)
        }
    }
}

@Suite struct HuffmanStreamsTests {
    @Test func fourStreamsRoundTrip() throws {
        for seed in 0..<40 as Range<UInt64> {
            var g = Generator(state: seed)
            let n = [0, 1, 3, 4, 5, 17, 1000, 99_999][Int(seed) % 8] + Int.random(in: 0...3, using: &g)
            let alphabet = [2, 32, 256][Int(seed) % 3]
            let symbols = skewed(n, alphabet: alphabet, seed: seed).map { UInt8($0) }
            let code = try HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: HuffmanCode.histogram(symbols, alphabetSize: 256)))
            let encoded = HuffmanStreams.encode(symbols, code: code)
            var decoded = [UInt8](repeating: 0, count: n)
            try encoded.withUnsafeBytes { input in
                try decoded.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(input, into: $0, decoder: HuffmanDecoder(code)) }
            }
            #expect(decoded == symbols, "seed \(seed) n \(n)")
            // Wide symbols too.
            let wide = symbols.map { UInt16($0) * 3 }
            let wideCode = try HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: HuffmanCode.histogram(wide, alphabetSize: 1024)))
            let wideEncoded = HuffmanStreams.encode(wide, code: wideCode)
            var wideDecoded = [UInt16](repeating: 0, count: n)
            try wideEncoded.withUnsafeBytes { input in
                try wideDecoded.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(input, into: $0, decoder: HuffmanDecoder(wideCode)) }
            }
            #expect(wideDecoded == wide)
        }
    }

    /// Near-flat byte streams take the one-symbol-per-lookup loop, skewed ones the pair loop; both
    /// must give back every symbol, at every length around the loops' round sizes.
    @Test func flatAndSkewedStreamsRoundTrip() throws {
        var g = Generator(state: 5)
        for n in [0, 1, 19, 20, 21, 79, 80, 81, 4096, 65_537] {
            let flat = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) | (Bool.random(using: &g) ? 0 : 1) }
            let skewed = (0..<n).map { _ in UInt8(min(15, Int(-log2(Double.random(in: 0.0001...1, using: &g))))) }
            for symbols in [flat, skewed] {
                let code = try HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: HuffmanCode.histogram(symbols, alphabetSize: 256)))
                let decoder = try HuffmanDecoder(code)
                let encoded = HuffmanStreams.encode(symbols, code: code)
                var decoded = [UInt8](repeating: 0, count: n)
                try encoded.withUnsafeBytes { input in
                    try decoded.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(input, into: $0, decoder: decoder) }
                }
                #expect(decoded == symbols, "n \(n)")
            }
        }
    }

    /// Decoding a block run by run gives what decoding it whole gives, for every run length,
    /// including runs that end inside a fast-loop round and blocks whose last stream is short.
    @Test func blocksDecodeRunByRun() throws {
        var g = Generator(state: 8)
        // Scale 8: codes of about 5 bits (one symbol per lookup); scale 1: about 1.5 bits (the pair table).
        for (n, scale) in [(1, 8.0), (5, 8), (13, 1), (1000, 8), (1000, 1), (40_001, 8), (40_001, 1)] {
            let symbols = (0..<n).map { _ in UInt8(min(60, Int(-scale * log2(Double.random(in: 0.0001...1, using: &g))))) }
            let code = try HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: HuffmanCode.histogram(symbols, alphabetSize: 256)))
            let decoder = try HuffmanDecoder(code)
            let encoded = HuffmanStreams.encode(symbols, code: code)
            for run in [1, 3, 7, 64, 4097, n] {
                var decoded = [UInt8](repeating: 0, count: n)
                try encoded.withUnsafeBytes { block in
                    var reader = try HuffmanStreamsReader(block, count: n, decoder: decoder)
                    try decoded.withUnsafeMutableBufferPointer { out in
                        while reader.done < reader.quarter {
                            let outputs = (0..<4).map { k in
                                let start = k * reader.quarter + reader.done
                                let length = max(0, min(run, reader.symbols(inStream: k) - reader.done))
                                return UnsafeMutableBufferPointer(rebasing: out[min(start, n)..<min(start, n) + length])
                            }
                            try reader.decodeNext(run, into: outputs)
                        }
                    }
                    try reader.finish()
                }
                #expect(decoded == symbols, "n \(n) run \(run)")
            }
            // A block cut short is found at the end, however it was read.
            if n > 100 {
                let cut = Array(encoded.prefix(encoded.count - 2))
                #expect(throws: CodingError.self) {
                    try cut.withUnsafeBytes { block in
                        var reader = try HuffmanStreamsReader(block, count: n, decoder: decoder)
                        var scratch = [UInt8](repeating: 0, count: 4 * 64)
                        try scratch.withUnsafeMutableBufferPointer { out in
                            while reader.done < reader.quarter {
                                let outputs = (0..<4).map { k in
                                    UnsafeMutableBufferPointer(rebasing: out[k * 64..<k * 64 + max(0, min(64, reader.symbols(inStream: k) - reader.done))])
                                }
                                try reader.decodeNext(64, into: outputs)
                            }
                        }
                        try reader.finish()
                    }
                }
            }
        }
    }

    /// An incomplete code (Kraft sum below 1) leaves bit patterns that start no code: a stream of
    /// them is refused, on the fast path and on the tail alike.
    @Test func patternsOfNoCodeAreRefused() throws {
        // Symbols 0 and 1 with lengths 1 and 2: codes 0 and 01 (read LSB first); the pattern 11 is no
        // code. With a third symbol of length 3 the codes are short enough for the pair table, and 111
        // is no code.
        for lengths: [UInt8] in [[1, 2], [1, 2, 3]] {
            let code = try HuffmanCode(lengths: lengths)
            let decoder = try HuffmanDecoder(code)
            #expect(code.kraftSum < 1)
            #expect((decoder.pairs != nil) == (lengths.count == 3))
            for count in [3, 400] {
                let symbols = [UInt8](repeating: 0, count: count)
                var encoded = HuffmanStreams.encode(symbols, code: code)
                var decoded = [UInt8](repeating: 9, count: count)
                try encoded.withUnsafeBytes { input in
                    try decoded.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(input, into: $0, decoder: decoder) }
                }
                #expect(decoded == symbols)
                // Stream 1's bytes all ones: every lookup meets the pattern 11.
                let first = Int(UInt32(encoded[0]) | UInt32(encoded[1]) << 8)
                for i in HuffmanStreams.headerBytes..<HuffmanStreams.headerBytes + first { encoded[i] = 0xFF }
                #expect(throws: CodingError.self) {
                    try encoded.withUnsafeBytes { input in
                        try decoded.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(input, into: $0, decoder: decoder) }
                    }
                }
            }
        }
    }

    /// Every truncation and every single bit flip of a block decodes to the right length or throws.
    @Test func corruptBlocksNeverCrash() throws {
        let symbols = skewed(3000, alphabet: 40, seed: 11).map { UInt8($0) }
        let code = try HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: HuffmanCode.histogram(symbols, alphabetSize: 256)))
        let encoded = HuffmanStreams.encode(symbols, code: code)
        let decoder = try HuffmanDecoder(code)
        var output = [UInt8](repeating: 0, count: symbols.count)
        var rejected = 0
        for cut in 0..<encoded.count {
            do {
                try Array(encoded.prefix(cut)).withUnsafeBytes { input in
                    try output.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(input, into: $0, decoder: decoder) }
                }
            } catch { rejected += 1 }
        }
        #expect(rejected >= encoded.count - 8)  // only the last byte or so may still hold every symbol
        for bit in stride(from: 0, to: HuffmanStreams.headerBytes * 8, by: 1) {
            var flipped = encoded
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            _ = try? flipped.withUnsafeBytes { input in
                try output.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(input, into: $0, decoder: decoder) }
            }
        }
    }
}
