/// Four interleaved Huffman streams, so that one decoding loop keeps four independent bit
/// buffers busy (the idea of zstd's `HUF_decompress4X`).
///
/// Layout (all integers little-endian):
///
/// | bytes | field |
/// |---|---|
/// | 0–3 | byte length of stream 1 (UInt32) |
/// | 4–7 | byte length of stream 2 |
/// | 8–11 | byte length of stream 3 |
/// | 12… | streams 1, 2, 3, 4 back to back; stream 4 takes the remaining bytes |
///
/// With `n` symbols and `q = ⌈n / 4⌉`, stream k (1-based) holds symbols `(k−1)·q ..< min(k·q, n)`.
/// Each stream is coded independently, least-significant bit first, zero-padded to a byte.
public enum HuffmanStreams {
    public static let headerBytes = 12

    public static func encode(_ symbols: [UInt8], code: HuffmanCode) -> [UInt8] {
        symbols.withUnsafeBufferPointer { encode($0, code: code) }
    }

    public static func encode(_ symbols: [UInt16], code: HuffmanCode) -> [UInt8] {
        symbols.withUnsafeBufferPointer { encode($0, code: code) }
    }

    @inline(__always)
    static func encode<T: FixedWidthInteger & UnsignedInteger>(_ symbols: UnsafeBufferPointer<T>, code: HuffmanCode) -> [UInt8] {
        let quarter = (symbols.count + 3) / 4
        let parts = (0..<4).map { k in
            code.encodeSymbols(UnsafeBufferPointer(rebasing: symbols[min(k * quarter, symbols.count) ..< min((k + 1) * quarter, symbols.count)]))
        }
        var output = [UInt8]()
        output.reserveCapacity(headerBytes + parts.reduce(0) { $0 + $1.count })
        for part in parts.prefix(3) { withUnsafeBytes(of: UInt32(part.count).littleEndian) { output.append(contentsOf: $0) } }
        for part in parts { output.append(contentsOf: part) }
        return output
    }

    public static func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt8>, decoder: HuffmanDecoder) throws {
        try decodeStreams(input, into: output, decoder: decoder)
    }

    public static func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt16>, decoder: HuffmanDecoder) throws {
        try decodeStreams(input, into: output, decoder: decoder)
    }

    @inline(__always)
    static func decodeStreams<T: FixedWidthInteger & UnsignedInteger>(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<T>, decoder: HuffmanDecoder) throws {
        guard input.count >= headerBytes else {
            throw CodingError.invalidStream("4-stream block of \(input.count) bytes is shorter than its \(headerBytes)-byte header")
        }
        var starts = [headerBytes]
        for k in 0..<3 {
            let length = Int(UInt32(littleEndian: input.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self)))
            let (end, overflow) = starts[k].addingReportingOverflow(length)
            guard !overflow, end <= input.count else {
                throw CodingError.invalidStream("stream \(k + 1) declares \(length) bytes; only \(input.count - starts[k]) remain")
            }
            starts.append(end)
        }
        starts.append(input.count)
        let n = output.count, quarter = (n + 3) / 4
        let streams = (0..<4).map { k in UnsafeRawBufferPointer(rebasing: input[starts[k] ..< starts[k + 1]]) }
        let outputs = (0..<4).map { k in UnsafeMutableBufferPointer(rebasing: output[min(k * quarter, n) ..< min((k + 1) * quarter, n)]) }
        try decoder.decodeFour(streams, into: outputs)
    }
}

extension HuffmanDecoder {
    /// Decodes four independent streams in one loop (their bit buffers advance in parallel).
    @inline(__always)
    func decodeFour<T: FixedWidthInteger & UnsignedInteger>(_ inputs: [UnsafeRawBufferPointer], into outputs: [UnsafeMutableBufferPointer<T>]) throws {
        // Pad every stream with 8 zero bytes so refills may load whole words.
        let total = inputs.reduce(0) { $0 + $1.count + 8 }
        let padded = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 8)
        defer { padded.deallocate() }
        padded.initializeMemory(as: UInt8.self, repeating: 0)
        var bases: [UnsafeMutableRawPointer] = []
        var offset = 0
        for input in inputs {
            let base = padded.baseAddress! + offset
            if input.count > 0 { base.copyMemory(from: input.baseAddress!, byteCount: input.count) }
            bases.append(base)
            offset += input.count + 8
        }
        let mask = UInt64(1 << tableBits) - 1
        let entries = table.withUnsafeBufferPointer { $0 }.baseAddress!
        let ends = inputs.map(\.count)
        var position = [0, 0, 0, 0], available = [0, 0, 0, 0], buffer: [UInt64] = [0, 0, 0, 0]
        var flags: UInt32 = 0
        // Lockstep over the shortest output: each refill gives ≥ 56 bits, enough for 4 codes of ≤ 12 bits.
        let common = outputs.map(\.count).min()!
        if tableBits * 4 <= 56 {
            let b0 = bases[0], b1 = bases[1], b2 = bases[2], b3 = bases[3]
            let o0 = outputs[0].baseAddress, o1 = outputs[1].baseAddress, o2 = outputs[2].baseAddress, o3 = outputs[3].baseAddress
            var p0 = 0, p1 = 0, p2 = 0, p3 = 0, a0 = 0, a1 = 0, a2 = 0, a3 = 0
            var x0: UInt64 = 0, x1: UInt64 = 0, x2: UInt64 = 0, x3: UInt64 = 0
            let e0 = ends[0], e1 = ends[1], e2 = ends[2], e3 = ends[3]
            var i = 0
            while i + 4 <= common, p0 <= e0, p1 <= e1, p2 <= e2, p3 <= e3 {
                x0 |= UInt64(littleEndian: (b0 + p0).loadUnaligned(as: UInt64.self)) << UInt64(a0); p0 += (63 - a0) >> 3; a0 |= 56
                x1 |= UInt64(littleEndian: (b1 + p1).loadUnaligned(as: UInt64.self)) << UInt64(a1); p1 += (63 - a1) >> 3; a1 |= 56
                x2 |= UInt64(littleEndian: (b2 + p2).loadUnaligned(as: UInt64.self)) << UInt64(a2); p2 += (63 - a2) >> 3; a2 |= 56
                x3 |= UInt64(littleEndian: (b3 + p3).loadUnaligned(as: UInt64.self)) << UInt64(a3); p3 += (63 - a3) >> 3; a3 |= 56
                for j in 0..<4 {
                    let c0 = entries[Int(x0 & mask)], c1 = entries[Int(x1 & mask)], c2 = entries[Int(x2 & mask)], c3 = entries[Int(x3 & mask)]
                    x0 >>= UInt64(c0 & 0xFF); x1 >>= UInt64(c1 & 0xFF); x2 >>= UInt64(c2 & 0xFF); x3 >>= UInt64(c3 & 0xFF)
                    a0 -= Int(c0 & 0xFF); a1 -= Int(c1 & 0xFF); a2 -= Int(c2 & 0xFF); a3 -= Int(c3 & 0xFF)
                    flags |= c0 | c1 | c2 | c3
                    o0![i + j] = T(truncatingIfNeeded: c0 >> 8)
                    o1![i + j] = T(truncatingIfNeeded: c1 >> 8)
                    o2![i + j] = T(truncatingIfNeeded: c2 >> 8)
                    o3![i + j] = T(truncatingIfNeeded: c3 >> 8)
                }
                i += 4
            }
            position = [p0, p1, p2, p3]
            available = [a0, a1, a2, a3]
            buffer = [x0, x1, x2, x3]
            // Each stream finishes on its own.
            for k in 0..<4 {
                var p = position[k], a = available[k], x = buffer[k]
                let base = bases[k], end = ends[k], out = outputs[k]
                var j = i
                while j < out.count {
                    if p <= end {
                        x |= UInt64(littleEndian: (base + p).loadUnaligned(as: UInt64.self)) << UInt64(a); p += (63 - a) >> 3; a |= 56
                    }
                    let c = entries[Int(x & mask)]
                    x >>= UInt64(c & 0xFF); a -= Int(c & 0xFF)
                    flags |= c
                    out[j] = T(truncatingIfNeeded: c >> 8)
                    j += 1
                }
                position[k] = p
                available[k] = a
            }
        } else {
            for k in 0..<4 {
                try decodeSymbols(inputs[k], into: outputs[k])
            }
            return
        }
        if flags & (1 << 31) != 0 { throw CodingError.invalidStream("a bit pattern matches no code") }
        for k in 0..<4 where position[k] * 8 - available[k] > ends[k] * 8 {
            throw CodingError.invalidStream("stream \(k + 1) ends before its \(outputs[k].count) symbols are decoded")
        }
    }
}
