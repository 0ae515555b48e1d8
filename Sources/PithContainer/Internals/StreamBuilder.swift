import PithCoding

/// Collects the streams of a container, storing identical ones once.
struct StreamBuilder {
    var payloads: [[UInt8]] = []
    var entries: [Manifest.StreamEntry] = []
    /// CRC-32C of each payload (`entries` holds it spelled in hex).
    var checksums: [UInt32] = []
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

    /// How one byte stream will be stored, chosen before any Huffman payload is written: the
    /// smallest of raw, Huffman (its size from the histogram) and, for element bytes, a zstd frame.
    struct Plan {
        enum Choice {
            case raw
            case huffman(lengths: [UInt8])
            case zstd(frame: [UInt8])
        }
        var choice: Choice
        /// Stored bytes, Huffman tables counted at half a byte per symbol (their manifest hex digits).
        var size: Int
    }

    /// The plan for `bytes`, symbols below `alphabet`. With `lz`, a zstd frame is a candidate too
    /// (`lzFrame`): element bytes of tensors whose values repeat in runs or patterns (an STFT basis,
    /// a lookup table) that per-byte entropy coding cannot see.
    static func plan(_ bytes: [UInt8], alphabet: Int = 256, lz: Bool = false) -> Plan {
        var best = plan(frequencies: bytes.count >= 64 ? HuffmanCode.histogram(bytes, alphabetSize: alphabet) : nil, count: bytes.count)
        if lz, let frame = bytes.withUnsafeBytes({ lzFrame($0, against: best.size) }), frame.count < best.size {
            best = Plan(choice: .zstd(frame: frame), size: frame.count)
        }
        return best
    }

    /// The smaller of raw and Huffman for `count` byte symbols with these `frequencies` (nil: too few
    /// symbols for a table to pay); the Huffman size is computed from the code lengths, not encoded.
    static func plan(frequencies: [Int]?, count: Int) -> Plan {
        var best = Plan(choice: .raw, size: count)
        guard count >= 64, let frequencies else { return best }
        var lengths = HuffmanCode.codeLengths(frequencies: frequencies)
        var bits = HuffmanCode.encodedBits(frequencies: frequencies, lengths: lengths)
        // A skewed stream (a few common symbols, many rare ones) whose unlimited code runs past
        // `maximumLength` bits: the limit can cost it several percent (a uint8 table with one byte at
        // p = 0.28: 5.6% over its entropy with codes of at most 11 bits, 1.8% with 13). Longer codes are kept when they save
        // `longCodeShare` of the stream; readers decode codes of up to 14 bits four per refill.
        if lengths.contains(UInt8(HuffmanCode.maximumLength)) {
            let long = HuffmanCode.codeLengths(frequencies: frequencies, maximumLength: longCodeLength)
            let longBits = HuffmanCode.encodedBits(frequencies: frequencies, lengths: long)
            if Double(longBits) < Double(bits) * (1 - longCodeShare) { (lengths, bits) = (long, longBits) }
        }
        if (try? HuffmanCode(lengths: lengths)) != nil {
            // Four streams, each padded to a byte, after the block header.
            let size = (bits + 7) / 8 + 4 + HuffmanStreams.headerBytes + lengths.count / 2
            if size < best.size { best = Plan(choice: .huffman(lengths: lengths), size: size) }
        }
        return best
    }

    /// Longest code written when the 11-bit limit costs a stream more than `longCodeShare` of its
    /// bits: 13, the longest the encoder writes four codes per flush for.
    static let longCodeLength = 13
    static let longCodeShare = 0.01

    /// Streams below this many bytes are never tried with zstd: a frame's own header is a good part of
    /// what it could save.
    static let lzMinimum = 128
    /// Streams up to this many bytes are compressed in full at zstd's strongest level right away; larger
    /// ones are first probed (`lzProbeLevel` on at most `lzProbeBytes`, in four evenly spaced pieces).
    static let lzDirect = 32 << 10
    static let lzProbeBytes = 1 << 20
    /// A probe must come below this share of the best other coding for the full frame to be made.
    static let lzProbeShare = 0.9

    /// A zstd frame of `bytes` when it may beat `against` bytes: small streams are compressed at level
    /// 19 directly; larger ones only when a fast probe (zstd level 3 on up to 1 MiB of it) shows
    /// repetition that entropy coding misses, so trained weights (whose bytes LZ cannot shrink below
    /// their entropy) cost one cheap probe. Level 19 for streams up to 8 MiB, 12 above.
    static func lzFrame(_ bytes: UnsafeRawBufferPointer, against: Int) -> [UInt8]? {
        lzFrame(bytes, against: against, probe: lzProbe(bytes))
    }

    /// As above, with the probe's ratio already taken (`lzProbe` of the same bytes), so that a
    /// writer can take it on another core while it counts histograms.
    static func lzFrame(_ bytes: UnsafeRawBufferPointer, against: Int, probe: Double?) -> [UInt8]? {
        guard bytes.count >= lzMinimum else { return nil }
        if bytes.count > lzDirect {
            guard let probe, probe < lzProbeShare * Double(against) / Double(bytes.count) else { return nil }
        }
        return Zstd.compress(bytes, level: bytes.count <= 8 << 20 ? Zstd.level : 12)
    }

    /// The probe of `lzFrame`: compressed over raw bytes of zstd level 3 on at most 1 MiB of
    /// `bytes` (four evenly spaced pieces of a larger stream); nil for a stream compressed directly.
    static func lzProbe(_ bytes: UnsafeRawBufferPointer) -> Double? {
        guard bytes.count >= lzMinimum, bytes.count > lzDirect else { return nil }
        var compressedProbe = 0
        let piece = bytes.count <= lzProbeBytes ? bytes.count : lzProbeBytes / 4
        let pieces = bytes.count <= lzProbeBytes ? 1 : 4
        for k in 0..<pieces {
            let start = pieces == 1 ? 0 : (bytes.count - piece) / 3 * k
            compressedProbe += Zstd.compress(UnsafeRawBufferPointer(rebasing: bytes[start..<start + piece]), level: Zstd.probeLevel).count
        }
        return Double(compressedProbe) / Double(piece * pieces)
    }

    /// Stores `payload` once; returns its stream index.
    mutating func add(_ payload: [UInt8], coding: Manifest.StreamEntry.Coding, symbols: Int, symbolBits: Int?, codeLengths: [UInt8]?) -> Int {
        add(payload, coding: coding, symbols: symbols, symbolBits: symbolBits, spelledLengths: codeLengths.map(Self.hexDigits))
    }

    /// As above, with the code lengths as the manifest spells them.
    mutating func add(
        _ payload: [UInt8], coding: Manifest.StreamEntry.Coding, symbols: Int, symbolBits: Int?, spelledLengths codeLengths: String?
    ) -> Int {
        let checksum = CRC32C.checksum(payload)
        let key = Key(checksum: checksum, length: payload.count, coding: coding, symbols: symbols)
        if let existing = index[key], payloads[existing] == payload, entries[existing].codeLengths == codeLengths {
            return existing
        }
        payloads.append(payload)
        checksums.append(checksum)
        entries.append(
            Manifest.StreamEntry(
                offset: 0, length: payload.count, coding: coding, symbols: symbols, symbolBits: symbolBits,
                codeLengths: codeLengths, crc32c: hex(checksum)))
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

    /// Metadata bytes (the source skeleton): the smallest of raw, Huffman, a zstd frame and (1.4) a
    /// zstd frame made with the model's configuration as its dictionary, which a Keras file's HDF5
    /// skeleton repeats.
    mutating func metadata(_ bytes: [UInt8], configuration: String? = nil) -> Int {
        let entropy = Self.plan(bytes)
        let frame = Zstd.compress(bytes)
        if let configuration, !configuration.isEmpty, let primed = Zstd.compress(bytes, dictionary: Array(configuration.utf8)),
            primed.count < min(frame.count, entropy.size)
        {
            let before = payloads.count
            let index = add(primed, coding: .zstd, symbols: bytes.count, symbolBits: nil, codeLengths: nil)
            // A new stream only: identical bytes already stored mean something else without it.
            if index == before {
                entries[index].dictionary = Manifest.StreamEntry.configurationDictionary
                return index
            }
        }
        if frame.count < entropy.size {
            return add(frame, coding: .zstd, symbols: bytes.count, symbolBits: nil, codeLengths: nil)
        }
        return add(bytes, plan: entropy)
    }

    /// Byte symbols below `alphabet`: Huffman when smaller than raw; with `lz`, a zstd frame when
    /// smaller still (format 1.4).
    mutating func bytes(_ bytes: [UInt8], alphabet: Int = 256, lz: Bool = false) -> Int {
        add(bytes, plan: Self.plan(bytes, alphabet: alphabet, lz: lz))
    }

    /// Stores `bytes` as `plan` says (a plan made for these bytes).
    mutating func add(_ bytes: [UInt8], plan: Plan) -> Int {
        switch plan.choice {
        case .raw:
            return raw(bytes)
        case .huffman(let lengths):
            // The lengths came from this histogram, so they form a valid code.
            let code = try! HuffmanCode(lengths: lengths)
            return add(HuffmanStreams.encode(bytes, code: code), coding: .huffman, symbols: bytes.count, symbolBits: 8, codeLengths: lengths)
        case .zstd(let frame):
            return add(frame, coding: .zstd, symbols: bytes.count, symbolBits: nil, codeLengths: nil)
        }
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
