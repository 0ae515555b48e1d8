private import CLapack
import Foundation

/// Matrix products and decompositions from OpenBLAS and LAPACKE. Every call into
/// `CLapack` is in this file.
public enum LinearAlgebra {
    /// `op(a) · op(b)` with `op` transposing when asked (`cblas_sgemm`).
    public static func multiply(_ a: Matrix, _ b: Matrix, transposeA: Bool = false, transposeB: Bool = false) -> Matrix {
        let m = transposeA ? a.columns : a.rows
        let k = transposeA ? a.rows : a.columns
        let kB = transposeB ? b.columns : b.rows
        let n = transposeB ? b.rows : b.columns
        precondition(k == kB, "multiply: inner dimensions \(k) and \(kB) differ")
        var c = Matrix(rows: m, columns: n)
        guard m > 0, n > 0, k > 0 else { return c }
        a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                c.values.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(
                        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), 1, pa.baseAddress, Int32(a.columns), pb.baseAddress, Int32(b.columns),
                        0, pc.baseAddress, Int32(n))
                }
            }
        }
        return c
    }

    /// Thin singular value decomposition `a = u · diag(s) · vt` (`LAPACKE_sgesdd`), singular
    /// values in decreasing order: `u` is rows × r, `vt` is r × columns, r = min(rows, columns).
    public static func svd(_ a: Matrix) throws -> (u: Matrix, s: [Float], vt: Matrix) {
        let m = a.rows, n = a.columns, r = min(m, n)
        var work = a.values
        var s = [Float](repeating: 0, count: r)
        var u = Matrix(rows: m, columns: r)
        var vt = Matrix(rows: r, columns: n)
        guard r > 0 else { return (u, s, vt) }
        let info = work.withUnsafeMutableBufferPointer { pa in
            s.withUnsafeMutableBufferPointer { ps in
                u.values.withUnsafeMutableBufferPointer { pu in
                    vt.values.withUnsafeMutableBufferPointer { pvt in
                        LAPACKE_sgesdd(
                            Int32(clapack_row_major()), CChar(UInt8(ascii: "S")), Int32(m), Int32(n), pa.baseAddress, Int32(n),
                            ps.baseAddress, pu.baseAddress, Int32(r), pvt.baseAddress, Int32(n))
                    }
                }
            }
        }
        guard info == 0 else { throw LinearAlgebraError(message: "LAPACKE_sgesdd failed (info \(info)) on a \(m)×\(n) matrix") }
        return (u, s, vt)
    }
}

extension LinearAlgebra {
    /// An orthonormal basis of the columns of `a` (rows ≥ columns): Q of its thin QR factorization
    /// (`LAPACKE_sgeqrf` then `LAPACKE_sorgqr`).
    public static func orthonormalColumns(_ a: Matrix) throws -> Matrix {
        let m = a.rows, n = a.columns
        precondition(m >= n, "orthonormalColumns: \(m)×\(n) has more columns than rows")
        guard n > 0 else { return a }
        var q = a
        var tau = [Float](repeating: 0, count: n)
        let info = q.values.withUnsafeMutableBufferPointer { pq in
            tau.withUnsafeMutableBufferPointer { pt -> Int32 in
                let factor = LAPACKE_sgeqrf(Int32(clapack_row_major()), Int32(m), Int32(n), pq.baseAddress, Int32(n), pt.baseAddress)
                guard factor == 0 else { return factor }
                return LAPACKE_sorgqr(Int32(clapack_row_major()), Int32(m), Int32(n), Int32(n), pq.baseAddress, Int32(n), pt.baseAddress)
            }
        }
        guard info == 0 else { throw LinearAlgebraError(message: "LAPACKE QR failed (info \(info)) on a \(m)×\(n) matrix") }
        return q
    }

    /// The leading `rank` singular triplets of `a` by randomized range finding (Halko, Martinsson
    /// and Tropp 2011, algorithms 4.4 and 5.1): a Gaussian sketch of `rank + oversampling` columns,
    /// `powerIterations` rounds of re-orthonormalised power iteration, then the exact SVD of the
    /// small projected matrix. Costs a few GEMMs of the matrix against the sketch instead of a
    /// full decomposition; the error is close to the optimal rank-`rank` error when the spectrum decays.
    public static func truncatedSVD(
        _ a: Matrix, rank: Int, oversampling: Int = 32, powerIterations: Int = 3, seed: UInt64 = 0
    ) throws -> (u: Matrix, s: [Float], vt: Matrix) {
        let m = a.rows, n = a.columns
        let k = min(rank + oversampling, min(m, n))
        guard rank >= 1, k < min(m, n) else {
            // The sketch would be as large as the matrix: the full decomposition is no dearer.
            let full = try svd(a)
            let r = min(rank, full.s.count)
            return (full.u.columns(0..<r), Array(full.s.prefix(r)), full.vt.rows(0..<r))
        }
        var generator = SplitMix64(seed: seed)
        var omega = Matrix(rows: n, columns: k)
        for i in 0..<omega.values.count { omega.values[i] = Float(Self.gaussian(&generator)) }
        var q = try orthonormalColumns(multiply(a, omega))  // m × k
        for _ in 0..<powerIterations {
            let z = try orthonormalColumns(multiply(a, q, transposeA: true))  // n × k
            q = try orthonormalColumns(multiply(a, z))
        }
        let b = multiply(q, a, transposeA: true)  // k × n
        let small = try svd(b)
        let u = multiply(q, small.u)  // m × k
        return (u.columns(0..<rank), Array(small.s.prefix(rank)), small.vt.rows(0..<rank))
    }

    /// A standard normal draw (Box–Muller).
    static func gaussian(_ generator: inout SplitMix64) -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &generator), u2 = Double.random(in: 0..<1, using: &generator)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// A numerical routine failed (for example, an SVD that did not converge).
public struct LinearAlgebraError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension LinearAlgebra {
    /// `c = alpha · op(a) · op(b) + beta · c` on row-major memory (`cblas_sgemm`): `op(a)` is m × k,
    /// `op(b)` k × n, `c` m × n, with leading dimensions `lda`, `ldb`, `ldc`.
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Stops OpenBLAS's idle worker threads, which it starts when the library loads and which spin
    /// for a while (about 15 ms of CPU per process, measured) whether or not BLAS is used. They start
    /// again on the next multi-threaded BLAS call.
    public static func releaseIdleThreads() {
        blas_thread_shutdown_()
    }

    /// The number of threads OpenBLAS may use for one call. Callers that already spread work over
    /// the cores set it to 1 so that the two levels of threading do not fight.
    public static func setBLASThreads(_ count: Int) {
        openblas_set_num_threads(Int32(count))
    }
}

// MARK: - Symmetric positive definite matrices (the data-aware passes' Hessians)

extension LinearAlgebra {
    /// `c += alpha · aᵀ·a` on the upper triangle of the row-major n × n matrix `c` (`cblas_ssyrk`):
    /// `a` is `rows` × `n`, row-major with leading dimension `lda`. The strictly lower triangle of
    /// `c` is not touched; `symmetrizeUpper` copies the upper one over it.
    public static func accumulateGram(rows: Int, columns n: Int, _ a: UnsafePointer<Float>, lda: Int, alpha: Float = 1, into c: UnsafeMutablePointer<Float>) {
        guard rows > 0, n > 0 else { return }
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(rows), alpha, a, Int32(lda), 1, c, Int32(n))
    }

    /// Copies the upper triangle of the row-major n × n matrix `a` over its lower one.
    public static func symmetrizeUpper(_ a: inout [Float], n: Int) {
        for i in 0..<n { for j in 0..<i { a[i * n + j] = a[j * n + i] } }
    }

    /// The Cholesky factor of the symmetric positive definite row-major n × n matrix `a`, in place
    /// (`LAPACKE_spotrf`): `upper` gives u with a = uᵀ·u in the upper triangle, else l with a = l·lᵀ
    /// in the lower; the other triangle is set to zero. False (and `a` undefined) when `a` is not
    /// positive definite.
    public static func cholesky(_ a: inout [Float], n: Int, upper: Bool = true) -> Bool {
        guard n > 0 else { return true }
        let info = a.withUnsafeMutableBufferPointer {
            LAPACKE_spotrf(Int32(clapack_row_major()), CChar(UInt8(ascii: upper ? "U" : "L")), Int32(n), $0.baseAddress, Int32(n))
        }
        guard info == 0 else { return false }
        for i in 0..<n { for j in 0..<n where upper ? j < i : j > i { a[i * n + j] = 0 } }
        return true
    }

    /// The inverse of a symmetric positive definite matrix from its Cholesky factor (as `cholesky`
    /// leaves it), in place (`LAPACKE_spotri`), both triangles filled. False when the factor is singular.
    public static func choleskyInverse(_ factor: inout [Float], n: Int, upper: Bool = true) -> Bool {
        guard n > 0 else { return true }
        let info = factor.withUnsafeMutableBufferPointer {
            LAPACKE_spotri(Int32(clapack_row_major()), CChar(UInt8(ascii: upper ? "U" : "L")), Int32(n), $0.baseAddress, Int32(n))
        }
        guard info == 0 else { return false }
        for i in 0..<n { for j in 0..<i { if upper { factor[i * n + j] = factor[j * n + i] } else { factor[j * n + i] = factor[i * n + j] } } }
        return true
    }

    /// The solution x of a·x = b for a row-major n × n matrix `a`: by Cholesky when `a` is symmetric
    /// positive definite (`LAPACKE_dposv`), else by LU with partial pivoting (`LAPACKE_dgesv`); nil
    /// when `a` is singular.
    public static func solve(_ a: [Double], _ b: [Double], n: Int) -> [Double]? {
        precondition(a.count == n * n && b.count == n, "solve: \(a.count) and \(b.count) values for n = \(n)")
        guard n > 0 else { return [] }
        var factor = a, x = b
        let info = factor.withUnsafeMutableBufferPointer { pa in
            x.withUnsafeMutableBufferPointer { px in
                LAPACKE_dposv(Int32(clapack_row_major()), CChar(UInt8(ascii: "U")), Int32(n), 1, pa.baseAddress, Int32(n), px.baseAddress, 1)
            }
        }
        if info == 0 { return x }
        factor = a
        x = b
        var pivots = [Int32](repeating: 0, count: n)
        let lu = factor.withUnsafeMutableBufferPointer { pa in
            x.withUnsafeMutableBufferPointer { px in
                pivots.withUnsafeMutableBufferPointer { pp in
                    LAPACKE_dgesv(Int32(clapack_row_major()), Int32(n), 1, pa.baseAddress, Int32(n), pp.baseAddress, px.baseAddress, 1)
                }
            }
        }
        return lu == 0 ? x : nil
    }
}

extension LinearAlgebra {
    /// Solves u·x = b in place for the row-major upper triangular n × n matrix `u` (`cblas_strsm`):
    /// `b` is n × columns, row-major, and becomes x.
    public static func solveUpperTriangular(_ u: [Float], n: Int, _ b: inout [Float], columns: Int) {
        precondition(u.count == n * n && b.count == n * columns, "solveUpperTriangular: \(u.count) and \(b.count) values for n = \(n)")
        guard n > 0, columns > 0 else { return }
        u.withUnsafeBufferPointer { pu in
            b.withUnsafeMutableBufferPointer { pb in
                cblas_strsm(
                    CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(n), Int32(columns), 1, pu.baseAddress, Int32(n), pb.baseAddress,
                    Int32(columns))
            }
        }
    }
}
