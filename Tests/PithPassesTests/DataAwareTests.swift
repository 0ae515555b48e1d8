import Foundation
import Testing
import PithIR
import PithLinearAlgebra
@testable import PithPasses

/// A two-layer perceptron x → Gemm fc1 (transB = 1) → Relu → Gemm fc2, and a calibration source
/// that runs it itself (the passes may not import the evaluator): it computes the value asked for
/// from the model it is handed, so a capture sees the weights as compressed so far.
struct TinyMLP: CalibrationSource {
    let inputs: Int, hidden: Int, outputs: Int
    let data: [Float]
    var samples: Int { data.count / inputs }
    var name: String { "tiny" }
    /// Values captured, in order.
    nonisolated(unsafe) static var captured: [String] = []

    init(inputs: Int = 24, hidden: Int = 32, outputs: Int = 8, samples: Int = 200, seed: UInt64 = 1) {
        self.inputs = inputs
        self.hidden = hidden
        self.outputs = outputs
        var g = SplitMix64(seed: seed)
        // Correlated inputs: a few latent factors mixed, plus noise, and a nonzero mean.
        let factors = 4
        let mixing = (0..<factors * inputs).map { _ in Float.random(in: -1...1, using: &g) }
        var x: [Float] = []
        for _ in 0..<samples {
            let z = (0..<factors).map { _ in Float.random(in: -1...1, using: &g) }
            for j in 0..<inputs {
                var v: Float = 0.3 + 0.1 * Float.random(in: -1...1, using: &g)
                for f in 0..<factors { v += z[f] * mixing[f * inputs + j] }
                x.append(v)
            }
        }
        data = x
    }

    var model: Model {
        var g = SplitMix64(seed: 99)
        func random(_ n: Int) -> [Float] { (0..<n).map { _ in Float.random(in: -0.5...0.5, using: &g) } }
        func tensor(_ name: String, _ shape: [Int]) -> Tensor {
            Tensor(
                name: name, dtype: .float32, shape: shape, storage: .dense(TensorBuffer(values: random(shape.reduce(1, *)))),
                origin: .initializer(graph: .main))
        }
        let graph = Graph(
            nodes: [
                Node(name: "fc1", opType: "Gemm", inputs: ["x", "w1", "b1"], outputs: ["h"], attributes: [Attribute(name: "transB", value: .int(1))]),
                Node(name: "relu", opType: "Relu", inputs: ["h"], outputs: ["r"]),
                Node(name: "fc2", opType: "Gemm", inputs: ["r", "w2", "b2"], outputs: ["y"], attributes: [Attribute(name: "transB", value: .int(1))]),
            ], inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "y")], initializers: [0, 1, 2, 3])
        return Model(
            format: .onnx, tensors: [tensor("w1", [hidden, inputs]), tensor("b1", [hidden]), tensor("w2", [outputs, hidden]), tensor("b2", [outputs])],
            graph: graph)
    }

    /// The value `name` ("x", "h", "r" or "y") for every sample.
    func forward(_ name: String, in model: Model) -> (values: [Float], shape: [Int]) {
        let t = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0.decodedFloats()) })
        func gemm(_ x: [Float], _ w: [Float], _ b: [Float], _ n: Int, _ k: Int) -> [Float] {
            var y = [Float](repeating: 0, count: samples * n)
            for s in 0..<samples { for o in 0..<n { y[s * n + o] = b[o] + (0..<k).reduce(0) { $0 + x[s * k + $1] * w[o * k + $1] } } }
            return y
        }
        if name == "x" { return (data, [samples, inputs]) }
        var w1 = t["w1"]!
        if case .int(0)? = model.graph?.nodes[0].attribute("transB") {
            // Stored inputs × hidden: back to hidden × inputs.
            let stored = w1
            for o in 0..<hidden { for j in 0..<inputs { w1[o * inputs + j] = stored[j * hidden + o] } }
        }
        let h = gemm(data, w1, t["b1"]!, hidden, inputs)
        if name == "h" { return (h, [samples, hidden]) }
        let r = h.map { Swift.max(0, $0) }
        if name == "r" { return (r, [samples, hidden]) }
        return (gemm(r, t["w2"]!, t["b2"]!, outputs, hidden), [samples, outputs])
    }

    func capture(_ value: String, in model: Model, _ body: ([Float], [Int]) throws -> Void) throws {
        Self.captured.append(value)
        let (values, shape) = forward(value, in: model)
        // Two batches, as a real source hands them over.
        let half = samples / 2, width = shape[1]
        try body(Array(values[..<(half * width)]), [half, width])
        try body(Array(values[(half * width)...]), [samples - half, width])
    }
}

@Suite(.serialized) struct DataAwareTests {
    /// A random symmetric positive definite H from correlated rows, and weights.
    func problem(rows: Int, columns k: Int, seed: UInt64) -> (w: [Float], h: [Float]) {
        var g = SplitMix64(seed: seed)
        let n = 3 * k
        let factors = Swift.max(2, k / 4)
        let mixing = (0..<factors * k).map { _ in Float.random(in: -1...1, using: &g) }
        var x = [Float](repeating: 0, count: n * k)
        for s in 0..<n {
            let z = (0..<factors).map { _ in Float.random(in: -1...1, using: &g) }
            for j in 0..<k { x[s * k + j] = 0.2 * Float.random(in: -1...1, using: &g) + (0..<factors).reduce(0) { $0 + z[$1] * mixing[$1 * k + j] } }
        }
        var h = [Float](repeating: 0, count: k * k)
        x.withUnsafeBufferPointer { px in
            h.withUnsafeMutableBufferPointer { ph in LinearAlgebra.accumulateGram(rows: n, columns: k, px.baseAddress!, lda: k, into: ph.baseAddress!) }
        }
        LinearAlgebra.symmetrizeUpper(&h, n: k)
        h = h.map { $0 / Float(n) }
        return ((0..<rows * k).map { _ in Float.random(in: -1...1, using: &g) }, h)
    }

    func proxy(_ w: [Float], _ q: [Float], rows: Int, k: Int, h: [Float]) -> Double {
        ErrorFeedback.proxy(zip(w, q).map { $0 - $1 }, rows: rows, columns: k, hessian: h)
    }

    @Test(arguments: [QuantizeOptions.Format.int8, .int4])
    func gptqErrorIsAtMostRoundToNearest(format: QuantizeOptions.Format) throws {
        for seed in 0..<8 as Range<UInt64> {
            let rows = 12, k = 40
            let (w, h) = problem(rows: rows, columns: k, seed: seed)
            let layout = ChannelLayout(shape: [rows, k], axis: 0, perTensor: false)
            let options = QuantizeOptions(format: format, granularity: .channel)
            let grids = Quantization.grids(w, layout: layout, options: options)
            let nearest = w.indices.map { grids[$0 / k].value(grids[$0 / k].code(w[$0])) }
            let factor = try ErrorFeedback.inverseFactor(h, n: k, damp: 0.01, layer: "test")
            var gptq = w
            ErrorFeedback.sweep(&gptq, rows: rows, columns: k, factor: factor.factor) { r, _, v in grids[r].value(grids[r].code(v)) }
            // Every value is on its row's grid.
            #expect(gptq.indices.allSatisfy { grids[$0 / k].value(grids[$0 / k].code(gptq[$0])) == gptq[$0] })
            let a = proxy(w, gptq, rows: rows, k: k, h: h), b = proxy(w, nearest, rows: rows, k: k, h: h)
            #expect(a <= b, "seed \(seed): gptq \(a) > nearest \(b)")
        }
    }

    @Test func gptqSweepIsBlockedCorrectly() throws {
        // More columns than a block: the blocked sweep equals the plain column-by-column OBS update.
        let rows = 3, k = ErrorFeedback.block + 37
        let (w, h) = problem(rows: rows, columns: k, seed: 5)
        let u = try ErrorFeedback.inverseFactor(h, n: k, damp: 0.01, layer: "test").factor
        let snap: @Sendable (Int, Int, Float) -> Float = { _, _, v in (v * 4).rounded() / 4 }
        var blocked = w
        ErrorFeedback.sweep(&blocked, rows: rows, columns: k, factor: u, quantize: snap)
        var plain = w.map(Double.init)
        for r in 0..<rows {
            for i in 0..<k {
                let q = Double(snap(r, i, Float(plain[r * k + i])))
                let e = (plain[r * k + i] - q) / Double(u[i * k + i])
                plain[r * k + i] = q
                for j in (i + 1)..<k { plain[r * k + j] -= e * Double(u[i * k + j]) }
            }
        }
        let same = zip(blocked, plain).filter { abs(Double($0) - $1) < 1e-4 }.count
        #expect(same >= blocked.count - 2, "\(blocked.count - same) values differ")
    }

    @Test func refitLowersTheProxy() throws {
        for seed in 0..<6 as Range<UInt64> {
            let rows = 10, k = 32
            var (w, h) = problem(rows: rows, columns: k, seed: seed)
            if seed % 2 == 1 { for i in w.indices where i % 3 == 0 { w[i] = 0 } }  // pruned: the zero code stays 0
            let perChannel = seed >= 4
            let layout = ChannelLayout(shape: [rows, k], axis: 0, perTensor: !perChannel)
            let (codebook, _) = try WeightSharing.cluster(
                w, layout: layout, options: ClusterOptions(bits: 3, granularity: perChannel ? .channel : .tensor), seed: seed, tensor: "t")
            var tables = CodebookTables(codebook)
            let offset = codebook.zeroIsReserved ? 1 : 0
            let assignment = codebook.indices.map { Int32($0) - Int32(offset) }
            let geometry = LayerGeometry(
                tensor: 0, layer: "t", op: "Gemm", node: 0, input: "x", convolution: nil, outputs: rows, columns: k, groups: 1, transposed: false)
            let statistics = LayerStatistics(columns: k, hessians: [h], means: [[Float](repeating: 0, count: k)], rows: 1, samples: 1)
            let channelOf: (Int) -> Int = { perChannel ? $0 : 0 }
            let before = CodebookRefit.decode(assignment, tables: tables, columns: k, channelOf: channelOf)
            CodebookRefit.solveCentroids(
                target: w, assignment: assignment, tables: &tables.tables, geometry: geometry, statistics: statistics, channelOf: channelOf)
            let after = CodebookRefit.decode(assignment, tables: tables, columns: k, channelOf: channelOf)
            let a = proxy(w, after, rows: rows, k: k, h: h), b = proxy(w, before, rows: rows, k: k, h: h)
            #expect(a <= b * (1 + 1e-6), "seed \(seed): refit \(a) > k-means \(b)")
            #expect(w.indices.allSatisfy { w[$0] != 0 || after[$0] == 0 || !codebook.zeroIsReserved })
            // The closed form is a minimum: moving any centroid a little only raises the proxy.
            for t in tables.tables.indices {
                for c in tables.tables[t].indices {
                    for step: Float in [-1e-2, 1e-2] {
                        var moved = tables
                        moved.tables[t][c] += step
                        let m = proxy(w, CodebookRefit.decode(assignment, tables: moved, columns: k, channelOf: channelOf), rows: rows, k: k, h: h)
                        #expect(m >= a * (1 - 1e-5))
                    }
                }
            }
        }
    }

    @Test func obsWithIdentityHessianIsMagnitudePruning() throws {
        for seed in 0..<5 as Range<UInt64> {
            let rows = 8, k = 50
            let w = randomWeights(rows * k, seed: seed + 20)
            var identity = [Float](repeating: 0, count: k * k)
            for i in 0..<k { identity[i * k + i] = 1 }
            let factor = try ErrorFeedback.inverseFactor(identity, n: k, damp: 0.01, layer: "test")
            var magnitude = w
            _ = Pruning.pruneToSparsity(&magnitude, sparsity: 0.7)
            let count = magnitude.filter { $0 == 0 }.count
            // Saliency w² / [H⁻¹]ᵢᵢ with H = I ranks like |w|.
            let scores = w.indices.map { w[$0] * w[$0] / factor.inverse[($0 % k) * k + $0 % k] }
            let mask = OBSPruning.lowest(scores, count: count)
            var obs = w
            ErrorFeedback.sweep(&obs, rows: rows, columns: k, factor: factor.factor) { r, j, v in mask[r * k + j] ? 0 : v }
            #expect(obs == magnitude, "seed \(seed)")
        }
    }

    @Test func obsCompensatesOnCorrelatedInputs() throws {
        let rows = 6, k = 30
        let (w, h) = problem(rows: rows, columns: k, seed: 3)
        var magnitude = w
        _ = Pruning.pruneToSparsity(&magnitude, sparsity: 0.6)
        let factor = try ErrorFeedback.inverseFactor(h, n: k, damp: 0.01, layer: "test")
        var obs = w
        let pruned = magnitude
        ErrorFeedback.sweep(&obs, rows: rows, columns: k, factor: factor.factor) { r, j, v in pruned[r * k + j] == 0 ? 0 : v }
        #expect(obs.indices.allSatisfy { (obs[$0] == 0) == (magnitude[$0] == 0) })
        #expect(proxy(w, obs, rows: rows, k: k, h: h) < 0.5 * proxy(w, magnitude, rows: rows, k: k, h: h))
    }

    /// The im2col statistics of a convolution equal H computed patch by patch, for strides, pads,
    /// dilations and groups.
    @Test(arguments: [(1, 1, [1, 1, 1, 1], "NOTSET"), (2, 1, [1, 0, 2, 1], "NOTSET"), (1, 2, [0, 0, 0, 0], "SAME_UPPER"), (2, 2, [0, 0, 0, 0], "VALID")])
    func convolutionPatchesGiveTheHessian(stride: Int, groups: Int, pads: [Int], autoPad: String) throws {
        let channels = 4, size = [6, 5], kernel = [3, 2], batch = 2, dilation = stride == 1 && groups == 1 ? 2 : 1
        let convolution = LayerGeometry.Convolution(
            kernel: kernel, strides: [stride, stride], dilations: [dilation, dilation], padsBegin: Array(pads[..<2]), padsEnd: Array(pads[2...]),
            autoPad: autoPad, channels: channels, groups: groups)
        let perGroup = channels / groups, k = perGroup * kernel.reduce(1, *)
        let geometry = LayerGeometry(
            tensor: 0, layer: "conv", op: "Conv", node: 0, input: "x", convolution: convolution, outputs: 2 * groups, columns: k, groups: groups,
            transposed: false)
        let x = randomWeights(batch * channels * size.reduce(1, *), seed: 7)
        var accumulator = HessianAccumulator(geometry)
        try accumulator.add(x, shape: [batch, channels] + size)
        let statistics = accumulator.finish()
        let (outputs, begins) = HessianAccumulator.window(convolution, size: size)
        var patches: [[[Float]]] = Array(repeating: [], count: groups)
        for s in 0..<batch {
            for oy in 0..<outputs[0] {
                for ox in 0..<outputs[1] {
                    for g in 0..<groups {
                        var patch: [Float] = []
                        for c in 0..<perGroup {
                            for ky in 0..<kernel[0] {
                                for kx in 0..<kernel[1] {
                                    let y = oy * stride - begins[0] + ky * dilation, xx = ox * stride - begins[1] + kx * dilation
                                    let inside = y >= 0 && y < size[0] && xx >= 0 && xx < size[1]
                                    patch.append(inside ? x[((s * channels + g * perGroup + c) * size[0] + y) * size[1] + xx] : 0)
                                }
                            }
                        }
                        patches[g].append(patch)
                    }
                }
            }
        }
        #expect(statistics.rows == batch * outputs[0] * outputs[1])
        for g in 0..<groups {
            let n = Float(patches[g].count)
            for i in 0..<k {
                for j in 0..<k {
                    let expected = patches[g].reduce(0) { $0 + $1[i] * $1[j] } / n
                    #expect(abs(statistics.hessians[g][i * k + j] - expected) < 1e-4)
                }
                #expect(abs(statistics.means[g][i] - patches[g].reduce(0) { $0 + $1[i] } / n) < 1e-5)
            }
        }
    }

    // MARK: The passes end to end, on a model with its own calibration source

    @Test func biasCorrectionZeroesTheMeanOutputShift() throws {
        let source = TinyMLP()
        for target in BiasCorrectionOptions.Target.allCases {
            var model = source.model
            let original = model
            let recipe = Recipe(steps: [
                .init(prune: PruneOptions(sparsity: 0.6, scope: .tensor)), .init(biasCorrection: BiasCorrectionOptions(target: target)),
            ])
            let report = try Compressor.run(recipe, on: &model, calibration: source)
            let corrected = report.passes.filter { $0.action == "bias_correction" }
            #expect(corrected.map(\.tensor) == ["b1", "b2"])
            for row in corrected { #expect(row.layerError!.after <= row.layerError!.dataFree || target == .model) }
            // The first layer's mean output is the original one (both targets agree there).
            let want = source.forward("h", in: original).values, have = source.forward("h", in: model).values
            for o in 0..<source.hidden {
                let a = (0..<source.samples).reduce(0.0) { $0 + Double(want[$1 * source.hidden + o]) }
                let b = (0..<source.samples).reduce(0.0) { $0 + Double(have[$1 * source.hidden + o]) }
                #expect(abs(a - b) / Double(source.samples) < 1e-4, "\(target) output \(o)")
            }
            // The model target: the last layer's mean output is the original model's too.
            if target == .model {
                let y0 = source.forward("y", in: original).values, y1 = source.forward("y", in: model).values
                for o in 0..<source.outputs {
                    let a = (0..<source.samples).reduce(0.0) { $0 + Double(y0[$1 * source.outputs + o]) }
                    let b = (0..<source.samples).reduce(0.0) { $0 + Double(y1[$1 * source.outputs + o]) }
                    #expect(abs(a - b) / Double(source.samples) < 1e-4, "output \(o)")
                }
            }
        }
    }

    @Test func dataAwarePassesBeatTheirTwinsLayerByLayer() throws {
        let source = TinyMLP()
        let recipes: [(String, Recipe.Step)] = [
            ("prune", .init(prune: PruneOptions(sparsity: 0.6, method: .obs))),
            ("prune", .init(prune: PruneOptions(sparsity: 0.6, method: .obs, mask: .saliency))),
            ("quantize", .init(quantize: QuantizeOptions(format: .int4, granularity: .channel, rounding: .gptq))),
            ("cluster", .init(cluster: ClusterOptions(bits: 2, assign: .gptq))),
            ("cluster", .init(cluster: ClusterOptions(bits: 2, granularity: .channel, assign: .gptq, weighting: .hessian))),
        ]
        for (action, step) in recipes {
            TinyMLP.captured = []
            var model = source.model
            let report = try Compressor.run(Recipe(steps: [step]), on: &model, calibration: source)
            let rows = report.passes.filter { $0.action == action }
            #expect(rows.map(\.tensor) == ["w1", "w2"])
            for row in rows {
                let e = try #require(row.layerError)
                #expect(e.after < e.dataFree, "\(action) \(row.tensor): \(e.after) ≥ \(e.dataFree)")
                #expect(e.samples == source.samples && e.rows == source.samples)
            }
            // Layer by layer in graph order: the second layer's input is captured after the first was compressed.
            #expect(TinyMLP.captured == ["x", "r"])
            #expect(report.calibration?.samples == source.samples)
        }
        // Refit after a data-free cluster step never raises the layer error.
        var model = source.model
        let report = try Compressor.run(
            Recipe(steps: [.init(cluster: ClusterOptions(bits: 2)), .init(refit: RefitOptions(iterations: 3))]), on: &model, calibration: source)
        for row in report.passes where row.action == "refit" { #expect(row.layerError!.after <= row.layerError!.before) }
    }

    /// Whitened SVD beats the plain split of the same rank on the layer output, whichever way the
    /// weight is stored (Gemm transB = 1: outputs × inputs; transB = 0: inputs × outputs).
    @Test(arguments: [true, false])
    func whitenedSVDBeatsThePlainSplit(transB: Bool) throws {
        let source = TinyMLP()
        var model = source.model
        if !transB {
            let w = model.tensors[0].decodedFloats(), (n, k) = (source.hidden, source.inputs)
            var t = [Float](repeating: 0, count: w.count)
            for i in 0..<n { for j in 0..<k { t[j * n + i] = w[i * k + j] } }
            model.tensors[0] = Tensor(name: "w1", dtype: .float32, shape: [k, n], storage: .dense(TensorBuffer(values: t)), origin: .initializer(graph: .main))
            model.graph!.nodes[0].attributes = [Attribute(name: "transB", value: .int(0))]
        }
        let original = source.forward("h", in: model).values
        let report = try Compressor.run(
            Recipe(steps: [.init(select: TensorSelector(names: ["w1"]), factorize: FactorizeOptions(method: .svd, rank: 4, whiten: true))]), on: &model,
            calibration: source)
        let e = try #require(report.passes.first?.layerError)
        #expect(e.after < 0.8 * e.dataFree, "whitened \(e.after), plain \(e.dataFree)")
        // The reported error is the one the factored weight really gives on the calibration inputs.
        let have = source.forward("h", in: model).values, b = model.tensors[1].decodedFloats()
        var error = 0.0, energy = 0.0
        for i in original.indices {
            let bias = Double(b[i % source.hidden])
            error += pow(Double(original[i] - have[i]), 2)
            energy += pow(Double(original[i]) - bias, 2)
        }
        #expect(abs(error / energy - e.after) < 1e-3 * Swift.max(e.after, 1e-6) + 1e-6)
    }

    @Test func aDataAwareRecipeNeedsCalibration() {
        var model = TinyMLP().model
        #expect {
            try Compressor.run(Recipe(steps: [.init(prune: PruneOptions(sparsity: 0.5, method: .obs))]), on: &model)
        } throws: { error in
            (error as? PassError)?.kind == .invalidRecipe && "\(error)".contains("--calibration")
        }
    }

    @Test func aLayerWithoutBiasIsSkippedWithTheReason() throws {
        let source = TinyMLP()
        var model = source.model
        model.graph!.nodes[0].inputs = ["x", "w1"]
        let report = try Compressor.run(
            Recipe(steps: [.init(prune: PruneOptions(sparsity: 0.5)), .init(biasCorrection: BiasCorrectionOptions())]), on: &model, calibration: source)
        let skip = try #require(report.skipped.first { $0.target == "w1" })
        #expect(skip.reason.contains("no bias input"))
        #expect(report.passes.contains { $0.action == "bias_correction" && $0.tensor == "b2" })
    }
}
