import Testing

@testable import PithPasses

/// Optimal Brain Surgeon on whole inputs of a layer (`NeuronSurgery`), against cases whose answer is
/// known without it.
@Suite struct NeuronSurgeryTests {
    /// H = E[xxᵀ] and E[x] of `rows` (each `k` long).
    func statistics(_ rows: [[Float]], k: Int) -> (hessian: [Float], mean: [Float]) {
        var h = [Float](repeating: 0, count: k * k), mean = [Float](repeating: 0, count: k)
        for x in rows {
            for i in 0..<k {
                mean[i] += x[i] / Float(rows.count)
                for j in 0..<k { h[i * k + j] += x[i] * x[j] / Float(rows.count) }
            }
        }
        return (h, mean)
    }

    /// Deterministic values in [-1, 1).
    func noise(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
        }
    }

    @Test func aNeuronTheOthersCanExpressGoesFirstAndTheOutputsDoNotMove() throws {
        // x2 = x0 + x1 always: any one of the three is the other two's combination, so removing it
        // (and updating the weights of the other two) leaves every output as it was; x3 is independent.
        let k = 4, rows = 3
        let samples = (0..<200).map { s -> [Float] in
            let v = noise(3, seed: UInt64(s) + 1)
            return [v[0], v[1], v[0] + v[1], v[2]]
        }
        let (h, mean) = statistics(samples, k: k)
        let w: [Float] = [0.5, -0.2, 0.9, 0.1, 0.3, 0.4, -0.7, -0.6, -0.1, 0.8, 0.6, 0.2]
        let result = try NeuronSurgery.remove(
            count: 1, neurons: k, block: 1, weight: w, rows: rows, bias: nil, biasScale: 1, hessian: h, mean: mean, damp: 1e-6, layer: "test")
        let gone = try #require(result.removed.first)
        #expect(gone != 3)
        for r in 0..<rows {
            #expect(result.weight[r * k + gone] == 0)
            #expect(abs(result.weight[r * k + 3] - w[r * k + 3]) < 1e-3)
        }
        for x in samples {
            for r in 0..<rows {
                let want = (0..<k).reduce(Float(0)) { $0 + w[r * k + $1] * x[$1] }
                let have = (0..<k).reduce(Float(0)) { $0 + result.weight[r * k + $1] * x[$1] }
                #expect(abs(want - have) < 1e-3)
            }
        }
    }

    @Test func aConstantNeuronMovesIntoTheBias() throws {
        // Input 1 is always 0.5: with the bias as an input, removing it adds 0.5·W[:,1]/scale to the bias.
        let k = 3, rows = 2
        let samples = (0..<100).map { s -> [Float] in
            let v = noise(2, seed: UInt64(s) + 7)
            return [v[0], 0.5, v[1]]
        }
        let (h, mean) = statistics(samples, k: k)
        let w: [Float] = [0.4, 2.0, -0.3, -0.1, -1.0, 0.6]
        let bias: [Float] = [0.1, -0.2]
        let scale: Float = 2  // a Gemm with beta / alpha = 2
        let result = try NeuronSurgery.remove(
            count: 1, neurons: k, block: 1, weight: w, rows: rows, bias: bias, biasScale: scale, hessian: h, mean: mean, damp: 1e-6, layer: "test")
        #expect(result.removed == [1])
        let updated = try #require(result.bias)
        for r in 0..<rows {
            #expect(abs(updated[r] - (bias[r] + 0.5 * w[r * k + 1] / scale)) < 1e-3)
            #expect(abs(result.weight[r * k + 0] - w[r * k + 0]) < 1e-3)
            #expect(abs(result.weight[r * k + 2] - w[r * k + 2]) < 1e-3)
        }
    }

    @Test func blocksOfAConvolutionGoWhole() throws {
        // Two channels of two columns each; channel 1 repeats channel 0, so it goes and its weights
        // join channel 0's.
        let block = 2, neurons = 3, k = block * neurons
        let samples = (0..<300).map { s -> [Float] in
            let v = noise(4, seed: UInt64(s) + 11)
            return [v[0], v[1], v[0], v[1], v[2], v[3]]
        }
        let (h, mean) = statistics(samples, k: k)
        let w = noise(2 * k, seed: 99)
        let result = try NeuronSurgery.remove(
            count: 1, neurons: neurons, block: block, weight: w, rows: 2, bias: nil, biasScale: 1, hessian: h, mean: mean, damp: 1e-6, layer: "test")
        #expect(result.removed == [0] || result.removed == [1])
        let gone = result.removed[0], kept = 1 - gone
        for r in 0..<2 {
            for p in 0..<block {
                #expect(result.weight[r * k + gone * block + p] == 0)
                #expect(abs(result.weight[r * k + kept * block + p] - (w[r * k + p] + w[r * k + block + p])) < 1e-3)
                #expect(abs(result.weight[r * k + 2 * block + p] - w[r * k + 2 * block + p]) < 1e-3)
            }
        }
    }
}
