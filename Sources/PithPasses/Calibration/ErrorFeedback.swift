import PithIR
import PithLinearAlgebra

/// The solver the data-aware passes share, after the GPTQ reference's `fasterquant` (Frantar et al.
/// 2022) and SparseGPT (Frantar and Alistarh 2023), both from Optimal Brain Surgeon:
///
/// 1. damp: H ← H + λI with λ = damp · mean(diag H), so that H is positive definite even when
///    calibration has fewer rows than the layer has inputs, or an input that is always zero;
/// 2. factor: U upper triangular with H⁻¹ = UᵀU (Cholesky of H, its inverse, Cholesky of that);
/// 3. sweep: every row of W (outputs × inputs) visits its columns in order. Column i's value w
///    becomes q (rounded, snapped to a centroid, or zeroed), and the error e = (w − q) / U[i,i] is
///    fed forward to the columns not yet visited, w[j] −= e · U[i,j]: the OBS update that keeps
///    X·wᵀ as close as the remaining columns can. Columns are taken in blocks; within a block the
///    updates are rank-1, and the block's errors reach the later columns in one product (GEMM).
///
/// Rows are independent, so they are swept in parallel; the result minimises, one column at a time,
/// the proxy of the layer output error ‖X·Wᵀ − X·Ŵᵀ‖² = n · tr((W − Ŵ) H (W − Ŵ)ᵀ) (`proxy`).
enum ErrorFeedback {
    /// The default damping, a fraction of the mean of diag(H) (the GPTQ reference's `percdamp`).
    static let defaultDamp = 0.01
    /// Columns per block of the sweep.
    static let block = 128

    /// H + λI, λ = damp · mean(diag H) (1 when H is zero).
    static func dampened(_ h: [Float], n: Int, damp: Double) -> [Float] {
        var mean = 0.0
        for i in 0..<n { mean += Double(h[i * n + i]) }
        mean /= Double(Swift.max(n, 1))
        let lambda = mean > 0 ? Float(damp * mean) : 1
        var out = h
        for i in 0..<n { out[i * n + i] += lambda }
        return out
    }

    /// (H + λI)⁻¹ (row-major, both triangles) and the damping used: `damp` first, ten times more (up
    /// to 4 times) if H is still not positive definite in float precision; nil when none is.
    static func dampedInverse(_ h: [Float], n: Int, damp: Double) -> (inverse: [Float], damp: Double)? {
        var attempt = damp
        for _ in 0..<5 {
            var a = dampened(h, n: n, damp: attempt)
            if LinearAlgebra.cholesky(&a, n: n, upper: true), LinearAlgebra.choleskyInverse(&a, n: n, upper: true) { return (a, attempt) }
            attempt *= 10
        }
        return nil
    }

    /// U (upper, row-major) with (H + λI)⁻¹ = UᵀU, and the damping used: `damp` first, ten times more
    /// (up to 4 times) if H is still not positive definite in float precision.
    static func inverseFactor(_ h: [Float], n: Int, damp: Double, layer: String) throws -> (factor: [Float], inverse: [Float], damp: Double) {
        var attempt = damp
        for _ in 0..<5 {
            var a = dampened(h, n: n, damp: attempt)
            if LinearAlgebra.cholesky(&a, n: n, upper: true), LinearAlgebra.choleskyInverse(&a, n: n, upper: true) {
                let inverse = a
                if LinearAlgebra.cholesky(&a, n: n, upper: true) { return (a, inverse, attempt) }
            }
            attempt *= 10
        }
        throw PassError(.notApplicable, "layer `\(layer)`: the calibration Hessian is not positive definite even with damping \(attempt / 10)")
    }

    /// Sweeps the rows × columns matrix `w` (row-major) against the factor `u` (see the type's
    /// comment); `quantize(row, column, value)` gives each element's final value.
    static func sweep(
        _ w: inout [Float], rows: Int, columns k: Int, factor u: [Float], quantize: @escaping @Sendable (_ row: Int, _ column: Int, _ value: Float) -> Float
    ) {
        guard rows > 0, k > 0 else { return }
        let chunk = Swift.max(1, Swift.min(64, (rows + Parallel.cores - 1) / Parallel.cores))
        let starts = Array(stride(from: 0, to: rows, by: chunk))
        let input = w
        LinearAlgebra.setBLASThreads(1)
        defer { LinearAlgebra.setBLASThreads(Parallel.cores) }
        let swept = Parallel.map(starts) { start -> [Float] in
            let n = Swift.min(chunk, rows - start)
            var part = Array(input[start * k..<(start + n) * k])
            sweepRows(&part, firstRow: start, rows: n, columns: k, factor: u, quantize: quantize)
            return part
        }
        w = swept.flatMap { $0 }
    }

    /// One chunk of rows: blocks of columns, rank-1 updates inside a block, one GEMM for the rest.
    private static func sweepRows(
        _ w: inout [Float], firstRow: Int, rows n: Int, columns k: Int, factor u: [Float], quantize: (Int, Int, Float) -> Float
    ) {
        var errors = [Float](repeating: 0, count: n * block)
        var b = 0
        while b < k {
            let e = Swift.min(b + block, k), width = e - b
            for r in 0..<n {
                let base = r * k
                for i in b..<e {
                    let d = u[i * k + i]
                    let value = w[base + i]
                    let q = quantize(firstRow + r, i, value)
                    w[base + i] = q
                    let error = (value - q) / d
                    errors[r * width + (i - b)] = error
                    if error != 0 {
                        let row = i * k
                        for j in (i + 1)..<e { w[base + j] -= error * u[row + j] }
                    }
                }
            }
            if e < k {
                // w[:, e...] −= errors (n × width) · U[b..<e, e...]
                w.withUnsafeMutableBufferPointer { pw in
                    errors.withUnsafeBufferPointer { pe in
                        u.withUnsafeBufferPointer { pu in
                            LinearAlgebra.gemm(
                                transposeA: false, transposeB: false, m: n, n: k - e, k: width, alpha: -1, pe.baseAddress!, lda: width,
                                pu.baseAddress! + b * k + e, ldb: k, beta: 1, pw.baseAddress! + e, ldc: k)
                        }
                    }
                }
            }
            b = e
        }
    }

    /// tr(Δ H Δᵀ) for Δ rows × columns (row-major) and H columns × columns: the mean squared output
    /// error per calibration row.
    static func proxy(_ delta: [Float], rows: Int, columns k: Int, hessian h: [Float]) -> Double {
        guard rows > 0, k > 0 else { return 0 }
        var product = [Float](repeating: 0, count: rows * k)
        delta.withUnsafeBufferPointer { pd in
            h.withUnsafeBufferPointer { ph in
                product.withUnsafeMutableBufferPointer { pp in
                    LinearAlgebra.gemm(
                        transposeA: false, transposeB: false, m: rows, n: k, k: k, pd.baseAddress!, lda: k, ph.baseAddress!, ldb: k,
                        pp.baseAddress!, ldc: k)
                }
            }
        }
        var total = 0.0
        for i in 0..<product.count { total += Double(product[i]) * Double(delta[i]) }
        return total
    }
}
