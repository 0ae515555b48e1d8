import Foundation
@_exported public import PithPasses
@_exported public import struct PithContainer.ContainerAccounting
@_exported public import enum PithLinearAlgebra.KMeansInit
import Yams
import PithONNX
import PithContainer
import PithHDF5

/// The compress pipeline: a recipe (from YAML or from flags) run over a loaded model.
public enum Compression {
    /// Reads a recipe file (YAML; see docs/recipes.md).
    public static func loadRecipe(_ path: String) throws -> Recipe {
        // Only regular files are opened (a FIFO would block); a missing recipe is a missing input (66).
        let file: MappedFile
        do { file = try MappedFile(path) } catch { throw PithError(error.exitKind, "\(path): cannot read the recipe: \(error.reason)") }
        guard let text = String(validating: file.bytes, as: UTF8.self) else {
            throw PithError(.usage, "\(path): the recipe is not UTF-8 text")
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

    /// A compressed model, ready to be written as a container.
    public struct Compressed: Sendable {
        /// The model with its compressed tensors.
        public var model: Model
        /// What the recipe did; nil for a recipe without passes (lossless).
        public var report: CompressionReport?
        /// The source's skeleton: ONNX, the protobuf tree with its tensor slots cleared, from the
        /// same parse as `model`; HDF5, the whole file's structure (`HDF5Reader.readWithSkeleton`),
        /// nil when the file holds something Pith cannot write back exactly.
        public var skeleton: [UInt8]?
        /// The file the model was read from.
        public var source: String
        /// What the report should say besides the passes: optimizer state dropped, or an HDF5 file
        /// that restores without some of its structure.
        public var notes: [String] = []
        /// The note of `notes` that says restore will not write the whole HDF5 file back (the file holds
        /// something Pith cannot write exactly); untrue when the container stores the file whole.
        public var gapNote: String?
        /// The model is the source's, every byte of it: no pass ran and nothing was dropped. Only
        /// then may the container store the source file whole (`StoredWhole`).
        public var unchanged = false
    }

    /// Loads `path` (parsed once: for ONNX the model and its skeleton come from the same parse), runs
    /// `recipe`, and returns the compressed model with its report. A recipe without passes is
    /// lossless: every tensor stays as it is. The data-aware passes run the model on `calibration`
    /// (see `Calibration`); a recipe with such a pass is refused without it.
    ///
    /// Optimizer state (Keras `optimizer_weights`, `optimizer`) is kept exactly and never selected;
    /// `dropOptimizer` removes it from the model and the skeleton, and a note says so.
    public static func run(
        _ recipe: Recipe, on path: String, calibration: Calibration.Request? = nil, dropOptimizer: Bool = false
    ) throws -> Compressed {
        var (model, skeleton, gap) = try ModelFile.loadWithSkeleton(path)
        var notes: [String] = []
        var droppedAny = false
        let gapNote = gap.map { "note: \(path): restore will write the Keras weights and attributes Pith knows, not the whole file: \($0)" }
        if let gapNote { notes.append(gapNote) }
        if dropOptimizer {
            let dropped = model.tensors.filter(\.isOptimizerState)
            if dropped.isEmpty {
                notes.append("optimizer state: none in \(path), nothing dropped (--drop-optimizer)")
            } else {
                model.tensors.removeAll(where: \.isOptimizerState)
                if let kept = skeleton, model.format != .onnx {
                    skeleton = try PithError.translatingErrors { try HDF5Skeleton.droppingOptimizer(kept, format: model.format, file: path) }
                }
                droppedAny = true
                let bytes = dropped.reduce(0) { $0 + $1.storedBytes }
                notes.append("optimizer state dropped (--drop-optimizer): \(dropped.count) tensors, \(bytes) bytes")
            }
        }
        if recipe.steps.isEmpty {
            var compressed = Compressed(model: model, report: nil, skeleton: skeleton, source: path, notes: notes)
            compressed.unchanged = !droppedAny
            compressed.gapNote = gapNote
            return compressed
        }
        do {
            let data = try recipe.isDataAware ? calibration.map { try Calibration.load($0, for: model) } : nil
            let before = model
            let report = try Compressor.run(recipe, on: &model, calibration: data)
            var compressed = Compressed(
                model: model, report: report, skeleton: try adaptedSkeleton(skeleton, from: before, to: model, file: path), source: path, notes: notes)
            compressed.gapNote = gapNote
            return compressed
        } catch let error as PassError {
            throw PithError(error.exitKind, "\(path): \(error.message)")
        }
    }

    /// The ONNX skeleton of `source` for the model the passes made of it: where a pass changed the
    /// width of layers (structured pruning), the initializers declare their new shapes and the
    /// `value_info` entries the pass dropped are gone. Other skeletons are returned as they are.
    static func adaptedSkeleton(_ skeleton: [UInt8]?, from source: Model, to model: Model, file: String) throws -> [UInt8]? {
        guard let skeleton, model.format == .onnx else { return skeleton }
        var shapes: [String: [Int]] = [:]
        for (old, new) in zip(source.tensors, model.tensors) where old.shape != new.shape { shapes[new.name] = new.shape }
        let kept = Set((model.graph?.valueInfo ?? []).map(\.name))
        let dropped = Set((source.graph?.valueInfo ?? []).map(\.name)).subtracting(kept)
        guard !shapes.isEmpty || !dropped.isEmpty else { return skeleton }
        return try PithError.translatingErrors { try ONNXSkeleton.reshaping(skeleton, shapes: shapes, droppingValueInfo: dropped, file: file) }
    }
}

extension Compression {
    /// Writes a compressed model as a `.pith` container at `output`, atomically; see `AtomicFile`.
    /// The streams reach the file as they are coded (`ContainerWriter.write`), so no copy of the
    /// container is held. Returns where the container's bytes went (its `fileBytes` is the size
    /// written).
    ///
    /// A lossless container of an unchanged model file of at most
    /// `WholeFileContainer.maximumWrittenSourceBytes` is made in memory and compared with the
    /// whole-file form (`StoredWhole`); the smaller is written, unless `perTensor` asks for every
    /// tensor on its own (`pith compress --per-tensor`).
    @discardableResult
    public static func writeContainer(_ compressed: Compressed, to output: String, force: Bool, perTensor: Bool = false) throws -> ContainerAccounting {
        try AtomicFile.checkWritable(output, input: compressed.source, force: force)
        if !perTensor, mayBeStoredWhole(compressed) {
            let standard: (bytes: [UInt8], manifest: Manifest, accounting: ContainerAccounting)
            do { standard = try ContainerWriter.encodeWithAccounting(compressed.model, skeleton: compressed.skeleton) } catch {
                throw PithError.translating(error)
            }
            if let whole = StoredWhole.encode(compressed.source, model: compressed.model, smallerThan: standard.bytes.count) {
                try AtomicFile.write(whole.bytes, to: output)
                return whole.accounting
            }
            try AtomicFile.write(standard.bytes, to: output)
            return standard.accounting
        }
        var accounting: ContainerAccounting?
        try AtomicFile.write(
            to: output,
            through: { descriptor in
                var file = ContainerFileOutput(descriptor: descriptor, path: output)
                do {
                    accounting = try ContainerWriter.write(compressed.model, skeleton: compressed.skeleton, to: &file).accounting
                } catch let error as ContainerError {
                    throw PithError(error.exitKind, error.description)
                } catch {
                    throw PithError(.data, "\(output): \(error)")
                }
            })
        return accounting!
    }
}

extension Compression {
    /// Encodes a compressed model as a container in memory, to measure it (`pith bench lossless`)
    /// without writing a file; returns where its bytes went.
    public static func encodeContainer(_ compressed: Compressed) throws -> ContainerAccounting {
        let standard: ContainerAccounting
        do { standard = try ContainerWriter.encodeWithAccounting(compressed.model, skeleton: compressed.skeleton).accounting } catch {
            throw PithError(.data, "\(compressed.source): \(error)")
        }
        if mayBeStoredWhole(compressed), let whole = StoredWhole.encode(compressed.source, model: compressed.model, smallerThan: standard.fileBytes) {
            return whole.accounting
        }
        return standard
    }

    /// Whether the whole-file form is a candidate: an unchanged model file (not a container) of at
    /// most `WholeFileContainer.maximumWrittenSourceBytes`.
    static func mayBeStoredWhole(_ compressed: Compressed) -> Bool {
        compressed.unchanged && ModelFile.fileSize(compressed.source) <= WholeFileContainer.maximumWrittenSourceBytes
            && (try? ModelFile.detectFormat(of: compressed.source)).map { $0 != .pith } == true
    }
}

extension Compression {
    /// Refuses (unsupported) to export a compact ONNX model from a source that is not ONNX, before
    /// anything is compressed or written.
    public static func checkExportable(_ path: String) throws {
        let format = try ModelFile.detectFormat(of: path)
        guard format == .onnx else {
            throw PithError(
                .unsupported,
                "\(path): --export writes a compact ONNX model (DequantizeLinear, Gather), and this is \(format == .hdf5 ? "an HDF5 / Keras" : "a .pith") file: "
                    + "HDF5 / Keras have no operators to decode compressed weights with")
        }
    }

    /// Writes the compressed model as a compact ONNX file at `output` — what `pith restore --compact`
    /// writes from the container of the same model — atomically. Refused (unsupported) for Keras /
    /// HDF5 sources, whose format has no operators to decode weights with.
    public static func exportCompact(_ compressed: Compressed, to output: String, force: Bool) throws -> Restoration.Result {
        try AtomicFile.checkWritable(output, input: compressed.source, force: force)
        guard compressed.model.format == .onnx, let skeleton = compressed.skeleton else {
            throw PithError(.unsupported, "\(compressed.source): --export writes a compact ONNX model, and this is not an ONNX model")
        }
        return try Restoration.writeCompact(skeleton: skeleton, tensors: compressed.model.tensors, file: compressed.source, to: output)
    }
}
