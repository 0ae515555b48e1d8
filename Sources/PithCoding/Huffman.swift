/// Canonical, length-limited Huffman coding of symbol streams.
///
/// The pipeline, one function per step (after zstd's `huf.h`):
/// 1. `histogram` — count each symbol.
/// 2. `codeLengths` — build a Huffman tree and read off each symbol's depth;
/// 3. …then limit every length to `maximumLength` (the JPEG Annex K.3 adjustment of the
///    per-length counts), giving the shortest lengths to the most frequent symbols.
/// 4. `HuffmanCode(lengths:)` — canonical codes from the lengths alone (shorter codes first,
///    then by symbol), so a table is stored as its code lengths only.
/// 5. `encode` / `HuffmanDecoder.decode` — bits least-significant first; the decoder resolves a
///    whole code (up to `maximumLength` bits) with one table lookup.
public struct HuffmanCode: Sendable, Equatable {
    /// Longest code this encoder produces; the decoder's table has 2^maximumLength entries, and one
    /// 56-bit refill holds five whole codes (the four-stream decoder's fast path).
    public static let maximumLength = 11
    /// Longest code a reader accepts in a stored table (the 4-bit length field's range).
    public static let absoluteMaximumLength = 15
    /// Most symbols a complete code of `maximumLength` can hold (Kraft: n ≤ 2^L).
    public static let maximumSymbols = 1 << maximumLength
    static let relationHolds: Void = precondition(maximumLength <= absoluteMaximumLength && maximumLength <= 16)

    /// Code length of every symbol of the alphabet; 0 for symbols that never occur.
    public let lengths: [UInt8]
    /// Bit-reversed canonical code of every symbol, ready for least-significant-first writing.
    let codes: [UInt16]

    // MARK: 1. Histogram

    /// Occurrences of each symbol in `0..<alphabetSize`; symbols outside it are a programmer error.
    public static func histogram(_ symbols: [UInt8], alphabetSize: Int) -> [Int] { symbols.withUnsafeBufferPointer { count($0, alphabetSize) } }
    public static func histogram(_ symbols: [UInt16], alphabetSize: Int) -> [Int] { symbols.withUnsafeBufferPointer { count($0, alphabetSize) } }

    @inline(__always)
    static func count<T: FixedWidthInteger & UnsignedInteger>(_ symbols: UnsafeBufferPointer<T>, _ alphabetSize: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: alphabetSize)
        counts.withUnsafeMutableBufferPointer { c in
            for symbol in symbols {
                precondition(Int(symbol) < alphabetSize, "histogram: symbol \(symbol) outside the alphabet of \(alphabetSize)")
                c[Int(symbol)] += 1
            }
        }
        return counts
    }

    // MARK: 2–3. Code lengths

    /// Huffman code lengths for `frequencies`, none longer than `maximumLength`.
    /// - Precondition: at most `2^maximumLength` symbols have a nonzero frequency.
    public static func codeLengths(frequencies: [Int], maximumLength: Int = HuffmanCode.maximumLength) -> [UInt8] {
        _ = relationHolds
        var lengths = [UInt8](repeating: 0, count: frequencies.count)
        let used = frequencies.indices.filter { frequencies[$0] > 0 }
        precondition(used.count <= 1 << maximumLength, "codeLengths: \(used.count) symbols cannot fit codes of at most \(maximumLength) bits")
        if used.isEmpty { return lengths }
        if used.count == 1 { lengths[used[0]] = 1; return lengths }

        // Two-queue Huffman construction over leaves sorted by frequency.
        let leaves = used.sorted { (frequencies[$0], $0) < (frequencies[$1], $1) }
        let n = leaves.count
        var weight = leaves.map { frequencies[$0] } + [Int](repeating: 0, count: n - 1)
        var parent = [Int](repeating: -1, count: 2 * n - 1)
        var nextLeaf = 0, nextNode = n, built = n
        func takeSmallest() -> Int {
            if nextLeaf < n, nextNode >= built || weight[nextLeaf] <= weight[nextNode] { nextLeaf += 1; return nextLeaf - 1 }
            nextNode += 1
            return nextNode - 1
        }
        while built < 2 * n - 1 {
            let a = takeSmallest(), b = takeSmallest()
            weight[built] = weight[a] + weight[b]
            parent[a] = built
            parent[b] = built
            built += 1
        }
        // Depths: parents are created after their children, so walk down from the root.
        var depth = [Int](repeating: 0, count: 2 * n - 1)
        for node in stride(from: 2 * n - 3, through: 0, by: -1) { depth[node] = depth[parent[node]] + 1 }
        let maxDepth = depth[0..<n].max()!

        // Count codes per length, limit them (JPEG Annex K.3), and hand lengths out by frequency.
        var count = [Int](repeating: 0, count: Swift.max(maxDepth, maximumLength) + 1)
        for leaf in 0..<n { count[depth[leaf]] += 1 }
        var length = maxDepth
        while length > maximumLength {
            while count[length] > 0 {
                var j = length - 2
                while count[j] == 0 { j -= 1 }
                count[length] -= 2  // two leaves at the deepest level…
                count[length - 1] += 1  // …one moves up to replace their parent,
                count[j + 1] += 2  // the other pairs with a leaf from level j,
                count[j] -= 1  // which moves down one level.
            }
            length -= 1
        }
        let byFrequency = leaves.reversed()  // most frequent first (ties: higher symbol first, any fixed order works)
        var assigned = byFrequency.makeIterator()
        for l in 1...maximumLength {
            for _ in 0..<count[l] { lengths[assigned.next()!] = UInt8(l) }
        }
        return lengths
    }

    // MARK: 4. Canonical codes

    /// The canonical code for `lengths`. Throws when a length exceeds `absoluteMaximumLength` or
    /// the lengths oversubscribe the code space (Kraft sum above 1) — both mean a corrupt table.
    public init(lengths: [UInt8]) throws {
        var countPerLength = [Int](repeating: 0, count: Self.absoluteMaximumLength + 1)
        for length in lengths where length > 0 {
            guard Int(length) <= Self.absoluteMaximumLength else {
                throw CodingError.invalidTable("code length \(length) exceeds \(Self.absoluteMaximumLength)")
            }
            countPerLength[Int(length)] += 1
        }
        // Kraft sum in units of 2^-absoluteMaximumLength.
        var kraft = 0
        for l in 1...Self.absoluteMaximumLength { kraft += countPerLength[l] << (Self.absoluteMaximumLength - l) }
        guard kraft <= 1 << Self.absoluteMaximumLength else {
            throw CodingError.invalidTable(
                "code lengths oversubscribe the code space (Kraft sum \(Double(kraft) / Double(1 << Self.absoluteMaximumLength)) > 1)")
        }
        // First code of each length: after all shorter codes, shifted left (RFC 1951 §3.2.2).
        var code = 0
        var next = [Int](repeating: 0, count: Self.absoluteMaximumLength + 2)
        for l in 1...Self.absoluteMaximumLength {
            next[l] = code
            code = (code + countPerLength[l]) << 1
        }
        var codes = [UInt16](repeating: 0, count: lengths.count)
        for symbol in lengths.indices where lengths[symbol] > 0 {
            let l = Int(lengths[symbol])
            codes[symbol] = Self.reverse(UInt16(next[l]), bits: l)
            next[l] += 1
        }
        self.lengths = lengths
        self.codes = codes
    }

    static func reverse(_ code: UInt16, bits: Int) -> UInt16 {
        var value = code, result: UInt16 = 0
        for _ in 0..<bits { result = (result << 1) | (value & 1); value >>= 1 }
        return result
    }

    /// The Kraft sum Σ 2^−length over the used symbols (1 for a complete code).
    public var kraftSum: Double { lengths.reduce(0) { $0 + ($1 == 0 ? 0 : 1 / Double(1 << Int($1))) } }

    public var longestLength: Int { Int(lengths.max() ?? 0) }

    /// Bits the payload of symbols with these frequencies takes with this code.
    public func encodedBits(frequencies: [Int]) -> Int { Self.encodedBits(frequencies: frequencies, lengths: lengths) }

    /// Bits the payload of symbols with these frequencies takes with codes of these lengths.
    public static func encodedBits(frequencies: [Int], lengths: [UInt8]) -> Int {
        zip(frequencies, lengths).reduce(0) { $0 + $1.0 * Int($1.1) }
    }

    // MARK: 5. Encode

    /// The symbols coded least-significant bit first; the last byte is padded with zeros.
    /// - Precondition: every symbol has a code (a nonzero length).
    public func encode(_ symbols: UnsafeBufferPointer<UInt8>) -> [UInt8] { encodeSymbols(symbols) }
    public func encode(_ symbols: UnsafeBufferPointer<UInt16>) -> [UInt8] { encodeSymbols(symbols) }

    public func encode(_ symbols: [UInt8]) -> [UInt8] { symbols.withUnsafeBufferPointer { encodeSymbols($0) } }
    public func encode(_ symbols: [UInt16]) -> [UInt8] { symbols.withUnsafeBufferPointer { encodeSymbols($0) } }

    @inline(__always)
    func encodeSymbols<T: FixedWidthInteger & UnsignedInteger>(_ symbols: UnsafeBufferPointer<T>) -> [UInt8] {
        // Entry per symbol: code << 8 | length; length 0 marks symbols without a code.
        let entries = zip(codes, lengths).map { UInt32($0) << 8 | UInt32($1) }
        let capacity = (symbols.count * Swift.max(1, longestLength) + 7) / 8 + 8
        // Uninitialized: every byte up to `written` is stored below, and only those are kept.
        return [UInt8](unsafeUninitializedCapacity: capacity) { raw, initialized in
            var written = 0
            let out = UnsafeMutableRawPointer(raw.baseAddress!)
            entries.withUnsafeBufferPointer { table in
                var buffer: UInt64 = 0, count: UInt64 = 0
                @inline(__always) func put(_ symbol: T) {
                    let s = Int(symbol)
                    precondition(s < table.count && table[s] & 0xFF != 0, "encode: symbol \(s) has no code")
                    let entry = table[s]
                    buffer |= UInt64(entry >> 8) &<< count
                    count &+= UInt64(entry & 0xFF)
                }
                // Codes of up to 13 bits: four of them fit beside the (fewer than 8) bits left after
                // each flush, which stores eight bytes and keeps the bits of the last partial one.
                let unrolled = longestLength <= 13
                var i = 0
                if unrolled {
                    while i + 4 <= symbols.count {
                        put(symbols[i]); put(symbols[i + 1]); put(symbols[i + 2]); put(symbols[i + 3])
                        (out + written).storeBytes(of: buffer.littleEndian, toByteOffset: 0, as: UInt64.self)
                        let bytes = Int(count >> 3)
                        written += bytes
                        buffer = bytes == 8 ? 0 : buffer >> UInt64(8 * bytes)
                        count &= 7
                        i += 4
                    }
                }
                while i < symbols.count {
                    put(symbols[i])
                    if count >= 32 {  // flush four bytes at once
                        (out + written).storeBytes(of: UInt32(truncatingIfNeeded: buffer).littleEndian, toByteOffset: 0, as: UInt32.self)
                        written += 4
                        buffer >>= 32
                        count -= 32
                    }
                    i += 1
                }
                while count > 0 {
                    out.storeBytes(of: UInt8(truncatingIfNeeded: buffer), toByteOffset: written, as: UInt8.self)
                    written += 1
                    buffer >>= 8
                    count = count >= 8 ? count - 8 : 0
                }
            }
            initialized = written
        }
    }
}

/// Why coded data could not be decoded.
public enum CodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stored code table is inconsistent.
    case invalidTable(String)
    /// The coded bits are corrupt or end too early.
    case invalidStream(String)

    public var description: String {
        switch self {
        case .invalidTable(let message): return "invalid Huffman table: \(message)"
        case .invalidStream(let message): return "invalid coded stream: \(message)"
        }
    }
}

/// Table-driven decoding: one lookup of `tableBits` bits gives a symbol and its length.
public struct HuffmanDecoder: Sendable {
    /// Entry: symbol << 8 | length. Bit patterns no code starts with hold `invalid`:
    /// length 1 (so decoding moves on) and bit 31 set (so the caller learns of it afterwards).
    let table: [UInt32]
    static let invalid: UInt32 = 1 << 31 | 1
    /// The largest symbol with a code.
    let maximumSymbol: Int
    let tableBits: Int
    /// Whether the code's Kraft sum is exactly 1: then every bit pattern starts with some code and
    /// decoding needs no check for patterns that match none.
    let isComplete: Bool
    /// Two symbols per lookup (`pairTable`) for byte alphabets whose codes are short enough that
    /// most lookups yield two: measured faster than one symbol per lookup only there.
    let pairs: [UInt32]?
    /// Expected share of lookups yielding two symbols, above which the pair table is used.
    static let pairThreshold = 0.6

    public init(_ code: HuffmanCode) throws {
        // Codes of up to `maximumLength` bits (all this encoder writes) get a table of that width
        // whatever their longest code: the four-stream decoder's fast loop is built for it.
        let bits = code.longestLength <= HuffmanCode.maximumLength ? HuffmanCode.maximumLength : code.longestLength
        guard bits <= HuffmanCode.absoluteMaximumLength else { throw CodingError.invalidTable("code longer than \(HuffmanCode.absoluteMaximumLength) bits") }
        var table = [UInt32](repeating: Self.invalid, count: 1 << bits)
        for symbol in code.lengths.indices where code.lengths[symbol] > 0 {
            let length = Int(code.lengths[symbol])
            let entry = UInt32(symbol) << 8 | UInt32(length)
            // Every table index whose low `length` bits are the code maps to this symbol.
            var index = Int(code.codes[symbol])
            while index < table.count {
                table[index] = entry
                index += 1 << length
            }
        }
        self.table = table
        tableBits = bits
        maximumSymbol = code.lengths.lastIndex { $0 > 0 } ?? 0
        let used = code.lengths.filter { $0 > 0 }.map(Int.init)
        isComplete = used.reduce(0) { $0 + 1 << (HuffmanCode.absoluteMaximumLength - $1) } == 1 << HuffmanCode.absoluteMaximumLength
        // P(two) = Σ_first 2^−l1 · Σ_{second: l1 + l2 ≤ bits} 2^−l2, taking each symbol's probability as 2^−length.
        var atMost = [Double](repeating: 0, count: bits + 1)
        for l in used where l <= bits { atMost[l] += 1 / Double(1 << l) }
        for n in stride(from: 1, through: bits, by: 1) { atMost[n] += atMost[n - 1] }
        let pairShare = used.reduce(0.0) { $0 + ($1 < bits ? atMost[bits - $1] / Double(1 << $1) : 0) }
        pairs =
            bits == HuffmanCode.maximumLength && maximumSymbol < 256 && pairShare >= Self.pairThreshold
            ? Self.pairTable(table, bits: bits) : nil
    }

    /// Decodes exactly `output.count` symbols from `input`. Throws if the bits run out or a bit
    /// pattern matches no code; never reads outside `input`.
    public func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt8>) throws {
        try decodeSymbols(input, into: output)
    }

    public func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt16>) throws {
        try decodeSymbols(input, into: output)
    }

    @inline(__always)
    func decodeSymbols<T: FixedWidthInteger & UnsignedInteger>(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<T>) throws {
        let count = output.count
        if count == 0 { return }
        // Copy into a buffer padded with 8 zero bytes, so that refills may load whole words.
        let padded = UnsafeMutableRawBufferPointer.allocate(byteCount: input.count + 8, alignment: 8)
        defer { padded.deallocate() }
        padded.initializeMemory(as: UInt8.self, repeating: 0)
        if input.count > 0 { padded.baseAddress!.copyMemory(from: input.baseAddress!, byteCount: input.count) }
        let base = padded.baseAddress!
        let end = input.count
        let mask = UInt64(1 << tableBits) - 1
        var position = 0, buffer: UInt64 = 0, available = 0  // bits in `buffer`; negative once past the end
        var flags: UInt32 = 0  // OR of every entry used: bit 31 set means an invalid pattern was met
        let out = output.baseAddress!
        var i = 0
        let tablePointer = table.withUnsafeBufferPointer { $0 }  // `table` is immutable and outlives this call
        let entries = tablePointer.baseAddress!
        // Fast loop: four codes per refill (4 × 12 ≤ 56 bits), while a refill cannot read past the padding.
        if tableBits * 4 <= 56 {
            while i + 4 <= count, position <= end {
                buffer |= UInt64(littleEndian: (base + position).loadUnaligned(as: UInt64.self)) << UInt64(available)
                position += (63 - available) >> 3
                available |= 56
                let e0 = entries[Int(buffer & mask)]; buffer >>= UInt64(e0 & 0xFF)
                let e1 = entries[Int(buffer & mask)]; buffer >>= UInt64(e1 & 0xFF)
                let e2 = entries[Int(buffer & mask)]; buffer >>= UInt64(e2 & 0xFF)
                let e3 = entries[Int(buffer & mask)]; buffer >>= UInt64(e3 & 0xFF)
                available -= Int((e0 & 0xFF) + (e1 & 0xFF) + (e2 & 0xFF) + (e3 & 0xFF))
                flags |= e0 | e1 | e2 | e3
                out[i] = T(truncatingIfNeeded: e0 >> 8)
                out[i + 1] = T(truncatingIfNeeded: e1 >> 8)
                out[i + 2] = T(truncatingIfNeeded: e2 >> 8)
                out[i + 3] = T(truncatingIfNeeded: e3 >> 8)
                i += 4
            }
        }
        // The rest one code per refill; once past the input every real bit is in the buffer, with
        // zeros above them: decoding past the real bits is caught below by counting what was consumed.
        while i < count {
            if position <= end {
                buffer |= UInt64(littleEndian: (base + position).loadUnaligned(as: UInt64.self)) << UInt64(available)
                position += (63 - available) >> 3
                available |= 56
            }
            let entry = entries[Int(buffer & mask)]
            buffer >>= UInt64(entry & 0xFF)
            available -= Int(entry & 0xFF)
            flags |= entry
            out[i] = T(truncatingIfNeeded: entry >> 8)
            i += 1
        }
        if flags & (1 << 31) != 0 { throw CodingError.invalidStream("a bit pattern matches no code") }
        // Bits consumed must lie inside the input.
        if position * 8 - available > end * 8 {
            throw CodingError.invalidStream("the stream ends before \(count) symbols are decoded")
        }
    }
}
