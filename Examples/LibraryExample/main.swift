// Pith as a Swift library: inspect a model, compress it with a recipe built in code, write the
// container, restore it to ONNX and check the restored model against the original on random inputs.
//
//     swift run pith-library-example Fixtures/lenet-300-100.onnx
//
// Every call here is the library's public API (`import Pith`); the `pith` command line is a thin
// layer over the same calls.
import Foundation
import Pith

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    print("usage: pith-library-example MODEL.onnx")
    exit(64)
}
let model = arguments[1]
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-library-example-\(getpid())").path
try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: folder) }

do {
    // 1. What the model is and where its bytes are.
    let report = try Inspection.run(model)
    print("\(model): \(report.totals.tensors) tensors, \(report.totals.count) parameters, \(report.totals.bytes) bytes")
    for value in report.summary?.inputs ?? [] {
        print("  input \(value.name): \(value.dtype ?? "?") [\((value.shape ?? []).joined(separator: ", "))]")
    }

    // 2. A recipe in code: 70% magnitude pruning, then 5-bit k-means weight sharing (weights only:
    //    the default selection leaves biases, normalization parameters and shape constants alone).
    let recipe = Recipe(steps: [
        Recipe.Step(prune: PruneOptions(sparsity: 0.7)),
        Recipe.Step(cluster: ClusterOptions(bits: 5)),
    ])
    let compressed = try Compression.run(recipe, on: model)
    let container = folder + "/model.pith"
    let accounting = try Compression.writeContainer(compressed, to: container, force: true)
    print("container: \(accounting.fileBytes) bytes")

    // 3. Back to ONNX, and the weights of the two models compared tensor by tensor (give `data:`
    //    an .npy/.npz/IDX file to also run both models and compare their outputs).
    let restored = folder + "/restored.onnx"
    _ = try Restoration.run(container, to: restored, force: true)
    let comparison = try Verification.run(
        original: model, candidate: restored, data: nil, labels: nil, batchSize: 500, scale: nil, thresholds: Verification.Thresholds())
    print(comparison.renderText(), terminator: "")
} catch {
    print("pith-library-example: \(error)")
    exit(65)
}
