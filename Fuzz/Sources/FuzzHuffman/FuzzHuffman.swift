import PithCoding
import PithFuzzSupport

/// The Huffman decoder, two ways (after zstd's `huf_round_trip.c` and `huf_decompress.c` fuzzers):
///
/// - **Decoding any block** (first byte even): byte 1 bit 0 picks 8- or 16-bit symbols; then the
///   number of code lengths (one byte, or two for 16-bit symbols, at most 4,096) and the lengths, two
///   per byte (low nibble first); then the symbol count (two bytes); the rest is a four-stream
///   block. The table must be refused or decoded; whole-block decoding, run-by-run decoding (run
///   length from byte 1) and the single-stream decoder must agree on success and on the symbols.
/// - **Round trip** (first byte odd): the rest as 8-bit symbols (or 16-bit below 2^11 when bit 1 of
///   the first byte is set), coded with the lengths their histogram gives (at most 1 + byte 1 mod
///   11 bits, where the alphabet allows), must decode to themselves, whole and run by run.
@main enum FuzzHuffman {
    static func main() {
        runFuzzer { bytes in
            var input = FuzzInput(bytes)
            let mode = input.byte()
            if mode & 1 == 0 { decodeAnything(&input) } else { roundTrip(&input, wide: mode & 2 != 0) }
        }
    }

    static func decodeAnything(_ input: inout FuzzInput) {
        let options = input.byte()
        let wide = options & 1 != 0
        let run = Int(options >> 1) + 1
        let lengthCount = wide ? min(Int(input.uint16()), 4096) : Int(input.byte())
        var lengths: [UInt8] = []
        while lengths.count < lengthCount {
            let b = input.byte()
            lengths.append(b & 15)
            if lengths.count < lengthCount { lengths.append(b >> 4) }
        }
        let count = Int(input.uint16())
        let block = input.rest()
        guard let code = try? HuffmanCode(lengths: lengths), let decoder = try? HuffmanDecoder(code) else { return }
        if wide {
            check(block, count: count, run: run, decoder: decoder, as: UInt16.self)
        } else {
            check(block, count: count, run: run, decoder: decoder, as: UInt8.self)
        }
        // The single-stream decoder on the same bytes.
        var single = [UInt8](repeating: 0, count: count)
        _ = try? single.withUnsafeMutableBufferPointer { try decoder.decode(block, into: $0) }
    }

    /// Whole-block and run-by-run decoding of `block` agree: both fail, or both give the same symbols.
    static func check<T: FixedWidthInteger & UnsignedInteger>(
        _ block: UnsafeRawBufferPointer, count: Int, run: Int, decoder: HuffmanDecoder, as: T.Type
    ) {
        let whole = decodeWhole(block, count: count, decoder: decoder, as: T.self)
        let runs = decodeRuns(block, count: count, run: run, decoder: decoder, as: T.self)
        guard whole == runs else {
            fatalError(
                "whole-block decoding gives \(whole.map { "\($0.count) symbols" } ?? "an error"), run by run \(runs.map { "\($0.count) symbols" } ?? "an error")"
            )
        }
    }

    static func decodeWhole<T: FixedWidthInteger & UnsignedInteger>(_ block: UnsafeRawBufferPointer, count: Int, decoder: HuffmanDecoder, as: T.Type) -> [T]? {
        var output = [T](repeating: 0, count: count)
        do {
            try output.withUnsafeMutableBufferPointer { out in
                if T.self == UInt8.self {
                    try HuffmanStreams.decode(block, into: UnsafeMutableRawBufferPointer(out).bindMemory(to: UInt8.self), decoder: decoder)
                } else {
                    try HuffmanStreams.decode(block, into: UnsafeMutableRawBufferPointer(out).bindMemory(to: UInt16.self), decoder: decoder)
                }
            }
        } catch { return nil }
        return output
    }

    /// Decodes `run` symbols of every stream at a time into the stream's part of the output.
    static func decodeRuns<T: FixedWidthInteger & UnsignedInteger>(
        _ block: UnsafeRawBufferPointer, count: Int, run: Int, decoder: HuffmanDecoder, as: T.Type
    ) -> [T]? {
        var output = [T](repeating: 0, count: count)
        do {
            var reader = try HuffmanStreamsReader(block, count: count, decoder: decoder)
            let quarter = reader.quarter
            try output.withUnsafeMutableBufferPointer { out in
                let raw = UnsafeMutableRawBufferPointer(out)
                while reader.done < quarter {
                    let done = reader.done
                    let ranges = (0..<4).map { k -> Range<Int> in
                        let n = max(0, min(run, reader.symbols(inStream: k) - done))
                        let start = min(k * quarter + done, count)
                        return start..<start + n
                    }
                    if T.self == UInt8.self {
                        let symbols = raw.bindMemory(to: UInt8.self)
                        try reader.decodeNext(run, into: ranges.map { UnsafeMutableBufferPointer(rebasing: symbols[$0]) })
                    } else {
                        let symbols = raw.bindMemory(to: UInt16.self)
                        try reader.decodeNext(run, into: ranges.map { UnsafeMutableBufferPointer(rebasing: symbols[$0]) })
                    }
                }
            }
            try reader.finish()
        } catch { return nil }
        return output
    }

    static func roundTrip(_ input: inout FuzzInput, wide: Bool) {
        let limit = Int(input.byte() % UInt8(HuffmanCode.maximumLength)) + 1
        let rest = input.rest()
        if wide {
            // 16-bit symbols below 2^11, from pairs of bytes.
            var symbols: [UInt16] = []
            for i in 0..<rest.count / 2 {
                let low = UInt16(rest[2 * i]), high = UInt16(rest[2 * i + 1])
                symbols.append((low | high << 8) & 0x7FF)
            }
            let frequencies = HuffmanCode.histogram(symbols, alphabetSize: 1 << 11)
            let used = frequencies.filter { $0 > 0 }.count
            let maximumLength = max(limit, bitsFor(used))
            guard let code = try? HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: frequencies, maximumLength: maximumLength)),
                let decoder = try? HuffmanDecoder(code)
            else { fatalError("the lengths the encoder chose are refused") }
            let block = HuffmanStreams.encode(symbols, code: code)
            let back = block.withUnsafeBytes { decodeWhole($0, count: symbols.count, decoder: decoder, as: UInt16.self) }
            guard back == symbols else { fatalError("round trip of \(symbols.count) 16-bit symbols differs") }
            let runs = block.withUnsafeBytes { decodeRuns($0, count: symbols.count, run: limit * 3, decoder: decoder, as: UInt16.self) }
            guard runs == symbols else { fatalError("run-by-run round trip of \(symbols.count) 16-bit symbols differs") }
        } else {
            let symbols = Array(rest)
            let frequencies = HuffmanCode.histogram(symbols, alphabetSize: 256)
            let used = frequencies.filter { $0 > 0 }.count
            let maximumLength = max(limit, bitsFor(used))
            guard let code = try? HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: frequencies, maximumLength: maximumLength)),
                let decoder = try? HuffmanDecoder(code)
            else { fatalError("the lengths the encoder chose are refused") }
            let block = HuffmanStreams.encode(symbols, code: code)
            let back = block.withUnsafeBytes { decodeWhole($0, count: symbols.count, decoder: decoder, as: UInt8.self) }
            guard back == symbols else { fatalError("round trip of \(symbols.count) 8-bit symbols differs") }
            let runs = block.withUnsafeBytes { decodeRuns($0, count: symbols.count, run: limit * 3, decoder: decoder, as: UInt8.self) }
            guard runs == symbols else { fatalError("run-by-run round trip of \(symbols.count) 8-bit symbols differs") }
            let single = code.encode(symbols)
            var again = [UInt8](repeating: 0, count: symbols.count)
            do { try single.withUnsafeBytes { coded in try again.withUnsafeMutableBufferPointer { try decoder.decode(coded, into: $0) } } } catch {
                fatalError("single-stream round trip fails: \(error)")
            }
            guard again == symbols else { fatalError("single-stream round trip of \(symbols.count) symbols differs") }
        }
    }

    /// Bits a code needs to give `n` symbols codes (at least 1).
    static func bitsFor(_ n: Int) -> Int {
        var bits = 1
        while 1 << bits < n { bits += 1 }
        return bits
    }
}
