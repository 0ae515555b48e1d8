import Foundation
public import PithIR

/// How far compressed weights are from the originals.
public struct WeightError: Sendable, Codable, Equatable {
    public var maxAbs: Double
    public var rmse: Double
    /// Signal-to-noise ratio 10·log10(Σx² / Σ(x − x̂)²) in dB; nil when it is infinite (no error)
    /// or undefined (an all-zero original).
    public var snrDB: Double?

    /// Compares `approximation` with `original` element by element (same count).
    public init(original: [Float], approximation: [Float]) {
        precondition(original.count == approximation.count, "WeightError: counts differ")
        var sum = Sum()
        sum.add(original[...], approximation[...])
        self = sum.result(count: original.count)
    }

    init(maxAbs: Double, rmse: Double, snrDB: Double?) {
        self.maxAbs = maxAbs
        self.rmse = rmse
        self.snrDB = snrDB
    }

    /// The sums behind a `WeightError`, added to a piece at a time in element order (so the
    /// result is the same as comparing the whole tensors at once).
    struct Sum {
        var maxAbs = 0.0, noise = 0.0, signal = 0.0

        mutating func add(_ original: ArraySlice<Float>, _ approximation: ArraySlice<Float>) {
            precondition(original.count == approximation.count, "WeightError: counts differ")
            for (x, y) in zip(original, approximation) {
                let d = Double(x) - Double(y)
                maxAbs = Swift.max(maxAbs, Swift.abs(d))
                noise += d * d
                signal += Double(x) * Double(x)
            }
        }

        func result(count: Int) -> WeightError {
            WeightError(
                maxAbs: maxAbs, rmse: count == 0 ? 0 : (noise / Double(count)).squareRoot(),
                snrDB: (noise == 0 || signal == 0) ? nil : 10 * log10(signal / noise))
        }
    }
}

/// What `pith compress` did: a row per pass per tensor, the layers it skipped and why, and the
/// final Deep Compression accounting per tensor with totals.
public struct CompressionReport: Sendable, Codable {
    /// One pass applied to one tensor.
    public struct PassRow: Sendable, Codable {
        public var step: Int
        public var action: String
        public var tensor: String
        public var elements: Int
        /// Nonzero elements after the pass.
        public var kept: Int
        /// Storage bits per element after the pass, before sparse encoding and entropy coding.
        public var bitsPerWeight: Double
        public var bytesBefore: Int
        public var bytesAfter: Int
        /// Against the tensor as it was before any pass; nil for structured pruning, which
        /// changes shapes (its rows say what it removed instead).
        public var error: WeightError?
        /// Pass-specific facts: k-means iterations and objective, quantization scale, …
        public var detail: String
        /// Data-aware passes: the layer output error before, after the data-free twin, and after.
        public var layerError: LayerError? = nil
    }

    /// The data the data-aware passes ran the model on.
    public struct CalibrationInfo: Sendable, Codable {
        public var data: String
        public var samples: Int
        /// The damping added to each layer's H, as a fraction of the mean of its diagonal.
        public var damp: Double
    }

    /// A tensor or layer a pass was asked to touch but did not, and why.
    public struct Skip: Sendable, Codable {
        public var step: Int
        public var action: String
        public var target: String
        public var reason: String
    }

    /// A tensor no pass changed, and why: its role (a bias, a normalization parameter, a shape
    /// constant), its type or size, or a selection that names other tensors.
    public struct Untouched: Sendable, Codable {
        public var tensor: String
        /// `weight`, `bias`, `normalization`, `embedding`, `shape`, `other` or `unknown`.
        public var role: String
        public var reason: String
    }

    /// The final storage of one tensor: the columns of Deep Compression's Table 2.
    public struct TensorRow: Sendable, Codable {
        public var tensor: String
        public var layer: String
        public var op: String
        /// The tensor's role (`TensorRole.Kind`): `weight`, `bias`, …
        public var role: String
        public var shape: [Int]
        public var elements: Int
        public var kept: Int
        /// `kept / elements`.
        public var keptFraction: Double
        /// How the tensor is stored: `dense float32`, `csr(5) + codebook(6)`, …
        public var encoding: String
        /// Bits per stored weight (codebook index, quantized code or dense value).
        public var weightBits: Int
        /// Gap bits per stored entry; 0 when not sparse.
        public var indexBits: Int
        public var fillers: Int
        public var bits: StorageBits
        public var originalBytes: Int
        public var bytes: Int
        public var error: WeightError?
    }

    public struct Totals: Sendable, Codable {
        public var tensors: Int
        public var compressedTensors: Int
        public var elements: Int
        public var kept: Int
        public var originalBytes: Int
        public var bytes: Int
        /// originalBytes / bytes.
        public var ratio: Double
    }

    /// One factorized weight: what it became and what that costs and saves.
    public struct FactorizationRow: Sendable, Codable {
        public var tensor: String
        public var layer: String
        /// `svd`, `tt`, `circulant`, `separable`.
        public var method: String
        /// The rank, the TT ranks, or the separable terms.
        public var ranks: [Int]
        /// TT row and column factors; empty otherwise.
        public var rowFactors: [Int]
        public var columnFactors: [Int]
        public var parametersBefore: Int
        public var parametersAfter: Int
        /// Multiply-adds per input vector (dense layers) or per output position (convolutions) of
        /// the factored form: two products for a split, the core chain of a tensor train, the three
        /// 1-D stages of separable filters; a circulant matrix is counted as a dense product (no FFT).
        public var multiplyAddsBefore: Int
        public var multiplyAddsAfter: Int
        /// ‖W − Ŵ‖_F / ‖W‖_F.
        public var relativeError: Double
        /// The randomized truncated SVD was used instead of a full one.
        public var randomized: Bool
    }

    public var seed: UInt64
    /// The calibration data of the data-aware passes (file and samples); nil without.
    public var calibration: CalibrationInfo? = nil
    public var passes: [PassRow]
    public var factorizations: [FactorizationRow] = []
    public var skipped: [Skip]
    /// Every tensor a pass changed, in model order.
    public var tensors: [TensorRow]
    /// Every other tensor, with the reason it was left alone.
    public var untouched: [Untouched] = []
    /// Over every tensor of the model, changed or not.
    public var totals: Totals
}
