import Foundation
import PithContainer
import PithONNX
import PithHDF5

/// Containers in the whole-file form (format 1.5, `WholeFileContainer`): the source model file
/// stored whole as one dictionary-primed zstd frame. A lossless compress writes this form when it
/// is smaller than the per-tensor container (models of a few kilobytes, whose names and framing
/// outweigh their weights); every command that reads a container reads the model it holds as it
/// reads the model file itself, and restore writes the source's very bytes back.
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
        let (dictionary, bytes) = try PithError.translatingErrors { try WholeFileContainer.decode(file.bytes, file: path) }
        return Source(dictionary: dictionary, bytes: bytes, fileBytes: file.bytes.count)
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

    /// The whole-file container of the source at `path` (read as `model`), when it is smaller than
    /// `standardBytes` and the stored bytes read back to the very same tensors; nil otherwise (a
    /// source past `WholeFileContainer.maximumWrittenSourceBytes`, an ONNX model with external
    /// data, which the form cannot hold).
    static func encode(_ path: String, model: Model, smallerThan standardBytes: Int) -> (bytes: [UInt8], accounting: ContainerAccounting)? {
        guard let file = try? MappedFile(path), file.bytes.count <= WholeFileContainer.maximumWrittenSourceBytes else { return nil }
        let dictionary: WholeFileContainer.Dictionary = model.format == .onnx ? .onnx1 : .hdf5v1
        guard let bytes = WholeFileContainer.encode(file.bytes, dictionary: dictionary), bytes.count < standardBytes,
            let (_, decoded) = bytes.withUnsafeBytes({ try? WholeFileContainer.decode($0, file: path) }),
            let read = try? load(Source(dictionary: dictionary, bytes: decoded, fileBytes: bytes.count), container: path),
            sameTensors(read.model.tensors, model.tensors)
        else { return nil }
        return (bytes, ContainerAccounting(storedWhole: file.bytes.count, dictionary: dictionary, fileBytes: bytes.count))
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
