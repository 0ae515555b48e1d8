/// A list of passes with the tensors each applies to: what `pith compress` runs.
/// Written as YAML (see docs/recipes.md) or built from command-line flags.
///
/// Each action's options type lives in its pass's file (`PruneOptions` in Pruning.swift, …);
/// the recipe holds the steps, decodes them and dispatches their validation.
public struct Recipe: Sendable, Codable, Equatable {
    /// Seed of every random choice (Forgy and k-means++ initialisation): same seed, same output.
    public var seed: UInt64
    public var steps: [Step]
    /// The data-aware passes' damping: λ = damp · mean(diag H) is added to each layer's H (default 0.01).
    public var damp: Double?

    public init(seed: UInt64 = 0, steps: [Step], damp: Double? = nil) {
        self.seed = seed
        self.steps = steps
        self.damp = damp
    }

    enum CodingKeys: String, CodingKey { case seed, steps = "passes", damp }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        seed = try container.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
        steps = try container.decode([Step].self, forKey: .steps)
        damp = try container.decodeIfPresent(Double.self, forKey: .damp)
    }

    /// Whether a step runs the model on calibration data (`CompressionPass.isDataAware`).
    public var isDataAware: Bool { steps.contains { $0.pass?.isDataAware == true } }

    /// One pass and its selection. Exactly one action is set.
    public struct Step: Sendable, Codable, Equatable {
        public var select: TensorSelector?
        public var prune: PruneOptions?
        public var structured: StructuredOptions?
        public var cluster: ClusterOptions?
        public var quantize: QuantizeOptions?
        public var encode: EncodeOptions?
        public var factorize: FactorizeOptions?
        public var refit: RefitOptions?
        public var biasCorrection: BiasCorrectionOptions?
        public var entropyQuantize: EntropyQuantizeOptions?

        enum CodingKeys: String, CodingKey {
            case select, prune, structured, cluster, quantize, encode, factorize, refit
            case biasCorrection = "bias_correction"
            case entropyQuantize = "entropy_quantize"
        }

        public init(
            select: TensorSelector? = nil, prune: PruneOptions? = nil, structured: StructuredOptions? = nil,
            cluster: ClusterOptions? = nil, quantize: QuantizeOptions? = nil, encode: EncodeOptions? = nil,
            factorize: FactorizeOptions? = nil, refit: RefitOptions? = nil, biasCorrection: BiasCorrectionOptions? = nil,
            entropyQuantize: EntropyQuantizeOptions? = nil
        ) {
            self.entropyQuantize = entropyQuantize
            self.refit = refit
            self.biasCorrection = biasCorrection
            self.select = select
            self.prune = prune
            self.structured = structured
            self.cluster = cluster
            self.quantize = quantize
            self.encode = encode
            self.factorize = factorize
        }

        /// The name of the step's action, for reports.
        public var action: String { actions.first.map { type(of: $0).action } ?? "none" }

        /// The step's pass; nil unless exactly one action is set.
        var pass: (any CompressionPass)? { actions.count == 1 ? actions[0] : nil }

        /// Every action set, in a fixed order: a valid step has exactly one.
        var actions: [any CompressionPass] {
            let all: [(any CompressionPass)?] = [prune, structured, cluster, quantize, encode, factorize, refit, biasCorrection, entropyQuantize]
            return all.compactMap { $0 }
        }
    }

    /// Checks every option's range; throws naming the step and field. A step is named by its
    /// entry in `labels` when there is one (the command-line flag it came from, `--cluster 12`), else
    /// as `recipe pass N`.
    public func validate(labels: [String] = []) throws {
        guard !steps.isEmpty else { throw PassError(.invalidRecipe, "recipe: `passes` is empty") }
        for (index, step) in steps.enumerated() {
            let label = index < labels.count ? labels[index] : "recipe pass \(index + 1)"
            guard let pass = step.pass else {
                throw PassError(
                    .invalidRecipe,
                    "\(label): needs exactly one of prune, structured, cluster, quantize, entropy_quantize, encode, factorize, refit, bias_correction; found \(step.actions.count)"
                )
            }
            try pass.validate(label)
        }
        if let damp, !(damp > 0 && damp <= 10) { throw PassError(.invalidRecipe, "recipe: damp must be in (0, 10], got \(damp)") }
    }
}
