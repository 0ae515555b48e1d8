import Foundation
@_exported public import PithPasses
@_exported public import enum PithLinearAlgebra.KMeansInit
import Yams
import PithONNX
import PithContainer
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
    /// Writes `model` (read from `input`) as a `.pith` container at `output`, atomically: the bytes go
    /// to a temporary file in the same folder, which is renamed over `output` only when complete.
    /// An existing `output` is replaced only with `force`; the input is never written.
    /// Returns the container's size in bytes.
    @discardableResult
    public static func writeContainer(_ model: Model, from input: String, to output: String, force: Bool) throws -> Int {
        let fileManager = FileManager.default
        let inputURL = URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath()
        let outputURL = URL(fileURLWithPath: output).standardizedFileURL.resolvingSymlinksInPath()
        guard inputURL.path != outputURL.path else {
            throw PithError(.usage, "\(output): is the input file; choose another output")
        }
        if fileManager.fileExists(atPath: output), !force {
            throw PithError(.cannotCreate, "\(output): exists; use --force to replace it")
        }
        var skeleton: [UInt8]?
        if model.format == .onnx {
            do { skeleton = try ONNXSkeleton.strip(contentsOf: input) } catch let error as ONNXError {
                throw PithError(.data, error.description)
            }
        }
        let bytes: [UInt8]
        do { bytes = try ContainerWriter.encode(model, skeleton: skeleton).bytes } catch {
            throw PithError(.data, "\(output): \(error)")
        }
        let folder = outputURL.deletingLastPathComponent().path
        let temporary = folder + "/." + outputURL.lastPathComponent + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        guard fileManager.createFile(atPath: temporary, contents: Data(bytes)) else {
            throw PithError(.cannotCreate, "\(output): cannot write into \(folder)")
        }
        if rename(temporary, outputURL.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? fileManager.removeItem(atPath: temporary)
            throw PithError(.cannotCreate, "\(output): cannot move the finished file into place (\(reason))")
        }
        return bytes.count
    }
}
