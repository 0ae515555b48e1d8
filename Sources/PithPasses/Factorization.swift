import Foundation
public import PithIR
import PithLinearAlgebra

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
    /// svd: truncate in the whitened basis of the layer's calibration inputs, minimising the layer
    /// output error rather than the weight error (data-aware; `WhitenedSVD`).
    public var whiten: Bool?

    public init(
        method: Method? = nil, rank: Int? = nil, energy: Double? = nil, ratio: Double? = nil,
        ttRank: Int? = nil, ttError: Double? = nil, cores: Int? = nil, whiten: Bool? = nil
    ) {
        self.whiten = whiten
        self.method = method
        self.rank = rank
        self.energy = energy
        self.ratio = ratio
        self.ttRank = ttRank
        self.ttError = ttError
        self.cores = cores
    }

    enum CodingKeys: String, CodingKey {
        case method, rank, energy, ratio, cores, whiten
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
        if method != .tt, ttRank != nil || ttError != nil || cores != nil {
            throw PassError(.invalidRecipe, "\(label): tt_rank, tt_error and cores apply to factorize tt only")
        }
        if whiten == true, method != .svd { throw PassError(.invalidRecipe, "\(label): whiten applies to factorize svd only") }
        if method == .tt || method == .circulant, rank != nil {
            throw PassError(.invalidRecipe, "\(label): factorize \(method.rawValue) takes no rank (tt: tt_rank)")
        }
    }
}

extension FactorizeOptions: CompressionPass {
    static let action = "factorize"

    var isDataAware: Bool { whiten == true }

    /// Factorizes each selected tensor the method applies to; the others are reported as skipped.
    /// Whitened SVD takes the calibrated layers first, in graph order, then the others the plain way.
    func run(selecting selector: TensorSelector, in run: inout CompressionRun, step: Int) throws {
        let method = self.method ?? .svd
        var ids = run.select(selector, step: step, action: Self.action)
        var geometries: [TensorID: LayerGeometry] = [:]
        if whiten == true {
            let (layers, others) = run.calibratedLayers(ids)
            for geometry in layers where geometry.groups == 1 { geometries[geometry.tensor] = geometry }
            for geometry in layers where geometry.groups > 1 {
                run.skipped.append(
                    .init(
                        step: step, action: Self.action, target: run.model.tensors[geometry.tensor].name,
                        reason: "grouped convolution: split without whitening"))
            }
            for (id, reason) in others {
                run.skipped.append(.init(step: step, action: Self.action, target: run.model.tensors[id].name, reason: "\(reason); split without whitening"))
            }
            ids = layers.map(\.tensor) + others.map(\.0)
        }
        for id in ids {
            let tensor = run.model.tensors[id]
            var s = run.state(id)
            if s.quantized != nil || s.codebook != nil || s.factored != nil {
                throw PassError(.notApplicable, "tensor `\(tensor.name)`: factorize runs on dense values, before cluster and quantize and once")
            }
            let shape = tensor.shape
            let rows = shape.first ?? 1, columns = tensor.count / max(rows, 1)
            let isMatrix = shape.count == 2
            let isPointwise = shape.count == 4 && shape[2] == 1 && shape[3] == 1
            let reason: String?
            switch method {
            case .svd: reason = isMatrix || isPointwise ? nil : "svd splits matrices and 1×1 convolutions, not shape \(Shape.describe(shape))"
            case .tt: reason = isMatrix ? nil : "tensor trains are built for matrices, not shape \(Shape.describe(shape))"
            case .circulant: reason = isMatrix && rows == columns ? nil : "a circulant approximation needs a square matrix, not \(Shape.describe(shape))"
            case .separable:
                reason =
                    shape.count == 4 && (shape[2] > 1 || shape[3] > 1)
                    ? nil : "separable filters need a convolution kernel [M, C, kH, kW] wider than 1×1, not \(Shape.describe(shape))"
            }
            if let reason {
                run.skipped.append(.init(step: step, action: Self.action, target: tensor.name, reason: reason))
                continue
            }
            let before = run.bytesNow(id)
            var storage: FactoredStorage
            var randomized = false
            var detail: String
            var whitened: (LayerGeometry, LayerError)?
            switch method {
            case .svd where geometries[id] != nil:
                let geometry = geometries[id]!
                let choice: Factorization.RankChoice = self.rank.map { .fixed($0) } ?? energy.map { .energy($0) } ?? .parameterRatio(ratio ?? 0.5)
                let statistics = try run.statistics(geometry)
                let result = try WhitenedSVD.split(
                    s.values, geometry: geometry, statistics: statistics, choice: choice, damp: run.damp, seed: run.seed &+ UInt64(id))
                storage = result.storage
                randomized = result.randomized
                detail = "whitened \(randomized ? "randomized" : "full") SVD, rank \(result.rank) of \(min(rows, columns)), damp \(run.damp)"
                whitened = (
                    geometry,
                    LayerError(
                        samples: statistics.samples, rows: statistics.rows,
                        before: run.layerError(geometry, statistics, approximation: geometry.layerForm(s.values)),
                        dataFree: run.layerError(geometry, statistics, approximation: geometry.layerForm(result.twin.expand(tensorShape: shape))),
                        after: run.layerError(geometry, statistics, approximation: geometry.layerForm(storage.expand(tensorShape: shape))))
                )
            case .svd:
                let choice: Factorization.RankChoice = self.rank.map { .fixed($0) } ?? energy.map { .energy($0) } ?? .parameterRatio(ratio ?? 0.5)
                let result = try Factorization.lowRank(s.values, rows: rows, columns: columns, choice: choice, seed: run.seed &+ UInt64(id))
                storage = result.storage
                randomized = result.randomized
                let total = result.singularValues.reduce(0.0) { $0 + Double($1) * Double($1) }
                guard case .lowRank(let rank) = storage.method else { preconditionFailure("lowRank returns a low-rank storage") }
                let kept = result.singularValues.prefix(rank).reduce(0.0) { $0 + Double($1) * Double($1) }
                detail =
                    "\(randomized ? "randomized" : "full") SVD, rank \(rank) of \(min(rows, columns))"
                    + (randomized ? "" : String(format: ", %.2f%% of Σσ² kept", 100 * kept / max(total, .leastNonzeroMagnitude)))
            case .tt:
                let d = cores ?? 3
                let m = Factorization.factors(of: rows, count: d), n = Factorization.factors(of: columns, count: d)
                storage = try Factorization.tensorTrain(
                    s.values, rows: rows, columns: columns, rowFactors: m, columnFactors: n,
                    maxRank: ttRank, relativeError: ttError ?? (ttRank == nil ? 0.1 : 0))
                detail = "TT-SVD, \(m.map(String.init).joined(separator: "·")) × \(n.map(String.init).joined(separator: "·"))"
            case .circulant:
                storage = Factorization.circulant(s.values, size: rows)
                detail = "nearest circulant"
            case .separable:
                storage = Factorization.separable(s.values, shape: shape, rank: rank ?? 1, seed: run.seed &+ UInt64(id))
                detail = "CP-ALS, \(rank ?? 1) term\((rank ?? 1) == 1 ? "" : "s") per filter"
            }
            guard storage.parameters < tensor.count else {
                run.skipped.append(
                    .init(
                        step: step, action: Self.action, target: tensor.name,
                        reason: "\(detail): \(storage.parameters) parameters, not fewer than the \(tensor.count) of the dense weight; left as it was"))
                continue
            }
            let approximation = storage.expand(tensorShape: shape)
            let original = run.originals[id]!
            let error = zip(original, approximation).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            let norm = original.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            s.factored = storage
            s.values = approximation
            run.working[id] = s
            run.record(step: step, action: Self.action, id: id, before: before, after: s, detail: detail)
            if let (_, error) = whitened { run.attach(error) }
            let ranks: [Int], m: [Int], n: [Int]
            switch storage.method {
            case .lowRank(let r): ranks = [r]; m = []; n = []
            case .tensorTrain(let rm, let cn, let r): ranks = r; m = rm; n = cn
            case .circulant: ranks = []; m = []; n = []
            case .separable(let r): ranks = [r]; m = []; n = []
            }
            run.factorizations.append(
                .init(
                    tensor: tensor.name, layer: tensor.consumer?.name ?? "", method: method.rawValue, ranks: ranks, rowFactors: m, columnFactors: n,
                    parametersBefore: tensor.count, parametersAfter: storage.parameters,
                    multiplyAddsBefore: rows * columns, multiplyAddsAfter: Factorization.multiplyAdds(storage, shape: shape),
                    relativeError: norm == 0 ? 0 : error / norm, randomized: randomized))
        }
    }
}

/// Low-rank, tensor-train, circulant and separable approximations of weights: the algorithms,
/// on `Float` matrices, independent of recipes and reports.
public enum Factorization {
    /// Matrices whose smaller side is at least this use the randomized truncated SVD when the rank
    /// asked for is at most a quarter of that side.
    public static let randomizedThreshold = 1024

    /// How the rank of an SVD split is chosen.
    public enum RankChoice: Sendable, Equatable {
        case fixed(Int)
        /// The smallest rank keeping this fraction of the squared Frobenius norm (Σσ²).
        case energy(Double)
        /// The rank giving at most this fraction of the original parameters: r(m + n) ≤ p·m·n.
        case parameterRatio(Double)
    }

    /// `W (rows × columns) ≈ (U_r Σ_r^½) · (Σ_r^½ V_rᵀ)`. Returns the storage, the singular values
    /// computed (all of them with a full SVD, the leading ones with a randomized one), and whether
    /// the randomized SVD was used.
    public static func lowRank(
        _ values: [Float], rows: Int, columns: Int, choice: RankChoice, seed: UInt64 = 0
    ) throws
        -> (storage: FactoredStorage, singularValues: [Float], randomized: Bool)
    {
        let a = Matrix(rows: rows, columns: columns, values: values)
        let smaller = min(rows, columns)
        let total = values.reduce(0.0) { $0 + Double($1) * Double($1) }
        var target: Int?
        switch choice {
        case .fixed(let r): target = min(r, smaller)
        case .parameterRatio(let p): target = max(1, min(smaller, Int(p * Double(rows * columns) / Double(rows + columns))))
        case .energy: target = nil
        }
        var u: Matrix, s: [Float], vt: Matrix, randomized = false
        if let r = target, smaller >= randomizedThreshold, r * 4 <= smaller {
            (u, s, vt) = try LinearAlgebra.truncatedSVD(a, rank: r, seed: seed)
            randomized = true
        } else if case .energy(let e) = choice, smaller >= randomizedThreshold {
            // Try the leading quarter of the spectrum first; fall back to the full SVD if it is not enough.
            let sketch = try LinearAlgebra.truncatedSVD(a, rank: smaller / 4, seed: seed)
            if sketch.s.reduce(0.0, { $0 + Double($1) * Double($1) }) >= e * total {
                (u, s, vt) = sketch
                randomized = true
            } else {
                (u, s, vt) = try LinearAlgebra.svd(a)
            }
        } else {
            (u, s, vt) = try LinearAlgebra.svd(a)
        }
        let rank: Int
        switch choice {
        case .energy(let e):
            var kept = 0.0, r = 0
            while r < s.count, kept < e * total - 1e-12 * total { kept += Double(s[r]) * Double(s[r]); r += 1 }
            rank = max(1, r)
        default: rank = max(1, min(target ?? 1, s.count))
        }
        var left = [Float](repeating: 0, count: rows * rank), right = [Float](repeating: 0, count: rank * columns)
        for k in 0..<rank {
            let root = s[k].squareRoot()
            for i in 0..<rows { left[i * rank + k] = u[i, k] * root }
            for j in 0..<columns { right[k * columns + j] = vt[k, j] * root }
        }
        return (FactoredStorage(method: .lowRank(rank: rank), rows: rows, columns: columns, factors: [left, right]), s, randomized)
    }

    // MARK: Tensor train

    /// `d` factors whose product is the smallest number ≥ `n` made of primes ≤ 7 (so that every
    /// factor stays small), spread as evenly as the primes allow, in increasing order.
    public static func factors(of n: Int, count d: Int) -> [Int] {
        var candidate = max(n, 1)
        func primes(_ x: Int) -> [Int]? {
            var x = x, result: [Int] = []
            for p in [2, 3, 5, 7] { while x % p == 0 { result.append(p); x /= p } }
            return x == 1 ? result : nil
        }
        while primes(candidate) == nil { candidate += 1 }
        var bins = [Int](repeating: 1, count: d)
        for p in primes(candidate)!.sorted(by: >) {
            let smallest = bins.indices.min { bins[$0] < bins[$1] }!
            bins[smallest] *= p
        }
        return bins.sorted()
    }

    /// TT-SVD (Oseledets 2011) of `W (rows × columns)` as a TT-matrix with the given row and column
    /// factors (products at least rows and columns: the matrix is zero-padded). Each of the d − 1
    /// truncations drops singular values of norm at most ε‖W‖/√(d − 1), so the whole error is at most
    /// ε‖W‖ unless `maxRank` caps a rank first.
    public static func tensorTrain(
        _ values: [Float], rows: Int, columns: Int, rowFactors m: [Int], columnFactors n: [Int],
        maxRank: Int?, relativeError epsilon: Double
    ) throws -> FactoredStorage {
        let d = m.count
        precondition(d == n.count && d >= 1, "tensorTrain: one column factor per row factor")
        let paddedRows = m.reduce(1, *), paddedColumns = n.reduce(1, *)
        // Reorder W[(i₁…i_d), (j₁…j_d)] into T[(i₁ j₁), (i₂ j₂), …] (row-major over the pairs).
        var t = [Float](repeating: 0, count: paddedRows * paddedColumns)
        var iDigits = [Int](repeating: 0, count: d), jDigits = [Int](repeating: 0, count: d)
        for i in 0..<rows {
            var x = i
            for k in (0..<d).reversed() { iDigits[k] = x % m[k]; x /= m[k] }
            for j in 0..<columns {
                var y = j
                for k in (0..<d).reversed() { jDigits[k] = y % n[k]; y /= n[k] }
                var index = 0
                for k in 0..<d { index = (index * m[k] + iDigits[k]) * n[k] + jDigits[k] }
                t[index] = values[i * columns + j]
            }
        }
        let norm = values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let delta = d > 1 ? epsilon * norm / Double(d - 1).squareRoot() : 0
        var ranks = [1]
        var cores: [[Float]] = []
        var rest = t
        var remaining = paddedRows * paddedColumns
        for k in 0..<(d - 1) {
            let rowsK = ranks[k] * m[k] * n[k]
            remaining /= m[k] * n[k]
            let (u, s, vt) = try LinearAlgebra.svd(Matrix(rows: rowsK, columns: remaining, values: rest))
            // The smallest rank whose dropped singular values have norm ≤ δ.
            var tail = 0.0, r = s.count
            while r > 1, (tail + Double(s[r - 1]) * Double(s[r - 1])).squareRoot() <= delta { tail += Double(s[r - 1]) * Double(s[r - 1]); r -= 1 }
            if let maxRank { r = min(r, maxRank) }
            r = max(1, r)
            cores.append(u.columns(0..<r).values)
            var next = [Float](repeating: 0, count: r * remaining)
            for a in 0..<r { for j in 0..<remaining { next[a * remaining + j] = s[a] * vt[a, j] } }
            rest = next
            ranks.append(r)
        }
        cores.append(rest)
        ranks.append(1)
        return FactoredStorage(method: .tensorTrain(rowFactors: m, columnFactors: n, ranks: ranks), rows: rows, columns: columns, factors: cores)
    }

    // MARK: Circulant and separable

    /// The circulant matrix nearest to square `W` in Frobenius norm: `c[k]` is the mean of the
    /// k-th wrapped diagonal `W[i][(i − k) mod n]`.
    public static func circulant(_ values: [Float], size n: Int) -> FactoredStorage {
        var c = [Double](repeating: 0, count: n)
        for i in 0..<n { for j in 0..<n { c[((i - j) % n + n) % n] += Double(values[i * n + j]) } }
        return FactoredStorage(method: .circulant, rows: n, columns: n, factors: [c.map { Float($0 / Double(n)) }])
    }

    /// Each filter of a `[M, C, kH, kW]` kernel as a sum of `rank` outer products of 1-D filters
    /// (channels ⊗ height ⊗ width), fitted by alternating least squares (CP-ALS) from a seeded start.
    public static func separable(_ values: [Float], shape: [Int], rank: Int, iterations: Int = 50, seed: UInt64 = 0) -> FactoredStorage {
        let (mCount, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        var fa = [Float](), fb = [Float](), fc = [Float]()
        var generator = SplitMix64(seed: seed)
        for f in 0..<mCount {
            let x = Array(values[f * c * h * w..<(f + 1) * c * h * w]).map(Double.init)
            var a = (0..<(rank * c)).map { _ in Double.random(in: -1...1, using: &generator) }
            var b = (0..<(rank * h)).map { _ in Double.random(in: -1...1, using: &generator) }
            var cc = (0..<(rank * w)).map { _ in Double.random(in: -1...1, using: &generator) }
            // X[i, y, z] ≈ Σ_r a[r, i] b[r, y] c[r, z]
            func element(_ i: Int, _ y: Int, _ z: Int) -> Double { x[(i * h + y) * w + z] }
            for _ in 0..<iterations {
                a = Self.alsUpdate(size: c, rank: rank, first: b, firstSize: h, second: cc, secondSize: w) { i, y, z in element(i, y, z) }
                b = Self.alsUpdate(size: h, rank: rank, first: a, firstSize: c, second: cc, secondSize: w) { y, i, z in element(i, y, z) }
                cc = Self.alsUpdate(size: w, rank: rank, first: a, firstSize: c, second: b, secondSize: h) { z, i, y in element(i, y, z) }
            }
            fa += a.map(Float.init)
            fb += b.map(Float.init)
            fc += cc.map(Float.init)
        }
        return FactoredStorage(method: .separable(rank: rank), rows: mCount, columns: c * h * w, factors: [fa, fb, fc])
    }

    /// One ALS step: the factor over the mode of `size` minimising ‖X − Σ_r f_r ⊗ p_r ⊗ q_r‖ with the
    /// other two (`first`, `second`, each `rank × size`) fixed. `x(t, u, v)` reads X with this mode first.
    static func alsUpdate(
        size: Int, rank: Int, first p: [Double], firstSize: Int, second q: [Double], secondSize: Int,
        _ x: (Int, Int, Int) -> Double
    ) -> [Double] {
        // Gram matrix G[r, s] = (pᵣ·pₛ)(qᵣ·qₛ), right-hand sides B[t, r] = Σ_{u,v} X[t,u,v] pᵣ[u] qᵣ[v].
        var gram = [Double](repeating: 0, count: rank * rank)
        for r in 0..<rank {
            for s in 0..<rank {
                var pp = 0.0, qq = 0.0
                for u in 0..<firstSize { pp += p[r * firstSize + u] * p[s * firstSize + u] }
                for v in 0..<secondSize { qq += q[r * secondSize + v] * q[s * secondSize + v] }
                gram[r * rank + s] = pp * qq + (r == s ? 1e-12 : 0)
            }
        }
        var result = [Double](repeating: 0, count: rank * size)
        for t in 0..<size {
            var rhs = [Double](repeating: 0, count: rank)
            for r in 0..<rank {
                var sum = 0.0
                for u in 0..<firstSize { for v in 0..<secondSize { sum += x(t, u, v) * p[r * firstSize + u] * q[r * secondSize + v] } }
                rhs[r] = sum
            }
            let solution = solve(gram, rhs, rank)
            for r in 0..<rank { result[r * size + t] = solution[r] }
        }
        return result
    }

    /// Solves the small symmetric system `A x = b` by Gaussian elimination with partial pivoting.
    static func solve(_ a: [Double], _ b: [Double], _ n: Int) -> [Double] {
        var m = a, x = b
        for col in 0..<n {
            let pivot = (col..<n).max { abs(m[$0 * n + col]) < abs(m[$1 * n + col]) }!
            if pivot != col {
                for k in 0..<n { m.swapAt(col * n + k, pivot * n + k) }
                x.swapAt(col, pivot)
            }
            let diagonal = m[col * n + col]
            guard abs(diagonal) > 1e-300 else { continue }
            for row in (col + 1)..<max(col + 1, n) {
                let f = m[row * n + col] / diagonal
                if f == 0 { continue }
                for k in col..<n { m[row * n + k] -= f * m[col * n + k] }
                x[row] -= f * x[col]
            }
        }
        for row in (0..<n).reversed() {
            var sum = x[row]
            for k in (row + 1)..<max(row + 1, n) { sum -= m[row * n + k] * x[k] }
            x[row] = abs(m[row * n + row]) > 1e-300 ? sum / m[row * n + row] : 0
        }
        return x
    }

    // MARK: Cost

    /// Multiply-adds of applying a `rows × columns` matrix (or its factors) to one vector, as the
    /// restored graph computes it: dense, the two factors of a split, or the tensor-train chain.
    /// Separable and circulant weights are restored dense.
    public static func multiplyAdds(_ storage: FactoredStorage?, rows: Int, columns: Int) -> Int {
        guard let storage else { return rows * columns }
        switch storage.method {
        case .lowRank(let r): return r * (rows + columns)
        case .tensorTrain(let m, let n, let ranks):
            // Core k contracts (r_{k−1}, n_k) into (m_k, r_k) for every (m₁…m_{k−1}) × (n_{k+1}…n_d).
            var total = 0
            for k in m.indices {
                let before = m[..<k].reduce(1, *), after = n[(k + 1)...].reduce(1, *)
                total += before * after * ranks[k] * n[k] * m[k] * ranks[k + 1]
            }
            return total
        case .circulant, .separable: return rows * columns
        }
    }

    /// Multiply-adds per input vector (matrices) or per output position (convolutions) of a
    /// factorized weight of `shape`.
    static func multiplyAdds(_ storage: FactoredStorage, shape: [Int]) -> Int {
        if case .separable(let r) = storage.method, shape.count == 4 {
            // A C→M·R pointwise stage, then kH and kW 1-D filters per term, then the sum over terms.
            return shape[0] * r * (shape[1] + shape[2] + shape[3])
        }
        return multiplyAdds(storage, rows: storage.rows, columns: storage.columns)
    }
}
