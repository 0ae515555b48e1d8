import Foundation
import PithONNX
import PithContainer
import PithHDF5

/// `pith restore`: a `.pith` container written back to its source format (ONNX or Keras HDF5).
public enum Restoration {
    /// What restore wrote: the file's size and, with `factored`, which weights stayed factored.
    public struct Result: Sendable {
        public var bytes: Int
        public var factored: [(tensor: String, nodes: [String])] = []
        public var densified: [(tensor: String, reason: String)] = []
    }

    /// Restores a container to its source format. Compressed tensors are written dense, except with
    /// `factored`: then low-rank and tensor-train weights are written as their factors with the
    /// nodes (ONNX) or layers (Keras Dense) that compute with them.
    public static func run(_ input: String, to output: String, force: Bool, factored: Bool = false) throws -> Result {
        try AtomicFile.checkWritable(output, input: input, force: force)
        let container = try PithError.translatingErrors { try ContainerFile(input) }
        if container.format == .onnx, !factored {
            // Streamed: the file is laid out from the manifest, then each tensor is decoded and
            // written into its place on every core; no copy of the model is held.
            guard let skeleton = container.skeleton else {
                throw PithError(.data, "\(input): the container has no ONNX skeleton to restore the graph from")
            }
            var bytes = 0
            try AtomicFile.write(to: output) { temporary in
                bytes = try writingONNX(to: output) {
                    try ONNXWriter.write(skeleton: skeleton, source: container, file: input, to: temporary)
                }
            }
            return Result(bytes: bytes)
        }
        if container.format != .onnx, !factored {
            // Streamed (Keras, HDF5): the file is laid out from the manifest (`model_config` is
            // there too), then each tensor is decoded once, in pieces, straight into its dataset.
            let placements = (0..<container.tensorCount).map { HDF5Writer.Placement(origin: container.origin($0), layer: container.consumerName($0)) }
            try AtomicFile.write(to: output) { temporary in
                do {
                    try HDF5Writer.write(
                        format: container.format, metadata: container.metadata, configuration: container.manifest.source.configuration,
                        placements: placements, source: container, to: temporary)
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
