import Foundation
@_exported public import PithPasses
@_exported public import struct PithContainer.ContainerAccounting
@_exported public import enum PithLinearAlgebra.KMeansInit
import Yams
import PithONNX
import PithContainer
import PithHDF5
#if canImport(Glibc)
import Glibc
#endif

/// The compress pipeline: a recipe (from YAML or from flags) run over a loaded model.
public enum Compression {
    /// Reads a recipe file (YAML; see docs/recipes.md).
    public static func loadRecipe(_ path: String) throws -> Recipe {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PithError(FileManager.default.fileExists(atPath: path) ? .io : .noInput, "\(path): cannot read the recipe (\((error as NSError).localizedDescription))")
        }
        do {
            let recipe = try YAMLDecoder().decode(Recipe.self, from: text)
            try recipe.validate()
            return recipe
        } catch let error as PassError {
            throw PithError(.usage, "\(path): \(error.message)")
        } catch let error as DecodingError {
            throw PithError(.usage, "\(path): \(describe(error))")
        } catch {
            throw PithError(.usage, "\(path): not a valid recipe (\(error))")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0 + 1)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing `\(key.stringValue)` at `\(path(context))`"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "`\(path(context))`: \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    /// Loads `path`, runs `recipe`, and returns the compressed model with its report.
    /// A recipe without passes is lossless: every tensor stays as it is.
    public static func run(_ recipe: Recipe, on path: String) throws -> (Model, CompressionReport?) {
        var model = try ModelFile.load(path)
        if recipe.steps.isEmpty { return (model, nil) }
        do {
            let report = try Compressor.run(recipe, on: &model)
            return (model, report)
        } catch let error as PassError {
            let kind: PithError.Kind = error.kind == .invalidRecipe ? .usage : (error.kind == .tooExpensive ? .unsupported : .data)
            throw PithError(kind, "\(path): \(error.message)")
        }
    }
}

extension Compression {
    /// Writes `model` (read from `input`) as a `.pith` container at `output`, atomically; see `AtomicFile`.
    /// Returns where the container's bytes went (its `fileBytes` is the size written).
    @discardableResult
    public static func writeContainer(_ model: Model, from input: String, to output: String, force: Bool) throws -> ContainerAccounting {
        try AtomicFile.checkWritable(output, input: input, force: force)
        var skeleton: [UInt8]?
        if model.format == .onnx {
            do { skeleton = try ONNXSkeleton.strip(contentsOf: input) } catch let error as ONNXError {
                throw PithError(.data, error.description)
            }
        }
        let bytes: [UInt8], accounting: ContainerAccounting
        do { (bytes, _, accounting) = try ContainerWriter.encodeWithAccounting(model, skeleton: skeleton) } catch {
            throw PithError(.data, "\(output): \(error)")
        }
        try AtomicFile.write(bytes, to: output)
        return accounting
    }

    /// What restore wrote: the file's size and, with `factored`, which weights stayed factored.
    public struct RestoreResult: Sendable {
        public var bytes: Int
        public var factored: [(tensor: String, nodes: [String])] = []
        public var densified: [(tensor: String, reason: String)] = []
    }

    /// Restores the model in the `.pith` container at `input` to its source format at `output`:
    /// every tensor densified (compressed weights become the values the compression chose), the
    /// graph and metadata as they were. Returns the bytes written.
    @discardableResult
    public static func restore(_ input: String, to output: String, force: Bool) throws -> Int {
        try restore(input, to: output, force: force, factored: false).bytes
    }

    /// Restores a container to its source format. Compressed tensors are written dense, except with
    /// `factored`: then low-rank and tensor-train weights are written as their factors with the
    /// nodes (ONNX) or layers (Keras Dense) that compute with them.
    public static func restore(_ input: String, to output: String, force: Bool, factored: Bool) throws -> RestoreResult {
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
            return RestoreResult(bytes: bytes)
        }
        if container.format != .onnx, !factored {
            // Streamed (Keras, HDF5): the file is laid out from the manifest (`model_config` is
            // there too), then each tensor is decoded once, in pieces, straight into its dataset.
            // The origins are decoded from the manifest as PithContainer's `OriginCoding` does,
            // until ContainerFile hands them out.
            let placements = container.manifest.tensors.map { entry -> HDF5Writer.Placement in
                let text = entry.origin ?? "", parts = text.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
                let origin: TensorOrigin = text.hasPrefix("keras:") && parts.count == 3
                    ? .kerasWeight(layer: String(parts[0].dropFirst(6)), weight: parts[1], path: parts[2])
                    : .dataset(path: text.hasPrefix("dataset:") ? String(text.dropFirst(8)) : entry.name)
                return HDF5Writer.Placement(origin: origin, layer: entry.consumerName)
            }
            try AtomicFile.write(to: output) { temporary in
                do {
                    try HDF5Writer.write(format: container.format, metadata: container.metadata, configuration: container.manifest.source.configuration,
                                         placements: placements, source: container, to: temporary)
                } catch let error as HDF5Error {
                    throw PithError(error.kind == .unsupported ? .unsupported : .io, "\(output): \(error.message)")
                } catch {
                    throw PithError.translating(error)
                }
            }
            return RestoreResult(bytes: (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0)
        }
        let contents = try PithError.translatingErrors { try container.contents() }
        let tensors = factored ? contents.model.tensors : contents.model.tensors.map { $0.densified() }
        switch contents.model.format {
        case .onnx:
            guard let skeleton = contents.skeleton else {
                throw PithError(.data, "\(input): the container has no ONNX skeleton to restore the graph from")
            }
            var result = RestoreResult(bytes: 0)
            try AtomicFile.write(to: output) { temporary in
                result = try writingONNX(to: output) {
                    let written = try ONNXWriter.write(skeleton: skeleton, tensors: tensors, file: input, to: temporary, factored: factored)
                    return RestoreResult(bytes: written.bytes, factored: written.report.rewritten, densified: written.report.densified)
                }
            }
            return result
        case .keras2, .keras3Legacy, .keras3Weights, .hdf5:
            // Only `--factored` comes here: splitting layers rewrites the configuration and the
            // weights together, so the whole model is decoded; the writer densifies one at a time.
            var model = contents.model
            model.tensors = tensors
            var result = RestoreResult(bytes: 0)
            if factored {
                let split = try PithError.translatingErrors { try KerasFactoredExport.split(model, file: input) }
                model = split.model
                result.factored = split.rewritten
                result.densified = split.densified
            }
            try AtomicFile.write(to: output) { temporary in
                do { try HDF5Writer.write(model, to: temporary) } catch let error as HDF5Error {
                    throw PithError(error.kind == .unsupported ? .unsupported : .io, "\(output): \(error.message)")
                }
            }
            result.bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            return result
        }
    }
}

extension Compression {
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

/// Writing output files without ever leaving a partial file or touching the input.
public enum AtomicFile {
    /// Refuses `output` when it is the input, or exists and `force` is off.
    public static func checkWritable(_ output: String, input: String, force: Bool) throws {
        let inputPath = URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath().path
        let outputPath = URL(fileURLWithPath: output).standardizedFileURL.resolvingSymlinksInPath().path
        guard inputPath != outputPath else { throw PithError(.usage, "\(output): is the input file; choose another output") }
        if FileManager.default.fileExists(atPath: output), !force {
            throw PithError(.cannotCreate, "\(output): exists; use --force to replace it")
        }
    }

    /// Writes `bytes` to a temporary file beside `output`, then renames it over `output`.
    public static func write(_ bytes: [UInt8], to output: String) throws {
        try write(to: output) { temporary in
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw PithError(.cannotCreate, "\(output): cannot write into \(URL(fileURLWithPath: temporary).deletingLastPathComponent().path) (\(String(cString: strerror(errno))))")
            }
            defer { close(descriptor) }
            var written = 0
            try bytes.withUnsafeBytes { raw in
                while written < raw.count {
                    let n = Glibc.write(descriptor, raw.baseAddress! + written, raw.count - written)
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { throw PithError(.io, "\(output): write failed after \(written) of \(raw.count) bytes (\(String(cString: strerror(errno))))") }
                    written += n
                }
            }
        }
    }

    /// Lets `body` write a temporary file beside `output`, then renames it over `output`; if `body`
    /// throws, the temporary file is removed and `output` is left as it was.
    public static func write(to output: String, _ body: (String) throws -> Void) throws {
        let url = URL(fileURLWithPath: output).standardizedFileURL
        let folder = url.deletingLastPathComponent().path
        let temporary = folder + "/." + url.lastPathComponent + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        do { try body(temporary) } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        if rename(temporary, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw PithError(.cannotCreate, "\(output): cannot move the finished file into place (\(reason))")
        }
    }
}
