/// Where `ONNXWriter.write(skeleton:source:file:to:externalData:)` puts tensor data that does not go
/// inline (`raw_data`): files beside the model, named by `external_data` `location`s relative to
/// the model's folder, each tensor at its `offset` for `length` bytes, with `data_location =
/// EXTERNAL` — the layout of ONNX's `save_model(…, save_as_external_data=True)`.
public struct ExternalDataOptions {
    /// Which tensors go to external files.
    public enum Layout: Sendable, Equatable {
        /// The source's layout: every tensor the source read from an external file goes back to the
        /// same file at the same offset (the skeleton keeps its `external_data` entries), every
        /// other tensor inline. If the model would then pass protobuf's 2 GiB limit, every tensor of
        /// at least `ONNXWriter.externalThreshold` bytes that the source kept inline goes, one after
        /// another in slot order, to `overflowLocation`.
        case source
        /// Every tensor of at least `ONNXWriter.externalThreshold` bytes in the one file
        /// `location`, one after another in slot order; every other tensor inline.
        case oneFile(String)
    }

    public var layout: Layout
    /// The restored model's own file name (not the temporary file's): no data file may take it.
    public var modelName: String
    /// Called once per data file, with its location (normalised: no `.` or empty components),
    /// before any data is written: returns the path to write the file's bytes to (a temporary file
    /// beside its final place, which the caller moves into place once the model is written), or
    /// throws to refuse the file.
    public var createFile: (String) throws -> String

    public init(layout: Layout, modelName: String, createFile: @escaping (String) throws -> String) {
        self.layout = layout
        self.modelName = modelName
        self.createFile = createFile
    }

    /// The file that tensors kept inline by the source go to when the model would pass 2 GiB:
    /// `MODEL.data` beside the model (`model.onnx.data` for `model.onnx`).
    public var overflowLocation: String { modelName + ".data" }
}

extension ONNXWriter {
    /// Tensors of at least this many bytes go to the data file of `ExternalDataOptions.Layout.oneFile`
    /// (the `size_threshold` default of ONNX's `save_model`).
    public static let externalThreshold = 1024

    /// The largest ONNX file protobuf reads: a message cannot exceed 2 GiB (2³¹ − 1 bytes).
    public static let protobufLimit = Int(Int32.max)

    /// Why `location` cannot name a data file beside the model, or nil when it can: it must be a
    /// non-empty relative path without `..` components that names a file (not the folder itself).
    public static func problem(withDataLocation location: String) -> String? {
        if location.isEmpty { return "is empty" }
        if location.hasPrefix("/") { return "is an absolute path; it must be relative to the model's folder" }
        let parts = location.split(separator: "/", omittingEmptySubsequences: true)
        if parts.contains("..") { return "contains `..`; it must stay inside the model's folder" }
        if parts.allSatisfy({ $0 == "." }) || location.hasSuffix("/") { return "names a folder, not a file" }
        return nil
    }

    /// `location` with its `.` and empty components dropped (`./a//b.bin` → `a/b.bin`).
    static func normalized(dataLocation location: String) -> String {
        location.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.joined(separator: "/")
    }
}
