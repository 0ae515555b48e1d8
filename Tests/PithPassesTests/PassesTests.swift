import Foundation
import Testing
import PithIR
import PithLinearAlgebra
@testable import PithPasses
import PithTestSupport

func floatTensor(_ name: String, _ values: [Float], shape: [Int], consumer: Consumer? = nil) -> Tensor {
    Tensor(name: name, dtype: .float32, shape: shape, storage: .dense(TensorBuffer(values: values)), origin: .dataset(path: name), consumer: consumer)
}

func randomWeights(_ n: Int, seed: UInt64, zeros: Double = 0) -> [Float] {
    var g = SplitMix64(seed: seed)
    return (0..<n).map { _ in Double.random(in: 0..<1, using: &g) < zeros ? 0 : Float.random(in: -1...1, using: &g) * Float.random(in: 0...1, using: &g) }
}

@Suite struct SparseEncodingTests {
    /// Dense → CSR → dense is exact, for every gap width, every value encoding, and rows of any shape.
    @Test func csrRoundTripIsExact() throws {
        for seed in 0..<40 as Range<UInt64> {
            var g = SplitMix64(seed: seed)
            let rows = Int.random(in: 1...12, using: &g), columns = Int.random(in: 1...300, using: &g)
            let density = [0.0, 0.01, 0.1, 0.5, 1.0][Int(seed) % 5]
            let values = randomWeights(rows * columns, seed: seed).map { Double.random(in: 0..<1, using: &g) < density ? $0 : 0 }
            let base = floatTensor("t", values, shape: [rows, columns])
            for bits in [1, 2, 3, 5, 8, 16] {
                let sparse = try #require(SparseEncoding.encode(base, values: values, indexBits: bits))
                var tensor = base
                tensor.storage = .sparse(sparse)
                #expect(tensor.decodedFloats() == values, "seed \(seed) bits \(bits)")
                #expect(sparse.entries == values.filter { $0 != 0 }.count + sparse.fillers)
                #expect(sparse.gaps.allSatisfy { Int($0) < 1 << bits })
                #expect(sparse.fillers == SparseEncoding.fillers(values, rows: rows, columns: columns, indexBits: bits))
            }
            // Codebook and quantized entries survive the round trip too.
            var clustered = base
            let (codebook, _) = try WeightSharing.cluster(
                values, layout: ChannelLayout(shape: [rows, columns], axis: Int(seed % 2), perTensor: false),
                options: ClusterOptions(bits: 4, granularity: .channel), seed: seed, tensor: "t")
            clustered.storage = .codebook(codebook)
            let clusteredValues = clustered.decodedFloats()
            if let sparse = SparseEncoding.encode(clustered, values: clusteredValues, indexBits: nil) {
                var encoded = clustered
                encoded.storage = .sparse(sparse)
                #expect(encoded.decodedFloats() == clusteredValues)
            }
            var quantized = base
            quantized.storage = .quantized(
                Quantization.quantize(
                    values, layout: ChannelLayout(shape: [rows, columns], axis: Int(seed % 2), perTensor: false),
                    options: QuantizeOptions(format: .int8, granularity: .channel, mode: .affine)
                ).0)
            let quantizedValues = quantized.decodedFloats()
            let sparse = try #require(SparseEncoding.encode(quantized, values: quantizedValues, indexBits: 4))
            quantized.storage = .sparse(sparse)
            #expect(quantized.decodedFloats() == quantizedValues)
        }
    }

    @Test func fillersFollowTheGapRule() throws {
        // Row: nonzero at column 0 and 20; with 3-bit gaps (at most 7 zeros skipped) 19 zeros need ⌊19/8⌋ = 2 fillers.
        var values = [Float](repeating: 0, count: 32)
        values[0] = 1; values[20] = 2
        let sparse = try #require(SparseEncoding.encode(floatTensor("t", values, shape: [1, 32]), values: values, indexBits: 3))
        #expect(sparse.gaps == [0, 7, 7, 3])
        #expect(sparse.fillers == 2)
    }
}

@Suite struct PruningTests {
    /// The selection by counts gives what sorting every magnitude gives: the k-th smallest and how
    /// many lie strictly below it, for ties, zeros of both signs and values in many tensors.
    @Test func kthSmallestMagnitudeIsTheSortedOne() {
        var g = SplitMix64(seed: 21)
        let states = [700, 1, 0, 2_500].map { n in
            Working(values: randomWeights(n, seed: g.next(), zeros: 0.1).map { ($0 * 32).rounded() / 32 * (g.next() % 7 == 0 ? -1 : 1) })
        }
        let sorted = states.flatMap { $0.values.map(Swift.abs) }.sorted()
        for k in [1, 2, 99, 700, 1_000, 2_345, sorted.count - 1, sorted.count] {
            let (threshold, below) = Pruning.kthSmallestMagnitude(states, k)
            #expect(threshold.bitPattern == sorted[k - 1].bitPattern, "k \(k)")
            #expect(below == Pruning.lowerBound(sorted, threshold), "k \(k)")
        }
    }

    @Test func globalPruningHitsTheSparsityExactly() {
        for seed in 0..<30 as Range<UInt64> {
            var g = SplitMix64(seed: seed)
            // Ties included: values on a coarse grid repeat many times.
            var states = (0..<3).map { i in
                Working(values: randomWeights(Int.random(in: 10...2000, using: &g), seed: seed * 7 + UInt64(i)).map { ($0 * 16).rounded() / 16 })
            }
            let sparsity = Double.random(in: 0...1, using: &g)
            let total = states.reduce(0) { $0 + $1.values.count }
            let existingZeros = states.reduce(0) { $0 + $1.values.filter { $0 == 0 }.count }
            let threshold = Pruning.pruneGlobally(&states, sparsity: sparsity)
            let zeros = states.reduce(0) { $0 + $1.values.filter { $0 == 0 }.count }
            // Zeros already there count among the smallest weights: exactly max(k, existing) end up zero.
            #expect(zeros == max(Int((sparsity * Double(total)).rounded()), existingZeros), "seed \(seed)")
            // Survivors are never smaller than the threshold.
            #expect(states.allSatisfy { $0.values.allSatisfy { $0 == 0 || abs($0) >= threshold } })
        }
    }

    @Test func globalPruningCountIsExactWithoutPreexistingZeros() {
        for seed in 0..<30 as Range<UInt64> {
            var states = [
                Working(values: randomWeights(1001, seed: seed).map { $0 == 0 ? 0.5 : $0 }),
                Working(values: randomWeights(77, seed: seed + 100).map { $0 == 0 ? 0.5 : $0 }),
            ]
            let sparsity = Double(seed) / 30
            Pruning.pruneGlobally(&states, sparsity: sparsity)
            let zeros = states.reduce(0) { $0 + $1.values.filter { $0 == 0 }.count }
            #expect(zeros == Int((sparsity * 1078).rounded()), "seed \(seed)")
        }
    }
}

@Suite struct QuantizationTests {
    @Test(arguments: [QuantizeOptions.Mode.symmetric, .affine])
    func nearestRoundingErrorIsAtMostHalfAStep(mode: QuantizeOptions.Mode) {
        for seed in 0..<20 as Range<UInt64> {
            for format in [QuantizeOptions.Format.int8, .int4] {
                for granularity in Granularity.allCases {
                    let rows = 4, axis = Int(seed % 2)
                    let values = randomWeights(rows * 64, seed: seed)
                    let layout = ChannelLayout(shape: [rows, 64], axis: axis, perTensor: granularity == .tensor)
                    let (q, _) = Quantization.quantize(values, layout: layout, options: QuantizeOptions(format: format, granularity: granularity, mode: mode))
                    let restored = floatTensor("t", values, shape: [rows, 64])
                    var t = restored
                    t.storage = .quantized(q)
                    let decoded = t.decodedFloats()
                    for (i, (x, y)) in zip(values, decoded).enumerated() {
                        let scale = q.scales[layout.channels == 1 ? 0 : (axis == 0 ? i / 64 : i % 64)]
                        #expect(abs(x - y) <= scale / 2 * (1 + 1e-5), "\(format) \(mode) seed \(seed): \(x) → \(y), step \(scale)")
                    }
                    #expect(values.indices.allSatisfy { values[$0] != 0 || decoded[$0] == 0 }, "zero must stay exact")
                }
            }
        }
    }

    @Test func simpleSchemeIsFloorOf128XOverMax() {
        let values: [Float] = [1, -1, 0.5, -0.25, 0.3, 0, -0.999]
        let (q, _) = Quantization.quantize(
            values, layout: ChannelLayout(shape: [7], axis: 0, perTensor: true), options: QuantizeOptions(format: .int8, mode: .simple))
        #expect(Array(q.codes) == values.map { Int32(min(127, max(-128, (128 * $0 / 1).rounded(.down)))) })
        #expect(q.scales == [1.0 / 128])
    }

    /// float16 and bfloat16 rounding, bit for bit against numpy / ml_dtypes (Fixtures/reference).
    @Test func reducedFloatsMatchTheReferenceTable() throws {
        struct Table: Decodable { var rows: [[UInt32]] }
        let url = URL(fileURLWithPath: Fixtures.path("reference/float-rounding.json"))
        let table = try JSONDecoder().decode(Table.self, from: Data(contentsOf: url))
        #expect(table.rows.count > 2000)
        for row in table.rows {
            let value = Float(bitPattern: row[0])
            #expect(UInt32(FloatRounding.float16Bits(value)) == row[1], "float16 of \(value) (0x\(String(row[0], radix: 16)))")
            #expect(UInt32(FloatRounding.bfloat16Bits(value)) == row[2], "bfloat16 of \(value) (0x\(String(row[0], radix: 16)))")
        }
    }
}

@Suite struct WeightSharingTests {
    @Test func prunedZerosStayExactAndOnlySurvivorsAreClustered() throws {
        let values = randomWeights(5000, seed: 4, zeros: 0.7)
        let (codebook, _) = try WeightSharing.cluster(
            values, layout: ChannelLayout(shape: [50, 100], axis: 0, perTensor: true), options: ClusterOptions(bits: 5), seed: 0, tensor: "w")
        #expect(codebook.zeroIsReserved && codebook.centroids[0] == 0 && codebook.centroids.count <= 32)
        var t = floatTensor("w", values, shape: [50, 100])
        t.storage = .codebook(codebook)
        let decoded = t.decodedFloats()
        for (x, y) in zip(values, decoded) {
            #expect((x == 0) == (y == 0))
        }
        #expect(codebook.centroids.dropFirst().allSatisfy { $0 != 0 })
    }
}

@Suite struct ChannelTests {
    /// Per-channel tables along the last axis (Keras kernels, MatMul weights) use each column's values only.
    @Test func perChannelAlongTheLastAxisUsesColumns() throws {
        // Column c holds values c·10 + {0, 1}: one 1-bit table per column reproduces it exactly.
        let rows = 6, columns = 5
        let values = (0..<rows * columns).map { Float(($0 % columns) * 10 + ($0 / columns) % 2) + 1 }
        let layout = ChannelLayout(shape: [rows, columns], axis: 1, perTensor: false)
        let (codebook, _) = try WeightSharing.cluster(values, layout: layout, options: ClusterOptions(bits: 1, granularity: .channel), seed: 0, tensor: "k")
        var t = floatTensor("k", values, shape: [rows, columns])
        t.storage = .codebook(codebook)
        #expect(t.decodedFloats() == values)
        #expect(codebook.channels == columns && codebook.axis == 1)
    }
}

@Suite struct CompressorTests {
    func lenet() throws -> Model {
        // The LeNet fixture's weights, rebuilt here without importing a format module:
        // passes never depend on one.
        let manifest = try #require(try Fixtures.manifests().first { $0.fixture == "lenet-300-100.onnx" }?.manifest)
        return Model(
            format: .onnx,
            tensors: manifest.tensors.enumerated().map { i, entry in
                floatTensor(entry.name, randomWeights(entry.count, seed: UInt64(i)), shape: entry.shape)
            })
    }

    @Test func recipeIsReproducibleAndReportsEveryPass() throws {
        let recipe = Recipe(
            seed: 7,
            steps: [
                .init(prune: PruneOptions(sparsity: 0.9)),
                .init(cluster: ClusterOptions(bits: 5, initialization: .forgy)),
            ])
        var a = try lenet(), b = try lenet()
        let ra = try Compressor.run(recipe, on: &a)
        let rb = try Compressor.run(recipe, on: &b)
        #expect(zip(a.tensors, b.tensors).allSatisfy { $0.storage == $1.storage })
        #expect(ra.passes.count == 6)  // 3 weight matrices × 2 passes; biases left alone
        #expect(ra.tensors.map(\.tensor) == ["fc1.weight", "fc2.weight", "fc3.weight"])
        let kept = ra.tensors.reduce(0) { $0 + $1.kept }
        #expect(kept == 266_200 - Int((0.9 * 266_200).rounded()))
        #expect(ra.totals.bytes < ra.totals.originalBytes / 10)
        #expect(a.tensors.filter { $0.storage.isCompressed }.count == 3)
    }

    /// Large tensors' original values are decoded where they are used rather than kept, and an
    /// encoded tensor holds only its codes (`Originals`, `Working`): the same recipes give the same
    /// storage and report, bit for bit, with every original kept decoded; int8 codes take a byte.
    @Test func largeTensorsCompressAlikeWithOriginalsKeptOrNot() throws {
        let recipes: [Recipe] = [
            Recipe(steps: [.init(quantize: QuantizeOptions(format: .int8, granularity: .channel))]),
            Recipe(steps: [.init(quantize: QuantizeOptions(format: .int8))]),
            Recipe(steps: [.init(quantize: QuantizeOptions(format: .fp16))]),
            Recipe(seed: 3, steps: [.init(cluster: ClusterOptions(bits: 4))]),
            Recipe(seed: 3, steps: [.init(prune: PruneOptions(sparsity: 0.6)), .init(cluster: ClusterOptions(bits: 3))]),
            Recipe(steps: [.init(prune: PruneOptions(sparsity: 0.5)), .init(quantize: QuantizeOptions(format: .int4, granularity: .channel))]),
        ]
        func model() -> Model {
            Model(
                format: .onnx,
                tensors: [
                    floatTensor("big.weight", randomWeights(24_000, seed: 1, zeros: 0.05), shape: [120, 200]),
                    floatTensor("small.weight", randomWeights(3_000, seed: 2), shape: [30, 100]),
                ])
        }
        for recipe in recipes {
            var lazy = model(), kept = model()
            // Every original decoded where it is used (as for a tensor of 4 MiB or more), or all kept.
            let a = try Compressor.run(recipe, on: &lazy, calibration: nil, originalsKeptBelow: 0)
            let b = try Compressor.run(recipe, on: &kept, calibration: nil, originalsKeptBelow: .max)
            let label = recipe.steps.map(\.action).joined(separator: "+")
            #expect(zip(lazy.tensors, kept.tensors).allSatisfy { $0.storage == $1.storage }, "\(label)")
            let json = JSONEncoder()
            json.outputFormatting = .sortedKeys
            #expect(try json.encode(a.tensors) == json.encode(b.tensors), "\(label)")
            #expect(try json.encode(a.passes) == json.encode(b.passes), "\(label)")
            // The error the report gives is the error of what the storage decodes to.
            let original = model().tensors[0].decodedFloats()
            #expect(a.tensors[0].error == WeightError(original: original, approximation: lazy.tensors[0].decodedFloats()), "\(label)")
        }
        var quantized = model()
        _ = try Compressor.run(recipes[0], on: &quantized)
        guard case .quantized(let q) = quantized.tensors[0].storage else { Issue.record("not quantized"); return }
        #expect(q.codes.width == .int8 && q.codes.count == 24_000)
    }

    @Test func invalidRecipesAreRejectedWithTheStepNamed() {
        var model = Model(format: .onnx, tensors: [])
        #expect(throws: PassError.self) { try Compressor.run(Recipe(steps: [.init(cluster: ClusterOptions(bits: 9))]), on: &model) }
        #expect(throws: PassError.self) {
            try Compressor.run(Recipe(steps: [.init(prune: PruneOptions(sparsity: 0.5), cluster: ClusterOptions(bits: 4))]), on: &model)
        }
        #expect(throws: PassError.self) { try Compressor.run(Recipe(steps: []), on: &model) }
    }

    @Test func clusterThenQuantizeIsRefused() throws {
        var model = try lenet()
        let recipe = Recipe(steps: [.init(cluster: ClusterOptions(bits: 4)), .init(quantize: QuantizeOptions(format: .int8))])
        #expect(throws: PassError.self) { try Compressor.run(recipe, on: &model) }
    }
}
