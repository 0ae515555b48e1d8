import Foundation
import PithContainer
import PithONNX
import PithHDF5
import PithCoding
import PithIR

/// Containers in the whole-file form (format 1.5, `WholeFileContainer`): the source model file
/// stored whole as one dictionary-primed zstd frame — or, for ONNX (format 1.6, `onnx-skeleton-1`),
/// its skeleton and then its tensors' data, packed into the source again on reading. A lossless
/// compress writes this form when it is smaller than the per-tensor container (models of a few
/// kilobytes, whose names and framing outweigh their weights); every command that reads a
/// container reads the model it holds as it reads the model file itself, and restore writes the
/// source's very bytes back.
enum StoredWhole {
    /// The source file a whole-file container holds.
    struct Source {
        var dictionary: WholeFileContainer.Dictionary
        var bytes: [UInt8]
        /// The container's size.
        var fileBytes: Int

        /// The inspect report's line for it.
        var summary: InspectReport.ContainerSummary {
            .init(
                fileBytes: fileBytes, overheadBytes: fileBytes, rows: [],
                storedWhole: .init(sourceBytes: bytes.count, dictionary: dictionary.name))
        }
    }

    /// The source a whole-file container at `path` holds, checked (CRC-32C, size); nil when `path`
    /// is not a container in that form.
    static func source(of path: String) throws -> Source? {
        let file: MappedFile
        do { file = try MappedFile(path, populate: false) } catch { throw PithError(error.exitKind, error.description) }
        guard WholeFileContainer.hasForm(file.bytes.prefix(9)) else { return nil }
        let (dictionary, bytes) = try PithError.translatingErrors { try WholeFileContainer.decodeSource(file.bytes, file: path) }
        return Source(dictionary: dictionary, bytes: bytes, fileBytes: file.bytes.count)
    }

    /// The source file packed again from the content of an `onnx-skeleton-1` frame.
    static func rebuild(_ content: [UInt8], file: String) throws -> [UInt8] {
        try ONNXSkeletonPayload.modelFile(content, file: file, maximumBytes: WholeFileContainer.maximumSourceBytes)
    }

    /// The model the stored source holds, with its skeleton (and for HDF5 what restore would not
    /// write back), as `ModelFile.loadWithSkeleton` reads the source file itself: ONNX from memory,
    /// HDF5 (which libhdf5 reads from files) through a private temporary file. Messages name the
    /// container.
    static func load(_ source: Source, container path: String) throws -> (model: Model, skeleton: [UInt8]?, gap: String?) {
        let name = "\(path) (the \(source.dictionary.sourceFormat.rawValue.uppercased()) file it holds)"
        switch source.dictionary.sourceFormat {
        case .onnx:
            let (model, skeleton) = try PithError.translatingErrors {
                try source.bytes.withUnsafeBytes { try ONNXReader.readWithSkeleton(bytes: $0, name: name) }
            }
            return (model, skeleton, nil)
        case .hdf5:
            return try withTemporaryFile(source.bytes, suffix: ".h5", naming: name) { try HDF5Reader.readWithSkeleton(contentsOf: $0) }
        }
    }

    /// Runs `body` on a private temporary file holding `bytes`, removed afterwards; the temporary
    /// path in an error's message becomes `name`.
    static func withTemporaryFile<T>(_ bytes: [UInt8], suffix: String, naming name: String, _ body: (String) throws -> T) throws -> T {
        let folder = FileManager.default.temporaryDirectory.path
        let temporary = "\(folder)/pith-stored-\(getpid())-\(UInt64.random(in: 0...UInt64.max))\(suffix)"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw PithError(.cannotCreate, "\(name): cannot write a temporary copy under \(folder) to read it")
        }
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        do { return try PithError.translatingErrors { try body(temporary) } } catch let error as PithError {
            throw PithError(error.kind, error.message.replacingOccurrences(of: temporary, with: name))
        }
    }

    /// The smallest whole-file container of the source at `path` (read as `model`) that is smaller
    /// than `standardBytes` and reads back to the source's very bytes and the same tensors; nil when
    /// there is none (a source past `WholeFileContainer.maximumWrittenSourceBytes`, an ONNX model
    /// with external data, which the form cannot hold). For ONNX two frames are tried: the source
    /// itself (`onnx-1`) and its skeleton followed by its tensors' data (`onnx-skeleton-1`, when every
    /// tensor fits what the skeleton says of its slot).
    static func encode(_ path: String, model: Model, smallerThan standardBytes: Int) -> (bytes: [UInt8], accounting: ContainerAccounting)? {
        guard let file = try? MappedFile(path), file.bytes.count <= WholeFileContainer.maximumWrittenSourceBytes else { return nil }
        var candidates: [(WholeFileContainer.Dictionary, [UInt8])] = []
        if model.format == .onnx {
            if let bytes = WholeFileContainer.encode(file.bytes, dictionary: .onnx1) { candidates.append((.onnx1, bytes)) }
            let checksum = CRC32C.checksum(file.bytes)
            if let (_, skeleton) = try? ONNXReader.readWithSkeleton(bytes: file.bytes, name: path),
                let payload = try? ONNXSkeletonPayload.encode(skeleton: skeleton, tensors: model.tensors, file: path),
                let bytes = payload.withUnsafeBytes({ WholeFileContainer.encode($0, dictionary: .onnxSkeleton1, sourceChecksum: checksum) })
            {
                candidates.append((.onnxSkeleton1, bytes))
            }
        } else if let bytes = WholeFileContainer.encode(file.bytes, dictionary: .hdf5v1) {
            candidates.append((.hdf5v1, bytes))
        }
        for (dictionary, bytes) in candidates.sorted(by: { $0.1.count < $1.1.count }) where bytes.count < standardBytes {
            guard let (decodedDictionary, decoded) = bytes.withUnsafeBytes({ try? WholeFileContainer.decodeSource($0, file: path) }),
                decodedDictionary == dictionary, decoded.elementsEqual(file.bytes),
                let read = try? load(Source(dictionary: dictionary, bytes: decoded, fileBytes: bytes.count), container: path),
                sameTensors(read.model.tensors, model.tensors)
            else { continue }
            return (bytes, ContainerAccounting(storedWhole: file.bytes.count, dictionary: dictionary, fileBytes: bytes.count))
        }
        return nil
    }

    /// Whether two lists hold the same tensors: names, types, shapes and values, in order.
    static func sameTensors(_ a: [Tensor], _ b: [Tensor]) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) {
            guard x.name == y.name, x.dtype == y.dtype, x.shape == y.shape else { return false }
            switch (x.storage, y.storage) {
            case (.dense(let p), .dense(let q)): guard p == q else { return false }
            case (.strings(let p), .strings(let q)): guard p == q else { return false }
            default: return false
            }
        }
        return true
    }
}

extension WholeFileContainer {
    /// The dictionary and the source file of the whole-file container `bytes`, checked as
    /// `decode(_:file:rebuild:)` checks them, an `onnx-skeleton-1` frame packed into the ONNX source
    /// again (`ONNXSkeletonPayload`): what every command reads. `file` names the container.
    public static func decodeSource(_ bytes: UnsafeRawBufferPointer, file: String) throws -> (dictionary: Dictionary, source: [UInt8]) {
        try decode(bytes, file: file) { try StoredWhole.rebuild($0, file: file) }
    }

    /// `bytes` with the CRC-32C made to match the source its frame holds (`withChecksumFixed`), an
    /// `onnx-skeleton-1` frame packed into the ONNX source again; nil when it does not decode.
    public static func withSourceChecksumFixed(_ bytes: [UInt8]) -> [UInt8]? {
        withChecksumFixed(bytes) { try StoredWhole.rebuild($0, file: "") }
    }
}
