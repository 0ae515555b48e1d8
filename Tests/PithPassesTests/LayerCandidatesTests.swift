import Foundation
import Testing
import PithIR
@testable import PithPasses

/// `TinyMLP` without its record of captures (which `DataAwareTests` reads while these tests may run).
struct QuietMLP: CalibrationSource {
    var mlp = TinyMLP()
    var samples: Int { mlp.samples }
    var name: String { mlp.name }
    var model: Model { mlp.model }

    func forward(_ name: String, in model: Model) -> (values: [Float], shape: [Int]) { mlp.forward(name, in: model) }

    func capture(_ value: String, in model: Model, _ body: ([Float], [Int]) throws -> Void) throws {
        let (values, shape) = mlp.forward(value, in: model)
        try body(values, shape)
    }
}

@Suite(.serialized) struct LayerCandidatesTests {
    @Test(arguments: [
        "keep", "prune0.8", "int8", "int4", "fp16", "kmeans3", "prune0.925+kmeans2", "prune0.5+int4", "svd0.25", "ecq0.005", "svd0.3+ecq0.01",
        "prune0.5+ecq0.02",
    ])
    func settingsReadBackFromTheirNames(text: String) throws {
        let setting = try LayerSetting(parsing: text)
        #expect(setting.description == text)
        #expect(try LayerSetting(parsing: setting.description) == setting)
    }

    @Test(arguments: [
        ("kmeans9", "k-means bits must be 1…8"), ("prune1.5", "sparsity between 0 and 1"), ("int8+int4", "one encoding only"),
        ("prune0.5+svd0.5", "does not follow prune"), ("int3", "is not a setting"), ("prune0.5+prune0.6", "one prune"),
        ("ecq0", "lambda must be in (0, 1]"), ("ecq0.01+svd0.3", "one encoding only"), ("prune0.5+svd0.3+ecq0.01", "does not follow prune"),
        ("int8+ecq0.01", "one encoding only"),
    ])
    func badSettingsAreRefusedNamingThePart(text: String, message: String) {
        #expect(throws: PassError.self) { try LayerSetting(parsing: text) }
        do { _ = try LayerSetting(parsing: text) } catch let error as PassError {
            #expect(error.message.contains(message), "\(error.message)")
            #expect(error.exitKind == .usage)
        } catch {}
    }

    @Test func recipeOrdersPrunesThenEncodingsThenBiasCorrection() throws {
        let recipe = LayerSetting.recipe(
            [("a", try LayerSetting(parsing: "prune0.9+kmeans3")), ("b", .keep), ("c", try LayerSetting(parsing: "int8"))], seed: 3, damp: nil)
        #expect(recipe.steps.map(\.action) == ["prune", "cluster", "quantize", "bias_correction"])
        #expect(recipe.steps.map { $0.select?.names ?? [] } == [["a"], ["a"], ["c"], ["a", "c"]])
        #expect(recipe.steps[0].prune == PruneOptions(sparsity: 0.9, scope: .tensor, method: .obs, mask: .saliency))
        #expect(recipe.isDataAware)
        try recipe.validate()
        #expect(LayerSetting.recipe([("a", .keep)], seed: 0, damp: nil).steps.isEmpty)
    }

    /// What `measure` gives for a layer is what the one-layer recipe gives through `Compressor`: OBS
    /// pruning shared by several encodings leaks nothing from one candidate into the next.
    @Test func measuredCandidatesAreWhatTheirRecipesGive() throws {
        let source = QuietMLP()
        let model = source.model
        let (layers, others) = LayerCandidates.layers(of: model, selector: TensorSelector(names: ["w1", "w2"]))
        #expect(layers.map(\.tensor) == ["w1", "w2"] && others.isEmpty)
        #expect(layers.map(\.bias) == ["b1", "b2"])
        let settings = try LayerSetting.list(parsing: "keep,prune0.5+kmeans3,prune0.5+int8,prune0.5,int4,kmeans2")
        let measured = try LayerCandidates.measure(model, layers: layers, settings: settings, calibration: source, seed: 7)
        for (layer, row) in zip(layers, measured) {
            for (setting, candidate) in zip(settings, row) {
                let candidate = try #require(candidate)
                var compressed = model
                let recipe = LayerSetting.recipe([(layer.tensor, setting)], seed: 7, damp: nil)
                if !recipe.steps.isEmpty { _ = try Compressor.run(recipe, on: &compressed, calibration: source) }
                for tensor in candidate.tensors {
                    let other = try #require(compressed.tensors.first { $0.name == tensor.name })
                    #expect(other.storageLabel == tensor.storageLabel, "\(layer.tensor) \(setting): `\(tensor.name)` is stored otherwise than its recipe's")
                    // The same values up to the last bits: OpenBLAS's threaded Cholesky and Gram
                    // products round differently with another thread count, which the evaluator sets
                    // process-wide while it runs (another test evaluating at the same time). A leak
                    // from one candidate into the next changes whole weights.
                    let (a, b) = (other.densified().floatValues(), tensor.densified().floatValues())
                    let scale = max(a.map(abs).max() ?? 0, 1e-30)
                    let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                    #expect(a.count == b.count && worst <= 1e-4 * scale, "\(layer.tensor) \(setting): `\(tensor.name)` differs from its recipe's by \(worst)")
                }
                #expect(setting.isKeep == (candidate.proxy == 0), "\(layer.tensor) \(setting): proxy \(candidate.proxy)")
            }
        }
    }

    /// The proxy is the layer output error measured directly: E‖ŷ − y‖² / E‖y‖² at the layer's output,
    /// the layer fed the original model's input, bias correction included.
    @Test func proxyIsTheLayerOutputErrorOnTheCalibrationData() throws {
        let source = QuietMLP()
        let model = source.model
        let (layers, _) = LayerCandidates.layers(of: model)
        let settings = try LayerSetting.list(parsing: "kmeans2,prune0.7+int4")
        let measured = try LayerCandidates.measure(model, layers: layers, settings: settings, calibration: source)
        for (l, (output, input)) in [("h", "x"), ("y", "r")].enumerated() {
            for candidate in measured[l].compactMap({ $0 }) {
                var variant = model
                for tensor in candidate.tensors { variant.tensors[variant.tensors.firstIndex { $0.name == tensor.name }!] = tensor }
                // The layer fed the original input: rebuild the output from the original model's input.
                let x = source.forward(input, in: model).values
                let want = source.forward(output, in: model).values
                let weights = Dictionary(uniqueKeysWithValues: variant.tensors.map { ($0.name, $0.decodedFloats()) })
                let (w, b) = l == 0 ? (weights["w1"]!, weights["b1"]!) : (weights["w2"]!, weights["b2"]!)
                let n = b.count, k = w.count / n
                var error = 0.0, energy = 0.0
                let originalBias = model.tensors.first { $0.name == (l == 0 ? "b1" : "b2") }!.decodedFloats()
                for s in 0..<source.samples {
                    for o in 0..<n {
                        var y = Double(b[o])
                        for j in 0..<k { y += Double(x[s * k + j]) * Double(w[o * k + j]) }
                        let d = y - Double(want[s * n + o])
                        error += d * d
                        let clean = Double(want[s * n + o]) - Double(originalBias[o])
                        energy += clean * clean
                    }
                }
                #expect(
                    abs(candidate.proxy - error / energy) <= 1e-3 * error / energy + 1e-9,
                    "layer \(l) \(candidate.setting): \(candidate.proxy) vs \(error / energy)")
            }
        }
    }
}
