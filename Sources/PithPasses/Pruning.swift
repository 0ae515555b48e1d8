import PithIR
import PithLinearAlgebra

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

    public enum Method: String, Sendable, Codable, CaseIterable {
        /// The pruned weights become zero; the others stay as they are.
        case magnitude
        /// Optimal Brain Surgeon as SparseGPT sweeps it (Frantar and Alistarh 2023): the surviving
        /// weights of each layer are updated to make up for the pruned ones on the calibration data.
        /// Data-aware.
        case obs
    }

    /// Which weights `obs` prunes (as many as `sparsity`, `threshold` or `quality` give each tensor).
    public enum Mask: String, Sendable, Codable, CaseIterable {
        /// The smallest |w|: the data-free mask, exactly.
        case magnitude
        /// The smallest OBS saliency w² / [H⁻¹]ᵢᵢ (the output error removing the weight alone costs).
        case saliency
    }

    public var method: Method?
    public var mask: Mask?

    public init(
        sparsity: Double? = nil, scope: Scope? = nil, threshold: Double? = nil, quality: Double? = nil, method: Method? = nil, mask: Mask? = nil
    ) {
        self.method = method
        self.mask = mask
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
        if mask != nil, method != .obs { throw PassError(.invalidRecipe, "\(label): prune mask applies to method obs only") }
    }

    var isDataAware: Bool { method == .obs }
}

extension PruneOptions: CompressionPass {
    static let action = "prune"

    func run(selecting selector: TensorSelector, in run: inout CompressionRun, step: Int) throws {
        let ids = run.select(selector, step: step, action: Self.action)
        var states = [Working]()
        for id in ids {
            let s = run.state(id)
            if s.codebook != nil || s.quantized != nil || s.factored != nil {
                throw PassError(.notApplicable, "tensor `\(run.model.tensors[id].name)`: prune runs before cluster, quantize and factorize, not after")
            }
            states.append(s)
        }
        let before = ids.map { run.bytesNow($0) }
        let details = Self.prune(&states, options: self)
        if method == .obs {
            try OBSPruning.run(ids, magnitude: states, details: details, before: before, options: self, in: &run, step: step)
            return
        }
        for (i, id) in ids.enumerated() {
            run.working[id] = states[i]
            run.record(step: step, action: Self.action, id: id, before: before[i], after: states[i], detail: details[i])
        }
    }

    /// The data-free pruning of `states`, in place; the detail of each.
    static func prune(_ states: inout [Working], options: PruneOptions) -> [String] {
        let sparsity = options.sparsity, scope = options.scope
        var details = [String](repeating: "", count: states.count)
        if let sparsity, (scope ?? .global) == .global {
            let threshold = Pruning.pruneGlobally(&states, sparsity: sparsity)
            details = states.map { _ in "global threshold |w| ≤ \(threshold)" }
        } else {
            for i in states.indices {
                let threshold: Float
                if let sparsity {
                    threshold = Pruning.pruneToSparsity(&states[i].values, sparsity: sparsity)
                } else if let absolute = options.threshold {
                    threshold = Float(absolute)
                    Pruning.pruneBelow(&states[i].values, threshold: threshold)
                } else {
                    threshold = Float(options.quality! * Pruning.standardDeviation(states[i].values))
                    Pruning.pruneBelow(&states[i].values, threshold: threshold)
                }
                details[i] = "threshold |w| \(sparsity == nil ? "<" : "≤") \(threshold)"
            }
        }
        return details
    }
}

/// Magnitude pruning kernels: zero the smallest weights.
enum Pruning {
    /// Zeros exactly `round(sparsity · N)` of the `N` weights across all `states` — the smallest
    /// in magnitude, ties broken by position — so one threshold serves every tensor.
    /// Returns the threshold magnitude (the largest pruned).
    static func pruneGlobally(_ states: inout [Working], sparsity: Double) -> Float {
        let total = states.reduce(0) { $0 + $1.values.count }
        let k = Int((sparsity * Double(total)).rounded())
        guard k > 0 else { return 0 }
        let (threshold, below) = kthSmallestMagnitude(states, k)  // below: strictly smaller, all pruned
        var ties = k - below  // this many of the elements equal to the threshold, in order
        for i in states.indices {
            for j in states[i].values.indices {
                let m = Swift.abs(states[i].values[j])
                if m < threshold { states[i].values[j] = 0 } else if m == threshold, ties > 0 { states[i].values[j] = 0; ties -= 1 }
            }
        }
        return threshold
    }

    /// The `k`-th smallest |w| over every state's values (what sorting all the magnitudes would
    /// put at index k − 1) and how many magnitudes are strictly smaller, found without a list of
    /// the magnitudes: the bits of a non-negative float order as its value, so two passes of
    /// counts (the high 16 bits, then the low 16 bits within the bucket that holds rank k) pick it.
    static func kthSmallestMagnitude(_ states: [Working], _ k: Int) -> (threshold: Float, below: Int) {
        func select(_ counts: [Int], from start: Int) -> (bucket: Int, before: Int) {
            var before = start, bucket = 0
            while before + counts[bucket] < k {
                before += counts[bucket]
                bucket += 1
            }
            return (bucket, before)
        }
        var high = [Int](repeating: 0, count: 1 << 16)
        for s in states {
            for v in s.values { high[Int(Swift.abs(v).bitPattern >> 16)] += 1 }
        }
        let (top, before) = select(high, from: 0)
        var low = [Int](repeating: 0, count: 1 << 16)
        for s in states {
            for v in s.values {
                let bits = Swift.abs(v).bitPattern
                if Int(bits >> 16) == top { low[Int(bits & 0xFFFF)] += 1 }
            }
        }
        let (bottom, below) = select(low, from: before)
        return (Float(bitPattern: UInt32(top) << 16 | UInt32(bottom)), below)
    }

    /// Zeros exactly `round(sparsity · n)` of one tensor's weights. Returns the threshold.
    static func pruneToSparsity(_ values: inout [Float], sparsity: Double) -> Float {
        var states = [Working(values: values)]
        let threshold = pruneGlobally(&states, sparsity: sparsity)
        values = states[0].values
        return threshold
    }

    /// Zeros every weight with `|w| < threshold`.
    static func pruneBelow(_ values: inout [Float], threshold: Float) {
        for i in values.indices where Swift.abs(values[i]) < threshold { values[i] = 0 }
    }

    static func standardDeviation(_ values: [Float]) -> Double {
        guard !values.isEmpty else { return 0 }
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
        return variance.squareRoot()
    }

    /// First index of `sorted` whose value is not less than `value`.
    static func lowerBound(_ sorted: [Float], _ value: Float) -> Int {
        var low = 0, high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
