import Foundation
import Testing
import PithLinearAlgebra
@testable import Pith

@Suite struct AutoCompressionTests {
    typealias Option = AutoCompression.Option

    func randomLayers(_ g: inout SplitMix64, layers: Int) -> [[Option]] {
        (0..<layers).map { _ in
            AutoCompression.paretoFront(
                (0..<Int.random(in: 1...7, using: &g)).map { index in
                    Option(setting: index, bytes: Int.random(in: 1...60, using: &g), proxy: Double(Int.random(in: 0...40, using: &g)) / 8)
                })
        }
    }

    /// Every combination of one option per layer, by brute force.
    func everyChoice(_ layers: [[Option]]) -> [(bytes: Int, proxy: Double)] {
        var all: [(bytes: Int, proxy: Double)] = [(0, 0)]
        for options in layers { all = all.flatMap { p in options.map { (p.bytes + $0.bytes, p.proxy + $0.proxy) } } }
        return all
    }

    @Test func layerFrontKeepsOnlyOptionsNoSmallerOneBeats() {
        var g = SplitMix64(seed: 13)
        for _ in 0..<50 {
            let options = (0..<12).map { Option(setting: $0, bytes: Int.random(in: 1...20, using: &g), proxy: Double(Int.random(in: 0...9, using: &g))) }
            let front = AutoCompression.paretoFront(options)
            #expect(zip(front, front.dropFirst()).allSatisfy { $0.bytes < $1.bytes && $0.proxy > $1.proxy })
            for option in options {
                #expect(front.contains { $0.bytes <= option.bytes && $0.proxy <= option.proxy })
            }
        }
    }

    /// The merged frontier is the knapsack's answer for every target: for each combination there is a
    /// frontier point no larger and no worse, and no frontier point beats another.
    @Test func mergedFrontSolvesTheKnapsackForEveryTarget() {
        var g = SplitMix64(seed: 21)
        for trial in 0..<40 {
            let layers = randomLayers(&g, layers: Int.random(in: 1...4, using: &g))
            let front = AutoCompression.mergedFront(layers, cap: 10_000)
            for point in front {
                let bytes = zip(layers, point.choice).reduce(0) { $0 + $1.0[$1.1].bytes }
                let proxy = zip(layers, point.choice).reduce(0.0) { $0 + $1.0[$1.1].proxy }
                #expect(bytes == point.bytes && abs(proxy - point.proxy) < 1e-12, "trial \(trial): a point's choice does not add up")
            }
            #expect(zip(front, front.dropFirst()).allSatisfy { $0.bytes < $1.bytes && $0.proxy > $1.proxy }, "trial \(trial)")
            for combination in everyChoice(layers) {
                #expect(
                    front.contains { $0.bytes <= combination.bytes && $0.proxy <= combination.proxy + 1e-12 },
                    "trial \(trial): (\(combination.bytes), \(combination.proxy)) has no frontier point as good")
            }
            // The smallest model whose summed error meets a target is the first frontier point under it.
            for target in stride(from: 0.0, through: 10, by: 0.75) {
                let best = everyChoice(layers).filter { $0.proxy <= target + 1e-12 }.map(\.bytes).min()
                #expect(front.first { $0.proxy <= target + 1e-12 }?.bytes == best, "trial \(trial), target \(target)")
            }
        }
    }

    @Test func mergedFrontThinsToItsCapKeepingBothEnds() {
        var g = SplitMix64(seed: 5)
        let layers = (0..<3).map { _ in
            AutoCompression.paretoFront((0..<40).map { Option(setting: $0, bytes: 1 + $0 * 7 + Int.random(in: 0...6, using: &g), proxy: 1 / Double(1 + $0)) })
        }
        let full = AutoCompression.mergedFront(layers, cap: 100_000), thin = AutoCompression.mergedFront(layers, cap: 50)
        #expect(thin.count == 50 && full.count > 50)
        #expect(thin.first?.bytes == full.first?.bytes && thin.last?.bytes == full.last?.bytes)
    }

    @Test func recipeYAMLReadsBackAsTheSameRecipe() throws {
        let settings = try ["prune0.925+kmeans3", "keep", "prune0.85+int4", "int8", "fp16", "kmeans6"].map { try LayerSetting(parsing: $0) }
        let recipe = LayerSetting.recipe(zip(["a.weight", "b.weight", "c", "d", "e", "f"], settings).map { ($0, $1) }, seed: 42, damp: 0.05)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-recipe-\(UUID()).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ("# a comment first, as --auto writes one\n" + AutoCompression.yaml(recipe)).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try Compression.loadRecipe(path) == recipe)
    }

    @Test func budgetsMeasureTheirShortfall() {
        let original = ModelMetrics(accuracy: 0.9832, agreement: 1, outputSNR: .infinity)
        let worse = ModelMetrics(accuracy: 0.9797, agreement: 0.993, outputSNR: 21.5)
        #expect(abs(AutoBudget.maxAccuracyDrop(0.1).shortfall(worse, original: original) - 0.25) < 1e-9)
        #expect(!AutoBudget.maxAccuracyDrop(0.1).holds(worse, original: original))
        #expect(AutoBudget.maxAccuracyDrop(0.35).holds(worse, original: original))
        #expect(AutoBudget.minAgreement(0.99).holds(worse, original: original))
        #expect(abs(AutoBudget.minOutputSNR(25).shortfall(worse, original: original) - 3.5) < 1e-9)
        #expect(AutoBudget.minOutputSNR(1000).holds(original, original: original))
        #expect(AutoBudget.maxAccuracyDrop(0.1).describe(worse, original: original) == "drops 0.35 points (error 1.68% → 2.03%)")
    }
}
