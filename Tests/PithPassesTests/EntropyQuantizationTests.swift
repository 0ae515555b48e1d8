import Foundation
import Testing
import PithIR
import PithLinearAlgebra
@testable import PithPasses

@Suite(.serialized) struct EntropyQuantizationTests {
    /// Bits of the codes as the container's Huffman coding would take them.
    func codeBits(_ codes: [Int32]) -> Int {
        var histogram: [Int32: Int] = [:]
        for code in codes { histogram[code, default: 0] += 1 }
        return SparseEncoding.huffmanBits(Array(histogram.values))
    }

    @Test func huffmanBitsAreTheCodeLengths() {
        #expect(SparseEncoding.huffmanBits([]) == 0)
        #expect(SparseEncoding.huffmanBits([7]) == 7)  // one symbol: a bit each
        #expect(SparseEncoding.huffmanBits([1, 1, 2]) == 6)  // lengths 2, 2, 1
        #expect(SparseEncoding.huffmanBits([1, 1, 1, 1]) == 8)
        #expect(SparseEncoding.huffmanBits([90, 5, 3, 2]) == 90 + 10 + 9 + 6)  // lengths 1, 2, 3, 3
    }

    /// The sweep minimises output error + λ·bits: on a correlated layer it has a lower total cost
    /// than rounding to nearest on the same grid, and than the same choice without feedback (H = I).
    @Test func theSweepTradesErrorForBitsBetterThanRounding() throws {
        let tests = DataAwareTests()
        for seed in 0..<6 as Range<UInt64> {
            let rows = 16, k = 48
            let (w, h) = tests.problem(rows: rows, columns: k, seed: seed)
            let factor = try ErrorFeedback.inverseFactor(h, n: k, damp: 0.01, layer: "test")
            let energy = ErrorFeedback.proxy(w, rows: rows, columns: k, hessian: h)
            let lambda = 0.01 * energy / Double(rows * k)
            let meanInverse = (0..<k).reduce(0.0) { $0 + Double(factor.factor[$1 * k + $1] * factor.factor[$1 * k + $1]) } / Double(k)
            let step = EntropyQuantization.step(lambda: lambda, meanInverseDiagonal: meanInverse, meanRowWeight: 1)
            func cost(_ q: [Float], _ codes: [Int32]) -> Double {
                tests.proxy(w, q, rows: rows, k: k, h: h) + lambda * Double(codeBits(codes))
            }
            var swept = w
            let codes = EntropyQuantization.sweep(
                &swept, rows: rows, columns: k, factor: factor.factor, rowWeights: nil, mask: nil, step: step, lambda: lambda, iterations: 3)
            // Every value is its code times the step.
            #expect(zip(swept, codes).allSatisfy { $0 == step * Float($1) })
            let nearestCodes = w.map { EntropyQuantization.code(nearest: $0, step: step) }
            var plain = w
            let plainCodes = EntropyQuantization.sweep(
                &plain, rows: rows, columns: k, factor: nil, rowWeights: nil, mask: nil, step: step, lambda: lambda, iterations: 3)
            let ours = cost(swept, codes)
            #expect(ours < cost(nearestCodes.map { step * Float($0) }, nearestCodes), "seed \(seed)")
            #expect(ours < cost(plain, plainCodes), "seed \(seed)")
        }
    }

    @Test func largerLambdaGivesFewerBitsAndMoreError() throws {
        let source = QuietMLP(mlp: TinyMLP(inputs: 32, hidden: 48, outputs: 8, samples: 300))
        var previous: (bits: Int, error: Double)?
        for lambda in [0.001, 0.01, 0.1] {
            var model = source.model
            let report = try Compressor.run(
                Recipe(steps: [.init(select: TensorSelector(names: ["w1"]), entropyQuantize: EntropyQuantizeOptions(lambda: lambda))]), on: &model,
                calibration: source)
            let row = try #require(report.passes.first { $0.action == "entropy_quantize" })
            let error = try #require(row.layerError).after
            let bits = Int(SparseEncoding.estimatedCodedBits(model.tensors[0]))
            if let previous {
                #expect(bits < previous.bits, "λ \(lambda): \(bits) bits")
                #expect(error > previous.error, "λ \(lambda): error \(error)")
            }
            previous = (bits, error)
        }
    }

    /// Each layer's error is below that of its data-free twin (the same grid and λ with H = I), for the
    /// weight and for the factors of a whitened split; the factors are stored as codes, and the
    /// tensor's values are their product.
    @Test(arguments: [false, true])
    func entropyQuantizationBeatsItsTwinLayerByLayer(split: Bool) throws {
        let source = QuietMLP()
        var model = source.model
        var steps: [Recipe.Step] = []
        if split { steps.append(.init(select: TensorSelector(names: ["w1"]), factorize: FactorizeOptions(method: .svd, rank: 6, whiten: true))) }
        steps.append(.init(select: TensorSelector(names: ["w1", "w2"]), entropyQuantize: EntropyQuantizeOptions(lambda: 0.005)))
        TinyMLP.captured = []
        let report = try Compressor.run(Recipe(steps: steps), on: &model, calibration: source)
        let rows = report.passes.filter { $0.action == "entropy_quantize" }
        #expect(rows.map(\.tensor) == ["w1", "w2"])
        for row in rows {
            let e = try #require(row.layerError)
            #expect(e.after < e.dataFree, "\(row.tensor): \(e.after) ≥ \(e.dataFree)")
        }
        if split {
            guard case .factored(let factored) = model.tensors[0].storage, let encodings = factored.encodings else {
                Issue.record("w1 is not factored with stored factors: \(model.tensors[0].storageLabel)")
                return
            }
            let shapes = factored.factorShapes(tensorShape: model.tensors[0].shape)
            let decoded = zip(encodings, shapes).map { storage, shape in
                Tensor(name: "f", dtype: .float32, shape: shape, storage: storage, origin: .initializer(graph: .main)).decodedFloats()
            }
            #expect(decoded == factored.factors)
            #expect(model.tensors[0].decodedFloats() == factored.expand(tensorShape: model.tensors[0].shape))
        } else {
            guard case .quantized(let q) = model.tensors[0].storage else {
                Issue.record("w1 is stored \(model.tensors[0].storageLabel)")
                return
            }
            #expect(q.scales.count == 1 && q.isSymmetric && q.codes.allSatisfy { abs($0) <= EntropyQuantization.maximumCode })
        }
    }

    /// A tensor calibration cannot reach (here: no graph) is quantized with H = I, and listed.
    @Test func anUncalibratedTensorIsQuantizedWithoutFeedback() throws {
        let source = QuietMLP()
        var model = source.model
        model.graph = nil
        let report = try Compressor.run(
            Recipe(steps: [.init(select: TensorSelector(names: ["w1"]), entropyQuantize: EntropyQuantizeOptions(lambda: 0.01))]), on: &model,
            calibration: source)
        #expect(report.skipped.contains { $0.target == "w1" && $0.reason.contains("H = I") })
        guard case .quantized = model.tensors[0].storage else {
            Issue.record("w1 is stored \(model.tensors[0].storageLabel)")
            return
        }
    }

    @Test func badOptionsAreRefused() {
        for options in [EntropyQuantizeOptions(lambda: 0), EntropyQuantizeOptions(lambda: 2), EntropyQuantizeOptions(lambda: 0.01, iterations: 0)] {
            #expect(throws: PassError.self) { try Recipe(steps: [.init(entropyQuantize: options)]).validate() }
        }
    }
}
