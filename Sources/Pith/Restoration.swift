import Foundation
import PithONNX
import PithContainer
import PithHDF5

/// `pith restore`: a `.pith` container written back to its source format (ONNX or Keras HDF5).
public enum Restoration {
    /// How compressed tensors are written.
    public enum Form: Sendable {
        /// Every tensor dense, in its own dtype: the values the compression chose.
        case dense
        /// Low-rank and tensor-train weights as their factors, with the nodes (ONNX) or layers
        /// (Keras Dense) that compute with them; every other tensor dense.
        case factored
        /// ONNX only: every compressed tensor kept compressed where an ONNX graph can decode it —
        /// integer codes with DequantizeLinear, codebooks with Gather, float16 / bfloat16 with Cast,
        /// pruned tensors as sparse Constants where smaller, factored weights as with `factored`.
        case compact
    }

    /// Where restore puts the tensor data of an ONNX model (`pith restore --external-data`).
    public enum ExternalData: Sendable, Equatable {
        /// As the source had it: tensors the source kept in external data files go back to the same
        /// files at the same offsets, every other tensor inline; if the model would then pass
        /// protobuf's 2 GiB limit, the large inline tensors go to `MODEL.data` beside it.
        case source
        /// Every tensor of at least 1,024 bytes in this one file beside the model (a name relative to
        /// the model's folder), the rest inline.
        case oneFile(String)
        /// Every tensor inline (what restore to standard output writes); a model over 2 GiB is refused.
        case inline
    }

    /// What restore wrote: the file's size and, with `factored` or `compact`, which weights stayed
    /// compressed and which were written dense, and why.
    public struct Result: Sendable {
        public var bytes: Int
        public var factored: [(tensor: String, nodes: [String])] = []
        public var densified: [(tensor: String, reason: String)] = []
        /// `compact`: the tensors kept compressed, with their stored form and decoding nodes.
        public var compact: [(tensor: String, form: String)] = []
        /// `compact`: the size of the same model written dense (what `.dense` writes).
        public var denseBytes: Int?
        /// `compact`: the default-domain opset before and after (raised only as far as the
        /// compact forms need).
        public var opset: (from: Int, to: Int)?
        /// `compact`: the IR version before and after.
        public var irVersion: (from: Int, to: Int)?
        /// The size of the container restored from (nil when written from a model in memory).
        public var containerBytes: Int?
        /// The external data files written beside the model, with their sizes.
        public var dataFiles: [(path: String, bytes: Int)] = []

        /// The report as printed: one line per tensor kept compressed (`compact:`, `factored:`) or
        /// written dense (`dense:` with the reason), the opset and IR version when raised, then
        /// `wrote OUTPUT: N bytes`, with a compact file's ratio to the dense ONNX and, when given,
        /// the size of the `.pith` container.
        public func renderText(output: String, containerBytes: Int? = nil) -> String {
            var lines: [String] = []
            for (tensor, form) in compact { lines.append("compact: \(tensor): \(form)") }
            for (tensor, nodes) in factored { lines.append("factored: \(tensor) → \(nodes.joined(separator: ", "))") }
            for (tensor, reason) in densified { lines.append("dense: \(tensor): \(reason)") }
            if let opset, opset.to != opset.from { lines.append("opset: \(opset.from) → \(opset.to) (the compact forms need it; every node is valid at both)") }
            if let irVersion, irVersion.to != irVersion.from { lines.append("IR version: \(irVersion.from) → \(irVersion.to)") }
            for (path, bytes) in dataFiles { lines.append("wrote \(path): \(bytes) bytes of external data") }
            var summary = "wrote \(output): \(bytes) bytes"
            if let denseBytes, denseBytes > 0 {
                summary += " (\(String(format: "%.3f", Double(bytes) / Double(denseBytes)))× the \(denseBytes) bytes of the dense ONNX"
                if let containerBytes = containerBytes ?? self.containerBytes { summary += "; the .pith: \(containerBytes) bytes" }
                summary += ")"
            }
            lines.append(summary)
            return lines.joined(separator: "\n") + "\n"
        }
    }

    /// The extensions that name one model format, for refusing an output path that names another.
    static let onnxExtensions: Set<String> = ["onnx"], hdf5Extensions: Set<String> = ["h5", "hdf5", "keras"]

    /// Refuses (usage, exit 64) an output path whose extension names a format other than the one
    /// the container restores to, or a file Pith does not write (`.pith`, `.npz`, `.npy`): an ONNX
    /// model written to `model.h5` would mislead every tool that opens it. Other extensions, or
    /// none, are the user's choice.
    static func checkExtension(of output: String, restoring format: SourceFormat, from input: String) throws {
        let name = output.split(separator: "/").last.map(String.init) ?? output
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return }
        let ext = name[name.index(after: dot)...].lowercased()
        let wanted = format == .onnx ? onnxExtensions : hdf5Extensions
        let foreign = (format == .onnx ? hdf5Extensions : onnxExtensions).union(["pith", "npz", "npy"])
        guard !wanted.contains(ext), foreign.contains(ext) else { return }
        let expected = wanted.sorted().map { ".\($0)" }.joined(separator: " or ")
        throw PithError(
            .usage, "\(output): \(input) holds \(format == .onnx ? "an ONNX" : "a Keras / HDF5") model, which restores to a \(expected) file, not .\(ext)")
    }

    /// Restores a container to its source format, its compressed tensors written as `form` says.
    /// `compact` is refused (unsupported) for Keras / HDF5 containers: HDF5 has no operators to
    /// decode weights with. `externalData` says where an ONNX model's tensor data goes with the
    /// dense form (`factored` and `compact` write every tensor inline); `.oneFile` is refused
    /// (usage) with another form or for a Keras / HDF5 container, or when its name leaves the
    /// model's folder.
    public static func run(_ input: String, to output: String, force: Bool, form: Form = .dense, externalData: ExternalData = .source) throws -> Result {
        if case .oneFile(let name) = externalData {
            if let problem = ONNXWriter.problem(withDataLocation: name) {
                throw PithError(.usage, "--external-data \(name): the name \(problem)")
            }
            guard form == .dense else {
                throw PithError(.usage, "--external-data applies to the dense restore; --factored and --compact write every tensor inline")
            }
        }
        try AtomicFile.checkWritable(output, input: input, force: force)
        try ModelFile.requireContainer(input)
        if let stored = try StoredWhole.source(of: input) { return try restore(stored, from: input, to: output, form: form, externalData: externalData) }
        let container = try PithError.translatingErrors { try ContainerFile(input) }
        let factored = form == .factored
        if form == .compact {
            guard container.format == .onnx else {
                throw PithError(
                    .unsupported,
                    "\(input): --compact keeps weights compressed with ONNX operators (DequantizeLinear, Gather, Cast); "
                        + "this container holds a \(container.format.rawValue) model, and HDF5 / Keras files have no such operators: "
                        + "restore it without --compact (or with --factored)")
            }
        }
        try checkExtension(of: output, restoring: container.format, from: input)
        if case .oneFile = externalData, container.format != .onnx {
            throw PithError(.usage, "\(input): --external-data applies to ONNX models; this container holds a \(container.format.rawValue) model")
        }
        if form == .compact {
            let contents = try PithError.translatingErrors { try container.contents() }
            guard let skeleton = contents.skeleton else {
                throw PithError(.data, "\(input): the container has no ONNX skeleton to restore the graph from")
            }
            var result = try writeCompact(skeleton: skeleton, tensors: contents.model.tensors, file: input, to: output)
            result.containerBytes = container.fileBytes
            return result
        }
        if container.format == .onnx, !factored {
            // Streamed: the file is laid out from the manifest, then each tensor is decoded and
            // written into its place on every core; no copy of the model is held.
            guard let skeleton = container.skeleton else {
                throw PithError(.data, "\(input): the container has no ONNX skeleton to restore the graph from")
            }
            var bytes = 0
            let companions = AtomicFile.Companions(beside: output, input: input, force: force)
            let options: ExternalDataOptions?
            let modelName = URL(fileURLWithPath: output).lastPathComponent
            switch externalData {
            case .inline: options = nil
            case .source: options = ExternalDataOptions(layout: .source, modelName: modelName) { try companions.temporary(for: $0) }
            case .oneFile(let name): options = ExternalDataOptions(layout: .oneFile(name), modelName: modelName) { try companions.temporary(for: $0) }
            }
            do {
                try AtomicFile.write(to: output) { temporary in
                    bytes = try writingONNX(to: output) {
                        try ONNXWriter.write(skeleton: skeleton, source: container, file: input, to: temporary, externalData: options)
                    }
                    // The data files go into place just before the model does.
                    try companions.commit()
                }
            } catch {
                companions.abandon()
                throw error
            }
            var result = Result(bytes: bytes)
            result.dataFiles = companions.written
            return result
        }
        if container.format != .onnx, !factored {
            // Streamed (Keras, HDF5): the file is laid out from the manifest (`model_config` is
            // there too), then each tensor is decoded once, in pieces, straight into its dataset.
            // With the source's skeleton (containers written since the HDF5 skeleton), the whole
            // file comes back: every group, dataset and attribute, optimizer state included.
            let placements = (0..<container.tensorCount).map { HDF5Writer.Placement(origin: container.origin($0), layer: container.consumerName($0)) }
            try AtomicFile.write(to: output) { temporary in
                do {
                    if let skeleton = container.skeleton {
                        try HDF5Writer.write(skeleton: skeleton, container: input, placements: placements, source: container, to: temporary)
                    } else {
                        try HDF5Writer.write(
                            format: container.format, metadata: container.metadata, configuration: container.manifest.source.configuration,
                            placements: placements, source: container, to: temporary)
                    }
                } catch let error as HDF5Error where error.kind == .malformed && container.skeleton != nil {
                    // Everything written from a skeleton comes from the container: what libhdf5 or
                    // the skeleton's checks refuse is bad data in it.
                    throw PithError(.data, "\(input): \(error.message)" + (error.file == input ? "" : " (writing \(output))"))
                } catch let error as HDF5Error {
                    throw PithError(error.kind == .unsupported ? .unsupported : .io, "\(output): \(error.message)")
                } catch {
                    throw PithError.translating(error)
                }
            }
            return Result(bytes: (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0)
        }
        // `--factored` only from here on.
        let contents = try PithError.translatingErrors { try container.contents() }
        switch contents.model.format {
        case .onnx:
            guard let skeleton = contents.skeleton else {
                throw PithError(.data, "\(input): the container has no ONNX skeleton to restore the graph from")
            }
            var result = Result(bytes: 0)
            try AtomicFile.write(to: output) { temporary in
                result = try writingONNX(to: output) {
                    let written = try ONNXWriter.write(skeleton: skeleton, tensors: contents.model.tensors, file: input, to: temporary, factored: true)
                    return Result(bytes: written.bytes, factored: written.report.rewritten, densified: written.report.densified)
                }
            }
            return result
        case .keras2, .keras3Legacy, .keras3Weights, .hdf5:
            // Splitting layers rewrites the configuration and the weights together, so the whole model
            // is decoded; the writer densifies one tensor at a time.
            let split = try PithError.translatingErrors { try KerasFactoredExport.split(contents.model, file: input) }
            let model = split.model
            var result = Result(bytes: 0, factored: split.rewritten, densified: split.densified)
            try AtomicFile.write(to: output) { temporary in
                do { try HDF5Writer.write(model, to: temporary) } catch let error as HDF5Error {
                    throw PithError(error.kind == .unsupported ? .unsupported : .io, "\(output): \(error.message)")
                }
            }
            result.bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            return result
        }
    }

    /// Restores a container in the whole-file form: the source file's very bytes, whatever `form`
    /// (nothing in it is compressed, so each form writes the same model). `--compact` is refused for
    /// HDF5 as for any Keras container, and `--external-data FILE`, which asks for the model to be
    /// laid out anew, is refused: the form holds a model without external data, written back as it was.
    static func restore(
        _ stored: StoredWhole.Source, from input: String, to output: String, form: Form, externalData: ExternalData
    ) throws -> Result {
        let format: SourceFormat = stored.dictionary.sourceFormat == .onnx ? .onnx : .hdf5
        if form == .compact, format != .onnx {
            throw PithError(
                .unsupported,
                "\(input): --compact keeps weights compressed with ONNX operators; this container holds an HDF5 file, which has no such operators: "
                    + "restore it without --compact")
        }
        if case .oneFile = externalData {
            throw PithError(
                .unsupported,
                "\(input): the container holds its source ONNX file whole (\(stored.bytes.count) bytes, no external data), and restore writes it back as it was; "
                    + "--external-data applies to containers that store tensors one by one")
        }
        try checkExtension(of: output, restoring: format, from: input)
        // The model must read as the source did (the CRC matched, but the bytes are a model only if
        // a reader says so), before anything is written.
        _ = try StoredWhole.load(stored, container: input)
        try AtomicFile.write(stored.bytes, to: output)
        var result = Result(bytes: stored.bytes.count)
        result.containerBytes = stored.fileBytes
        return result
    }

    /// Writes `tensors` (in their compressed storage, in the skeleton's slot order) as a compact ONNX
    /// file at `output`, atomically; see `ONNXWriter.writeCompact`. `file` names the source in messages.
    static func writeCompact(skeleton: [UInt8], tensors: [Tensor], file: String, to output: String) throws -> Result {
        var result = Result(bytes: 0)
        try AtomicFile.write(to: output) { temporary in
            result = try writingONNX(to: output) {
                let (bytes, report) = try ONNXWriter.writeCompact(skeleton: skeleton, tensors: tensors, file: file, to: temporary)
                return Result(
                    bytes: bytes, factored: report.factored, densified: report.densified, compact: report.compact, denseBytes: report.denseBytes,
                    opset: report.opset, irVersion: report.irVersion)
            }
        }
        return result
    }

    /// Runs an ONNX write, its errors said in the user's terms: I/O errors name `output` (the
    /// temporary file's name means nothing to the user), container errors met while decoding
    /// tensors name the container.
    static func writingONNX<R>(to output: String, _ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let error as ONNXError {
            throw PithError(error.kind == .io ? .io : .data, error.kind == .io ? "\(output): \(error.message)" : error.description)
        } catch {
            throw PithError.translating(error)
        }
    }
}
