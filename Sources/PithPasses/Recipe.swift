public import PithLinearAlgebra

/// A list of passes with the tensors each applies to: what `pith compress` runs.
/// Written as YAML (see docs/recipes.md) or built from command-line flags.
public struct Recipe: Sendable, Codable, Equatable {
    /// Seed of every random choice (Forgy and k-means++ initialisation): same seed, same output.
    public var seed: UInt64
    public var steps: [Step]

    public init(seed: UInt64 = 0, steps: [Step]) {
        self.seed = seed
        self.steps = steps
    }

    enum CodingKeys: String, CodingKey { case seed, steps = "passes" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        seed = try container.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
        steps = try container.decode([Step].self, forKey: .steps)
    }

    /// One pass and its selection. Exactly one action is set.
    public struct Step: Sendable, Codable, Equatable {
        public var select: TensorSelector?
        public var prune: PruneOptions?
        public var structured: StructuredOptions?
        public var cluster: ClusterOptions?
        public var quantize: QuantizeOptions?
        public var encode: EncodeOptions?
        public var factorize: FactorizeOptions?

        public init(select: TensorSelector? = nil, prune: PruneOptions? = nil, structured: StructuredOptions? = nil,
                    cluster: ClusterOptions? = nil, quantize: QuantizeOptions? = nil, encode: EncodeOptions? = nil,
                    factorize: FactorizeOptions? = nil) {
            self.select = select
            self.prune = prune
            self.structured = structured
            self.cluster = cluster
            self.quantize = quantize
            self.encode = encode
            self.factorize = factorize
        }

        /// The name of the step's action, for reports.
        public var action: String {
            if prune != nil { return "prune" }
            if structured != nil { return "structured" }
            if cluster != nil { return "cluster" }
            if quantize != nil { return "quantize" }
            if encode != nil { return "encode" }
            if factorize != nil { return "factorize" }
            return "none"
        }

        var actionCount: Int {
            [prune != nil, structured != nil, cluster != nil, quantize != nil, encode != nil, factorize != nil].filter { $0 }.count
        }
    }

    /// Checks every option's range; throws naming the step and field.
    public func validate() throws {
        guard !steps.isEmpty else { throw PassError(.invalidRecipe, "recipe: `passes` is empty") }
        for (index, step) in steps.enumerated() {
            let label = "recipe pass \(index + 1)"
            guard step.actionCount == 1 else {
                throw PassError(.invalidRecipe, "\(label): needs exactly one of prune, structured, cluster, quantize, encode, factorize; found \(step.actionCount)")
            }
            if let prune = step.prune { try prune.validate(label) }
            if let structured = step.structured { try structured.validate(label) }
            if let cluster = step.cluster { try cluster.validate(label) }
            if let quantize = step.quantize { try quantize.validate(label) }
            if let encode = step.encode { try encode.validate(label) }
            if let factorize = step.factorize { try factorize.validate(label) }
        }
    }
}

/// Magnitude pruning: the smallest weights become exactly zero.
public struct PruneOptions: Sendable, Codable, Equatable {
    public enum Scope: String, Sendable, Codable, CaseIterable {
        /// One threshold across every selected tensor (measured on LeNet: far better than per tensor).
        case global
        /// Each tensor pruned to the sparsity on its own.
        case tensor
    }

    /// Fraction of the selected weights to zero, 0…1.
    public var sparsity: Double?
    public var scope: Scope?
    /// Zero every weight whose magnitude is below this.
    public var threshold: Double?
    /// Han et al.: per tensor, zero weights below `quality × std(tensor)`.
    public var quality: Double?

    public init(sparsity: Double? = nil, scope: Scope? = nil, threshold: Double? = nil, quality: Double? = nil) {
        self.sparsity = sparsity
        self.scope = scope
        self.threshold = threshold
        self.quality = quality
    }

    func validate(_ label: String) throws {
        let set = [sparsity != nil, threshold != nil, quality != nil].filter { $0 }.count
        guard set == 1 else { throw PassError(.invalidRecipe, "\(label): prune needs exactly one of sparsity, threshold, quality") }
        if let sparsity, !(0...1).contains(sparsity) { throw PassError(.invalidRecipe, "\(label): prune sparsity must be in 0…1, got \(sparsity)") }
        if let threshold, !(threshold >= 0) { throw PassError(.invalidRecipe, "\(label): prune threshold must be ≥ 0, got \(threshold)") }
        if let quality, !(quality >= 0) { throw PassError(.invalidRecipe, "\(label): prune quality must be ≥ 0, got \(quality)") }
        if scope != nil, sparsity == nil { throw PassError(.invalidRecipe, "\(label): prune scope applies to sparsity only") }
    }
}

/// Structured pruning: whole output neurons (dense) or filters (conv) removed, and the consumer
/// layer's matching input columns with them, so the model stays valid and smaller.
public struct StructuredOptions: Sendable, Codable, Equatable {
    public enum Criterion: String, Sendable, Codable, CaseIterable {
        /// Remove the neurons whose incoming weights have the smallest L1 norm.
        case l1
        /// … the smallest L2 norm.
        case l2
        /// Merge near-duplicate neurons into their twin (Srinivas & Babu 2015, data-free): the
        /// removed neuron's outgoing weights are added to its twin's. Needs a ReLU between the layers.
        case merge
    }

    /// Fraction of each selected layer's neurons to remove, 0…1 (exclusive of 1).
    public var fraction: Double
    public var criterion: Criterion?

    public init(fraction: Double, criterion: Criterion? = nil) {
        self.fraction = fraction
        self.criterion = criterion
    }

    func validate(_ label: String) throws {
        guard fraction >= 0, fraction < 1 else { throw PassError(.invalidRecipe, "\(label): structured fraction must be in [0, 1), got \(fraction)") }
    }
}

/// How per-channel passes slice a tensor: one table for the tensor, or one per output channel (axis 0).
public enum Granularity: String, Sendable, Codable, CaseIterable {
    case tensor
    case channel
}

/// Weight sharing by k-means.
public struct ClusterOptions: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// Lloyd's algorithm from the chosen initialisation.
        case lloyd
        /// The exact optimum by dynamic programming (for tensors where it is affordable).
        case optimal
    }

    /// Bits per index, 1…8: 2^bits centroids (one of them exact zero in a pruned tensor).
    public var bits: Int
    public var initialization: KMeansInit?
    public var granularity: Granularity?
    public var mode: Mode?
    public var iterations: Int?

    public init(bits: Int, initialization: KMeansInit? = nil, granularity: Granularity? = nil, mode: Mode? = nil, iterations: Int? = nil) {
        self.bits = bits
        self.initialization = initialization
        self.granularity = granularity
        self.mode = mode
        self.iterations = iterations
    }

    enum CodingKeys: String, CodingKey { case bits, initialization = "init", granularity, mode, iterations }

    func validate(_ label: String) throws {
        guard (1...8).contains(bits) else { throw PassError(.invalidRecipe, "\(label): cluster bits must be 1…8, got \(bits)") }
        if let iterations, iterations < 1 { throw PassError(.invalidRecipe, "\(label): cluster iterations must be ≥ 1, got \(iterations)") }
    }
}

/// Linear quantization or reduced-precision floats.
public struct QuantizeOptions: Sendable, Codable, Equatable {
    public enum Format: String, Sendable, Codable, CaseIterable {
        case int8, int4, fp16, bf16
    }

    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// `x ≈ scale · q`, scale = max|x| / qmax, codes in [−qmax, qmax]: zero is exact.
        case symmetric
        /// `x ≈ scale · (q − zeroPoint)` over [min, max]: uses every code.
        case affine
        /// The simple scheme x ↦ ⌊128·x/a⌋ with a = max|x|, clipped to [−128, 127] (int8 only;
        /// int4: ⌊8·x/a⌋ in [−8, 7]). Rounding is floor by definition.
        case simple
    }

    /// How a real value becomes a code.
    public enum Rounding: String, Sendable, Codable, CaseIterable {
        /// To nearest, ties to even: error at most half a step inside the clipping range.
        case nearest
        /// Toward −∞: error below one step.
        case floor
    }

    public var format: Format
    public var granularity: Granularity?
    public var mode: Mode?
    public var rounding: Rounding?

    public init(format: Format, granularity: Granularity? = nil, mode: Mode? = nil, rounding: Rounding? = nil) {
        self.format = format
        self.granularity = granularity
        self.mode = mode
        self.rounding = rounding
    }

    func validate(_ label: String) throws {
        if format == .fp16 || format == .bf16 {
            if mode != nil || granularity != nil || rounding != nil {
                throw PassError(.invalidRecipe, "\(label): \(format.rawValue) takes no mode, granularity or rounding (it rounds to nearest even)")
            }
        }
        if mode == .simple, rounding == .nearest {
            throw PassError(.invalidRecipe, "\(label): the simple scheme rounds down by definition; drop `rounding`")
        }
    }
}

/// Sparse (CSR) storage of pruned tensors.
public struct EncodeOptions: Sendable, Codable, Equatable {
    /// Gap bits: `nil` searches 2…8 for the smallest total; a number fixes it (1…16).
    public var indexBits: Int?
    /// Never store selected tensors as CSR, even when that would be smaller.
    public var dense: Bool?

    public init(indexBits: Int? = nil, dense: Bool? = nil) {
        self.indexBits = indexBits
        self.dense = dense
    }

    enum CodingKeys: String, CodingKey { case indexBits = "index_bits", dense }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        dense = try container.decodeIfPresent(Bool.self, forKey: .dense)
        if let number = try? container.decodeIfPresent(Int.self, forKey: .indexBits) {
            indexBits = number
        } else if let text = try container.decodeIfPresent(String.self, forKey: .indexBits), text != "auto" {
            throw DecodingError.dataCorruptedError(forKey: .indexBits, in: container, debugDescription: "index_bits is `auto` or a number, not `\(text)`")
        } else {
            indexBits = nil
        }
    }

    func validate(_ label: String) throws {
        if let indexBits, !(1...16).contains(indexBits) { throw PassError(.invalidRecipe, "\(label): encode index_bits must be 1…16 or auto, got \(indexBits)") }
    }
}

/// Factorization of weights: a low-rank split (SVD), a tensor train, the nearest circulant matrix,
/// or separable (rank-R) convolution filters.
public struct FactorizeOptions: Sendable, Codable, Equatable {
    public enum Method: String, Sendable, Codable, CaseIterable {
        /// W ≈ W₂·W₁ from the truncated SVD (dense matrices and 1×1 convolutions).
        case svd
        /// TT-SVD of a dense matrix as a TT-matrix.
        case tt
        /// The nearest circulant matrix (square dense matrices): one vector.
        case circulant
        /// Each conv filter as a sum of `rank` outer products of 1-D filters (channels, height, width).
        case separable
    }

    public var method: Method?
    /// svd: the rank; separable: the number of terms (default 1).
    public var rank: Int?
    /// svd: keep the smallest rank holding this fraction of Σσ² (0 < energy ≤ 1).
    public var energy: Double?
    /// svd: the rank giving at most this fraction of the original parameters (0 < ratio < 1).
    public var ratio: Double?
    /// tt: cap on every TT rank.
    public var ttRank: Int?
    /// tt: bound on the relative Frobenius error (default 0.1 when no rank cap is given).
    public var ttError: Double?
    /// tt: number of cores (default 3).
    public var cores: Int?

    public init(method: Method? = nil, rank: Int? = nil, energy: Double? = nil, ratio: Double? = nil,
                ttRank: Int? = nil, ttError: Double? = nil, cores: Int? = nil) {
        self.method = method
        self.rank = rank
        self.energy = energy
        self.ratio = ratio
        self.ttRank = ttRank
        self.ttError = ttError
        self.cores = cores
    }

    enum CodingKeys: String, CodingKey {
        case method, rank, energy, ratio, cores
        case ttRank = "tt_rank"
        case ttError = "tt_error"
    }

    func validate(_ label: String) throws {
        let method = self.method ?? .svd
        if method == .svd {
            let set = [rank != nil, energy != nil, ratio != nil].filter { $0 }.count
            guard set == 1 else { throw PassError(.invalidRecipe, "\(label): factorize svd needs exactly one of rank, energy, ratio") }
        }
        if let rank, rank < 1 { throw PassError(.invalidRecipe, "\(label): factorize rank must be ≥ 1, got \(rank)") }
        if let energy, !(energy > 0 && energy <= 1) { throw PassError(.invalidRecipe, "\(label): factorize energy must be in (0, 1], got \(energy)") }
        if let ratio, !(ratio > 0 && ratio < 1) { throw PassError(.invalidRecipe, "\(label): factorize ratio must be in (0, 1), got \(ratio)") }
        if let ttRank, ttRank < 1 { throw PassError(.invalidRecipe, "\(label): factorize tt_rank must be ≥ 1, got \(ttRank)") }
        if let ttError, !(ttError >= 0 && ttError < 1) { throw PassError(.invalidRecipe, "\(label): factorize tt_error must be in [0, 1), got \(ttError)") }
        if let cores, !(2...8).contains(cores) { throw PassError(.invalidRecipe, "\(label): factorize cores must be 2…8, got \(cores)") }
        if method != .svd, energy != nil || ratio != nil { throw PassError(.invalidRecipe, "\(label): energy and ratio apply to factorize svd only") }
        if method != .tt, ttRank != nil || ttError != nil || cores != nil { throw PassError(.invalidRecipe, "\(label): tt_rank, tt_error and cores apply to factorize tt only") }
        if method == .tt || method == .circulant, rank != nil { throw PassError(.invalidRecipe, "\(label): factorize \(method.rawValue) takes no rank (tt: tt_rank)") }
    }
}
