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
