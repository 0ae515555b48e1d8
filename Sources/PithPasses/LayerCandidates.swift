public import PithIR

/// One way to compress one layer's weight, as `pith sensitivity` and `pith compress --auto` try them:
/// OBS pruning to `sparsity` (saliency mask, survivors updated), then one encoding of the values
/// (GPTQ-rounded where it rounds), then bias correction. Written `prune0.8+kmeans3`, `int8`, `svd0.25`,
/// `ecq0.005`, `svd0.3+ecq0.01` (`init(parsing:)`, `description`).
public struct LayerSetting: Sendable, Hashable, Codable, CustomStringConvertible {
    /// How the surviving values are stored.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// The values as they are (float32): only pruning, or nothing.
        case float32
        /// fp16, rounded to nearest even (data-free).
        case fp16
        /// int8 per output channel, GPTQ rounding.
        case int8
        /// int4 per output channel, GPTQ rounding.
        case int4
        /// k-means weight sharing with `bits` bits per index: diag(H)-weighted centroids, GPTQ assignment.
        case kmeans
        /// Low rank: the truncated SVD with at most `ratio` of the parameters (dense layers and 1×1
        /// convolutions; never after pruning).
        case svd
        /// Entropy-constrained quantization with `lambda` (`entropy_quantize`); with `ratio`, of the
        /// factors of the whitened truncated SVD with at most `ratio` of the parameters.
        case ecq
    }

    /// Fraction 0…1 of the weights pruned (0: none).
    public var sparsity: Double
    public var kind: Kind
    /// `kmeans`: bits per index, 1…8.
    public var bits: Int?
    /// `svd` (and `ecq` of a split): the largest fraction of the parameters kept, 0 < ratio < 1.
    public var ratio: Double?
    /// `ecq`: λ, what a bit is worth (`EntropyQuantizeOptions.lambda`).
    public var lambda: Double?

    public init(sparsity: Double = 0, kind: Kind, bits: Int? = nil, ratio: Double? = nil, lambda: Double? = nil) {
        self.sparsity = sparsity
        self.kind = kind
        self.bits = bits
        self.ratio = ratio
        self.lambda = lambda
    }

    /// The setting that leaves the layer as it is.
    public static let keep = LayerSetting(kind: .float32)

    /// Whether the setting changes nothing.
    public var isKeep: Bool { sparsity == 0 && kind == .float32 }

    /// `keep`, `prune0.8`, `int8`, `prune0.9+kmeans3`, `svd0.25`: what `init(parsing:)` reads.
    public var description: String {
        let encoding: String?
        switch kind {
        case .float32: encoding = nil
        case .fp16, .int8, .int4: encoding = kind.rawValue
        case .kmeans: encoding = "kmeans\(bits ?? 0)"
        case .svd: encoding = "svd\(ratio ?? 0)"
        case .ecq: encoding = (ratio.map { "svd\($0)+" } ?? "") + "ecq\(lambda ?? 0)"
        }
        let prune = sparsity > 0 ? "prune\(sparsity)" : nil
        let parts = [prune, encoding].compactMap { $0 }
        return parts.isEmpty ? "keep" : parts.joined(separator: "+")
    }

    /// Reads one setting: `keep`, or `pruneS` and/or one of `fp16`, `int8`, `int4`, `kmeansB`, `svdR`,
    /// `ecqL` joined by `+` (`prune0.8+kmeans3`); `svdR+ecqL` quantizes the factors of a whitened split.
    /// Throws `PassError(.invalidRecipe)` naming the part.
    public init(parsing text: String) throws {
        let spec = text.trimmingWhitespace.lowercased()
        func bad(_ why: String) -> PassError {
            PassError(
                .invalidRecipe, "setting `\(text)`: \(why) (settings are keep, pruneS, fp16, int8, int4, kmeansB, svdR, ecqL, svdR+ecqL, or pruneS+ENCODING)")
        }
        self.init(kind: .float32)
        if spec == "keep" { return }
        var encodings = 0
        for part in spec.split(separator: "+", omittingEmptySubsequences: false).map(String.init) {
            if part.hasPrefix("prune") {
                guard sparsity == 0, let value = Double(part.dropFirst(5)), value > 0, value < 1 else {
                    throw bad("`\(part)`: one prune with a sparsity between 0 and 1")
                }
                sparsity = value
                continue
            }
            encodings += 1
            if part.hasPrefix("ecq"), encodings == 2, kind == .svd {
                // svdR+ecqL: the factors of the split, quantized.
                guard let value = Double(part.dropFirst(3)), value > 0, value <= 1 else { throw bad("`\(part)`: the ecq lambda must be in (0, 1]") }
                kind = .ecq
                lambda = value
                continue
            }
            guard encodings == 1 else { throw bad("one encoding only (or svdR+ecqL)") }
            switch part {
            case "fp16": kind = .fp16
            case "int8": kind = .int8
            case "int4": kind = .int4
            case _ where part.hasPrefix("kmeans"):
                guard let value = Int(part.dropFirst(6)), (1...8).contains(value) else { throw bad("`\(part)`: k-means bits must be 1…8") }
                kind = .kmeans
                bits = value
            case _ where part.hasPrefix("svd"):
                guard let value = Double(part.dropFirst(3)), value > 0, value < 1 else { throw bad("`\(part)`: the svd ratio must be between 0 and 1") }
                kind = .svd
                ratio = value
            case _ where part.hasPrefix("ecq"):
                guard let value = Double(part.dropFirst(3)), value > 0, value <= 1 else { throw bad("`\(part)`: the ecq lambda must be in (0, 1]") }
                kind = .ecq
                lambda = value
            default: throw bad("`\(part)` is not a setting")
            }
        }
        if ratio != nil, sparsity > 0 { throw bad("svd factors a dense weight; it does not follow prune") }
    }

    /// Reads a comma-separated list of settings (`int8,int4,prune0.8+kmeans3`).
    public static func list(parsing text: String) throws -> [LayerSetting] {
        let settings = try text.split(separator: ",").map { try LayerSetting(parsing: String($0)) }
        guard !settings.isEmpty else { throw PassError(.invalidRecipe, "settings: the list is empty") }
        return settings
    }

    /// The settings `pith sensitivity` tries on each layer by default: each kind of compression alone
    /// at several strengths.
    public static let sensitivityDefaults: [LayerSetting] =
        [LayerSetting(kind: .fp16), LayerSetting(kind: .int8), LayerSetting(kind: .int4)]
        + (2...6).map { LayerSetting(kind: .kmeans, bits: $0) }
        + [0.5, 0.7, 0.8, 0.9, 0.95].map { LayerSetting(sparsity: $0, kind: .float32) }
        + [0.5, 0.25, 0.125].map { LayerSetting(kind: .svd, ratio: $0) }
        + [0.002, 0.005, 0.01, 0.02].map { LayerSetting(kind: .ecq, lambda: $0) }
        + [0.3].map { LayerSetting(kind: .ecq, ratio: $0, lambda: 0.01) }

    /// The settings `pith compress --auto` chooses among for each layer: every sparsity step with every
    /// value encoding (pruning is what makes large layers small; fewer bits what makes the rest small).
    public static let searchDefaults: [LayerSetting] = {
        let encodings = [LayerSetting(kind: .int8), LayerSetting(kind: .int4)] + (2...6).map { LayerSetting(kind: .kmeans, bits: $0) }
        var settings = [LayerSetting.keep, LayerSetting(kind: .fp16)]
        for sparsity in [0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.97] {
            for var encoding in encodings {
                encoding.sparsity = sparsity
                settings.append(encoding)
            }
        }
        // Entropy-constrained quantization, of the weight and of the factors of whitened splits.
        let lambdas = [0.001, 0.002, 0.005, 0.01, 0.02, 0.04]
        settings += lambdas.map { LayerSetting(kind: .ecq, lambda: $0) }
        for ratio in [0.3, 0.4, 0.5] {
            settings += lambdas.dropFirst().dropLast().map { LayerSetting(kind: .ecq, ratio: ratio, lambda: $0) }
        }
        return settings
    }()

    /// The prune step of the setting for tensor `name`, if it prunes.
    func pruneStep(_ name: String) -> Recipe.Step? {
        guard sparsity > 0 else { return nil }
        return Recipe.Step(
            select: TensorSelector(names: [name]), prune: PruneOptions(sparsity: sparsity, scope: .tensor, method: .obs, mask: .saliency))
    }

    /// The steps that encode the values of tensor `name` (none for `keep` and plain pruning): one, or
    /// for `svdR+ecqL` the whitened split and then the quantization of its factors.
    func encodingSteps(_ name: String) -> [Recipe.Step] {
        let select = TensorSelector(names: [name])
        switch kind {
        case .float32: return []
        case .fp16: return [Recipe.Step(select: select, quantize: QuantizeOptions(format: .fp16))]
        case .int8: return [Recipe.Step(select: select, quantize: QuantizeOptions(format: .int8, granularity: .channel, rounding: .gptq))]
        case .int4: return [Recipe.Step(select: select, quantize: QuantizeOptions(format: .int4, granularity: .channel, rounding: .gptq))]
        case .kmeans: return [Recipe.Step(select: select, cluster: ClusterOptions(bits: bits ?? 8, assign: .gptq, weighting: .hessian))]
        case .svd: return [Recipe.Step(select: select, factorize: FactorizeOptions(method: .svd, ratio: ratio))]
        case .ecq:
            let quantize = Recipe.Step(select: select, entropyQuantize: EntropyQuantizeOptions(lambda: lambda ?? 0.01))
            guard let ratio else { return [quantize] }
            return [Recipe.Step(select: select, factorize: FactorizeOptions(method: .svd, ratio: ratio, whiten: true)), quantize]
        }
    }

    /// Whether the setting factorizes the weight first (and does not apply when that would not be smaller).
    var factorizes: Bool { kind == .svd || (kind == .ecq && ratio != nil) }

    /// The recipe that gives each tensor its setting: every prune step (graph order), then every
    /// encoding step, then bias correction of every changed layer. Each layer is calibrated on the
    /// model as the steps before it left it, so the layers compensate for each other's losses. Empty
    /// when every setting is `keep`.
    public static func recipe(_ choices: [(tensor: String, setting: LayerSetting)], seed: UInt64, damp: Double?) -> Recipe {
        var steps = choices.compactMap { $0.setting.pruneStep($0.tensor) }
        steps += choices.flatMap { $0.setting.encodingSteps($0.tensor) }
        let changed = choices.filter { !$0.setting.isKeep }.map(\.tensor)
        if !changed.isEmpty { steps.append(Recipe.Step(select: TensorSelector(names: changed), biasCorrection: BiasCorrectionOptions())) }
        return Recipe(seed: seed, steps: steps, damp: damp)
    }
}

/// A weight the data-aware passes can calibrate: the layer whose setting sensitivity analysis and
/// `--auto` choose.
public struct CalibratedLayer: Sendable {
    public var tensor: String
    /// The node (or `op#index`) and its operator.
    public var layer: String
    public var op: String
    public var elements: Int
    /// The layer's bias, when bias correction can change one.
    public var bias: String?
    let id: TensorID
}

/// One setting measured on one layer, the rest of the model left as it is.
public struct LayerCandidate: Sendable {
    public var setting: LayerSetting
    /// The weight in its final storage and, when bias correction changed it, the layer's bias.
    public var tensors: [Tensor]
    /// The layer output error E‖(W − Ŵ)x + Δb‖² / E‖Wx‖² on the calibration data, x the original
    /// model's input to the layer (see `LayerError`).
    public var proxy: Double
    /// The weight's stored bytes before entropy coding.
    public var storedBytes: Int
}

/// Every setting measured on every layer alone: what `pith sensitivity` tabulates and `--auto` chooses from.
public enum LayerCandidates {
    /// The weights `selector` picks that the data-aware passes can calibrate, in graph order, and the
    /// others with the reason.
    public static func layers(
        of model: Model, selector: TensorSelector = TensorSelector()
    ) -> (layers: [CalibratedLayer], others: [(tensor: String, reason: String)]) {
        let run = CompressionRun(model: model, seed: 0)
        let ids = model.tensors.indices.filter { selector.matches(model.tensors[$0], role: run.roles[$0]) }
        let (geometries, others) = run.calibratedLayers(ids)
        let layers = geometries.map { g in
            CalibratedLayer(
                tensor: model.tensors[g.tensor].name, layer: g.layer, op: g.op, elements: model.tensors[g.tensor].count,
                bias: g.bias.map { model.tensors[$0].name }, id: g.tensor)
        }
        return (layers, others.map { (model.tensors[$0.0].name, $0.1) })
    }

    /// Measures each of `settings` on each of `layers`, one layer compressed at a time: OBS pruning is
    /// done once per sparsity, and the whitened split once per ratio, and shared by the encodings that
    /// follow it. A setting that does not apply
    /// to a layer (a factorization that would not be smaller) gives nil. `progress(layer, done, total)`
    /// is called after each layer.
    public static func measure(
        _ model: Model, layers: [CalibratedLayer], settings: [LayerSetting], calibration: any CalibrationSource, seed: UInt64 = 0, damp: Double? = nil,
        progress: ((_ layer: CalibratedLayer, _ done: Int, _ total: Int) -> Void)? = nil
    ) throws -> [[LayerCandidate?]] {
        var base = CompressionRun(model: model, seed: seed)
        base.calibration = calibration
        base.damp = damp ?? ErrorFeedback.defaultDamp
        var result: [[LayerCandidate?]] = []
        for (number, layer) in layers.enumerated() {
            guard case .success(let geometry) = LayerGeometry.make(layer.id, in: base) else {
                preconditionFailure("LayerCandidates.measure: `\(layer.tensor)` came from `layers(of:)`, which keeps calibrated layers only")
            }
            let statistics = try base.statistics(geometry)
            var row = [LayerCandidate?](repeating: nil, count: settings.count)
            var pruned: [Double: CompressionRun] = [:]
            var split: [Double: CompressionRun] = [:]
            for (index, setting) in settings.enumerated() {
                if setting.isKeep {
                    row[index] = LayerCandidate(
                        setting: setting, tensors: [model.tensors[layer.id]], proxy: 0, storedBytes: model.tensors[layer.id].storedBytes)
                    continue
                }
                var run: CompressionRun
                if let done = pruned[setting.sparsity] {
                    run = done
                } else {
                    run = base
                    if let step = setting.pruneStep(layer.tensor) { try step.pass!.run(selecting: step.select!, in: &run, step: 1) }
                    pruned[setting.sparsity] = run
                }
                var steps = setting.encodingSteps(layer.tensor)
                if setting.kind == .ecq, let ratio = setting.ratio {
                    // The whitened split of this ratio, once.
                    if let done = split[ratio] {
                        run = done
                    } else {
                        try steps[0].pass!.run(selecting: steps[0].select!, in: &run, step: 2)
                        split[ratio] = run
                    }
                    steps.removeFirst()
                }
                for step in steps { try step.pass!.run(selecting: step.select!, in: &run, step: 2) }
                guard let state = run.working[layer.id], !setting.factorizes || state.factored != nil else { continue }
                try BiasCorrectionOptions().run(selecting: TensorSelector(names: [layer.tensor]), in: &run, step: 3)
                run.settleStorage()
                let proxy = run.layerError(geometry, statistics, approximation: geometry.layerForm(run.working[layer.id]!.values))
                var tensors = [run.model.tensors[layer.id]]
                if let bias = geometry.bias, run.working[bias] != nil { tensors.append(run.model.tensors[bias]) }
                row[index] = LayerCandidate(setting: setting, tensors: tensors, proxy: proxy, storedBytes: run.model.tensors[layer.id].storedBytes)
            }
            result.append(row)
            progress?(layer, number + 1, layers.count)
        }
        return result
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var s = Substring(self)
        while let first = s.first, first.isWhitespace { s = s.dropFirst() }
        while let last = s.last, last.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
