import Foundation
import Testing
import Pith
import PithLinearAlgebra
import PithTestSupport

/// Structured pruning on the real LeNet-300-100 graph: neurons go, the consumer's columns with them.
@Suite struct StructuredPruningTests {
    func forward(_ model: Model, _ input: [Float]) -> [Float] {
        // Gemm(transB=1) → Relu → Gemm → Relu → Gemm, evaluated directly from the tensors.
        func tensor(_ name: String) -> Tensor { model.tensors.first { $0.name == name }! }
        var x = input
        for layer in 1...3 {
            let w = tensor("fc\(layer).weight"), b = tensor("fc\(layer).bias").floatValues()
            let values = w.floatValues(), (out, inp) = (w.shape[0], w.shape[1])
            x = (0..<out).map { o in
                let s = (0..<inp).reduce(b[o]) { $0 + values[o * inp + $1] * x[$1] }
                return layer < 3 ? max(0, s) : s
            }
        }
        return x
    }

    @Test func removingHalfOfEachHiddenLayerKeepsTheModelConsistent() throws {
        let original = try ModelFile.load(Fixtures.path("lenet-300-100.onnx"))
        var model = original
        let report = try Compressor.run(Recipe(steps: [.init(structured: StructuredOptions(fraction: 0.5, criterion: .l2))]), on: &model)
        func shape(_ name: String) -> [Int] { model.tensors.first { $0.name == name }!.shape }
        #expect(shape("fc1.weight") == [150, 784])
        #expect(shape("fc1.bias") == [150])
        #expect(shape("fc2.weight") == [50, 150])
        #expect(shape("fc2.bias") == [50])
        #expect(shape("fc3.weight") == [10, 50])
        #expect(shape("fc3.bias") == [10])
        #expect(report.passes.filter { $0.action == "structured" }.count == 2)
        // fc3 feeds the graph output: skipped, with the reason.
        #expect(report.skipped.contains { $0.target == "fc3" && $0.reason.contains("graph output") })
        // The kept rows are the original rows with the largest L2 norms, in order.
        let w = original.tensors[0].floatValues()
        let norms = (0..<300).map { r in (0..<784).reduce(0.0) { $0 + Double(w[r * 784 + $1] * w[r * 784 + $1]) } }
        let kept = (0..<300).sorted { (norms[$0], $0) > (norms[$1], $1) }.prefix(150).sorted()
        let pruned = model.tensors[0].floatValues()
        for (newRow, oldRow) in kept.enumerated() {
            #expect(Array(pruned[newRow * 784..<(newRow + 1) * 784]) == Array(w[oldRow * 784..<(oldRow + 1) * 784]))
        }
        // The rewritten model still computes: same output shape, finite values.
        var g = SplitMix64(seed: 1)
        let input = (0..<784).map { _ in Float.random(in: 0...1, using: &g) }
        let output = forward(model, input)
        #expect(output.count == 10 && output.allSatisfy(\.isFinite))
    }

    @Test func mergingDuplicateNeuronsLeavesOutputsUnchanged() throws {
        // Make fc2 carry exact duplicates: rows 1..9 of fc1 copied onto rows 11..19 (weights and bias).
        var model = try ModelFile.load(Fixtures.path("lenet-300-100.onnx"))
        var w = model.tensors[0].floatValues(), b = model.tensors[1].floatValues()
        for r in 1..<10 {
            for c in 0..<784 { w[(r + 10) * 784 + c] = w[r * 784 + c] }
            b[r + 10] = b[r]
        }
        model.tensors[0].storage = .dense(TensorBuffer(values: w))
        model.tensors[1].storage = .dense(TensorBuffer(values: b))
        var g = SplitMix64(seed: 3)
        let input = (0..<784).map { _ in Float.random(in: 0...1, using: &g) }
        let before = forward(model, input)
        let recipe = Recipe(steps: [.init(select: TensorSelector(names: ["fc1.weight"]), structured: StructuredOptions(fraction: 9.0 / 300, criterion: .merge))]
        )
        _ = try Compressor.run(recipe, on: &model)
        #expect(model.tensors[0].shape == [291, 784])
        #expect(model.tensors[2].shape == [100, 291])
        let after = forward(model, input)
        for (x, y) in zip(before, after) { #expect(abs(x - y) <= 1e-4 * max(1, abs(x))) }
    }

    @Test func kerasModelsAreSkippedWithAReason() throws {
        var model = try ModelFile.load(Fixtures.path("lenet-300-100.h5"))
        let report = try Compressor.run(Recipe(steps: [.init(structured: StructuredOptions(fraction: 0.5))]), on: &model)
        #expect(report.skipped.first?.reason.contains("has none") == true)
        #expect(model.tensors[0].shape == [784, 300])
    }
}
