import Foundation
@_exported public import PithPasses
@_exported public import enum PithLinearAlgebra.KMeansInit
import Yams

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
    public static func run(_ recipe: Recipe, on path: String) throws -> (Model, CompressionReport) {
        var model = try ModelFile.load(path)
        do {
            let report = try Compressor.run(recipe, on: &model)
            return (model, report)
        } catch let error as PassError {
            let kind: PithError.Kind = error.kind == .invalidRecipe ? .usage : (error.kind == .tooExpensive ? .unsupported : .data)
            throw PithError(kind, "\(path): \(error.message)")
        }
    }
}
