import Foundation
@_exported public import PithPasses
@_exported public import struct PithContainer.ContainerAccounting
@_exported public import enum PithLinearAlgebra.KMeansInit
import Yams
import PithONNX
import PithContainer

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
}
