public import PithIR
import PithCoding

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

    /// Containers larger than this are read with their pages given back as they are decoded
    /// (`Reader.Paging`), so that a restore holds the streams of the tensors it is decoding, not
    /// the file: about 200 MiB instead of 1,005 for the 1 GB container of a 3 GB model. Smaller ones
    /// keep their pages: giving them back costs a small restore 2–5% more CPU time
    /// (`docs/benchmarks.md`, external data).
    static let pagingThreshold = 128 << 20

    /// Opens and checks the container at `path`, mapped with its pages read as they are used.
    public convenience init(_ path: String) throws {
        let file: MappedFile
        do { file = try MappedFile(path, populate: false) } catch { throw ContainerError(error) }
        try self.init(bytes: file.bytes, file: path, owner: file, paging: file.bytes.count > Self.pagingThreshold ? Reader.Paging(file: file) : nil)
    }

    /// `paging`: how `bytes`, the mapping of a file too large to hold, are read (nil: their pages
    /// stay). The manifest's pages are given back once it is parsed.
    init(bytes: UnsafeRawBufferPointer, file: String, owner: AnyObject?, paging: Reader.Paging? = nil) throws {
        let header = try ContainerHeader.decode(bytes, file: file, fileSize: bytes.count)
        let manifestRange = Int(header.manifestOffset)..<Int(header.manifestOffset + header.manifestLength)
        let manifestBytes = UnsafeRawBufferPointer(rebasing: bytes[manifestRange])
        defer { paging?.file.releasePages(manifestRange) }
        let checksum = CRC32C.checksum(manifestBytes)
        guard checksum == header.manifestChecksum else {
            throw ContainerError(
                .checksum, file: file,
                "manifest checksum is \(hex(header.manifestChecksum)) in the header, the manifest's bytes give \(hex(checksum)): the file is damaged")
        }
        let (parsed, inlineSkeleton) = try Self.manifest(manifestBytes, header: header, file: file)
        var manifest = parsed
        if header.isPacked {
            try Self.placePackedStreams(&manifest.streams, end: Int(header.manifestOffset), file: file)
        } else if let missing = manifest.streams.firstIndex(where: { $0.offset == Manifest.StreamEntry.absentOffset }) {
            throw ContainerError(.malformed, file: file, "stream \(missing) has no `offset` (only a packed container's streams go without)")
        }
        var reader = Reader(bytes: bytes, file: file, manifest: manifest, streamsEnd: Int(header.manifestOffset), paging: paging)
        try reader.validateStreams(alignment: header.isPacked ? .none : header.minor >= 4 ? .rawStreams : .everyStream)
        guard manifest.tensors.count <= ContainerReader.maximumTensors else {
            throw ContainerError(.malformed, file: file, "manifest lists \(manifest.tensors.count) tensors; the limit is \(ContainerReader.maximumTensors)")
        }
        guard let format = SourceFormat(rawValue: manifest.source.format) else {
            throw ContainerError(.unsupported, file: file, "source format `\(manifest.source.format)` is not one this Pith knows")
        }
        // The largest dense tensor this file may declare: what its bytes can justify (no encoding
        // expands a byte of streams into more than `maximumExpansion` bytes of tensor, short of a
        // tensor that is nearly all zeros), or `freeAllowance`. Nothing later multiplies a count
        // that could overflow, or allocates for a size the file cannot back.
        let (justified, overflow) = bytes.count.multipliedReportingOverflow(by: ContainerReader.maximumExpansion)
        let denseLimit = max(ContainerReader.freeAllowance, overflow ? Int.max : justified)
        headers = try manifest.tensors.map { entry in
            guard let dtype = DType(rawValue: entry.dtype) else {
                throw ContainerError(.unsupported, file: file, "tensor `\(entry.name)`: dtype `\(entry.dtype)` is not one this Pith knows")
            }
            guard let count = Shape.elementCount(entry.shape) else {
                throw ContainerError(.malformed, file: file, "tensor `\(entry.name)`: shape \(entry.shape) is negative or too large")
            }
            if dtype != .string {
                guard let dense = dtype.storageBytes(count: count), dense <= denseLimit else {
                    throw ContainerError(
                        .malformed, file: file,
                        "tensor `\(entry.name)`: shape \(entry.shape) of \(dtype.rawValue) takes more than \(denseLimit) bytes dense, "
                            + "more than a container of \(bytes.count) bytes may declare (\(ContainerReader.maximumExpansion)× its size, at least 1 GiB)")
                }
            }
            return TensorInfo(name: entry.name, dtype: dtype, shape: entry.shape)
        }
        try OriginCoding.validate(manifest.tensors, format: format, file: file)
        if format != .onnx {
            // Keras / HDF5 properties become attributes of the file's root group on restore: each
            // needs a name of its own.
            var keys: Set<String> = []
            for property in manifest.source.properties {
                guard !property.key.isEmpty, keys.insert(property.key).inserted else {
                    throw ContainerError(
                        .malformed, file: file,
                        "source property `\(property.key)`: a \(format.rawValue) property is a root attribute and needs a non-empty name of its own")
                }
            }
        }
        try reader.validatePools()
        try reader.decodeSharedStreams()
        var metadata = ModelMetadata()
        metadata.producerName = manifest.source.producerName
        metadata.producerVersion = manifest.source.producerVersion
        metadata.properties = manifest.source.properties.map { (key: $0.key, value: $0.value) }
        skeleton =
            try inlineSkeleton
            ?? manifest.source.skeleton.map { index in
                try reader.byteSymbols(index, count: manifest.streams[safe: index]?.symbols ?? 0, purpose: "the source skeleton")
            }
        reader.releaseHeld()  // the shared streams and the skeleton are decoded, into memory of their own
        self.manifest = manifest
        self.format = format
        self.metadata = metadata
        fileBytes = bytes.count
        self.manifestBytes = Int(header.manifestLength)
        prototype = reader
        self.owner = owner
    }

    /// The manifest stored in `stored` (its CRC already checked) and, with header flag bit 3 (1.6), the
    /// skeleton that follows its JSON: the frame inflated (flag bit 0, with `manifest-1` under bit 1)
    /// once it has declared a size within the manifest limit, the JSON parsed.
    static func manifest(_ stored: UnsafeRawBufferPointer, header: ContainerHeader, file: String) throws -> (Manifest, skeleton: [UInt8]?) {
        let limit = ContainerHeader.maximumManifestBytes
        var content = Array(stored)
        if header.flags & ContainerHeader.manifestDictionary != 0 {
            guard let inflated = ManifestDictionary.content(of: stored, limit: limit) else {
                throw ContainerError(
                    .malformed, file: file,
                    "the manifest is not a zstd frame of at most \(limit) bytes made with the `\(ManifestDictionary.name)` dictionary: the file is damaged")
            }
            content = inflated
        } else if header.flags & ContainerHeader.manifestZstd != 0 {
            // The frame must say its size, within the manifest limit, before anything is allocated.
            guard let size = Zstd.frameContentSize(stored), size <= limit, let inflated = Zstd.decompress(stored, expected: size) else {
                throw ContainerError(.malformed, file: file, "the manifest is not a zstd frame of at most \(limit) bytes")
            }
            content = inflated
        }
        var skeleton: [UInt8]?
        if header.flags & ContainerHeader.skeletonInManifest != 0 {
            // JSON never holds a 0x00 byte (control characters in strings are escaped): the first ends it.
            guard let end = content.firstIndex(of: 0) else {
                throw ContainerError(
                    .malformed, file: file, "header flag bit 3 says the skeleton follows the manifest's JSON after a 0x00 byte, and the manifest has none")
            }
            skeleton = Array(content[(end + 1)...])
            content.removeSubrange(end...)
        }
        let manifest: Manifest
        do {
            manifest = try Manifest(json: content)
        } catch {
            throw ContainerError(.malformed, file: file, "the manifest is not valid JSON of the container format (\(error))")
        }
        if skeleton != nil, let index = manifest.source.skeleton {
            throw ContainerError(
                .malformed, file: file, "the skeleton follows the manifest (header flag bit 3), and `source.skeleton` names stream \(index) as well")
        }
        return (manifest, skeleton)
    }

    /// Gives the streams of a packed container (1.6) their offsets: they follow each other from
    /// byte 64 in index order and end where the manifest begins (`end`). An entry that gives an
    /// `offset` of its own, or lengths that do not fill the data area exactly, make the file damaged.
    static func placePackedStreams(_ streams: inout [Manifest.StreamEntry], end: Int, file: String) throws {
        var offset = ContainerHeader.size
        for index in streams.indices {
            guard streams[index].offset == Manifest.StreamEntry.absentOffset else {
                throw ContainerError(
                    .malformed, file: file, "stream \(index) gives an `offset`, which a packed container's streams do not (they follow each other)")
            }
            let length = streams[index].length
            guard length >= 0, length <= end - offset else {
                throw ContainerError(
                    .malformed, file: file,
                    "stream \(index): \(length) bytes from byte \(offset) do not fit before the manifest at byte \(end) (the streams of a packed container fill bytes 64..<\(end))"
                )
            }
            streams[index].offset = offset
            offset += length
        }
        guard offset == end else {
            throw ContainerError(
                .malformed, file: file,
                "the streams of a packed container fill bytes 64..<\(offset), and the manifest begins at byte \(end): \(end - offset) bytes belong to nothing")
        }
    }

    /// Every tensor decoded (on every core) in its compressed storage, with the rest of the container.
    /// The first failing tensor, in manifest order, is the error reported.
    public func contents() throws -> ContainerReader.Contents {
        let decoded = try Parallel.map(count: tensorCount, makeWorker: { self.makeWorker() }) { worker, index in
            try worker.reader.tensor(self.manifest.tensors[index])
        }
        return ContainerReader.Contents(
            model: Model(format: format, metadata: metadata, tensors: decoded.map(\.0), configuration: manifest.source.configuration),
            manifest: manifest, tensorBytes: decoded.map(\.1), skeleton: skeleton, fileBytes: fileBytes, manifestBytes: manifestBytes)
    }

    // MARK: TensorSource

    /// A reader of its own (scratch memory) for one thread.
    public struct Worker {
        fileprivate var reader: Reader
    }

    public var tensorCount: Int { headers.count }

    public func header(_ index: Int) -> TensorInfo { headers[index] }

    /// Where tensor `index` lives in its source file (a Keras weight, an HDF5 dataset; ONNX tensors
    /// are placed by the skeleton's slot order instead), without decoding its data.
    public func origin(_ index: Int) -> TensorOrigin {
        let entry = manifest.tensors[index]
        return entry.origin.map { OriginCoding.decode($0, name: entry.name) } ?? .initializer(graph: .main)
    }

    /// The layer or node that reads tensor `index`, as the manifest records it.
    public func consumerName(_ index: Int) -> String? { manifest.tensors[index].consumerName }

    /// A worker points into the file's mapping: use it only while the file is alive.
    public func makeWorker() -> Worker { Worker(reader: prototype) }

    public func denseTensor(_ index: Int, worker: inout Worker) throws -> Tensor {
        try worker.reader.tensor(manifest.tensors[index]).0.densified()
    }

    public func denseBytes(_ index: Int, worker: inout Worker, _ body: (_ offset: Int, _ piece: UnsafeRawBufferPointer) throws -> Void) throws {
        try worker.reader.denseBytes(manifest.tensors[index], dtype: headers[index].dtype, body)
    }
}
