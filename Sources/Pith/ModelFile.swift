import Foundation
@_exported public import PithIR
@_exported public import PithInspect
import PithONNX
import PithHDF5
import PithContainer

/// The model file formats Pith reads, recognised by content rather than by extension.
public enum ModelFileFormat: String, Sendable, CaseIterable {
    case onnx
    case hdf5
    /// Pith's own container (`.pith`).
    case pith

    /// HDF5's signature; the superblock may also start at 512, 1024, 2048, … (after a user block).
    static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
}

/// Opening model files of any supported format.
public enum ModelFile {
    /// Recognises the format of the file at `path` from its first bytes.
    /// Anything that is not HDF5 is taken to be ONNX (protobuf has no signature);
    /// the ONNX reader then says precisely what is wrong if it is not.
    public static func detectFormat(of path: String) throws -> ModelFileFormat {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                throw PithError(.io, isDirectory.boolValue ? "\(path): is a directory, not a model file" : "\(path): cannot be opened for reading")
            }
            throw PithError(.noInput, "\(path): no such file")
        }
        defer { try? handle.close() }
        if let head = try? handle.read(upToCount: 8), ContainerReader.hasSignature([UInt8](head)) { return .pith }
        // The HDF5 superblock is at 0 or at a power of two ≥ 512 (after a user block).
        var offset: UInt64 = 0
        while true {
            try? handle.seek(toOffset: offset)
            let head = (try? handle.read(upToCount: 8)) ?? Data()
            if head.count < 8 { break }
            if Array(head) == ModelFileFormat.hdf5Signature { return .hdf5 }
            offset = offset == 0 ? 512 : offset * 2
            if offset > 1 << 20 { break }
        }
        return .onnx
    }

    /// Reads the model at `path`.
    public static func load(_ path: String) throws -> Model {
        try PithError.translatingErrors {
            switch try detectFormat(of: path) {
            case .onnx: return try ONNXReader.read(contentsOf: path)
            case .hdf5: return try HDF5Reader.read(contentsOf: path)
            case .pith: return try ContainerReader.read(contentsOf: path).model
            }
        }
    }

    /// The Deep Compression accounting of a container: IR bits before entropy coding beside the
    /// bytes the container's streams take.
    static func containerSummary(_ contents: ContainerReader.Contents) -> InspectReport.ContainerSummary {
        let accounting = ContainerAccounting(manifest: contents.manifest, manifestBytes: contents.manifestBytes)
        var rows: [InspectReport.ContainerSummary.Row] = []
        for (tensor, after) in zip(contents.model.tensors, accounting.tensors) {
            let bits = tensor.storageBits
            var entries = tensor.count, fillers = 0, kept = tensor.count
            var encoding = "dense \(tensor.dtype.rawValue)"
            let encodingName = contents.manifest.tensors.first { $0.name == tensor.name }?.encoding.kind ?? "dense"
            switch tensor.storage {
            case .sparse(let sparse):
                entries = sparse.entries
                fillers = sparse.fillers
                kept = sparse.entries - sparse.fillers
                switch sparse.values {
                case .codebook(let c): encoding = "csr(\(sparse.indexBits)) + codebook(\(c.bits))"
                case .quantized(let q): encoding = "csr(\(sparse.indexBits)) + \(q.scales.isEmpty ? "float" : "int")\(q.codeBits)"
                case .dense: encoding = "csr(\(sparse.indexBits)) + \(tensor.dtype.rawValue)"
                }
            case .codebook(let c):
                encoding = "codebook(\(c.bits))"
                kept = c.indices.filter { $0 != 0 || !c.zeroIsReserved }.count
            case .quantized(let q): encoding = q.scales.isEmpty ? "float\(q.codeBits)" : "int\(q.codeBits)"
            case .factored(let f):
                switch f.method {
                case .lowRank(let r): encoding = "svd rank \(r)"
                case .tensorTrain(_, _, let ranks): encoding = "tt \(ranks.map(String.init).joined(separator: "-"))"
                case .circulant: encoding = "circulant"
                case .separable(let r): encoding = "separable \(r)"
                }
                kept = tensor.decodedFloats().filter { $0 != 0 }.count
            default:
                if encodingName != "dense" { encoding = "\(encodingName) \(tensor.dtype.rawValue)" }
                kept = tensor.decodedFloats().filter { $0 != 0 }.count
            }
            let perEntry = { (bits: Int) in entries == 0 ? 0 : Double(bits) / Double(entries) }
            rows.append(.init(
                tensor: tensor.name, layer: tensor.consumer?.name ?? "", elements: tensor.count, kept: kept, encoding: encoding,
                entries: entries, fillers: fillers, weightBitsBefore: perEntry(bits.weights), weightBitsAfter: after.weightBitsPerEntry,
                indexBitsBefore: perEntry(bits.indices + bits.rowPointers), indexBitsAfter: after.indexBitsPerEntry,
                tableBytes: after.tableBytes, bytesBefore: (bits.total + 7) / 8, bytes: after.bytes,
                denseBytes: tensor.dtype.storageBytes(count: tensor.count) ?? 0))
        }
        let tensorBytes = rows.reduce(0) { $0 + $1.bytes }
        return .init(fileBytes: contents.fileBytes, overheadBytes: contents.fileBytes - tensorBytes, rows: rows)
    }

    /// Loads and inspects the model at `path`. For a `.pith` container, each tensor's bytes are the
    /// bytes its streams occupy in the file (after entropy coding).
    public static func inspect(
        _ path: String, sort: InspectSort = .file, top: Int? = nil, distinctCap: Int = Inspector.defaultDistinctCap
    ) throws -> InspectReport {
        if try detectFormat(of: path) == .pith {
            let contents = try PithError.translatingErrors { try ContainerReader.read(contentsOf: path) }
            return Inspector.inspect(contents.model, file: path, sort: sort, top: top, distinctCap: distinctCap,
                                     storedBytes: contents.tensorBytes, container: containerSummary(contents))
        }
        return Inspector.inspect(try load(path), file: path, sort: sort, top: top, distinctCap: distinctCap)
    }
}
