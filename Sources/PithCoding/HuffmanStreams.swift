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
        let parts = (0..<4).map { k in code.encodeSymbols(UnsafeBufferPointer(rebasing: symbols[stream(k, of: symbols.count)])) }
        var output = header(streamLengths: parts.map(\.count))
        output.reserveCapacity(headerBytes + parts.reduce(0) { $0 + $1.count })
        for part in parts { output.append(contentsOf: part) }
        return output
    }

    // A block made one stream at a time — `header(streamLengths:)` followed by `HuffmanCode.encode`
    // of the symbols of each of `stream(0…3, of:)` — is the same bytes as `encode` of all of them,
    // for a writer that codes the four streams of a large block on several cores, or without
    // holding all its symbols at once.

    /// The symbols stream `k` (0-based) of a block of `count` symbols holds.
    public static func stream(_ k: Int, of count: Int) -> Range<Int> {
        let quarter = (count + 3) / 4
        return min(k * quarter, count)..<min((k + 1) * quarter, count)
    }

    /// The block header: the byte lengths of streams 1–3 (the fourth's is implied).
    public static func header(streamLengths: [Int]) -> [UInt8] {
        var output = [UInt8]()
        for length in streamLengths.prefix(3) { withUnsafeBytes(of: UInt32(length).littleEndian) { output.append(contentsOf: $0) } }
        return output
    }

    public static func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt8>, decoder: HuffmanDecoder) throws {
        try decodeWhole(input, into: output, decoder: decoder)
    }

    public static func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt16>, decoder: HuffmanDecoder) throws {
        try decodeWhole(input, into: output, decoder: decoder)
    }

    @inline(__always)
    static func decodeWhole<T: FixedWidthInteger & UnsignedInteger>(
        _ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<T>, decoder: HuffmanDecoder
    ) throws {
        var reader = try HuffmanStreamsReader(input, count: output.count, decoder: decoder)
        let n = output.count, quarter = reader.quarter
        try reader.decodeRun(quarter, into: (0..<4).map { k in UnsafeMutableBufferPointer(rebasing: output[min(k * quarter, n)..<min((k + 1) * quarter, n)]) })
        try reader.finish()
    }
}

/// Decodes a four-stream block (`HuffmanStreams`) a run of symbols at a time: each call gives the
/// next symbols of all four streams, so a caller can turn a large block into output piece by piece
/// with scratch memory the size of one piece. Symbols `(k−1)·quarter + done ..< …` come from stream k.
public struct HuffmanStreamsReader {
    let decoder: HuffmanDecoder
    let streams: [UnsafeRawBufferPointer]
    /// Symbols of streams 1–3; stream 4 holds `count − 3·quarter` (possibly fewer, or none).
    public let quarter: Int
    public let count: Int
    /// Symbols decoded from each stream so far (the same for all four, each capped at its length).
    public private(set) var done = 0
    var state = HuffmanDecoder.FourState()

    /// Reads the block's header; throws when its stream lengths run past the block.
    public init(_ block: UnsafeRawBufferPointer, count: Int, decoder: HuffmanDecoder) throws {
        let headerBytes = HuffmanStreams.headerBytes
        guard block.count >= headerBytes else {
            throw CodingError.invalidStream("4-stream block of \(block.count) bytes is shorter than its \(headerBytes)-byte header")
        }
        var starts = [headerBytes]
        for k in 0..<3 {
            let length = Int(UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self)))
            let (end, overflow) = starts[k].addingReportingOverflow(length)
            guard !overflow, end <= block.count else {
                throw CodingError.invalidStream("stream \(k + 1) declares \(length) bytes; only \(block.count - starts[k]) remain")
            }
            starts.append(end)
        }
        starts.append(block.count)
        streams = (0..<4).map { k in UnsafeRawBufferPointer(rebasing: block[starts[k]..<starts[k + 1]]) }
        self.decoder = decoder
        self.count = count
        quarter = (count + 3) / 4
    }

    /// Symbols stream `k` (0-based) holds.
    public func symbols(inStream k: Int) -> Int { max(0, min(quarter, count - k * quarter)) }

    /// Decodes the next `n` symbols of every stream (fewer where a stream ends) into `outputs[k]`,
    /// which must hold exactly that many.
    public mutating func decodeNext(_ n: Int, into outputs: [UnsafeMutableBufferPointer<UInt8>]) throws {
        try decodeRun(n, into: outputs)
    }

    public mutating func decodeNext(_ n: Int, into outputs: [UnsafeMutableBufferPointer<UInt16>]) throws {
        try decodeRun(n, into: outputs)
    }

    /// Generic over the symbol type but specialized for each, inside this module.
    @inline(__always)
    mutating func decodeRun<T: FixedWidthInteger & UnsignedInteger>(_ n: Int, into outputs: [UnsafeMutableBufferPointer<T>]) throws {
        for k in 0..<4 {
            let expected = max(0, min(n, symbols(inStream: k) - done))
            guard outputs[k].count == expected else {
                throw CodingError.invalidStream("stream \(k + 1): \(outputs[k].count) symbols asked for, \(expected) remain in this run")
            }
        }
        decoder.decodeFour(streams, into: outputs, state: &state)
        done = min(quarter, done + n)
    }

    /// Throws if a bit pattern matched no code, or a stream's symbols needed more bits than it has.
    public func finish() throws {
        if state.flags & (1 << 31) != 0 { throw CodingError.invalidStream("a bit pattern matches no code") }
        // Bits consumed must lie inside each stream (past its end the buffer holds zeros).
        for k in 0..<4 where state.position[k] * 8 - state.available[k] > streams[k].count * 8 {
            throw CodingError.invalidStream("stream \(k + 1) ends before its \(symbols(inStream: k)) symbols are decoded")
        }
    }
}

extension HuffmanDecoder {
    /// Where four streams stand between runs: bytes read, unread bits and those bits, and the OR
    /// of every table entry used (bit 31: a pattern that matches no code).
    struct FourState {
        var position = [0, 0, 0, 0]
        var available = [0, 0, 0, 0]
        var buffer: [UInt64] = [0, 0, 0, 0]
        var flags: UInt32 = 0

        /// Stream k's bit buffer in the fast loops' form — its unread bits with a sentinel 1 above
        /// them — and its read position.
        @inline(__always)
        func loaded(_ k: Int, _ bases: [UnsafeRawPointer]) -> (UInt64, UnsafeRawPointer) {
            (buffer[k] | 1 &<< UInt64(available[k]), bases[k] + position[k])
        }

        /// Back from the fast loops' form: the unread-bit count is the sentinel's position.
        @inline(__always)
        mutating func save(_ streams: [(UInt64, UnsafeRawPointer)], bases: [UnsafeRawPointer]) {
            for (k, (x, r)) in streams.enumerated() {
                let top = 63 - x.leadingZeroBitCount
                position[k] = bases[k].distance(to: r)
                available[k] = top
                buffer[k] = x ^ (1 << UInt64(top))
            }
        }
    }

    /// Rounds the fast loops may run from `r` without a check: a refill moves at most 7 bytes, and
    /// a round needs 8 loadable bytes at its start.
    @inline(__always)
    static func safeRounds(_ r: UnsafeRawPointer, base: UnsafeRawPointer, end: Int) -> Int {
        let left = base.distance(to: r + 8) <= end ? end - base.distance(to: r) - 8 : -1
        return left < 0 ? 0 : left / 7 + 1
    }

    /// Tops up a sentinel bit buffer with the whole bytes that fit below bit 64 and moves the sentinel
    /// above them.
    @inline(__always)
    static func refill(_ x: inout UInt64, _ r: inout UnsafeRawPointer) {
        let top = UInt64(63 &- x.leadingZeroBitCount)  // unread bits
        let take = (63 &- top) &>> 3  // whole bytes that fit
        let word = UInt64(littleEndian: r.loadUnaligned(as: UInt64.self))
        let fresh = (word & ((1 &<< (take &<< 3)) &- 1)) | (1 &<< (take &<< 3))  // the bytes and a new sentinel
        x = (x ^ (1 &<< top)) | (fresh &<< top)
        r += Int(take)
    }

    /// Decodes the next `outputs[k].count` symbols of each of four independent streams, their bit
    /// buffers advancing in one loop, one symbol per lookup. No copy of the input: the fast loop
    /// loads whole words only while 8 bytes remain in every stream; each stream then finishes on
    /// its own, refilling byte by byte. Errors are left in `state` for `HuffmanStreamsReader.finish`.
    @inline(__always)
    func decodeFour<T: FixedWidthInteger & UnsignedInteger>(
        _ inputs: [UnsafeRawBufferPointer], into outputs: [UnsafeMutableBufferPointer<T>], state: inout FourState
    ) {
        let empty = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        defer { empty.deallocate() }
        let bases = inputs.map { $0.baseAddress ?? UnsafeRawPointer(empty) }
        let mask = UInt64(1 << tableBits) - 1
        let entries = table.withUnsafeBufferPointer { $0 }.baseAddress!  // `table` is immutable and outlives this call
        // Lockstep over the shortest output: each refill gives ≥ 56 bits, enough for five codes of
        // ≤ 11 bits or four of ≤ 14.
        let common = outputs.map(\.count).min()!
        var i = 0
        var done = [0, 0, 0, 0]
        let counts = inputs.map(\.count)
        // A complete code (Kraft sum 1) leaves no bit pattern without a symbol: nothing to check per lookup.
        if T.self == UInt8.self, let pairs {
            let bytes = outputs.map { UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self) }
            let pairEntries = pairs.withUnsafeBufferPointer { $0 }.baseAddress!  // immutable, outlives this call
            done =
                isComplete
                ? fastFourPairs(bases, counts, bytes, outputs.map(\.count), entries: pairEntries, shape: CompleteCode.self, state: &state)
                : fastFourPairs(bases, counts, bytes, outputs.map(\.count), entries: pairEntries, shape: IncompleteCode.self, state: &state)
        } else {
            if tableBits == HuffmanCode.maximumLength, isComplete {
                i = fastFour(bases, counts, outputs, common: common, entries: entries, shape: CompleteCode.self, mask: 0x7FF, state: &state)
            } else if tableBits == HuffmanCode.maximumLength {
                i = fastFour(bases, counts, outputs, common: common, entries: entries, shape: IncompleteCode.self, mask: 0x7FF, state: &state)
            } else if tableBits * 4 <= 56 {
                i = fastFour(bases, counts, outputs, common: common, entries: entries, shape: LongCode.self, mask: mask, state: &state)
            }
            done = [i, i, i, i]
        }
        // Each stream finishes on its own, refilling byte by byte (to at most 63 unread bits, so
        // that the fast loop's sentinel fits above them).
        for k in 0..<4 {
            var p = state.position[k], a = state.available[k], x = state.buffer[k]
            let base = bases[k], end = inputs[k].count, out = outputs[k]
            var j = done[k]
            var flags = state.flags
            while j < out.count {
                while a <= 55, p < end {
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
            state.position[k] = p
            state.available[k] = a
            state.buffer[k] = x
            state.flags = flags
        }
    }
}

/// What a specialization of the four-stream fast loop may take as constant.
protocol FastLoopShape {
    /// The table index mask when the table has `HuffmanCode.maximumLength` bits; nil for wider tables.
    static var fixedMask: UInt64? { get }
    static var perRefill: Int { get }
    static var checksPatterns: Bool { get }
}

/// Codes of at most 11 bits with Kraft sum 1: every pattern decodes, five lookups per refill.
enum CompleteCode: FastLoopShape {
    static var fixedMask: UInt64? { 0x7FF }
    static var perRefill: Int { 5 }
    static var checksPatterns: Bool { false }
}

/// Codes of at most 11 bits that leave patterns unused: each lookup is checked.
enum IncompleteCode: FastLoopShape {
    static var fixedMask: UInt64? { 0x7FF }
    static var perRefill: Int { 5 }
    static var checksPatterns: Bool { true }
}

/// Codes of 12 to 14 bits (which this encoder never writes): four lookups per refill, checked.
enum LongCode: FastLoopShape {
    static var fixedMask: UInt64? { nil }
    static var perRefill: Int { 4 }
    static var checksPatterns: Bool { true }
}

extension HuffmanDecoder {
    /// The lockstep part of `decodeFour`: rounds of one refill and `perRefill` lookups per stream,
    /// while every stream has 8 bytes left to load and every output room for a round. Returns the
    /// symbols decoded into each output, with each stream's byte position, bit count and bits.
    ///
    /// Few registers, so the four streams' state stays out of memory: each bit buffer carries a
    /// sentinel, a 1 just above its unread bits, so the count of unread bits is the position of its
    /// highest set bit and needs no bookkeeping per lookup; positions are pointers; the number of
    /// rounds that are safe is worked out before a run of rounds, not checked in each.
    func fastFour<T: FixedWidthInteger & UnsignedInteger, Shape: FastLoopShape>(
        _ bases: [UnsafeRawPointer], _ ends: [Int], _ outputs: [UnsafeMutableBufferPointer<T>], common: Int,
        entries: UnsafePointer<UInt32>, shape: Shape.Type, mask variableMask: UInt64, state: inout FourState
    ) -> Int {
        // Constants in each specialization: the mask an immediate, the pattern check gone when the code is complete.
        let mask = Shape.fixedMask ?? variableMask, perRefill = Shape.perRefill, checkingPatterns = Shape.checksPatterns
        // A stream already read past its end has nothing left for this loop.
        guard state.available.allSatisfy({ (0...63).contains($0) }) else { return 0 }
        var (x0, r0) = state.loaded(0, bases), (x1, r1) = state.loaded(1, bases), (x2, r2) = state.loaded(2, bases), (x3, r3) = state.loaded(3, bases)
        let o0 = outputs[0].baseAddress!, o1 = outputs[1].baseAddress!, o2 = outputs[2].baseAddress!, o3 = outputs[3].baseAddress!
        var seen: UInt32 = 0
        var i = 0
        @inline(__always) func rounds(_ r: UnsafeRawPointer, _ k: Int) -> Int { Self.safeRounds(r, base: bases[k], end: ends[k]) }
        let refill = Self.refill
        @inline(__always) func step(_ j: Int) {
            let c0 = entries[Int(x0 & mask)], c1 = entries[Int(x1 & mask)], c2 = entries[Int(x2 & mask)], c3 = entries[Int(x3 & mask)]
            x0 &>>= UInt64(truncatingIfNeeded: c0); x1 &>>= UInt64(truncatingIfNeeded: c1)
            x2 &>>= UInt64(truncatingIfNeeded: c2); x3 &>>= UInt64(truncatingIfNeeded: c3)
            if checkingPatterns { seen |= c0 | c1 | c2 | c3 }
            o0[j] = T(truncatingIfNeeded: c0 &>> 8)
            o1[j] = T(truncatingIfNeeded: c1 &>> 8)
            o2[j] = T(truncatingIfNeeded: c2 &>> 8)
            o3[j] = T(truncatingIfNeeded: c3 &>> 8)
        }
        while true {
            let run = Swift.min((common - i) / perRefill, rounds(r0, 0), rounds(r1, 1), rounds(r2, 2), rounds(r3, 3))
            if run == 0 { break }
            for _ in 0..<run {
                refill(&x0, &r0); refill(&x1, &r1); refill(&x2, &r2); refill(&x3, &r3)
                step(i); step(i + 1); step(i + 2); step(i + 3)
                if perRefill == 5 { step(i + 4) }
                i += perRefill
            }
        }
        state.flags |= seen
        state.save([(x0, r0), (x1, r1), (x2, r2), (x3, r3)], bases: bases)
        return i
    }
}

extension HuffmanDecoder {
    /// Pair table for byte alphabets with short codes: each entry of the 11-bit table holds the
    /// symbol its low bits start with and, when the following code fits in the bits that remain,
    /// that symbol too: symbol1 | symbol2 << 8 | bits << 16 | count << 24 (count 1 or 2); bit 31 marks
    /// a pattern that starts no code (it consumes one bit, so decoding moves on).
    static func pairTable(_ single: [UInt32], bits: Int) -> [UInt32] {
        (0..<1 << bits).map { index in
            let first = single[index]
            if first & (1 << 31) != 0 { return 1 << 31 | 1 << 16 | 1 << 24 }
            let firstLength = Int(first & 0xFF)
            let second = single[index >> firstLength]
            let secondLength = Int(second & 0xFF)
            if second & (1 << 31) == 0, firstLength + secondLength <= bits {
                return (first >> 8) & 0xFF | ((second >> 8) & 0xFF) << 8 | UInt32(firstLength + secondLength) << 16 | 2 << 24
            }
            return (first >> 8) & 0xFF | UInt32(firstLength) << 16 | 1 << 24
        }
    }

    /// The fast loop with the pair table: as `fastFour` (sentinel bit buffers, rounds counted ahead),
    /// but each lookup writes one or two symbols, so every stream keeps its own output count. Returns
    /// the symbols decoded into each output.
    func fastFourPairs<Shape: FastLoopShape>(
        _ bases: [UnsafeRawPointer], _ ends: [Int], _ outputs: [UnsafeMutablePointer<UInt8>], _ lengths: [Int],
        entries: UnsafePointer<UInt32>, shape: Shape.Type, state: inout FourState
    ) -> [Int] {
        let checkingPatterns = Shape.checksPatterns
        guard state.available.allSatisfy({ (0...63).contains($0) }) else { return [0, 0, 0, 0] }
        var (x0, r0) = state.loaded(0, bases), (x1, r1) = state.loaded(1, bases), (x2, r2) = state.loaded(2, bases), (x3, r3) = state.loaded(3, bases)
        var o0 = outputs[0], o1 = outputs[1], o2 = outputs[2], o3 = outputs[3]
        var seen: UInt32 = 0
        @inline(__always) func rounds(_ r: UnsafeRawPointer, _ k: Int) -> Int { Self.safeRounds(r, base: bases[k], end: ends[k]) }
        let refill = Self.refill
        @inline(__always) func step() {
            let c0 = entries[Int(x0 & 0x7FF)], c1 = entries[Int(x1 & 0x7FF)], c2 = entries[Int(x2 & 0x7FF)], c3 = entries[Int(x3 & 0x7FF)]
            // `&>>` by the entry shifted down 16: its low six bits are the bits used (≤ 22).
            x0 &>>= UInt64(truncatingIfNeeded: c0 &>> 16); x1 &>>= UInt64(truncatingIfNeeded: c1 &>> 16)
            x2 &>>= UInt64(truncatingIfNeeded: c2 &>> 16); x3 &>>= UInt64(truncatingIfNeeded: c3 &>> 16)
            if checkingPatterns { seen |= c0 | c1 | c2 | c3 }
            UnsafeMutableRawPointer(o0).storeBytes(of: UInt16(truncatingIfNeeded: c0).littleEndian, as: UInt16.self)
            UnsafeMutableRawPointer(o1).storeBytes(of: UInt16(truncatingIfNeeded: c1).littleEndian, as: UInt16.self)
            UnsafeMutableRawPointer(o2).storeBytes(of: UInt16(truncatingIfNeeded: c2).littleEndian, as: UInt16.self)
            UnsafeMutableRawPointer(o3).storeBytes(of: UInt16(truncatingIfNeeded: c3).littleEndian, as: UInt16.self)
            o0 += Int((c0 &>> 24) & 3); o1 += Int((c1 &>> 24) & 3); o2 += Int((c2 &>> 24) & 3); o3 += Int((c3 &>> 24) & 3)
        }
        // A round writes at most 10 symbols (and may store one byte past its last) per stream.
        let limits = (0..<4).map { outputs[$0] + lengths[$0] }
        @inline(__always) func room(_ o: UnsafeMutablePointer<UInt8>, _ k: Int) -> Int { o.distance(to: limits[k]) / 11 }
        while true {
            let run = Swift.min(room(o0, 0), room(o1, 1), room(o2, 2), room(o3, 3), rounds(r0, 0), rounds(r1, 1), rounds(r2, 2), rounds(r3, 3))
            if run == 0 { break }
            for _ in 0..<run {
                refill(&x0, &r0); refill(&x1, &r1); refill(&x2, &r2); refill(&x3, &r3)
                step(); step(); step(); step(); step()
            }
        }
        state.flags |= seen
        state.save([(x0, r0), (x1, r1), (x2, r2), (x3, r3)], bases: bases)
        return [outputs[0].distance(to: o0), outputs[1].distance(to: o1), outputs[2].distance(to: o2), outputs[3].distance(to: o3)]
    }
}
