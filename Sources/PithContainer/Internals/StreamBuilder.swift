import PithCoding

/// Collects the streams of a container, storing identical ones once.
struct StreamBuilder {
    var payloads: [[UInt8]] = []
    var entries: [Manifest.StreamEntry] = []
    private var index: [Key: Int] = [:]

    struct Key: Hashable {
        var checksum: UInt32
        var length: Int
        var coding: Manifest.StreamEntry.Coding
        var symbols: Int
    }

    /// Approximate cost of one more stream: its manifest entry (~130 bytes of JSON) and, on average,
    /// half an alignment unit of padding.
    static let streamOverhead = 160

    /// Bytes of the smaller of raw and Huffman coding of `bytes` (tables counted at half a byte per symbol).
    static func bestSize(_ bytes: [UInt8]) -> Int {
        guard let (payload, lengths) = huffman(bytes, alphabet: 256) else { return bytes.count }
        return min(bytes.count, payload.count + lengths.count / 2)
    }

    static func huffman(_ bytes: [UInt8], alphabet: Int) -> ([UInt8], [UInt8])? {
        guard bytes.count >= 64 else { return nil }
        let lengths = HuffmanCode.codeLengths(frequencies: HuffmanCode.histogram(bytes, alphabetSize: alphabet))
        guard let code = try? HuffmanCode(lengths: lengths) else { return nil }
        return (HuffmanStreams.encode(bytes, code: code), lengths)
    }

    /// Stores `payload` once; returns its stream index.
    mutating func add(_ payload: [UInt8], coding: Manifest.StreamEntry.Coding, symbols: Int, symbolBits: Int?, codeLengths: [UInt8]?) -> Int {
        let checksum = CRC32C.checksum(payload)
        let key = Key(checksum: checksum, length: payload.count, coding: coding, symbols: symbols)
        if let existing = index[key], payloads[existing] == payload, entries[existing].codeLengths == codeLengths.map(Self.hexDigits) {
            return existing
        }
        payloads.append(payload)
        entries.append(
            Manifest.StreamEntry(
                offset: 0, length: payload.count, coding: coding, symbols: symbols, symbolBits: symbolBits,
                codeLengths: codeLengths.map(Self.hexDigits), crc32c: hex(checksum)))
        index[key] = payloads.count - 1
        return payloads.count - 1
    }

    static func hexDigits(_ lengths: [UInt8]) -> String {
        // Trailing unused symbols are implied: the alphabet ends at the last used symbol.
        let used = lengths.lastIndex { $0 > 0 }.map { lengths[...$0] } ?? []
        return String(used.map { Character(String($0, radix: 16)) })
    }

    /// Stored exactly as given.
    mutating func raw(_ bytes: [UInt8]) -> Int {
        add(bytes, coding: .raw, symbols: bytes.count, symbolBits: nil, codeLengths: nil)
    }

    /// Metadata bytes (the source skeleton): the smallest of raw, Huffman and a zstd frame.
    mutating func metadata(_ bytes: [UInt8]) -> Int {
        let frame = Zstd.compress(bytes)
        if frame.count < Self.bestSize(bytes) {
            return add(frame, coding: .zstd, symbols: bytes.count, symbolBits: nil, codeLengths: nil)
        }
        return self.bytes(bytes)
    }

    /// Byte symbols below `alphabet`: Huffman when smaller than raw.
    mutating func bytes(_ bytes: [UInt8], alphabet: Int = 256) -> Int {
        if let (payload, lengths) = Self.huffman(bytes, alphabet: alphabet), payload.count + lengths.count / 2 < bytes.count {
            return add(payload, coding: .huffman, symbols: bytes.count, symbolBits: 8, codeLengths: lengths)
        }
        return raw(bytes)
    }

    /// 16-bit symbols below `alphabet`: Huffman when it applies (≤ 4096 distinct) and is smaller, else raw little-endian.
    mutating func wide(_ symbols: [UInt16], alphabet: Int) -> Int {
        let rawBytes = symbols.withUnsafeBytes { Array($0) }
        let frequencies = HuffmanCode.histogram(symbols, alphabetSize: alphabet)
        if symbols.count >= 64, frequencies.filter({ $0 > 0 }).count <= HuffmanCode.maximumSymbols,
            let code = try? HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: frequencies))
        {
            let payload = HuffmanStreams.encode(symbols, code: code)
            if payload.count + alphabet / 2 < rawBytes.count {
                return add(payload, coding: .huffman, symbols: symbols.count, symbolBits: 16, codeLengths: code.lengths)
            }
        }
        return add(rawBytes, coding: .raw, symbols: rawBytes.count, symbolBits: nil, codeLengths: nil)
    }
}
