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
        try decodeStreams(input, into: output, decoder: decoder, pairs: true)
    }

    public static func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt16>, decoder: HuffmanDecoder) throws {
        try decodeStreams(input, into: output, decoder: decoder)
    }

    @inline(__always)
    static func decodeStreams<T: FixedWidthInteger & UnsignedInteger>(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<T>, decoder: HuffmanDecoder, pairs: Bool = false) throws {
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
        // Pairs pay when a fair share of lookups yields two symbols (short codes, as exponents have);
        // for codes of half the table width or more they cost more than they give.
        if pairs, T.self == UInt8.self, decoder.maximumSymbol < 256, decoder.pairShare >= 0.25 {
            try decoder.decodeFourPairs(streams, into: outputs.map { UnsafeMutableBufferPointer(start: UnsafeMutableRawPointer($0.baseAddress)?.assumingMemoryBound(to: UInt8.self), count: $0.count) })
        } else {
            try decoder.decodeFour(streams, into: outputs)
        }
    }
}

extension HuffmanDecoder {
    /// Decodes four independent streams in one loop (their bit buffers advance in parallel), one
    /// symbol per lookup. No copy of the input: the fast loop loads whole words only while 8 bytes
    /// remain in every stream; each stream then finishes on its own, refilling byte by byte.
    @inline(__always)
    func decodeFour<T: FixedWidthInteger & UnsignedInteger>(_ inputs: [UnsafeRawBufferPointer], into outputs: [UnsafeMutableBufferPointer<T>]) throws {
        // A complete code (Kraft sum 1) leaves no bit pattern without a symbol: nothing to check per lookup.
        if isComplete {
            try decodeFour(inputs, into: outputs, checkingPatterns: false)
        } else {
            try decodeFour(inputs, into: outputs, checkingPatterns: true)
        }
    }

    @inline(__always)
    func decodeFour<T: FixedWidthInteger & UnsignedInteger>(_ inputs: [UnsafeRawBufferPointer], into outputs: [UnsafeMutableBufferPointer<T>], checkingPatterns: Bool) throws {
        let empty = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        defer { empty.deallocate() }
        let bases = inputs.map { $0.baseAddress ?? UnsafeRawPointer(empty) }
        let mask = UInt64(1 << tableBits) - 1
        let entries = table.withUnsafeBufferPointer { $0 }.baseAddress!  // `table` is immutable and outlives this call
        var flags: UInt32 = 0
        var position = [0, 0, 0, 0], available = [0, 0, 0, 0], buffer: [UInt64] = [0, 0, 0, 0]
        // Lockstep over the shortest output: each refill gives ≥ 56 bits, enough for five codes of
        // ≤ 11 bits or four of ≤ 14.
        let common = outputs.map(\.count).min()!
        var i = 0
        if tableBits * 4 <= 56 {
            let b0 = bases[0], b1 = bases[1], b2 = bases[2], b3 = bases[3]
            let o0 = outputs[0].baseAddress, o1 = outputs[1].baseAddress, o2 = outputs[2].baseAddress, o3 = outputs[3].baseAddress
            let e0 = inputs[0].count, e1 = inputs[1].count, e2 = inputs[2].count, e3 = inputs[3].count
            var p0 = 0, p1 = 0, p2 = 0, p3 = 0, a0 = 0, a1 = 0, a2 = 0, a3 = 0
            var x0: UInt64 = 0, x1: UInt64 = 0, x2: UInt64 = 0, x3: UInt64 = 0
            let perRefill = tableBits * 5 <= 56 ? 5 : 4
            // `&>>` shifts by the entry's low six bits, its length (the symbol sits above bit 8).
            @inline(__always) func step(_ j: Int) {
                let c0 = entries[Int(x0 & mask)], c1 = entries[Int(x1 & mask)], c2 = entries[Int(x2 & mask)], c3 = entries[Int(x3 & mask)]
                x0 &>>= UInt64(truncatingIfNeeded: c0); x1 &>>= UInt64(truncatingIfNeeded: c1)
                x2 &>>= UInt64(truncatingIfNeeded: c2); x3 &>>= UInt64(truncatingIfNeeded: c3)
                a0 &-= Int(c0 & 0xFF); a1 &-= Int(c1 & 0xFF); a2 &-= Int(c2 & 0xFF); a3 &-= Int(c3 & 0xFF)
                if checkingPatterns { flags |= c0 | c1 | c2 | c3 }
                o0![j] = T(truncatingIfNeeded: c0 &>> 8)
                o1![j] = T(truncatingIfNeeded: c1 &>> 8)
                o2![j] = T(truncatingIfNeeded: c2 &>> 8)
                o3![j] = T(truncatingIfNeeded: c3 &>> 8)
            }
            while i + perRefill <= common, p0 + 8 <= e0, p1 + 8 <= e1, p2 + 8 <= e2, p3 + 8 <= e3 {
                x0 |= UInt64(littleEndian: (b0 + p0).loadUnaligned(as: UInt64.self)) &<< UInt64(a0); p0 &+= (63 &- a0) &>> 3; a0 |= 56
                x1 |= UInt64(littleEndian: (b1 + p1).loadUnaligned(as: UInt64.self)) &<< UInt64(a1); p1 &+= (63 &- a1) &>> 3; a1 |= 56
                x2 |= UInt64(littleEndian: (b2 + p2).loadUnaligned(as: UInt64.self)) &<< UInt64(a2); p2 &+= (63 &- a2) &>> 3; a2 |= 56
                x3 |= UInt64(littleEndian: (b3 + p3).loadUnaligned(as: UInt64.self)) &<< UInt64(a3); p3 &+= (63 &- a3) &>> 3; a3 |= 56
                step(i); step(i + 1); step(i + 2); step(i + 3)
                if perRefill == 5 { step(i + 4) }
                i += perRefill
            }
            position = [p0, p1, p2, p3]
            available = [a0, a1, a2, a3]
            buffer = [x0, x1, x2, x3]
        }
        // Each stream finishes on its own, refilling byte by byte.
        for k in 0..<4 {
            var p = position[k], a = available[k], x = buffer[k]
            let base = bases[k], end = inputs[k].count, out = outputs[k]
            var j = i
            while j < out.count {
                while a <= 56, p < end {
                    x |= UInt64(base.load(fromByteOffset: p, as: UInt8.self)) &<< UInt64(a)
                    p += 1
                    a += 8
                }
                let c = entries[Int(x & mask)]
                x &>>= UInt64(c & 0xFF); a -= Int(c & 0xFF)
                flags |= c
                out[j] = T(truncatingIfNeeded: c >> 8)
                j += 1
            }
            position[k] = p
            available[k] = a
        }
        if flags & (1 << 31) != 0 { throw CodingError.invalidStream("a bit pattern matches no code") }
        // Bits consumed must lie inside each stream (past its end the buffer holds zeros).
        for k in 0..<4 where position[k] * 8 - available[k] > inputs[k].count * 8 {
            throw CodingError.invalidStream("stream \(k + 1) ends before its \(outputs[k].count) symbols are decoded")
        }
    }
}

/// Two symbols per lookup, for byte alphabets: each entry of a table of 2^L entries (L the longest
/// code) holds the symbol its low bits start with and, when the following code fits in the bits that
/// remain, that symbol too, with their total length.
struct PairTable: Sendable {
    /// symbol1 | symbol2 << 8 | bits << 16 | count << 24 (count 1 or 2); bit 31 marks an invalid pattern.
    let entries: [UInt32]
    let tableBits: Int

    init(_ decoder: HuffmanDecoder) {
        let bits = decoder.tableBits
        let single = decoder.table
        var entries = [UInt32](repeating: 0, count: 1 << bits)
        for index in 0..<(1 << bits) {
            let first = single[index]
            if first & (1 << 31) != 0 { entries[index] = 1 << 31 | 1 << 16 | 1 << 24; continue }
            let firstLength = Int(first & 0xFF)
            let remaining = bits - firstLength
            var entry = (first >> 8) & 0xFF | UInt32(firstLength) << 16 | 1 << 24
            if remaining > 0 {
                let second = single[index >> firstLength]
                let secondLength = Int(second & 0xFF)
                if second & (1 << 31) == 0, secondLength <= remaining {
                    entry = (first >> 8) & 0xFF | ((second >> 8) & 0xFF) << 8 | UInt32(firstLength + secondLength) << 16 | 2 << 24
                }
            }
            entries[index] = entry
        }
        self.entries = entries
        tableBits = bits
    }
}

extension HuffmanDecoder {
    /// Four streams, byte symbols, up to two symbols per lookup.
    func decodeFourPairs(_ inputs: [UnsafeRawBufferPointer], into outputs: [UnsafeMutableBufferPointer<UInt8>]) throws {
        let pairs = PairTable(self)
        // No copy of the input: the fast loop loads whole words only while 8 bytes remain, the
        // tail refills byte by byte.
        let empty = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        defer { empty.deallocate() }
        let bases = inputs.map { $0.baseAddress ?? UnsafeRawPointer(empty) }
        let mask = UInt64(1 << tableBits) - 1
        let table = pairs.entries.withUnsafeBufferPointer { $0 }.baseAddress!
        let single = self.table.withUnsafeBufferPointer { $0 }.baseAddress!
        var flags: UInt32 = 0
        var position = [0, 0, 0, 0], available = [0, 0, 0, 0], buffer: [UInt64] = [0, 0, 0, 0], done = [0, 0, 0, 0]
        if tableBits * 4 <= 56 {
            let b0 = bases[0], b1 = bases[1], b2 = bases[2], b3 = bases[3]
            let o0 = UnsafeMutableRawPointer(outputs[0].baseAddress!), o1 = UnsafeMutableRawPointer(outputs[1].baseAddress!), o2 = UnsafeMutableRawPointer(outputs[2].baseAddress!), o3 = UnsafeMutableRawPointer(outputs[3].baseAddress!)
            let n0 = outputs[0].count, n1 = outputs[1].count, n2 = outputs[2].count, n3 = outputs[3].count
            let e0 = inputs[0].count, e1 = inputs[1].count, e2 = inputs[2].count, e3 = inputs[3].count
            var p0 = 0, p1 = 0, p2 = 0, p3 = 0, a0 = 0, a1 = 0, a2 = 0, a3 = 0
            var x0: UInt64 = 0, x1: UInt64 = 0, x2: UInt64 = 0, x3: UInt64 = 0
            var i0 = 0, i1 = 0, i2 = 0, i3 = 0
            // Each round: one refill (≥ 56 bits) per stream, then as many lookups as whole codes fit —
            // five when codes are at most 11 bits, else four — writing up to two symbols each.
            let five = tableBits <= 11
            let room = five ? 10 : 8
            while i0 + room <= n0, i1 + room <= n1, i2 + room <= n2, i3 + room <= n3, p0 + 8 <= e0, p1 + 8 <= e1, p2 + 8 <= e2, p3 + 8 <= e3 {
                x0 |= UInt64(littleEndian: (b0 + p0).loadUnaligned(as: UInt64.self)) &<< UInt64(a0); p0 &+= (63 &- a0) &>> 3; a0 |= 56
                x1 |= UInt64(littleEndian: (b1 + p1).loadUnaligned(as: UInt64.self)) &<< UInt64(a1); p1 &+= (63 &- a1) &>> 3; a1 |= 56
                x2 |= UInt64(littleEndian: (b2 + p2).loadUnaligned(as: UInt64.self)) &<< UInt64(a2); p2 &+= (63 &- a2) &>> 3; a2 |= 56
                x3 |= UInt64(littleEndian: (b3 + p3).loadUnaligned(as: UInt64.self)) &<< UInt64(a3); p3 &+= (63 &- a3) &>> 3; a3 |= 56
                @inline(__always) func step() {
                    let c0 = table[Int(x0 & mask)], c1 = table[Int(x1 & mask)], c2 = table[Int(x2 & mask)], c3 = table[Int(x3 & mask)]
                    flags |= c0 | c1 | c2 | c3
                    (o0 + i0).storeBytes(of: UInt16(truncatingIfNeeded: c0).littleEndian, as: UInt16.self)
                    (o1 + i1).storeBytes(of: UInt16(truncatingIfNeeded: c1).littleEndian, as: UInt16.self)
                    (o2 + i2).storeBytes(of: UInt16(truncatingIfNeeded: c2).littleEndian, as: UInt16.self)
                    (o3 + i3).storeBytes(of: UInt16(truncatingIfNeeded: c3).littleEndian, as: UInt16.self)
                    let l0 = Int((c0 >> 16) & 0xFF), l1 = Int((c1 >> 16) & 0xFF), l2 = Int((c2 >> 16) & 0xFF), l3 = Int((c3 >> 16) & 0xFF)
                    x0 &>>= UInt64(l0); x1 &>>= UInt64(l1); x2 &>>= UInt64(l2); x3 &>>= UInt64(l3)
                    a0 &-= l0; a1 &-= l1; a2 &-= l2; a3 &-= l3
                    i0 += Int((c0 >> 24) & 3); i1 += Int((c1 >> 24) & 3); i2 += Int((c2 >> 24) & 3); i3 += Int((c3 >> 24) & 3)
                }
                step(); step(); step(); step()
                if five { step() }
            }
            position = [p0, p1, p2, p3]; available = [a0, a1, a2, a3]; buffer = [x0, x1, x2, x3]; done = [i0, i1, i2, i3]
        }
        // Each stream finishes one symbol per lookup.
        for k in 0..<4 {
            var p = position[k], a = available[k], x = buffer[k], i = done[k]
            let base = bases[k], end = inputs[k].count, out = outputs[k]
            while i < out.count {
                while a <= 56, p < end {
                    x |= UInt64(base.load(fromByteOffset: p, as: UInt8.self)) << UInt64(a)
                    p += 1
                    a += 8
                }
                let c = single[Int(x & mask)]
                x &>>= UInt64(c & 0xFF); a -= Int(c & 0xFF)
                flags |= c & (1 << 31)
                out[i] = UInt8(truncatingIfNeeded: c >> 8)
                i += 1
            }
            position[k] = p
            available[k] = a
        }
        if flags & (1 << 31) != 0 { throw CodingError.invalidStream("a bit pattern matches no code") }
        for k in 0..<4 where position[k] * 8 - available[k] > inputs[k].count * 8 {
            throw CodingError.invalidStream("stream \(k + 1) ends before its \(outputs[k].count) symbols are decoded")
        }
    }
}
