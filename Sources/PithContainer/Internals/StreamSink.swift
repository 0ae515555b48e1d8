import PithCoding

/// The container's streams as they reach its output, in order: each written once (a stream equal
/// to one already written is taken back and the earlier one used), raw streams on a 64-byte
/// boundary (a mapped file hands out aligned elements), coded ones packed (since 1.4); in a `packed`
/// container (1.6) every stream follows the one before, so that they tile the data area in index
/// order.
struct StreamSink {
    private(set) var entries: [Manifest.StreamEntry] = []
    private var index: [StreamBuilder.Key: [Int]] = [:]
    /// Raw streams too follow the stream before, unaligned (format 1.6, header flag bit 2).
    let packed: Bool

    init(packed: Bool = false) { self.packed = packed }

    /// Stream `index` of `local` (a tensor encoded on its own), its checksum already computed.
    mutating func add(_ index: Int, of local: StreamBuilder, to output: inout some ContainerOutput) throws -> Int {
        let entry = local.entries[index]
        return try local.payloads[index].withUnsafeBytes { payload in
            try write(
                [payload], coding: entry.coding, symbols: entry.symbols, symbolBits: entry.symbolBits, codeLengths: entry.codeLengths,
                dictionary: entry.dictionary, checksum: local.checksums[index], to: &output)
        }
    }

    /// Writes a stream made of `pieces`, one after the other; returns its index. `checksum`, when
    /// known, is that of the pieces together. A stream is the same as one already written only
    /// when it is read the same way too (code lengths, zstd dictionary).
    mutating func write(
        _ pieces: [UnsafeRawBufferPointer], coding: Manifest.StreamEntry.Coding, symbols: Int, symbolBits: Int?, codeLengths: String?,
        dictionary: String? = nil, checksum known: UInt32? = nil, to output: inout some ContainerOutput
    ) throws -> Int {
        let before = output.size
        if coding == .raw && !packed {
            let padding = ContainerWriter.padding(before)
            if padding > 0 { try [UInt8](repeating: 0, count: padding).withUnsafeBytes { try output.append($0) } }
        }
        let start = output.size
        var checksum: UInt32 = 0
        for piece in pieces {
            try output.append(piece)
            if known == nil { checksum = CRC32C.checksum(piece, continuing: checksum) }
        }
        checksum = known ?? checksum
        let length = output.size - start
        let key = StreamBuilder.Key(checksum: checksum, length: length, coding: coding, symbols: symbols)
        for existing in index[key, default: []] where entries[existing].codeLengths == codeLengths && entries[existing].dictionary == dictionary {
            if try equal(existing, start: start, in: output) {
                try output.truncate(to: before)
                return existing
            }
        }
        var entry = Manifest.StreamEntry(
            offset: start, length: length, coding: coding, symbols: symbols, symbolBits: symbolBits, codeLengths: codeLengths, crc32c: hex(checksum))
        entry.dictionary = dictionary
        entries.append(entry)
        index[key, default: []].append(entries.count - 1)
        return entries.count - 1
    }

    /// Takes back the streams from index `count` on, which must be the last ones written, and the
    /// output from `size` on (where the first of them began).
    mutating func removeStreams(from count: Int, output: inout some ContainerOutput, size: Int) throws {
        guard count < entries.count else { return }
        entries.removeSubrange(count...)
        for key in index.keys { index[key]?.removeAll { $0 >= count } }
        try output.truncate(to: size)
    }

    /// Whether stream `existing` holds the bytes just written from `start` (of the same length),
    /// compared a piece at a time.
    private func equal(_ existing: Int, start: Int, in output: some ContainerOutput) throws -> Bool {
        let length = entries[existing].length
        let piece = min(length, 1 << 20)
        var a = [UInt8](repeating: 0, count: piece), b = [UInt8](repeating: 0, count: piece)
        var done = 0
        while done < length {
            let n = min(piece, length - done)
            try a.withUnsafeMutableBytes { try output.read(at: entries[existing].offset + done, into: UnsafeMutableRawBufferPointer(rebasing: $0[..<n])) }
            try b.withUnsafeMutableBytes { try output.read(at: start + done, into: UnsafeMutableRawBufferPointer(rebasing: $0[..<n])) }
            guard a[..<n] == b[..<n] else { return false }
            done += n
        }
        return true
    }
}
