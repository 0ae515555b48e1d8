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
            case .noInput: throw PithError(.noInput, "\(path): no such file")
            default:
                var isDirectory: ObjCBool = false
                let folder = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
                throw PithError(.io, folder ? "\(path): is a directory, not a model file" : error.description)
            }
        }
        if ContainerReader.hasSignature(Array(file.bytes.prefix(8))) { return .pith }
        if HDF5Reader.hasSignature(file.bytes) { return .hdf5 }
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

    /// Reads the model at `path` and, for ONNX, its skeleton from the same parse (see
    /// `ONNXReader.readWithSkeleton`).
    public static func loadWithSkeleton(_ path: String) throws -> (model: Model, skeleton: [UInt8]?) {
        try PithError.translatingErrors {
            guard try detectFormat(of: path) == .onnx else { return (try load(path), nil) }
            let (model, skeleton) = try ONNXReader.readWithSkeleton(contentsOf: path)
            return (model, skeleton)
        }
    }

    /// The model at `path` ready to evaluate: for a `.pith` container of an ONNX model, the graph
    /// is read back from the container's skeleton, with the container's tensors.
    public static func loadForEvaluation(_ path: String) throws -> Model {
        try PithError.translatingErrors {
            guard try detectFormat(of: path) == .pith else { return try load(path) }
            let contents = try ContainerReader.read(contentsOf: path)
            guard contents.model.format == .onnx else { return contents.model }
            guard let skeleton = contents.skeleton else { throw PithError(.data, "\(path): the container has no ONNX skeleton to evaluate the graph of") }
            var model = try ONNXReader.read(skeleton: skeleton, tensors: contents.model.tensors, file: path)
            model.metadata.producerName = contents.model.metadata.producerName
            return model
        }
    }
}
