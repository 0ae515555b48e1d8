import Foundation
public import PithIR
import PithCoding

/// Writes a model as a `.pith` container: deterministic bytes (same model and options, same
/// file), identical streams stored once, every stream coded raw or with Huffman, whichever is
/// smaller, and checksummed.
public enum ContainerWriter {
    /// The container's bytes and its manifest. `skeleton` is the source's structure without
    /// tensor data (ONNX); it travels in the container so that restore needs nothing else.
    public static func encode(_ model: Model, skeleton: [UInt8]? = nil) throws -> (bytes: [UInt8], manifest: Manifest) {
        let (bytes, manifest, _) = try encodeWithAccounting(model, skeleton: skeleton)
        return (bytes, manifest)
    }

    /// As `encode`, with the accounting of where the bytes went.
    public static func encodeWithAccounting(_ model: Model, skeleton: [UInt8]? = nil) throws -> (bytes: [UInt8], manifest: Manifest, accounting: ContainerAccounting) {
        var streams = StreamBuilder()
        var entries: [Manifest.TensorEntry] = []
        let pooled = pool(model.tensors, into: &streams)
        for (index, tensor) in model.tensors.enumerated() {
            entries.append(Manifest.TensorEntry(
                name: tensor.name, dtype: tensor.dtype.rawValue, shape: tensor.shape, origin: model.format == .onnx ? nil : OriginCoding.encode(tensor.origin),
                consumerOp: tensor.consumer?.op, consumerName: tensor.consumer?.name,
                encoding: try pooled[index] ?? encoding(of: tensor, into: &streams)))
        }
        let skeletonStream = skeleton.map { streams.metadata($0) }
        let source = Manifest.Source(
            format: model.format.rawValue, producerName: model.metadata.producerName,
            producerVersion: model.metadata.producerVersion,
            properties: model.metadata.properties.map { Manifest.Property(key: $0.key, value: $0.value) },
            configuration: model.configuration, skeleton: skeletonStream)

        // Layout: header, streams (each on a 64-byte boundary), manifest last.
        var bytes = [UInt8](repeating: 0, count: ContainerHeader.size)
        var streamEntries: [Manifest.StreamEntry] = []
        for (payload, var entry) in zip(streams.payloads, streams.entries) {
            bytes += [UInt8](repeating: 0, count: padding(bytes.count))
            entry.offset = bytes.count
            bytes += payload
            streamEntries.append(entry)
        }
        bytes += [UInt8](repeating: 0, count: padding(bytes.count))
        let manifest = Manifest(version: "\(ContainerHeader.majorVersion).\(ContainerHeader.minorVersion)", source: source, tensors: entries, streams: streamEntries)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // The manifest is stored as a zstd frame of its JSON (header flag 1).
        let json = Zstd.compress([UInt8](try encoder.encode(manifest)))
        let header = ContainerHeader(flags: ContainerHeader.manifestZstd, manifestOffset: UInt64(bytes.count), manifestLength: UInt64(json.count), manifestChecksum: CRC32C.checksum(json))
        bytes += json
        bytes.replaceSubrange(0..<ContainerHeader.size, with: header.encoded())
        let accounting = ContainerAccounting(manifest: manifest, manifestBytes: json.count)
        precondition(accounting.fileBytes == bytes.count, "container accounting must add up to the file size")
        return (bytes, manifest, accounting)
    }

    /// Tensors below this many elements share pooled streams (larger ones keep their own tables,
    /// which fit their distribution better).
    static let poolLimit = 4096

    /// Small dense float32 and bfloat16 tensors, split into exponent and sign-mantissa fields and
    /// concatenated per dtype into shared streams: one Huffman table and one alignment for all of
    /// them instead of one per tensor (small tensors are many in real models: norms, biases).
    static func pool(_ tensors: [Tensor], into streams: inout StreamBuilder) -> [Int: Manifest.Encoding] {
        var result: [Int: Manifest.Encoding] = [:]
        for dtype in [DType.float32, .bfloat16] {
            let members = tensors.indices.filter { i in
                guard tensors[i].dtype == dtype, tensors[i].count > 0, tensors[i].count < poolLimit, case .dense = tensors[i].storage else { return false }
                return true
            }
            guard members.count >= 2 else { continue }
            var parts: [[UInt8]] = []
            var starts: [Int: Int] = [:]
            var seen: [[UInt8]: Int] = [:]  // identical tensors share one slice
            var offset = 0
            for i in members {
                guard case .dense(let buffer) = tensors[i].storage else { continue }
                let bytes = buffer.bytes
                if let start = seen[bytes] { starts[i] = start; continue }
                guard let split = FloatSplit.split(bytes, dtype: dtype) else { continue }
                if parts.isEmpty { parts = split } else { for k in parts.indices { parts[k] += split[k] } }
                starts[i] = offset
                seen[bytes] = offset
                offset += tensors[i].count
            }
            let ids = parts.map { streams.bytes($0) }
            for (i, start) in starts {
                var encoding = Manifest.Encoding(kind: "float-split")
                encoding.streams = ids
                encoding.start = start
                result[i] = encoding
            }
        }
        return result
    }

    static func padding(_ count: Int) -> Int { (ContainerHeader.alignment - count % ContainerHeader.alignment) % ContainerHeader.alignment }

    static func encoding(of tensor: Tensor, into streams: inout StreamBuilder) throws -> Manifest.Encoding {
        switch tensor.storage {
        case .dense(let buffer): return denseEncoding(buffer, dtype: tensor.dtype, into: &streams)
        case .strings(let values):
            var bytes: [UInt8] = []
            for value in values {
                withUnsafeBytes(of: UInt32(value.count).littleEndian) { bytes.append(contentsOf: $0) }
                bytes += value
            }
            var encoding = Manifest.Encoding(kind: "strings")
            encoding.streams = [streams.bytes(bytes)]
            return encoding
        case .codebook(let codebook): return codebookEncoding(codebook, into: &streams)
        case .quantized(let quantized): return quantizedEncoding(quantized, into: &streams)
        case .factored(let factored):
            var encoding = Manifest.Encoding(kind: "factored")
            encoding.rows = factored.rows
            encoding.columns = factored.columns
            switch factored.method {
            case .lowRank(let rank): encoding.method = "low-rank"; encoding.rank = rank
            case .tensorTrain(let m, let n, let r):
                encoding.method = "tensor-train"
                encoding.rowFactors = m
                encoding.columnFactors = n
                encoding.ranks = r
            case .circulant: encoding.method = "circulant"
            case .separable(let rank): encoding.method = "separable"; encoding.rank = rank
            }
            encoding.factors = factored.factors.map { denseEncoding(TensorBuffer(values: $0), dtype: .float32, into: &streams) }
            return encoding
        case .sparse(let sparse):
            var encoding = Manifest.Encoding(kind: "sparse")
            encoding.rows = sparse.rows
            encoding.columns = sparse.columns
            encoding.indexBits = sparse.indexBits
            encoding.fillers = sparse.fillers
            encoding.entries = sparse.entries
            var starts: [UInt8] = []
            for start in sparse.rowStarts { withUnsafeBytes(of: UInt32(start).littleEndian) { starts.append(contentsOf: $0) } }
            encoding.rowStarts = streams.bytes(starts)
            encoding.gaps = sparse.indexBits <= 8
                ? streams.bytes(sparse.gaps.map { UInt8($0) }, alphabet: 1 << sparse.indexBits)
                : streams.wide(sparse.gaps, alphabet: 1 << sparse.indexBits)
            switch sparse.values {
            case .dense(let buffer): encoding.values = Box(denseEncoding(buffer, dtype: tensor.dtype, into: &streams))
            case .codebook(let codebook): encoding.values = Box(codebookEncoding(codebook, into: &streams))
            case .quantized(let quantized): encoding.values = Box(quantizedEncoding(quantized, into: &streams))
            }
            return encoding
        }
    }

    /// Lossless storage of dense elements: the raw bytes, or — for types of 2 bytes or more — one
    /// stream per byte position ("byte planes": exponent bytes of floats compress well, low mantissa
    /// bytes do not), whichever is smaller; each stream raw or Huffman on its own.
    static func denseEncoding(_ buffer: TensorBuffer, dtype: DType, into streams: inout StreamBuilder) -> Manifest.Encoding {
        let width = dtype.bitWidth / 8
        let bytes = buffer.bytes
        // Each stream also costs its manifest entry and alignment: count that in the choice.
        let overhead = StreamBuilder.streamOverhead
        var best = (kind: "dense", parts: [bytes], size: StreamBuilder.bestSize(bytes) + overhead)
        if width >= 2, dtype.bitWidth % 8 == 0, bytes.count >= width {
            let count = bytes.count / width
            let planes = (0..<width).map { k in (0..<count).map { bytes[$0 * width + k] } }
            let size = planes.reduce(0) { $0 + StreamBuilder.bestSize($1) + overhead }
            if size < best.size { best = ("planes", planes, size) }
            if let split = FloatSplit.split(bytes, dtype: dtype) {
                let size = split.reduce(0) { $0 + StreamBuilder.bestSize($1) + overhead }
                if size < best.size { best = ("float-split", split, size) }
            }
        }
        var encoding = Manifest.Encoding(kind: best.kind)
        encoding.streams = best.parts.map { streams.bytes($0) }
        return encoding
    }

    static func codebookEncoding(_ codebook: CodebookStorage, into streams: inout StreamBuilder) -> Manifest.Encoding {
        var encoding = Manifest.Encoding(kind: "codebook")
        encoding.bits = codebook.bits
        encoding.channels = codebook.channels
        encoding.axis = codebook.axis
        encoding.zeroReserved = codebook.zeroIsReserved
        encoding.centroids = streams.raw(codebook.centroids.withUnsafeBytes { Array($0) })
        encoding.indices = streams.bytes(codebook.indices, alphabet: 1 << codebook.bits)
        return encoding
    }

    static func quantizedEncoding(_ quantized: QuantizedStorage, into streams: inout StreamBuilder) -> Manifest.Encoding {
        var encoding = Manifest.Encoding(kind: "quantized")
        encoding.axis = quantized.axis
        switch quantized.scheme {
        case .linear(let bits, let signed):
            encoding.scheme = "linear"
            encoding.bits = bits
            encoding.signed = signed
            encoding.scales = streams.raw(quantized.scales.withUnsafeBytes { Array($0) })
            if !quantized.isSymmetric { encoding.zeroPoints = streams.raw(quantized.zeroPoints.withUnsafeBytes { Array($0) }) }
            // Codes as their low `bits` bits (two's complement for signed codes).
            let mask = Int32((1 << bits) - 1)
            if bits <= 8 {
                encoding.codes = streams.bytes(quantized.codes.map { UInt8(truncatingIfNeeded: $0 & mask) }, alphabet: 1 << bits)
            } else {
                encoding.codes = streams.wide(quantized.codes.map { UInt16(truncatingIfNeeded: $0 & mask) }, alphabet: 1 << bits)
            }
        case .float16, .bfloat16:
            encoding.scheme = quantized.scheme == .float16 ? "float16" : "bfloat16"
            let bits = quantized.codes.map { UInt16(truncatingIfNeeded: $0) }
            encoding.streams = [streams.bytes(bits.map { UInt8(truncatingIfNeeded: $0) }), streams.bytes(bits.map { UInt8($0 >> 8) })]
        }
        return encoding
    }
}

/// Collects the streams of a container, storing identical ones once.
struct StreamBuilder {
    var payloads: [[UInt8]] = []
    var entries: [Manifest.StreamEntry] = []
    private var index: [Key: Int] = [:]

    struct Key: Hashable {
        var checksum: UInt32
        var length: Int
        var coding: String
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
    mutating func add(_ payload: [UInt8], coding: String, symbols: Int, symbolBits: Int?, codeLengths: [UInt8]?) -> Int {
        let checksum = CRC32C.checksum(payload)
        let key = Key(checksum: checksum, length: payload.count, coding: coding, symbols: symbols)
        if let existing = index[key], payloads[existing] == payload, entries[existing].codeLengths == codeLengths.map(Self.hexDigits) {
            return existing
        }
        payloads.append(payload)
        entries.append(Manifest.StreamEntry(
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
        add(bytes, coding: "raw", symbols: bytes.count, symbolBits: nil, codeLengths: nil)
    }

    /// Metadata bytes (the source skeleton): the smallest of raw, Huffman and a zstd frame.
    mutating func metadata(_ bytes: [UInt8]) -> Int {
        let frame = Zstd.compress(bytes)
        if frame.count < Self.bestSize(bytes) {
            return add(frame, coding: "zstd", symbols: bytes.count, symbolBits: nil, codeLengths: nil)
        }
        return self.bytes(bytes)
    }

    /// Byte symbols below `alphabet`: Huffman when smaller than raw.
    mutating func bytes(_ bytes: [UInt8], alphabet: Int = 256) -> Int {
        if let (payload, lengths) = Self.huffman(bytes, alphabet: alphabet), payload.count + lengths.count / 2 < bytes.count {
            return add(payload, coding: "huffman", symbols: bytes.count, symbolBits: 8, codeLengths: lengths)
        }
        return raw(bytes)
    }

    /// 16-bit symbols below `alphabet`: Huffman when it applies (≤ 4096 distinct) and is smaller, else raw little-endian.
    mutating func wide(_ symbols: [UInt16], alphabet: Int) -> Int {
        let rawBytes = symbols.withUnsafeBytes { Array($0) }
        let frequencies = HuffmanCode.histogram(symbols, alphabetSize: alphabet)
        if symbols.count >= 64, frequencies.filter({ $0 > 0 }).count <= HuffmanCode.maximumSymbols,
           let code = try? HuffmanCode(lengths: HuffmanCode.codeLengths(frequencies: frequencies)) {
            let payload = HuffmanStreams.encode(symbols, code: code)
            if payload.count + alphabet / 2 < rawBytes.count {
                return add(payload, coding: "huffman", symbols: symbols.count, symbolBits: 16, codeLengths: code.lengths)
            }
        }
        return add(rawBytes, coding: "raw", symbols: rawBytes.count, symbolBits: nil, codeLengths: nil)
    }
}

/// Tensor origins as short strings in the manifest.
enum OriginCoding {
    static func encode(_ origin: TensorOrigin) -> String {
        switch origin {
        case .initializer(let graph): return "initializer:" + graph.description
        case .sparseInitializer(let graph): return "sparse-initializer:" + graph.description
        case .nodeAttribute(let graph, let node, let attribute, let index):
            return "attribute:\(graph.description)\u{1F}\(node)\u{1F}\(attribute)\u{1F}\(index)"
        case .kerasWeight(let layer, let weight, let path): return "keras:\(layer)\u{1F}\(weight)\u{1F}\(path)"
        case .dataset(let path): return "dataset:" + path
        }
    }

    /// The origin, as far as a string can say; unknown forms read as a dataset named like the tensor.
    static func decode(_ text: String, name: String) -> TensorOrigin {
        let parts = text.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        if text.hasPrefix("keras:"), parts.count == 3 {
            return .kerasWeight(layer: String(parts[0].dropFirst(6)), weight: parts[1], path: parts[2])
        }
        if text.hasPrefix("dataset:") { return .dataset(path: String(text.dropFirst(8))) }
        if text == "initializer:" { return .initializer(graph: .main) }
        return .dataset(path: name)
    }
}

/// The exponent apart from sign and mantissa (the DFloat11 / ZipNN observation: trained weights
/// use few exponents, so the exponent stream codes to a few bits while the mantissa stays ~random).
/// float32: [exponent, sign·2^7 + mantissa bits 22–16, mantissa bits 15–8, mantissa bits 7–0];
/// bfloat16: [exponent, sign·2^7 + mantissa bits 6–0].
enum FloatSplit {
    static func split(_ bytes: [UInt8], dtype: DType) -> [[UInt8]]? {
        switch dtype {
        case .float32:
            let count = bytes.count / 4
            var e = [UInt8](repeating: 0, count: count), sm = e, mid = e, low = e
            bytes.withUnsafeBytes { raw in
                e.withUnsafeMutableBufferPointer { e in sm.withUnsafeMutableBufferPointer { sm in
                mid.withUnsafeMutableBufferPointer { mid in low.withUnsafeMutableBufferPointer { low in
                    for i in 0..<count {
                        let u = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                        e[i] = UInt8(truncatingIfNeeded: u >> 23)
                        sm[i] = UInt8(truncatingIfNeeded: (u >> 31) << 7 | (u >> 16) & 0x7F)
                        mid[i] = UInt8(truncatingIfNeeded: u >> 8)
                        low[i] = UInt8(truncatingIfNeeded: u)
                    }
                } } } }
            }
            return [e, sm, mid, low]
        case .bfloat16:
            let count = bytes.count / 2
            var e = [UInt8](repeating: 0, count: count), sm = e
            bytes.withUnsafeBytes { raw in
                e.withUnsafeMutableBufferPointer { e in sm.withUnsafeMutableBufferPointer { sm in
                    for i in 0..<count {
                        let u = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        e[i] = UInt8(truncatingIfNeeded: u >> 7)
                        sm[i] = UInt8(truncatingIfNeeded: (u >> 15) << 7 | u & 0x7F)
                    }
                } }
            }
            return [e, sm]
        default:
            return nil
        }
    }

    /// Inverse of `split`: the little-endian element bytes, in a tensor buffer.
    static func join(_ parts: [[UInt8]], dtype: DType, count: Int) -> TensorBuffer {
        func withBuffers(_ done: [UnsafeBufferPointer<UInt8>]) -> TensorBuffer {
            done.count == parts.count ? join(done, dtype: dtype, count: count)
                : parts[done.count].withUnsafeBufferPointer { withBuffers(done + [$0]) }
        }
        return withBuffers([])
    }

    static func join(_ parts: [UnsafeBufferPointer<UInt8>], dtype: DType, count: Int) -> TensorBuffer {
        TensorBuffer(count: count * dtype.bitWidth / 8) { out in
            join(parts, dtype: dtype, range: 0 ..< count, into: out.baseAddress!)
        }
    }

    /// Elements `range` of the split `parts`, joined into `out` (which receives `range.count` elements).
    static func join(_ parts: [UnsafeBufferPointer<UInt8>], dtype: DType, range: Range<Int>, into out: UnsafeMutableRawPointer) {
        switch dtype {
        case .float32:
            let (e, sm, mid, low) = (parts[0], parts[1], parts[2], parts[3])
            var o = out
            for i in range {
                let u = UInt32(e[i]) << 23 | UInt32(sm[i] >> 7) << 31 | UInt32(sm[i] & 0x7F) << 16 | UInt32(mid[i]) << 8 | UInt32(low[i])
                o.storeBytes(of: u.littleEndian, as: UInt32.self)
                o += 4
            }
        case .bfloat16:
            let (e, sm) = (parts[0], parts[1])
            var o = out
            for i in range {
                let u = UInt16(e[i]) << 7 | UInt16(sm[i] >> 7) << 15 | UInt16(sm[i] & 0x7F)
                o.storeBytes(of: u.littleEndian, as: UInt16.self)
                o += 2
            }
        default: break
        }
    }
}
