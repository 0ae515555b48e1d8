import Foundation
@_exported public import PithIR
import PithONNX
import PithHDF5
import PithContainer
import PithEval

/// The model file formats Pith reads, recognised by content rather than by extension.
public enum ModelFileFormat: String, Sendable, CaseIterable {
    case onnx
    case hdf5
    /// Pith's own container (`.pith`).
    case pith
}

/// Opening model files of any supported format.
public enum ModelFile {
    /// Recognises the format of the file at `path` from its first bytes.
    /// Anything that is not HDF5 is taken to be ONNX (protobuf has no signature);
    /// the ONNX reader then says precisely what is wrong if it is not.
    public static func detectFormat(of path: String) throws -> ModelFileFormat {
        // Mapped without reading it in: only the pages the signatures are looked for in are read. Only
        // regular files are opened (a FIFO would block).
        let file: MappedFile
        do { file = try MappedFile(path, populate: false) } catch {
            switch error.exitKind {
            case .noInput:
                // Missing, or a path that leads to no readable file (a link loop, no permission).
                let missing = !FileManager.default.fileExists(atPath: path) && (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) == nil
                throw PithError(.noInput, missing ? "\(path): no such file" : error.description)
            default:
                var isDirectory: ObjCBool = false
                let folder = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
                throw PithError(error.exitKind, folder ? "\(path): is a folder, not a model file" : error.description)
            }
        }
        if ContainerReader.hasSignature(Array(file.bytes.prefix(8))) { return .pith }
        if HDF5Reader.hasSignature(file.bytes) { return .hdf5 }
        return .onnx
    }

    /// Runs `body`, which reads `path` as ONNX; when that fails and the file looks like something
    /// else (text, an .npy, a zip, …), the error says what it looks like instead of how the
    /// protobuf parse failed.
    static func explainingLookalikes<T>(_ path: String, expected: String = "an ONNX model", _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            guard (error as? any ReportableError)?.exitKind == .data, let file = try? MappedFile(path, populate: false),
                let lookalike = FileSniffing.lookalike(file.bytes)
            else { throw error }
            throw PithError(.data, "\(path): not \(expected): it looks like \(lookalike)")
        }
    }

    /// Checks that `path` is a `.pith` container before a command that reads only containers opens
    /// it, saying what the file is when it is not one.
    public static func requireContainer(_ path: String) throws {
        let format = try detectFormat(of: path)
        guard format != .pith else { return }
        let file = try? MappedFile(path, populate: false)
        let what: String
        if format == .hdf5 {
            what = "it is an HDF5 (Keras) model; `pith compress` makes a container of it"
        } else if let file, let lookalike = FileSniffing.lookalike(file.bytes) {
            what = "it looks like \(lookalike)"
        } else if let file, file.bytes.first == 0x08 {
            // Field 1 (ir_version) as a varint: how every ONNX writer begins a model.
            what = "it looks like an ONNX model; `pith compress` makes a container of it"
        } else {
            what = "it has no .pith signature at byte 0"
        }
        throw PithError(.data, "\(path): not a .pith container: \(what)")
    }

    /// The size of the file at `path` in bytes, following symbolic links (a linked model is
    /// measured, not its link); 0 when it cannot be read.
    public static func fileSize(_ path: String) -> Int {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        return (try? FileManager.default.attributesOfItem(atPath: resolved)[.size] as? Int) ?? 0
    }

    /// Reads the model at `path`.
    public static func load(_ path: String) throws -> Model {
        try PithError.translatingErrors {
            switch try detectFormat(of: path) {
            case .onnx: return try explainingLookalikes(path) { try ONNXReader.read(contentsOf: path) }
            case .hdf5: return try HDF5Reader.read(contentsOf: path)
            case .pith:
                if let stored = try StoredWhole.source(of: path) { return try StoredWhole.load(stored, container: path).model }
                return try ContainerReader.read(contentsOf: path).model
            }
        }
    }

    /// Reads the model at `path` and its skeleton: for ONNX from the same parse (see
    /// `ONNXReader.readWithSkeleton`); for HDF5 the whole file's structure (see
    /// `HDF5Reader.readWithSkeleton`), nil when the file holds something Pith cannot write back
    /// exactly, which `gap` then names.
    public static func loadWithSkeleton(_ path: String) throws -> (model: Model, skeleton: [UInt8]?, gap: String?) {
        try PithError.translatingErrors {
            switch try detectFormat(of: path) {
            case .onnx:
                let (model, skeleton) = try explainingLookalikes(path) { try ONNXReader.readWithSkeleton(contentsOf: path) }
                return (model, skeleton, nil)
            case .hdf5:
                return try HDF5Reader.readWithSkeleton(contentsOf: path)
            case .pith:
                if let stored = try StoredWhole.source(of: path) { return try StoredWhole.load(stored, container: path) }
                return (try load(path), nil, nil)
            }
        }
    }

    /// The model at `path` ready to evaluate: for a `.pith` container of an ONNX model, the graph
    /// is read back from the container's skeleton, with the container's tensors.
    public static func loadForEvaluation(_ path: String) throws -> Model {
        try PithError.translatingErrors {
            guard try detectFormat(of: path) == .pith else { return try load(path) }
            if let stored = try StoredWhole.source(of: path) { return try StoredWhole.load(stored, container: path).model }
            let contents = try ContainerReader.read(contentsOf: path)
            guard contents.model.format == .onnx else { return contents.model }
            guard let skeleton = contents.skeleton else { throw PithError(.data, "\(path): the container has no ONNX skeleton to evaluate the graph of") }
            var model = try ONNXReader.read(skeleton: skeleton, tensors: contents.model.tensors, file: path)
            model.metadata.producerName = contents.model.metadata.producerName
            return model
        }
    }
}
