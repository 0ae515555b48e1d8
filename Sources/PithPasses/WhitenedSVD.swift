import PithIR
import PithLinearAlgebra

/// Data-aware SVD (`factorize: {method: svd, whiten: true}`): the rank-r split that minimises the
/// layer output error ‖(W − Ŵ)X‖ instead of ‖W − Ŵ‖, by truncating in the whitened basis of the
/// layer's inputs (as SVD-LLM and ASVD do). With H + λI = L·Lᵀ (L = Uᵀ, U its upper Cholesky factor),
/// tr((W − Ŵ)(H + λI)(W − Ŵ)ᵀ) = ‖(W − Ŵ)L‖²_F, so the best Ŵ is the truncated SVD of W·L, mapped back:
/// Ŵ = (U_r Σ_r^½)·(Σ_r^½ V_rᵀ L⁻¹). The second factor is found by a triangular solve with U
/// (`strsm`), never by inverting L.
enum WhitenedSVD {
    /// The whitened split of the layer-form weight (outputs × inputs), as factored storage in the
    /// tensor's stored orientation, with the rank `choice` picks on the whitened spectrum (`energy`:
    /// the fraction of output energy kept). Also the plain split of the same rank (the data-free twin).
    static func split(
        _ stored: [Float], geometry: LayerGeometry, statistics: LayerStatistics, choice: Factorization.RankChoice, damp: Double, seed: UInt64
    ) throws -> (storage: FactoredStorage, twin: FactoredStorage, rank: Int, randomized: Bool) {
        let n = geometry.outputs, k = geometry.columns
        let w = geometry.layerForm(stored)
        var u = ErrorFeedback.dampened(statistics.hessians[0], n: k, damp: damp)
        guard LinearAlgebra.cholesky(&u, n: k, upper: true) else {
            throw PassError(.notApplicable, "layer `\(geometry.layer)`: the calibration Hessian is not positive definite with damping \(damp)")
        }
        // A = W·L = W·Uᵀ (n × k).
        var a = [Float](repeating: 0, count: n * k)
        w.withUnsafeBufferPointer { pw in
            u.withUnsafeBufferPointer { pu in
                a.withUnsafeMutableBufferPointer { pa in
                    LinearAlgebra.gemm(
                        transposeA: false, transposeB: true, m: n, n: k, k: k, pw.baseAddress!, lda: k, pu.baseAddress!, ldb: k, pa.baseAddress!, ldc: k)
                }
            }
        }
        let whitened = try Factorization.lowRank(a, rows: n, columns: k, choice: choice, seed: seed)
        guard case .lowRank(let rank) = whitened.storage.method else { preconditionFailure("lowRank returns a low-rank storage") }
        let left = whitened.storage.factors[0]  // n × r
        // right·L⁻¹: solve X·L = R, i.e. U·Xᵀ = Rᵀ (k × r).
        let right = whitened.storage.factors[1]  // r × k
        var transposed = [Float](repeating: 0, count: k * rank)
        for i in 0..<rank { for j in 0..<k { transposed[j * rank + i] = right[i * k + j] } }
        LinearAlgebra.solveUpperTriangular(u, n: k, &transposed, columns: rank)
        var first = [Float](repeating: 0, count: rank * k)
        for i in 0..<rank { for j in 0..<k { first[i * k + j] = transposed[j * rank + i] } }
        let twin = try Factorization.lowRank(stored, rows: geometry.transposed ? k : n, columns: geometry.transposed ? n : k, choice: .fixed(rank), seed: seed)
        return (oriented(left: left, right: first, rank: rank, geometry: geometry), twin.storage, rank, whitened.randomized)
    }

    /// Layer-form factors (outputs × r, r × inputs) in the tensor's stored orientation.
    static func oriented(left: [Float], right: [Float], rank r: Int, geometry: LayerGeometry) -> FactoredStorage {
        let n = geometry.outputs, k = geometry.columns
        guard geometry.transposed else { return FactoredStorage(method: .lowRank(rank: r), rows: n, columns: k, factors: [left, right]) }
        // Stored k × n = rightᵀ · leftᵀ.
        var a = [Float](repeating: 0, count: k * r), b = [Float](repeating: 0, count: r * n)
        for i in 0..<r {
            for j in 0..<k { a[j * r + i] = right[i * k + j] }
            for j in 0..<n { b[i * n + j] = left[j * r + i] }
        }
        return FactoredStorage(method: .lowRank(rank: r), rows: k, columns: n, factors: [a, b])
    }
}
