import PithIR
import PithCoding

/// Decoding one stream, whatever its coding: raw bytes handed on, a zstd frame inflated, a 4-stream
/// Huffman block decoded with the table its `code_lengths` give. Every stream's checksum is checked
/// (`stored`) before its bytes are used.
extension Reader {
    mutating func rawBytes(_ index: Int, purpose: String) throws -> [UInt8] {
        let payload = try stored(index, purpose: purpose)
        guard manifest.streams[index].coding == .raw else { throw fail("\(purpose): stream \(index) must be \(Manifest.StreamEntry.Coding.raw)") }
        return Array(payload)
    }

    /// Decodes stream `index` to exactly `count` byte symbols.
    mutating func byteSymbols(_ index: Int, count: Int, purpose: String) throws -> [UInt8] {
        // The count is checked against the stream's before anything is allocated.
        guard index >= 0, index < manifest.streams.count else { throw fail("\(purpose): stream \(index) does not exist (\(manifest.streams.count) streams)") }
        guard manifest.streams[index].symbols == count else {
            throw fail("\(purpose): stream \(index) holds \(manifest.streams[index].symbols) symbols, \(count) expected")
        }
        var output = [UInt8](repeating: 0, count: count)
        try output.withUnsafeMutableBufferPointer { try decodeBytes(index, into: $0, purpose: purpose) }
        return output
    }

    /// Decodes every stream that several float-split tensors share, so that tensors can then be
    /// decoded independently.
    mutating func decodeSharedStreams() throws {
        for entry in manifest.tensors where entry.encoding.kind == .floatSplit || (entry.encoding.kind == .dense && entry.encoding.start != nil) {
            guard let streams = entry.encoding.streams, let count = Shape.elementCount(entry.shape) else { continue }
            if entry.encoding.kind == .floatSplit, (entry.encoding.start ?? 0) == 0, streams.allSatisfy({ manifest.streams[safe: $0]?.symbols == count }) {
                continue
            }
            for index in streams { _ = try sharedSymbols(index, purpose: "tensor `\(entry.name)`") }
        }
    }

    /// Decodes stream `index`, of exactly `output.count` byte symbols, into `output`.
    mutating func decodeBytes(_ index: Int, into output: UnsafeMutableBufferPointer<UInt8>, purpose: String) throws {
        let payload = try stored(index, purpose: purpose)
        let s = manifest.streams[index]
        let count = output.count
        guard s.symbols == count else { throw fail("\(purpose): stream \(index) holds \(s.symbols) symbols, \(count) expected") }
        switch s.coding {
        case .raw:
            if count > 0 { UnsafeMutableRawBufferPointer(output).copyMemory(from: payload) }
        case .zstd:
            if s.dictionary != nil {
                // `validateStreams` let only a known dictionary through; the text must be there.
                guard let configuration = manifest.source.configuration, !configuration.isEmpty else {
                    throw fail("\(purpose): stream \(index) was made with the model configuration as its dictionary, and the manifest has none")
                }
                guard Zstd.decompress(payload, dictionary: Array(configuration.utf8), into: UnsafeMutableRawBufferPointer(output)) else {
                    throw fail("\(purpose): stream \(index) is not a zstd frame of \(count) bytes made with the model configuration as its dictionary")
                }
            } else {
                guard Zstd.decompress(payload, into: UnsafeMutableRawBufferPointer(output)) else {
                    throw fail("\(purpose): stream \(index) is not a zstd frame of \(count) bytes")
                }
            }
        default:  // huffman: `validateStreams` refused every other coding
            guard s.symbolBits == 8 else { throw fail("\(purpose): stream \(index) has \(s.symbolBits ?? 0)-bit symbols, 8 expected") }
            let decoder = try huffmanDecoder(s, index: index, purpose: purpose)
            do { try HuffmanStreams.decode(payload, into: output, decoder: decoder) } catch let error as CodingError {
                throw fail("\(purpose): stream \(index): \(error)")
            }
        }
    }

    /// Every symbol of a byte stream shared by several tensors, decoded once.
    mutating func sharedSymbols(_ index: Int, purpose: String) throws -> [UInt8] {
        if let cached = decodedShared[index] { return cached }
        guard let symbols = manifest.streams[safe: index]?.symbols else { throw fail("\(purpose): stream \(index) does not exist") }
        let decoded = try byteSymbols(index, count: symbols, purpose: purpose)
        decodedShared[index] = decoded
        return decoded
    }

    mutating func wideSymbols(_ index: Int, count: Int, purpose: String) throws -> [UInt16] {
        let payload = try stored(index, purpose: purpose)
        let s = manifest.streams[index]
        if s.coding == .raw {
            guard s.length == count * 2 else { throw fail("\(purpose): \(s.coding) stream \(index) has \(s.length) bytes, \(count * 2) expected") }
            return (0..<count).map { UInt16(littleEndian: payload.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        }
        guard s.symbols == count, s.symbolBits == 16 else { throw fail("\(purpose): stream \(index) does not hold \(count) 16-bit symbols") }
        let decoder = try huffmanDecoder(s, index: index, purpose: purpose)
        var output = [UInt16](repeating: 0, count: count)
        do { try output.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(payload, into: $0, decoder: decoder) } } catch let error as CodingError {
            throw fail("\(purpose): stream \(index): \(error)")
        }
        return output
    }

    func huffmanDecoder(_ s: Manifest.StreamEntry, index: Int, purpose: String) throws -> HuffmanDecoder {
        let lengths = try (s.codeLengths ?? "").map { character -> UInt8 in
            guard let value = character.hexDigitValue else { throw fail("\(purpose): stream \(index) code lengths contain `\(character)`") }
            return UInt8(value)
        }
        do {
            return try HuffmanDecoder(HuffmanCode(lengths: lengths))
        } catch {
            throw fail("\(purpose): stream \(index): \(error)")
        }
    }

    mutating func floats(_ index: Int, count: Int, purpose: String) throws -> [Float] {
        let raw = try rawBytes(index, purpose: purpose)
        guard raw.count == count * 4 else { throw fail("\(purpose): stream \(index) has \(raw.count) bytes, \(count * 4) expected for \(count) float32") }
        return raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
