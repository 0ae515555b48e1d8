import Foundation
public import PithIR
import PithCoding

/// Reads `.pith` containers, trusting nothing: every length is checked against the bytes that
/// remain before anything is allocated, streams must lie inside the file without overlapping,
/// checksums are verified, and unknown versions and encodings are refused with what to do.
public enum ContainerReader {
    /// Most tensors and streams a manifest may list.
    public static let maximumTensors = 1 << 20
    public static let maximumStreams = 1 << 22
    /// Most bytes a zstd-coded (metadata) stream may decode to.
    public static let maximumMetadataBytes = 1 << 30

    /// What a container holds: the model (tensors in their compressed storage), the manifest, the
    /// bytes each tensor's streams occupy, and the source skeleton.
    public struct Contents: Sendable {
        public var model: Model
        public var manifest: Manifest
        /// Stored bytes of each tensor's streams (shared streams counted for each tensor using them).
        public var tensorBytes: [Int]
        public var skeleton: [UInt8]?
        public var fileBytes: Int
        public var manifestBytes: Int
    }

    public static func read(contentsOf path: String) throws -> Contents {
        try ContainerFile(path).contents()
    }

    /// Whether `bytes` start with the container signature.
    public static func hasSignature(_ bytes: [UInt8]) -> Bool { bytes.starts(with: ContainerHeader.magic) }

    public static func read(bytes: UnsafeRawBufferPointer, file: String) throws -> Contents {
        try ContainerFile(bytes: bytes, file: file, owner: nil).contents()
    }
}

/// An open container: header, manifest and stream table read and checked, shared streams decoded,
/// tensors not yet. Tensors decode on demand (`TensorSource`), each thread with its own worker, so
/// that a restore can write each tensor where it goes without holding the whole model.
public final class ContainerFile: TensorSource, @unchecked Sendable {
    public let manifest: Manifest
    public let format: SourceFormat
    public let metadata: ModelMetadata
    public let skeleton: [UInt8]?
    public let fileBytes: Int
    public let manifestBytes: Int
    private let headers: [TensorInfo]
    /// The reader every worker starts from (shared streams decoded); it only reads the mapping.
    private let prototype: Reader
    /// Keeps the mapping alive as long as the readers that point into it.
    private let owner: AnyObject?

    /// Opens and checks the container at `path`.
    public convenience init(_ path: String) throws {
        let file = try MappedFile(path)
        try self.init(bytes: file.bytes, file: path, owner: file)
    }

    init(bytes: UnsafeRawBufferPointer, file: String, owner: AnyObject?) throws {
        let header = try ContainerHeader.decode(bytes, file: file, fileSize: bytes.count)
        let manifestBytes = UnsafeRawBufferPointer(rebasing: bytes[Int(header.manifestOffset) ..< Int(header.manifestOffset + header.manifestLength)])
        let checksum = CRC32C.checksum(manifestBytes)
        guard checksum == header.manifestChecksum else {
            throw ContainerError(.checksum, file: file, "manifest checksum is \(hex(header.manifestChecksum)) in the header, the manifest's bytes give \(hex(checksum)): the file is damaged")
        }
        var json = Array(manifestBytes)
        if header.flags & ContainerHeader.manifestZstd != 0 {
            // The frame must say its size, within the manifest limit, before anything is allocated.
            guard let size = Zstd.frameContentSize(manifestBytes), size <= ContainerHeader.maximumManifestBytes,
                  let inflated = Zstd.decompress(manifestBytes, expected: size) else {
                throw ContainerError(.malformed, file: file, "the manifest is not a zstd frame of at most \(ContainerHeader.maximumManifestBytes) bytes")
            }
            json = inflated
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let manifest: Manifest
        do {
            manifest = try decoder.decode(Manifest.self, from: Data(json))
        } catch {
            throw ContainerError(.malformed, file: file, "the manifest is not valid JSON of the container format (\(error))")
        }
        var reader = Reader(bytes: bytes, file: file, manifest: manifest, streamsEnd: Int(header.manifestOffset))
        try reader.validateStreams()
        guard manifest.tensors.count <= ContainerReader.maximumTensors else {
            throw ContainerError(.malformed, file: file, "manifest lists \(manifest.tensors.count) tensors; the limit is \(ContainerReader.maximumTensors)")
        }
        guard let format = SourceFormat(rawValue: manifest.source.format) else {
            throw ContainerError(.unsupported, file: file, "source format `\(manifest.source.format)` is not one this Pith knows")
        }
        headers = try manifest.tensors.map { entry in
            guard let dtype = DType(rawValue: entry.dtype) else {
                throw ContainerError(.unsupported, file: file, "tensor `\(entry.name)`: dtype `\(entry.dtype)` is not one this Pith knows")
            }
            guard Shape.elementCount(entry.shape) != nil else {
                throw ContainerError(.malformed, file: file, "tensor `\(entry.name)`: shape \(entry.shape) is negative or too large")
            }
            return TensorInfo(name: entry.name, dtype: dtype, shape: entry.shape)
        }
        try reader.validatePools()
        try reader.decodeSharedStreams()
        var metadata = ModelMetadata()
        metadata.producerName = manifest.source.producerName
        metadata.producerVersion = manifest.source.producerVersion
        metadata.properties = manifest.source.properties.map { (key: $0.key, value: $0.value) }
        skeleton = try manifest.source.skeleton.map { index in
            try reader.byteSymbols(index, count: manifest.streams[safe: index]?.symbols ?? 0, purpose: "the source skeleton")
        }
        self.manifest = manifest
        self.format = format
        self.metadata = metadata
        fileBytes = bytes.count
        self.manifestBytes = Int(header.manifestLength)
        prototype = reader
        self.owner = owner
    }

    /// Every tensor decoded (on every core) in its compressed storage, with the rest of the container.
    /// The first failing tensor, in manifest order, is the error reported.
    public func contents() throws -> ContainerReader.Contents {
        let results = Parallel.map(count: tensorCount, makeWorker: { self.makeWorker() }) { worker, index in
            UncheckedSendable(Result { try worker.reader.tensor(self.manifest.tensors[index]) })
        }
        var tensors: [Tensor] = []
        var sizes: [Int] = []
        for result in results {
            let (tensor, size) = try result.value.get()
            tensors.append(tensor)
            sizes.append(size)
        }
        return ContainerReader.Contents(
            model: Model(format: format, metadata: metadata, tensors: tensors, configuration: manifest.source.configuration),
            manifest: manifest, tensorBytes: sizes, skeleton: skeleton, fileBytes: fileBytes, manifestBytes: manifestBytes)
    }

    // MARK: TensorSource

    /// A reader of its own (scratch memory) for one thread.
    public struct Worker {
        fileprivate var reader: Reader
    }

    public var tensorCount: Int { headers.count }

    public func header(_ index: Int) -> TensorInfo { headers[index] }

    /// A worker points into the file's mapping: use it only while the file is alive.
    public func makeWorker() -> Worker { Worker(reader: prototype) }

    public func denseTensor(_ index: Int, worker: inout Worker) throws -> Tensor {
        try worker.reader.tensor(manifest.tensors[index]).0.densified()
    }

    public func denseBytes(_ index: Int, worker: inout Worker, _ body: (_ offset: Int, _ piece: UnsafeRawBufferPointer) throws -> Void) throws {
        try worker.reader.denseBytes(manifest.tensors[index], dtype: headers[index].dtype, body)
    }
}

/// Decoding of streams and encodings for one container.
struct Reader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    let manifest: Manifest
    let streamsEnd: Int
    var used = 0  // bytes of the streams of the tensor being read
    /// Streams shared by several tensors, decoded once.
    var decodedShared: [Int: [UInt8]] = [:]
    /// Scratch for the byte streams of one float-split tensor, reused from tensor to tensor.
    var planes: [Scratch] = []

    init(bytes: UnsafeRawBufferPointer, file: String, manifest: Manifest, streamsEnd: Int) {
        self.bytes = bytes
        self.file = file
        self.manifest = manifest
        self.streamsEnd = streamsEnd
    }

    func fail(_ message: String) -> ContainerError { ContainerError(.malformed, file: file, message) }

    /// Every stream inside the data area, aligned, with plausible counts, and no two overlapping.
    func validateStreams() throws {
        guard manifest.streams.count <= ContainerReader.maximumStreams else {
            throw fail("manifest lists \(manifest.streams.count) streams; the limit is \(ContainerReader.maximumStreams)")
        }
        for (i, s) in manifest.streams.enumerated() {
            guard s.offset >= ContainerHeader.size, s.offset % ContainerHeader.alignment == 0, s.length >= 0,
                  s.offset <= streamsEnd, s.length <= streamsEnd - s.offset else {
                throw fail("stream \(i): bytes \(s.offset)..<\(s.offset &+ s.length) are not inside the data area 64..<\(streamsEnd) on a 64-byte boundary")
            }
            switch s.coding {
            case "raw":
                guard s.symbols == s.length else { throw fail("stream \(i): raw stream of \(s.length) bytes declares \(s.symbols) symbols") }
            case "huffman":
                guard s.symbolBits == 8 || s.symbolBits == 16 else { throw fail("stream \(i): symbol_bits must be 8 or 16") }
                guard let lengths = s.codeLengths, lengths.count <= (1 << (s.symbolBits ?? 8)) else {
                    throw fail("stream \(i): huffman stream without code lengths for its alphabet")
                }
                // Every symbol takes at least one bit.
                guard s.symbols >= 0, s.length >= HuffmanStreams.headerBytes, s.symbols <= (s.length - HuffmanStreams.headerBytes) * 8 else {
                    throw fail("stream \(i): \(s.length) bytes cannot hold \(s.symbols) Huffman symbols")
                }
            case "zstd":
                guard s.symbols >= 0, s.symbols <= ContainerReader.maximumMetadataBytes else {
                    throw fail("stream \(i): a zstd stream may decode to at most \(ContainerReader.maximumMetadataBytes) bytes, not \(s.symbols)")
                }
            default:
                throw ContainerError(.unsupported, file: file, "stream \(i): coding `\(s.coding)` is not one this Pith knows (raw, huffman, zstd): upgrade Pith")
            }
        }
        let order = manifest.streams.indices.sorted { manifest.streams[$0].offset < manifest.streams[$1].offset }
        for (a, b) in zip(order, order.dropFirst()) where manifest.streams[a].offset + manifest.streams[a].length > manifest.streams[b].offset {
            throw fail("streams \(a) and \(b) overlap (bytes \(manifest.streams[b].offset)…)")
        }
    }

    /// Tensors that share `float-split` streams must tile them: their element ranges, identical
    /// ones merged, follow each other without gap or overlap and end where the streams end.
    func validatePools() throws {
        var pools: [[Int]: [(start: Int, count: Int, name: String)]] = [:]
        for entry in manifest.tensors where entry.encoding.kind == "float-split" {
            guard let streams = entry.encoding.streams, let count = Shape.elementCount(entry.shape) else { continue }
            pools[streams, default: []].append((entry.encoding.start ?? 0, count, entry.name))
        }
        for (streams, members) in pools {
            guard let first = streams.first, let symbols = manifest.streams[safe: first]?.symbols else { continue }
            var ranges: [(start: Int, count: Int, name: String)] = []
            for member in members.sorted(by: { ($0.start, $0.count) < ($1.start, $1.count) })
            where ranges.last.map({ $0.start != member.start || $0.count != member.count }) ?? true {
                ranges.append(member)
            }
            var next = 0
            for range in ranges {
                guard range.start == next else {
                    throw fail("tensor `\(range.name)`: elements \(range.start)..<\(range.start &+ range.count) of streams \(streams) \(range.start < next ? "overlap the tensor before" : "leave a gap after the tensor before")")
                }
                next = range.start + range.count
            }
            guard next == symbols else { throw fail("tensors sharing streams \(streams) cover \(next) of their \(symbols) symbols") }
        }
    }

    /// The stored bytes of stream `index`, checksum verified.
    mutating func stored(_ index: Int, purpose: String) throws -> UnsafeRawBufferPointer {
        guard index >= 0, index < manifest.streams.count else { throw fail("\(purpose): stream \(index) does not exist (\(manifest.streams.count) streams)") }
        let s = manifest.streams[index]
        let payload = UnsafeRawBufferPointer(rebasing: bytes[s.offset ..< s.offset + s.length])
        let checksum = hex(CRC32C.checksum(payload))
        guard checksum == s.crc32c else {
            throw ContainerError(.checksum, file: file, "\(purpose): stream \(index) checksum is \(s.crc32c) in the manifest, its bytes give \(checksum): the file is damaged")
        }
        used += s.length
        return payload
    }

    mutating func rawBytes(_ index: Int, purpose: String) throws -> [UInt8] {
        let payload = try stored(index, purpose: purpose)
        guard manifest.streams[index].coding == "raw" else { throw fail("\(purpose): stream \(index) must be raw") }
        return Array(payload)
    }

    /// Decodes stream `index` to exactly `count` byte symbols.
    mutating func byteSymbols(_ index: Int, count: Int, purpose: String) throws -> [UInt8] {
        // The count is checked against the stream's before anything is allocated.
        guard index >= 0, index < manifest.streams.count else { throw fail("\(purpose): stream \(index) does not exist (\(manifest.streams.count) streams)") }
        guard manifest.streams[index].symbols == count else { throw fail("\(purpose): stream \(index) holds \(manifest.streams[index].symbols) symbols, \(count) expected") }
        var output = [UInt8](repeating: 0, count: count)
        try output.withUnsafeMutableBufferPointer { try decodeBytes(index, into: $0, purpose: purpose) }
        return output
    }

    /// Decodes every stream that several float-split tensors share, so that tensors can then be
    /// decoded independently.
    mutating func decodeSharedStreams() throws {
        for entry in manifest.tensors where entry.encoding.kind == "float-split" {
            guard let streams = entry.encoding.streams, let count = Shape.elementCount(entry.shape) else { continue }
            if (entry.encoding.start ?? 0) == 0, streams.allSatisfy({ manifest.streams[safe: $0]?.symbols == count }) { continue }
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
        case "raw":
            if count > 0 { UnsafeMutableRawBufferPointer(output).copyMemory(from: payload) }
        case "zstd":
            guard Zstd.decompress(payload, into: UnsafeMutableRawBufferPointer(output)) else {
                throw fail("\(purpose): stream \(index) is not a zstd frame of \(count) bytes")
            }
        default:
            guard s.symbolBits == 8 else { throw fail("\(purpose): stream \(index) has \(s.symbolBits ?? 0)-bit symbols, 8 expected") }
            let decoder = try huffmanDecoder(s, index: index, purpose: purpose)
            try HuffmanStreams.decode(payload, into: output, decoder: decoder)
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
        if s.coding == "raw" {
            guard s.length == count * 2 else { throw fail("\(purpose): raw stream \(index) has \(s.length) bytes, \(count * 2) expected") }
            return (0..<count).map { UInt16(littleEndian: payload.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        }
        guard s.symbols == count, s.symbolBits == 16 else { throw fail("\(purpose): stream \(index) does not hold \(count) 16-bit symbols") }
        let decoder = try huffmanDecoder(s, index: index, purpose: purpose)
        var output = [UInt16](repeating: 0, count: count)
        try output.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(payload, into: $0, decoder: decoder) }
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

    // MARK: Tensors

    mutating func tensor(_ entry: Manifest.TensorEntry) throws -> (Tensor, Int) {
        guard let dtype = DType(rawValue: entry.dtype) else {
            throw ContainerError(.unsupported, file: file, "tensor `\(entry.name)`: dtype `\(entry.dtype)` is not one this Pith knows")
        }
        guard let count = Shape.elementCount(entry.shape) else {
            throw fail("tensor `\(entry.name)`: shape \(entry.shape) is negative or too large")
        }
        used = 0
        let storage = try decode(entry.encoding, dtype: dtype, count: count, shape: entry.shape, tensor: entry.name)
        let consumer = entry.consumerOp.map { Consumer(op: $0, name: entry.consumerName ?? "") }
        let tensor = Tensor(name: entry.name, dtype: dtype, shape: entry.shape, storage: storage,
                            origin: entry.origin.map { OriginCoding.decode($0, name: entry.name) } ?? .initializer(graph: .main), consumer: consumer)
        return (tensor, used)
    }

    mutating func decode(_ e: Manifest.Encoding, dtype: DType, count: Int, shape: [Int], tensor: String) throws -> TensorStorage {
        let label = "tensor `\(tensor)`"
        switch e.kind {
        case "dense", "planes", "float-split":
            return .dense(try dense(e, dtype: dtype, count: count, label: label))
        case "strings":
            guard dtype == .string, let index = e.streams?.first else { throw fail("\(label): strings encoding needs dtype string and one stream") }
            let raw = try byteSymbols(index, count: manifest.streams[safe: index]?.symbols ?? 0, purpose: label)
            var values: [[UInt8]] = [], position = 0
            while position < raw.count {
                guard raw.count - position >= 4 else { throw fail("\(label): string lengths truncated") }
                let length = Int(raw.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: position, as: UInt32.self)) })
                position += 4
                guard length <= raw.count - position else { throw fail("\(label): string of \(length) bytes runs past its stream") }
                values.append(Array(raw[position ..< position + length]))
                position += length
            }
            guard values.count == count else { throw fail("\(label): \(values.count) strings for \(count) elements") }
            return .strings(values)
        case "codebook":
            return .codebook(try codebook(e, count: count, shape: shape, label: label))
        case "quantized":
            return .quantized(try quantized(e, count: count, shape: shape, label: label))
        case "sparse":
            guard let rows = e.rows, let columns = e.columns, let bits = e.indexBits, let entries = e.entries,
                  let startsIndex = e.rowStarts, let gapsIndex = e.gaps, let values = e.values?.value, let fillers = e.fillers else {
                throw fail("\(label): sparse encoding lacks rows, columns, index_bits, entries, row_starts, gaps or values")
            }
            guard rows >= 0, columns >= 0, rows.multipliedReportingOverflow(by: columns) == (count, false) else {
                throw fail("\(label): sparse view \(rows)×\(columns) does not match the \(count) elements of its shape")
            }
            guard (1...16).contains(bits), entries >= 0, entries <= count + count / 2 + rows, fillers >= 0, fillers <= entries else {
                throw fail("\(label): sparse index_bits \(bits), entries \(entries) or fillers \(fillers) out of range")
            }
            let startBytes = try byteSymbols(startsIndex, count: (rows + 1) * 4, purpose: label)
            let starts = (0...rows).map { r in Int(startBytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4 * r, as: UInt32.self)) }) }
            guard starts.first == 0, starts.last == entries, zip(starts, starts.dropFirst()).allSatisfy({ $0 <= $1 }) else {
                throw fail("\(label): row_starts must rise from 0 to \(entries)")
            }
            let gaps: [UInt16] = bits <= 8
                ? try byteSymbols(gapsIndex, count: entries, purpose: label).map(UInt16.init)
                : try wideSymbols(gapsIndex, count: entries, purpose: label)
            // Every entry must land inside its row.
            for row in 0..<rows {
                var column = -1
                for entry in starts[row] ..< starts[row + 1] {
                    guard Int(gaps[entry]) < 1 << bits else { throw fail("\(label): gap \(gaps[entry]) does not fit \(bits) bits") }
                    column += Int(gaps[entry]) + 1
                    guard column < columns else { throw fail("\(label): row \(row) runs past column \(columns - 1)") }
                }
            }
            let entryValues: SparseStorage.EntryValues
            switch values.kind {
            case "dense", "planes", "float-split": entryValues = .dense(try dense(values, dtype: dtype, count: entries, label: label))
            case "codebook": entryValues = .codebook(try codebook(values, count: entries, shape: shape, label: label))
            case "quantized": entryValues = .quantized(try quantized(values, count: entries, shape: shape, label: label))
            default: throw ContainerError(.unsupported, file: file, "\(label): sparse values encoding `\(values.kind)` is unknown: upgrade Pith")
            }
            return .sparse(SparseStorage(rows: rows, columns: columns, indexBits: bits, rowStarts: starts, gaps: gaps, fillers: fillers, values: entryValues))
        case "factored":
            return .factored(try factored(e, count: count, shape: shape, label: label))
        default:
            throw ContainerError(.unsupported, file: file, "\(label): encoding `\(e.kind)` is not one this Pith knows (dense, planes, float-split, strings, codebook, quantized, sparse, factored): upgrade Pith")
        }
    }

    /// Elements per stream decoded and joined in one run of `denseBytes`: four pieces of this many
    /// elements, with their byte planes, stay in cache between decoding and the caller writing them.
    static let pieceElements = 1 << 14

    /// The tensor's dense little-endian bytes, in pieces, without a buffer of the whole tensor where
    /// the encoding allows: raw dense streams are handed on from the file's own bytes; float-split
    /// streams are decoded a run at a time (`HuffmanStreamsReader`) and joined into pieces. Other
    /// encodings decode to their storage, which is expanded in memory.
    mutating func denseBytes(_ entry: Manifest.TensorEntry, dtype: DType, _ body: (_ offset: Int, _ piece: UnsafeRawBufferPointer) throws -> Void) throws {
        let label = "tensor `\(entry.name)`"
        let e = entry.encoding
        guard dtype != .string else { throw ContainerError(.unsupported, file: file, "\(label): strings have no dense bytes") }
        guard let count = Shape.elementCount(entry.shape), let byteCount = dtype.storageBytes(count: count) else {
            throw fail("\(label): shape \(entry.shape) is negative or too large")
        }
        used = 0
        if e.kind == "dense", let streams = e.streams, streams.count == 1, manifest.streams[safe: streams[0]]?.coding == "raw",
           manifest.streams[streams[0]].symbols == byteCount {
            try body(0, try stored(streams[0], purpose: label))
            return
        }
        let parts = dtype == .float32 ? 4 : (dtype == .bfloat16 ? 2 : 0)
        if e.kind == "float-split", parts > 0, let streams = e.streams, streams.count == parts, ownsSplitStreams(e, count: count) {
            try splitPieces(streams, dtype: dtype, count: count, label: label, body)
            return
        }
        let (tensor, _) = try self.tensor(entry)
        guard case .dense(let buffer) = tensor.densified().storage else {
            throw ContainerError(.unsupported, file: file, "\(label): \(dtype.rawValue) stored as \(e.kind) has no dense form")
        }
        try buffer.withUnsafeBytes { try body(0, $0) }
    }

    /// Whether a float-split tensor has its streams to itself (not pooled with others), each raw or
    /// Huffman-coded: then `splitPieces` decodes it a run at a time.
    func ownsSplitStreams(_ e: Manifest.Encoding, count: Int) -> Bool {
        (e.start ?? 0) == 0 && (e.streams ?? []).allSatisfy { index in
            manifest.streams[safe: index].map { $0.symbols == count && ($0.coding == "raw" || $0.coding == "huffman") } ?? false
        }
    }

    /// Float-split planes (`FloatSplit`), raw or four-stream Huffman, turned into pieces of the
    /// joined elements: each run decodes the next `pieceElements` symbols of every stream of every
    /// plane, then joins the four quarters' elements, each a piece of its own.
    private mutating func splitPieces(_ streams: [Int], dtype: DType, count: Int, label: String, _ body: (_ offset: Int, _ piece: UnsafeRawBufferPointer) throws -> Void) throws {
        let width = dtype.bitWidth / 8
        let run = Self.pieceElements
        var raw: [UnsafeRawBufferPointer?] = []
        var readers: [HuffmanStreamsReader?] = []
        for index in streams {
            let payload = try stored(index, purpose: label)
            let s = manifest.streams[index]
            if s.coding == "raw" {
                raw.append(payload)
                readers.append(nil)
            } else {
                guard s.symbolBits == 8 else { throw fail("\(label): stream \(index) has \(s.symbolBits ?? 0)-bit symbols, 8 expected") }
                do {
                    readers.append(try HuffmanStreamsReader(payload, count: count, decoder: huffmanDecoder(s, index: index, purpose: label)))
                } catch let error as CodingError {
                    throw fail("\(label): stream \(index): \(error)")
                }
                raw.append(nil)
            }
        }
        while planes.count < streams.count + 1 { planes.append(Scratch()) }
        let scratch = planes.prefix(streams.count).map { $0.bytes(4 * run) }
        let piece = planes[streams.count].bytes(run * width)
        let quarter = (count + 3) / 4
        var done = 0
        while done < quarter {
            let lengths = (0..<4).map { k in max(0, min(run, min(quarter, count - k * quarter) - done)) }
            for p in readers.indices where readers[p] != nil {
                do {
                    try readers[p]!.decodeNext(run, into: (0..<4).map { k in UnsafeMutableBufferPointer(rebasing: scratch[p][k * run ..< k * run + lengths[k]]) })
                } catch let error as CodingError {
                    throw fail("\(label): stream \(streams[p]): \(error)")
                }
            }
            for k in 0..<4 where lengths[k] > 0 {
                let first = k * quarter + done
                let views = (0..<streams.count).map { p in
                    raw[p].map { UnsafeBufferPointer(rebasing: $0.bindMemory(to: UInt8.self)[first ..< first + lengths[k]]) }
                        ?? UnsafeBufferPointer(rebasing: scratch[p][k * run ..< k * run + lengths[k]])
                }
                FloatSplit.join(views, dtype: dtype, range: 0 ..< lengths[k], into: UnsafeMutableRawPointer(piece.baseAddress!))
                try body(first * width, UnsafeRawBufferPointer(start: piece.baseAddress, count: lengths[k] * width))
            }
            done += run
        }
        for p in readers.indices {
            do { try readers[p]?.finish() } catch let error as CodingError { throw fail("\(label): stream \(streams[p]): \(error)") }
        }
    }

    mutating func dense(_ e: Manifest.Encoding, dtype: DType, count: Int, label: String) throws -> TensorBuffer {
        guard dtype != .string, let byteCount = dtype.storageBytes(count: count) else { throw fail("\(label): \(dtype.rawValue) cannot be stored dense") }
        guard let streams = e.streams else { throw fail("\(label): \(e.kind) encoding without streams") }
        if e.kind == "dense" {
            guard streams.count == 1 else { throw fail("\(label): dense encoding needs one stream, found \(streams.count)") }
            let bytes = try byteSymbols(streams[0], count: byteCount, purpose: label)
            return TensorBuffer(bytes: bytes)
        }
        let width = dtype.bitWidth / 8
        if e.kind == "float-split" {
            let parts = dtype == .float32 ? 4 : (dtype == .bfloat16 ? 2 : 0)
            guard parts > 0, streams.count == parts else {
                throw fail("\(label): float-split encoding is defined for float32 (4 streams) and bfloat16 (2), not \(dtype.rawValue) with \(streams.count)")
            }
            let start = e.start ?? 0
            let decoded: [[UInt8]]
            if ownsSplitStreams(e, count: count) {
                // Decoded a run at a time in reused scratch, joined straight into the tensor.
                return try TensorBuffer(count: byteCount) { out in
                    try splitPieces(streams, dtype: dtype, count: count, label: label) { offset, piece in
                        (out.baseAddress! + offset).copyMemory(from: piece.baseAddress!, byteCount: piece.count)
                    }
                }
            } else {
                // Shared streams: decode each once, take this tensor's slice; the tensor is charged its
                // share of the streams' bytes, in proportion to its elements.
                decoded = try streams.map { index in
                    let before = used
                    let whole = try sharedSymbols(index, purpose: label)
                    used = before + (manifest.streams[index].symbols == 0 ? 0 : manifest.streams[index].length * count / manifest.streams[index].symbols)
                    guard start >= 0, count <= whole.count, start <= whole.count - count else {
                        throw fail("\(label): elements \(start)..<\(start &+ count) are outside stream \(index)'s \(whole.count) symbols")
                    }
                    return Array(whole[start ..< start + count])
                }
            }
            return FloatSplit.join(decoded, dtype: dtype, count: count)
        }
        guard dtype.bitWidth % 8 == 0, streams.count == width else { throw fail("\(label): planes encoding needs \(width) streams for \(dtype.rawValue), found \(streams.count)") }
        let planes = try streams.map { try byteSymbols($0, count: count, purpose: label) }
        return TensorBuffer(count: byteCount) { out in
            for (k, plane) in planes.enumerated() { for i in 0..<count { out[i * width + k] = plane[i] } }
        }
    }

    /// Factors of a factored tensor, their shapes checked against the method and the tensor.
    mutating func factored(_ e: Manifest.Encoding, count: Int, shape: [Int], label: String) throws -> FactoredStorage {
        guard let rows = e.rows, let columns = e.columns, rows >= 0, columns >= 0, rows.multipliedReportingOverflow(by: columns) == (count, false),
              shape.first.map({ $0 == rows }) ?? (rows == 1), let method = e.method, let encodings = e.factors else {
            throw fail("\(label): factored encoding lacks rows × columns matching shape \(shape), a method or factors")
        }
        let limit = 1 << 16  // ranks and factors far beyond any real layer are refused before allocating
        let kind: FactoredStorage.Method
        switch method {
        case "low-rank":
            guard let rank = e.rank, (1...limit).contains(rank) else { throw fail("\(label): low-rank encoding needs a rank of 1…\(limit)") }
            kind = .lowRank(rank: rank)
        case "tensor-train":
            guard let m = e.rowFactors, let n = e.columnFactors, let r = e.ranks, !m.isEmpty, m.count == n.count, r.count == m.count + 1,
                  r.first == 1, r.last == 1, (m + n + r).allSatisfy({ (1...limit).contains($0) }),
                  let rowsPadded = Shape.elementCount(m), let columnsPadded = Shape.elementCount(n), rowsPadded >= rows, columnsPadded >= columns,
                  rowsPadded <= 2 * max(rows, 1) + 64, columnsPadded <= 2 * max(columns, 1) + 64 else {
                throw fail("\(label): tensor-train factors \(e.rowFactors ?? []) × \(e.columnFactors ?? []) with ranks \(e.ranks ?? []) do not describe a \(rows)×\(columns) matrix")
            }
            kind = .tensorTrain(rowFactors: m, columnFactors: n, ranks: r)
        case "circulant":
            guard rows == columns else { throw fail("\(label): a circulant matrix must be square, not \(rows)×\(columns)") }
            kind = .circulant
        case "separable":
            guard let rank = e.rank, (1...limit).contains(rank), shape.count == 4 else { throw fail("\(label): separable encoding needs a rank of 1…\(limit) and a 4-D kernel") }
            kind = .separable(rank: rank)
        default:
            throw ContainerError(.unsupported, file: file, "\(label): factorization method `\(method)` is unknown: upgrade Pith")
        }
        let storage = FactoredStorage(method: kind, rows: rows, columns: columns, factors: [])
        let shapes = storage.factorShapes(tensorShape: shape)
        guard shapes.count == encodings.count else { throw fail("\(label): \(method) needs \(shapes.count) factors, found \(encodings.count)") }
        var factors: [[Float]] = []
        for (factorShape, encoding) in zip(shapes, encodings) {
            guard let n = Shape.elementCount(factorShape), ["dense", "planes", "float-split"].contains(encoding.kind) else {
                throw fail("\(label): factor of shape \(factorShape) is too large or not stored as float32")
            }
            let buffer = try dense(encoding, dtype: .float32, count: n, label: label)
            factors.append(buffer.withUnsafeBufferPointer(as: Float.self) { Array($0) })
        }
        return FactoredStorage(method: kind, rows: rows, columns: columns, factors: factors)
    }

    mutating func codebook(_ e: Manifest.Encoding, count: Int, shape: [Int], label: String) throws -> CodebookStorage {
        guard let bits = e.bits, (1...8).contains(bits), let channels = e.channels, channels >= 1, let axis = e.axis,
              let centroidsIndex = e.centroids, let indicesIndex = e.indices else {
            throw fail("\(label): codebook encoding lacks bits (1…8), channels, axis, centroids or indices")
        }
        guard channels == 1 || (axis >= 0 && axis < shape.count && shape[axis] == channels) else {
            throw fail("\(label): \(channels) codebook tables do not match axis \(axis) of shape \(shape)")
        }
        let centroidBytes = manifest.streams[safe: centroidsIndex]?.length ?? 0
        guard centroidBytes % (4 * channels) == 0, centroidBytes / (4 * channels) <= 1 << bits, centroidBytes > 0 else {
            throw fail("\(label): \(centroidBytes) bytes of centroids do not make \(channels) tables of at most \(1 << bits)")
        }
        let centroids = try floats(centroidsIndex, count: centroidBytes / 4, purpose: label)
        let indices = try byteSymbols(indicesIndex, count: count, purpose: label)
        let perChannel = centroids.count / channels
        guard indices.allSatisfy({ Int($0) < perChannel }) else { throw fail("\(label): an index points past its \(perChannel)-entry table") }
        return CodebookStorage(bits: bits, centroids: centroids, channels: channels, axis: axis, indices: indices, zeroIsReserved: e.zeroReserved ?? false)
    }

    mutating func quantized(_ e: Manifest.Encoding, count: Int, shape: [Int], label: String) throws -> QuantizedStorage {
        let axis = e.axis ?? 0
        switch e.scheme {
        case "linear":
            guard let bits = e.bits, (2...16).contains(bits), let scalesIndex = e.scales, let codesIndex = e.codes else {
                throw fail("\(label): linear quantization lacks bits (2…16), scales or codes")
            }
            let scaleBytes = manifest.streams[safe: scalesIndex]?.length ?? 0
            let channels = scaleBytes / 4
            guard scaleBytes % 4 == 0, channels == 1 || (axis >= 0 && axis < shape.count && shape[axis] == channels) else {
                throw fail("\(label): \(channels) scales do not match axis \(axis) of shape \(shape)")
            }
            let scales = try floats(scalesIndex, count: channels, purpose: label)
            var zeroPoints = [Int32](repeating: 0, count: channels)
            if let index = e.zeroPoints {
                let raw = try rawBytes(index, purpose: label)
                guard raw.count == channels * 4 else { throw fail("\(label): \(raw.count / 4) zero points for \(channels) scales") }
                zeroPoints = raw.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
            }
            let signed = e.signed ?? true
            let raw: [Int32] = bits <= 8
                ? try byteSymbols(codesIndex, count: count, purpose: label).map(Int32.init)
                : try wideSymbols(codesIndex, count: count, purpose: label).map(Int32.init)
            let shift = Int32(32 - bits)
            let codes = signed ? raw.map { ($0 << shift) >> shift } : raw
            return QuantizedStorage(scheme: .linear(bits: bits, signed: signed), scales: scales, zeroPoints: zeroPoints, axis: axis, codes: codes)
        case "float16", "bfloat16":
            guard let streams = e.streams, streams.count == 2 else { throw fail("\(label): \(e.scheme ?? "") codes need two byte streams") }
            let low = try byteSymbols(streams[0], count: count, purpose: label)
            let high = try byteSymbols(streams[1], count: count, purpose: label)
            let codes = zip(low, high).map { Int32(UInt16($1) << 8 | UInt16($0)) }
            return QuantizedStorage(scheme: e.scheme == "float16" ? .float16 : .bfloat16, scales: [], zeroPoints: [], axis: axis, codes: codes)
        default:
            throw ContainerError(.unsupported, file: file, "\(label): quantization scheme `\(e.scheme ?? "")` is unknown: upgrade Pith")
        }
    }
}

/// Reusable memory for decoded streams, grown as needed and never shrunk.
final class Scratch {
    private var memory: UnsafeMutableRawPointer?
    private var capacity = 0

    /// `count` bytes of scratch; their contents are whatever was left there.
    func bytes(_ count: Int) -> UnsafeMutableBufferPointer<UInt8> {
        if count > capacity {
            memory.map { PageMemory.deallocate($0, byteCount: capacity) }
            memory = PageMemory.allocate(byteCount: count)
            capacity = count
        }
        return UnsafeMutableBufferPointer(start: memory?.assumingMemoryBound(to: UInt8.self), count: count)
    }

    deinit { memory.map { PageMemory.deallocate($0, byteCount: capacity) } }
}

/// A file mapped read-only, its pages read in at once (MAP_POPULATE) instead of one fault at a time.
final class MappedFile {
    let bytes: UnsafeRawBufferPointer
    private let region: UnsafeMutableRawPointer?

    init(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ContainerError(.io, file: path, "cannot open the file (\(String(cString: strerror(errno))))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw ContainerError(.io, file: path, "is not a regular file")
        }
        let size = Int(status.st_size)
        guard size > 0 else {
            region = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else { throw ContainerError(.io, file: path, "cannot map the file (\(String(cString: strerror(errno))))") }
        region = mapped
        bytes = UnsafeRawBufferPointer(start: mapped, count: size)
    }

    deinit { region.map { _ = munmap($0, bytes.count) } }
}

/// A value handed to other threads that the compiler cannot prove safe to share: the reader's view
/// of the mapped file, which no thread writes.
struct UncheckedSendable<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
