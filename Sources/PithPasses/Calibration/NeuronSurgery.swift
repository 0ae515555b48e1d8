import PithLinearAlgebra

/// Optimal Brain Surgeon on whole inputs of a layer (Hassibi and Stork 1993, in the block form of
/// SparseGPT / OBS "group removal"): which of the neurons feeding a layer can go, and how the layer's
/// remaining weights and bias change so that its output moves least. `structured` with
/// `criterion: obs` uses it on the layer that consumes the neurons.
///
/// The consumer's layer form W (outputs × inputs) and its calibration statistics H = E[xxᵀ], E[x]
/// are augmented with a constant input 1 whose weight is the bias (scaled by beta / alpha), so that
/// a removed neuron's mean contribution moves into the bias:
///
///     Wa = [W | s·b],  Ha = [[H, E[x]], [E[x]ᵀ, 1]] + λI.
///
/// A neuron is a block Q of inputs (one for a dense layer, C·kH·kW / C for a convolution's input
/// channel). Greedily, the block with the least cost Σ_r w_{rQ}ᵀ [Ha⁻¹]_{QQ}⁻¹ w_{rQ} (the growth of
/// E‖Wa·x − Ŵa·x‖² when it is zeroed and the rest updated) is removed:
///
///     Wa ← Wa − Wa[:,Q] [Ha⁻¹]_{QQ}⁻¹ Ha⁻¹[Q,:],   Ha⁻¹ ← Ha⁻¹ − Ha⁻¹[:,Q] [Ha⁻¹]_{QQ}⁻¹ Ha⁻¹[Q,:].
enum NeuronSurgery {
    struct Result {
        /// Removed neurons, in the order they were removed.
        var removed: [Int]
        /// The layer-form weights with the removed inputs zero and the others updated.
        var weight: [Float]
        /// The updated bias (unscaled), when there is one.
        var bias: [Float]?
    }

    /// Removes `count` of `neurons` input blocks of `block` columns each from the `rows` × (neurons ·
    /// block) layer-form `weight`. `bias` (one per row) is updated with `biasScale` = beta / alpha.
    static func remove(
        count: Int, neurons: Int, block: Int, weight: [Float], rows: Int, bias: [Float]?, biasScale: Float, hessian: [Float], mean: [Float],
        damp: Double, layer: String
    ) throws -> Result {
        let k = neurons * block
        precondition(weight.count == rows * k && hessian.count == k * k && mean.count == k, "NeuronSurgery: shapes do not agree")
        let augmented = bias != nil && biasScale != 0
        let n = k + (augmented ? 1 : 0)
        // Ha, then its inverse (damped more if float precision needs it, as ErrorFeedback does).
        var ha = [Float](repeating: 0, count: n * n)
        for i in 0..<k {
            for j in 0..<k { ha[i * n + j] = hessian[i * k + j] }
        }
        if augmented {
            for i in 0..<k {
                ha[i * n + k] = mean[i]
                ha[k * n + i] = mean[i]
            }
            ha[k * n + k] = 1
        }
        guard var inverse = ErrorFeedback.dampedInverse(ha, n: n, damp: damp)?.inverse else {
            throw PassError(
                .notApplicable, "layer `\(layer)`: the calibration Hessian of its inputs is not positive definite even with damping \(damp * 1e4)")
        }
        var w = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows {
            for j in 0..<k { w[r * n + j] = weight[r * k + j] }
            if augmented, let bias { w[r * n + k] = biasScale * bias[r] }
        }
        var alive = Array(0..<neurons)
        var removed: [Int] = []
        removed.reserveCapacity(count)
        for _ in 0..<Swift.min(count, neurons) {
            var best = (cost: Double.infinity, position: -1, blockInverse: [Double]())
            for (position, c) in alive.enumerated() {
                guard let m = blockInverse(inverse, n: n, columns: c * block, block: block) else { continue }
                var cost = 0.0
                for r in 0..<rows {
                    let base = r * n + c * block
                    for p in 0..<block {
                        var row = 0.0
                        for q in 0..<block { row += m[p * block + q] * Double(w[base + q]) }
                        cost += Double(w[base + p]) * row
                    }
                }
                if cost < best.cost { best = (cost, position, m) }
            }
            guard best.position >= 0 else { break }
            let c = alive.remove(at: best.position)
            removed.append(c)
            downdate(&w, rows: rows, inverse: &inverse, n: n, columns: c * block, block: block, blockInverse: best.blockInverse.map { Float($0) })
        }
        // `downdate` left the removed inputs exactly zero.
        var outWeight = [Float](repeating: 0, count: rows * k)
        for r in 0..<rows { for j in 0..<k { outWeight[r * k + j] = w[r * n + j] } }
        return Result(removed: removed, weight: outWeight, bias: augmented ? (0..<rows).map { w[$0 * n + k] / biasScale } : bias)
    }

    /// [Ha⁻¹]_{QQ}⁻¹ for Q = columns..<columns + block, in Double; nil when it is singular (a block
    /// already removed).
    static func blockInverse(_ inverse: [Float], n: Int, columns: Int, block: Int) -> [Double]? {
        if block == 1 {
            let d = Double(inverse[columns * n + columns])
            return d > 0 ? [1 / d] : nil
        }
        var m = [Double](repeating: 0, count: block * block)
        for p in 0..<block { for q in 0..<block { m[p * block + q] = Double(inverse[(columns + p) * n + columns + q]) } }
        var result = [Double](repeating: 0, count: block * block)
        for q in 0..<block {
            var unit = [Double](repeating: 0, count: block)
            unit[q] = 1
            guard let x = LinearAlgebra.solve(m, unit, n: block) else { return nil }
            for p in 0..<block { result[p * block + q] = x[p] }
        }
        return result
    }

    /// The OBS update for removing block Q: W ← W − W[:,Q]·M·Hinv[Q,:] and Hinv ← Hinv − Hinv[:,Q]·M·Hinv[Q,:]
    /// with M = [Hinv]_{QQ}⁻¹ (rank-`block` products through BLAS).
    static func downdate(_ w: inout [Float], rows: Int, inverse: inout [Float], n: Int, columns: Int, block: Int, blockInverse m: [Float]) {
        // hq = Hinv[Q,:] (block × n), wq = W[:,Q] (rows × block), hcol = Hinv[:,Q] (n × block).
        var hq = [Float](repeating: 0, count: block * n)
        for p in 0..<block { for j in 0..<n { hq[p * n + j] = inverse[(columns + p) * n + j] } }
        var wq = [Float](repeating: 0, count: rows * block)
        for r in 0..<rows { for p in 0..<block { wq[r * block + p] = w[r * n + columns + p] } }
        var hcol = [Float](repeating: 0, count: n * block)
        for i in 0..<n { for p in 0..<block { hcol[i * block + p] = inverse[i * n + columns + p] } }
        subtractProduct(&w, product(wq, m, rows: rows, inner: block, columns: block), hq, rows: rows, inner: block, columns: n)
        subtractProduct(&inverse, product(hcol, m, rows: n, inner: block, columns: block), hq, rows: n, inner: block, columns: n)
        // Exactly zero where the update leaves rounding residue: the removed inputs and their rows of Hinv.
        for r in 0..<rows { for p in 0..<block { w[r * n + columns + p] = 0 } }
        for p in 0..<block {
            for j in 0..<n {
                inverse[(columns + p) * n + j] = 0
                inverse[j * n + columns + p] = 0
            }
        }
    }

    /// a (rows × inner) · b (inner × columns), row-major, through BLAS.
    static func product(_ a: [Float], _ b: [Float], rows: Int, inner: Int, columns: Int) -> [Float] {
        var c = [Float](repeating: 0, count: rows * columns)
        subtractProduct(&c, a, b, rows: rows, inner: inner, columns: columns, sign: 1)
        return c
    }

    /// c −= a · b (or += with `sign` 1) for a (rows × inner), b (inner × columns), c (rows × columns).
    static func subtractProduct(_ c: inout [Float], _ a: [Float], _ b: [Float], rows: Int, inner: Int, columns: Int, sign: Float = -1) {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    LinearAlgebra.gemm(
                        transposeA: false, transposeB: false, m: rows, n: columns, k: inner, alpha: sign, pa.baseAddress!, lda: inner, pb.baseAddress!,
                        ldb: columns, beta: 1, pc.baseAddress!, ldc: columns)
                }
            }
        }
    }
}
