import Foundation
import PithIR
import PithLinearAlgebra

/// Entropy-constrained quantization (`entropy_quantize`): one uniform grid per tensor, and each
/// weight's code chosen by rate and distortion together in the GPTQ sweep, for a container that
/// entropy-codes the codes (Huffman, CSR gaps for the zeros).
public struct EntropyQuantizeOptions: Sendable, Codable, Equatable {
    /// λ, what one bit of code is worth: the layer output error (E‖Wx‖², calibration rows x) that
    /// one bit may cost, as a fraction of the layer's output energy per weight of its original
    /// weight, tr(W H Wᵀ) / (outputs · inputs). Larger: fewer bits, more error. LeNet-300-100 uses
    /// 0.002…0.02.
    public var lambda: Double
    /// Sweeps, each with the code probabilities the previous one chose (default 3).
    public var iterations: Int?

    public init(lambda: Double, iterations: Int? = nil) {
        self.lambda = lambda
        self.iterations = iterations
    }

    func validate(_ label: String) throws {
        guard lambda > 0, lambda <= 1 else { throw PassError(.invalidRecipe, "\(label): entropy_quantize lambda must be in (0, 1], got \(lambda)") }
        if let iterations, !(1...10).contains(iterations) {
            throw PassError(.invalidRecipe, "\(label): entropy_quantize iterations must be 1…10, got \(iterations)")
        }
    }
}

extension EntropyQuantizeOptions: CompressionPass {
    static let action = "entropy_quantize"

    var isDataAware: Bool { true }

    func run(selecting selector: TensorSelector, in run: inout CompressionRun, step: Int) throws {
        try EntropyQuantization.run(self, ids: run.select(selector, step: step, action: Self.action), in: &run, step: step)
    }
}

/// The kernel and driver of `entropy_quantize` (rate-distortion optimised quantization, as video
/// coders round transform coefficients, inside GPTQ's sweep; the idea of ECQ, Becking et al. 2020):
///
/// 1. the grid: codes q ∈ [−127, 127] stand for q·Δ, one step Δ per tensor;
/// 2. the sweep of `ErrorFeedback`: at column j the value v (after the feedback of the columns
///    before it) becomes the code of least g_r·(v − qΔ)² / U[j,j]² + λ·bits(q) among 0, ⌊v/Δ⌋ and
///    ⌊v/Δ⌋ + 1 — the first term is the output error that fixing the weight costs once the later
///    columns make up for it (OBS), weighted by its row's `g_r` (1, or for a factor the weight of
///    its row in the product); bits(q) = −log₂ of the code's share;
/// 3. the shares: first those of rounding to nearest, then those the previous sweep chose;
///    `iterations` sweeps in all, each from the unquantized values.
///
/// λ is absolute (output error per bit): the option's λ times the layer's output energy per weight.
/// The step follows from it, Δ² = λ · mean(U[j,j]²) / (λ₀ · mean(g)), λ₀ = 1/4: a bit is worth a
/// quarter of the error of one step on an average weight, which makes zero a wide dead zone at low
/// rates (a uniform grid is what entropy-coded scalar quantization wants; the dead zone is where it
/// departs at low rate).
///
/// A low-rank split (`factorize: {method: svd, whiten: true}` before it) is quantized factor by
/// factor with the same absolute λ, so that a bit costs the same output error in both: W ≈ A·B with
/// A's columns scaled to unit norm and B's rows scaled to match; first B (rows weighted by
/// ‖A[:,i]‖², exact for the whitened split, whose AᵀA is then the identity), then A refitted
/// to the original layer through B̂ (A = W·H·B̂ᵀ·(B̂·H·B̂ᵀ)⁻¹, least squares) and quantized against
/// H_A = B̂·H·B̂ᵀ. Each factor is stored as codes with its own step (in CSR when that is smaller).
///
/// Pruned weights (exact zeros) stay zero. Layers calibration cannot reach are quantized with H = I
/// (rate-distortion rounding without feedback), and listed; that is also the data-free twin the
/// report compares with (the same grid and λ).
enum EntropyQuantization {
    /// λ₀: bits per squared step at an average weight (see the type's comment).
    static let deadZoneWeight = 0.25
    /// Codes are 8-bit at most: |q| ≤ 127.
    static let maximumCode: Int32 = 127
    /// Relative damping of B̂·H·B̂ᵀ in the refit of A (a row of B̂ may be all zeros).
    static let refitDamp = 1e-6

    static func run(_ options: EntropyQuantizeOptions, ids: [TensorID], in run: inout CompressionRun, step: Int) throws {
        let (layers, others) = run.calibratedLayers(ids)
        for (id, reason) in others {
            run.skipped.append(
                .init(step: step, action: EntropyQuantizeOptions.action, target: run.model.tensors[id].name, reason: "\(reason); quantized with H = I instead"))
        }
        for geometry in layers { try quantize(geometry.tensor, geometry: geometry, options: options, in: &run, step: step) }
        for (id, _) in others { try quantize(id, geometry: nil, options: options, in: &run, step: step) }
    }

    // MARK: Driver

    /// The matrices of one tensor as the kernel sees them: the layer form of a calibrated layer
    /// (outputs × inputs, with H), else the stored form (first dimension × the rest, H = I).
    struct Layout {
        var rows: Int
        var columns: Int
        var geometry: LayerGeometry?
        func matrix(_ stored: [Float]) -> [Float] { geometry?.layerForm(stored) ?? stored }
        func stored(_ matrix: [Float]) -> [Float] { geometry?.storedOrder(matrix) ?? matrix }
    }

    static func quantize(_ id: TensorID, geometry: LayerGeometry?, options: EntropyQuantizeOptions, in run: inout CompressionRun, step: Int) throws {
        var s = run.state(id)
        run.working[id] = s
        let tensor = run.model.tensors[id]
        if s.quantized != nil || s.codebook != nil || s.factored?.encodings != nil {
            throw PassError(.notApplicable, "tensor `\(tensor.name)`: already \(s.codebook != nil ? "clustered" : "quantized"); a tensor is quantized once")
        }
        if let factored = s.factored, !isLowRank(factored) {
            run.skipped.append(
                .init(
                    step: step, action: EntropyQuantizeOptions.action, target: tensor.name,
                    reason: "only low-rank splits are quantized factor by factor, not \(tensor.storageLabel)"))
            return
        }
        let rows = geometry?.outputs ?? tensor.rowCount
        let layout = Layout(rows: rows, columns: rows == 0 ? 0 : tensor.count / rows, geometry: geometry)
        let statistics = try geometry.map { try run.statistics($0) }
        if let geometry, geometry.groups > 1, s.factored != nil {
            throw PassError(.notApplicable, "tensor `\(tensor.name)`: a grouped convolution is not split, so it has no factors to quantize")
        }
        let before = run.bytesNow(id)
        // The absolute λ: the option's λ times the original layer's output energy per weight.
        let original = layout.matrix(run.originals[id]!)
        var energy = 0.0
        if let geometry, let statistics {
            for g in 0..<geometry.groups {
                let r = geometry.rows(ofGroup: g)
                energy += ErrorFeedback.proxy(
                    Array(original[r.lowerBound * layout.columns..<r.upperBound * layout.columns]), rows: r.count, columns: layout.columns,
                    hessian: statistics.hessians[g])
            }
        } else {
            energy = original.reduce(0.0) { $0 + Double($1) * Double($1) }
        }
        let lambda = options.lambda * energy / Double(Swift.max(1, layout.rows * layout.columns))
        let iterations = options.iterations ?? 3
        let startError = geometry.flatMap { g in statistics.map { run.layerError(g, $0, approximation: layout.matrix(s.values)) } }
        var twinValues: [Float]
        var detail: String
        if let factored = s.factored {
            let result = try factors(
                factored, layout: layout, hessian: statistics?.hessians[0], original: original, lambda: lambda, iterations: iterations, damp: run.damp,
                label: geometry?.layer ?? tensor.name)
            s.factored = result.storage
            s.values = result.storage.expand(tensorShape: tensor.shape)
            twinValues = result.twin
            detail = "low-rank factors: B step \(result.steps.b), A step \(result.steps.a) (A refitted); λ \(options.lambda), \(iterations) sweeps"
        } else {
            var w = layout.matrix(s.values)
            let mask = w.map { $0 == 0 }
            let factorList = try geometry.flatMap { g in try statistics.map { try run.inverseFactors(g, $0) } }
            var meanInverse = 1.0
            if let factorList {
                var total = 0.0
                for f in factorList {
                    for j in 0..<layout.columns { total += Double(f.factor[j * layout.columns + j]) * Double(f.factor[j * layout.columns + j]) }
                }
                meanInverse = total / Double(Swift.max(1, factorList.count * layout.columns))
            }
            let delta = Self.step(lambda: lambda, meanInverseDiagonal: meanInverse, meanRowWeight: 1)
            // The data-free twin: the same grid and λ with H = I (no feedback), as uncalibrated layers get.
            var twin = w
            _ = sweep(
                &twin, rows: layout.rows, columns: layout.columns, factor: nil, rowWeights: nil, mask: mask, step: delta, lambda: lambda, iterations: iterations
            )
            twinValues = layout.stored(twin)
            var codes = [Int32](repeating: 0, count: w.count)
            if let geometry, let factorList {
                for g in 0..<geometry.groups {
                    let r = geometry.rows(ofGroup: g), k = layout.columns
                    var part = Array(w[r.lowerBound * k..<r.upperBound * k])
                    let partCodes = sweep(
                        &part, rows: r.count, columns: k, factor: factorList[g].factor, rowWeights: nil, mask: Array(mask[r.lowerBound * k..<r.upperBound * k]),
                        step: delta, lambda: lambda, iterations: iterations)
                    w.replaceSubrange(r.lowerBound * k..<r.upperBound * k, with: part)
                    codes.replaceSubrange(r.lowerBound * k..<r.upperBound * k, with: partCodes)
                }
            } else {
                codes = sweep(
                    &w, rows: layout.rows, columns: layout.columns, factor: nil, rowWeights: nil, mask: mask, step: delta, lambda: lambda,
                    iterations: iterations)
            }
            let storage = Self.storage(codes: layout.storedCodes(codes), step: delta)
            s.quantized = storage
            s.unencoded = s.values
            s.values = GPTQ.decode(.quantized(storage), like: tensor)
            detail =
                "step \(delta) (\(storage.codeBits)-bit codes), λ \(options.lambda), \(iterations) sweeps"
                + (factorList.map { ", damp \($0.map(\.damp).max() ?? run.damp)" } ?? ", H = I")
        }
        run.working[id] = s
        let nonzero = s.values.reduce(0) { $0 + ($1 == 0 ? 0 : 1) }
        run.record(
            step: step, action: EntropyQuantizeOptions.action, id: id, before: before, after: s,
            detail: detail + ", \(nonzero) of \(s.values.count) nonzero")
        if let geometry, let statistics, let startError {
            run.attach(
                LayerError(
                    samples: statistics.samples, rows: statistics.rows, before: startError,
                    dataFree: run.layerError(geometry, statistics, approximation: geometry.layerForm(twinValues)),
                    after: run.layerError(geometry, statistics, approximation: geometry.layerForm(s.values))))
        }
    }

    static func isLowRank(_ factored: FactoredStorage) -> Bool {
        if case .lowRank = factored.method { return true }
        return false
    }

    /// Codes q·Δ with |q| ≤ 127 as symmetric linear codes of the fewest bits (2…8) that hold them.
    static func storage(codes: [Int32], step: Float) -> QuantizedStorage {
        let largest = codes.reduce(Int32(0)) { Swift.max($0, abs($1)) }
        var bits = 2
        while (Int32(1) << (bits - 1)) - 1 < largest { bits += 1 }
        return QuantizedStorage(scheme: .linear(bits: bits, signed: true), scales: [step], zeroPoints: [0], axis: 0, codes: codes)
    }

    /// The step for an absolute λ (see the type's comment).
    static func step(lambda: Double, meanInverseDiagonal: Double, meanRowWeight: Double) -> Float {
        let squared = lambda * meanInverseDiagonal / (deadZoneWeight * meanRowWeight)
        let delta = Float(squared.squareRoot())
        return delta.isFinite && delta > 0 ? delta : 1
    }

    static func code(nearest value: Float, step: Float) -> Int32 {
        Int32(Swift.max(-Float(maximumCode), Swift.min(Float(maximumCode), (value / step).rounded(.toNearestOrEven))))
    }

    // MARK: Low-rank factors

    /// Quantizes W ≈ A·B (the tensor's stored factors) as the type's comment says. `original` is the
    /// layer-form original weight, `hessian` H (nil: I).
    static func factors(
        _ factored: FactoredStorage, layout: Layout, hessian: [Float]?, original: [Float], lambda: Double, iterations: Int, damp: Double, label: String
    ) throws -> (storage: FactoredStorage, twin: [Float], steps: (a: Float, b: Float)) {
        guard case .lowRank(let r) = factored.method else { preconditionFailure("EntropyQuantization.factors: low-rank splits only") }
        let n = layout.rows, k = layout.columns
        let transposed = layout.geometry?.transposed ?? false
        // Layer form: A (n × r), B (r × k). Stored: A·B, or for a transposed layer Bᵀ (k × r) · Aᵀ (r × n).
        var a = transposed ? transpose(factored.factors[1], rows: r, columns: n) : factored.factors[0]
        var b = transposed ? transpose(factored.factors[0], rows: k, columns: r) : factored.factors[1]
        // The scale of each term goes into B: A's columns of unit norm (measured on LeNet-300-100's fc1:
        // about 8% fewer bytes at the same output error than the split's Σ^½ on each side).
        for i in 0..<r {
            var norm: Float = 0
            for row in 0..<n { norm += a[row * r + i] * a[row * r + i] }
            norm = norm.squareRoot()
            guard norm > 0 else { continue }
            for row in 0..<n { a[row * r + i] /= norm }
            for j in 0..<k { b[i * k + j] *= norm }
        }
        // B, each row i weighted by ‖A[:, i]‖² (1, or 0 for a term that vanished).
        var rowWeights = [Float](repeating: 0, count: r)
        for row in 0..<n { for i in 0..<r { rowWeights[i] += a[row * r + i] * a[row * r + i] } }
        let meanWeight = Double(rowWeights.reduce(0, +)) / Double(Swift.max(1, r))
        var factorB: [Float]?, meanB = 1.0
        if let hessian {
            let f = try ErrorFeedback.inverseFactor(hessian, n: k, damp: damp, layer: label)
            factorB = f.factor
            meanB = (0..<k).reduce(0.0) { $0 + Double(f.factor[$1 * k + $1]) * Double(f.factor[$1 * k + $1]) } / Double(Swift.max(1, k))
        }
        let stepB = step(lambda: lambda, meanInverseDiagonal: meanB, meanRowWeight: Swift.max(meanWeight, .leastNonzeroMagnitude))
        // The data-free twin: each factor on its grid with the same λ and H = I, no refit.
        var twinB = b
        _ = sweep(&twinB, rows: r, columns: k, factor: nil, rowWeights: rowWeights, mask: nil, step: stepB, lambda: lambda, iterations: iterations)
        let codesB = sweep(
            &b, rows: r, columns: k, factor: factorB, rowWeights: rowWeights, mask: nil, step: stepB, lambda: lambda, iterations: iterations)
        // A refitted through B̂: A = W·H·B̂ᵀ·(B̂·H·B̂ᵀ)⁻¹; then quantized against H_A = B̂·H·B̂ᵀ.
        let hb = hessian.map { multiply(b, $0, m: r, k: k, n: k) } ?? b  // B̂·H (r × k)
        var gram = multiply(hb, b, m: r, k: k, n: r, transposeB: true)  // B̂·H·B̂ᵀ (r × r)
        let rhs = multiply(original, hb, m: n, k: k, n: r, transposeB: true)  // W·H·B̂ᵀ (n × r)
        // Damped more (ten times, up to four times) when float precision leaves B̂·H·B̂ᵀ not positive
        // definite: terms of B quantized to (nearly) nothing, or nearly dependent ones.
        guard let (inverse, _) = ErrorFeedback.dampedInverse(gram, n: r, damp: refitDamp) else {
            throw PassError(.notApplicable, "layer `\(label)`: the quantized factor B gives a singular B·H·Bᵀ even with damping \(refitDamp * 1e4)")
        }
        var refitted = multiply(rhs, inverse, m: n, k: r, n: r)
        LinearAlgebra.symmetrizeUpper(&gram, n: r)
        let fa = try ErrorFeedback.inverseFactor(gram, n: r, damp: damp, layer: label)
        let meanA = (0..<r).reduce(0.0) { $0 + Double(fa.factor[$1 * r + $1]) * Double(fa.factor[$1 * r + $1]) } / Double(Swift.max(1, r))
        let stepA = step(lambda: lambda, meanInverseDiagonal: meanA, meanRowWeight: 1)
        var twinA = a
        _ = sweep(&twinA, rows: n, columns: r, factor: nil, rowWeights: nil, mask: nil, step: stepA, lambda: lambda, iterations: iterations)
        let codesA = sweep(
            &refitted, rows: n, columns: r, factor: fa.factor, rowWeights: nil, mask: nil, step: stepA, lambda: lambda, iterations: iterations)
        // Back to the stored orientation.
        let storedA = transposed ? transpose(codesA, rows: n, columns: r) : codesA
        let storedB = transposed ? transpose(codesB, rows: r, columns: k) : codesB
        let first = transposed ? storage(codes: storedB, step: stepB) : storage(codes: storedA, step: stepA)
        let second = transposed ? storage(codes: storedA, step: stepA) : storage(codes: storedB, step: stepB)
        let values = [first, second].map { q in q.codes.map { q.scales[0] * Float($0) } }
        let result = FactoredStorage(
            method: factored.method, rows: factored.rows, columns: factored.columns, factors: values, encodings: [.quantized(first), .quantized(second)])
        let twinFactors = transposed ? [transpose(twinB, rows: r, columns: k), transpose(twinA, rows: n, columns: r)] : [twinA, twinB]
        let twin = FactoredStorage(method: factored.method, rows: factored.rows, columns: factored.columns, factors: twinFactors)
        return (result, twin.expand(tensorShape: [factored.rows, factored.columns]), (stepA, stepB))
    }

    static func transpose<T>(_ values: [T], rows: Int, columns: Int) -> [T] {
        guard let first = values.first else { return values }
        var out = [T](repeating: first, count: values.count)
        for i in 0..<rows { for j in 0..<columns { out[j * rows + i] = values[i * columns + j] } }
        return out
    }

    /// Row-major a (m × k) · b (k × n), or · bᵀ when `transposeB` (b is then n × k).
    static func multiply(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int, transposeB: Bool = false) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    LinearAlgebra.gemm(
                        transposeA: false, transposeB: transposeB, m: m, n: n, k: k, pa.baseAddress!, lda: k, pb.baseAddress!, ldb: transposeB ? k : n,
                        pc.baseAddress!, ldc: n)
                }
            }
        }
        return c
    }

    // MARK: Kernel

    /// Quantizes the rows × columns matrix `w` (row-major) in place to multiples of `step` and
    /// returns the codes: `iterations` sweeps (see the type's comment) against `factor` (U with
    /// (H + λI)⁻¹ = UᵀU; nil: H = I, no feedback). `mask` marks weights that stay zero.
    static func sweep(
        _ w: inout [Float], rows: Int, columns k: Int, factor: [Float]?, rowWeights: [Float]?, mask: [Bool]?, step: Float, lambda: Double, iterations: Int
    ) -> [Int32] {
        let start = w
        let inverseDiagonal: [Double] = (0..<k).map { j in
            guard let factor else { return 1 }
            let d = Double(factor[j * k + j])
            return 1 / (d * d)
        }
        var codes = start.map { code(nearest: $0, step: step) }
        if let mask { for i in codes.indices where mask[i] { codes[i] = 0 } }
        let span = Int(2 * maximumCode + 1)
        for _ in 0..<Swift.max(1, iterations) {
            // bits(q) = −log₂ of the code's share; a code not seen costs a little more than the rarest.
            var counts = [Int](repeating: 0, count: span)
            for q in codes { counts[Int(q + maximumCode)] += 1 }
            let total = Double(Swift.max(1, codes.count))
            let unseen = log2(total) + 1
            let bits = counts.map { $0 == 0 ? unseen : -log2(Double($0) / total) }
            var values = start
            let weights = rowWeights
            let choose: @Sendable (Int, Int, Float) -> Float = { r, j, v in
                if let mask, mask[r * k + j] { return 0 }
                let g = Double(weights?[r] ?? 1) * inverseDiagonal[j]
                let low = Swift.max(-maximumCode, Swift.min(maximumCode, Int32((v / step).rounded(.down))))
                let high = Swift.min(maximumCode, low + 1)
                var best: Int32 = 0
                var bestCost = g * Double(v) * Double(v) + lambda * bits[Int(maximumCode)]
                func consider(_ q: Int32) {
                    guard q != 0 else { return }
                    let e = Double(v) - Double(step) * Double(q)
                    let cost = g * e * e + lambda * bits[Int(q + maximumCode)]
                    if cost < bestCost {
                        bestCost = cost
                        best = q
                    }
                }
                consider(low)
                consider(high)
                return step * Float(best)
            }
            if let factor {
                ErrorFeedback.sweep(&values, rows: rows, columns: k, factor: factor, quantize: choose)
            } else {
                for i in values.indices { values[i] = choose(i / Swift.max(1, k), i % Swift.max(1, k), values[i]) }
            }
            codes = values.map { code(nearest: $0, step: step) }
            w = values
        }
        return codes
    }
}

extension EntropyQuantization.Layout {
    /// Codes of the matrix in the tensor's stored order.
    func storedCodes(_ codes: [Int32]) -> [Int32] {
        guard let geometry, geometry.transposed else { return codes }
        return EntropyQuantization.transpose(codes, rows: rows, columns: columns)
    }
}
