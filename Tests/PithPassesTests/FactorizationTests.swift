import Foundation
import PithIR
import PithLinearAlgebra
import Testing
@testable import PithPasses

/// Seeded matrices with a decaying spectrum, like trained weights: U·diag(σ)·Vᵀ plus noise.
func decayingMatrix(rows: Int, columns: Int, seed: UInt64) -> [Float] {
    var g = SplitMix64(seed: seed)
    var values = [Float](repeating: 0, count: rows * columns)
    for k in 0..<min(rows, columns, 24) {
        let sigma = Float(pow(0.7, Double(k)))
        let u = (0..<rows).map { _ in Float.random(in: -1...1, using: &g) }
        let v = (0..<columns).map { _ in Float.random(in: -1...1, using: &g) }
        for i in 0..<rows { for j in 0..<columns { values[i * columns + j] += sigma * u[i] * v[j] } }
    }
    for i in values.indices { values[i] += Float.random(in: -0.001...0.001, using: &g) }
    return values
}

func frobenius(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
}

func norm(_ a: [Float]) -> Double { a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

@Suite struct FactorizationTests {
    /// Eckart–Young: the error of the rank-r split is the norm of the dropped singular values.
    @Test(arguments: [(30, 20, 5), (17, 40, 1), (64, 64, 10)])
    func svdSplitErrorIsTheNormOfTheDroppedSingularValues(rows: Int, columns: Int, rank: Int) throws {
        let w = decayingMatrix(rows: rows, columns: columns, seed: UInt64(rows * 100 + columns))
        let (storage, s, randomized) = try Factorization.lowRank(w, rows: rows, columns: columns, choice: .fixed(rank))
        #expect(!randomized)
        let dropped = s.dropFirst(rank).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let error = frobenius(w, storage.expand(tensorShape: [rows, columns]))
        #expect(abs(error - dropped) <= 1e-4 * norm(w), "error \(error), dropped singular values \(dropped)")
        #expect(storage.parameters == rank * (rows + columns))
    }

    @Test func fullRankSplitsReconstructExactly() throws {
        let w = decayingMatrix(rows: 12, columns: 9, seed: 3)
        let (storage, _, _) = try Factorization.lowRank(w, rows: 12, columns: 9, choice: .fixed(9))
        #expect(frobenius(w, storage.expand(tensorShape: [12, 9])) <= 1e-5 * norm(w))
    }

    @Test func energyAndRatioChooseTheRank() throws {
        let w = decayingMatrix(rows: 40, columns: 30, seed: 8)
        let (byEnergy, s, _) = try Factorization.lowRank(w, rows: 40, columns: 30, choice: .energy(0.9))
        guard case .lowRank(let r) = byEnergy.method else { Issue.record("not low-rank"); return }
        let total = s.reduce(0.0) { $0 + Double($1) * Double($1) }
        let kept = { (k: Int) in s.prefix(k).reduce(0.0) { $0 + Double($1) * Double($1) } }
        #expect(kept(r) >= 0.9 * total * (1 - 1e-9) && kept(r - 1) < 0.9 * total)
        let (byRatio, _, _) = try Factorization.lowRank(w, rows: 40, columns: 30, choice: .parameterRatio(0.25))
        #expect(byRatio.parameters <= 300 && byRatio.parameters + 70 > 300)
    }

    /// The randomized SVD finds an exactly low-rank matrix exactly, and is near-optimal on a decaying spectrum.
    @Test func randomizedSVDIsNearOptimal() throws {
        let rows = 300, columns = 200
        let w = decayingMatrix(rows: rows, columns: columns, seed: 21)
        let exact = try LinearAlgebra.svd(Matrix(rows: rows, columns: columns, values: w))
        let fast = try LinearAlgebra.truncatedSVD(Matrix(rows: rows, columns: columns, values: w), rank: 10, seed: 1)
        for k in 0..<10 { #expect(abs(fast.s[k] - exact.s[k]) <= 1e-3 * exact.s[0]) }
        var approximation = [Float](repeating: 0, count: rows * columns)
        for k in 0..<10 { for i in 0..<rows { for j in 0..<columns { approximation[i * columns + j] += fast.u[i, k] * fast.s[k] * fast.vt[k, j] } } }
        let optimal = exact.s.dropFirst(10).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(frobenius(w, approximation) <= optimal * 1.01)
    }

    @Test func sizesFactorIntoSmallPrimes() {
        #expect(Factorization.factors(of: 784, count: 3).reduce(1, *) == 784)
        #expect(Factorization.factors(of: 300, count: 3) == [5, 6, 10])
        let padded = Factorization.factors(of: 13, count: 2)  // 13 is prime: padded to 14
        #expect(padded.reduce(1, *) == 14 && padded.allSatisfy { $0 <= 7 })
    }

    /// TT-SVD: the error is within the requested bound; at full rank the reconstruction is exact,
    /// padding included.
    @Test(arguments: [(24, 30, 3, 0.05), (13, 22, 2, 0.2), (60, 49, 3, 0.01), (11, 17, 3, 0.0)])
    func tensorTrainErrorIsWithinTheBound(rows: Int, columns: Int, cores: Int, epsilon: Double) throws {
        let w = decayingMatrix(rows: rows, columns: columns, seed: UInt64(rows + columns))
        let m = Factorization.factors(of: rows, count: cores), n = Factorization.factors(of: columns, count: cores)
        let storage = try Factorization.tensorTrain(w, rows: rows, columns: columns, rowFactors: m, columnFactors: n, maxRank: nil, relativeError: epsilon)
        let error = frobenius(w, storage.expand(tensorShape: [rows, columns])) / norm(w)
        #expect(error <= epsilon + 1e-5, "relative error \(error) above \(epsilon)")
        guard case .tensorTrain(_, _, let ranks) = storage.method else { Issue.record("not a tensor train"); return }
        #expect(ranks.first == 1 && ranks.last == 1 && ranks.count == cores + 1)
        for (k, core) in storage.factors.enumerated() { #expect(core.count == ranks[k] * m[k] * n[k] * ranks[k + 1]) }
    }

    @Test func circulantAndSeparableAreExactOnTheirOwnKind() {
        let c: [Float] = [1, -2, 0.5, 3, 0.25]
        let n = c.count
        let circulant = (0..<(n * n)).map { c[((($0 / n) - ($0 % n)) % n + n) % n] }
        let fitted = Factorization.circulant(circulant, size: n)
        #expect(fitted.factors[0] == c)
        #expect(frobenius(fitted.expand(tensorShape: [n, n]), circulant) == 0)
        // A kernel whose filters are each one outer product is recovered by a rank-1 separable fit.
        let shape = [2, 3, 3, 2]
        var kernel = [Float](repeating: 0, count: shape.reduce(1, *))
        for f in 0..<2 {
            for i in 0..<3 {
                for y in 0..<3 {
                    for x in 0..<2 {
                        kernel[((f * 3 + i) * 3 + y) * 2 + x] = Float(f + 1) * Float(i - 1) * Float(y + 1) * (x == 0 ? 1 : -0.5)
                    }
                }
            }
        }
        let separable = Factorization.separable(kernel, shape: shape, rank: 1)
        #expect(frobenius(separable.expand(tensorShape: shape), kernel) <= 1e-4 * norm(kernel))
        #expect(separable.parameters == 2 * (3 + 3 + 2))
    }

    @Test func factorizePassReportsRanksParametersAndError() throws {
        let w = decayingMatrix(rows: 64, columns: 48, seed: 5)
        var model = Model(
            format: .onnx,
            tensors: [
                Tensor(name: "w", dtype: .float32, shape: [64, 48], storage: .dense(TensorBuffer(values: w)), origin: .initializer(graph: .main)),
                Tensor(
                    name: "b", dtype: .float32, shape: [64], storage: .dense(TensorBuffer(values: [Float](repeating: 1, count: 64))),
                    origin: .initializer(graph: .main)),
            ])
        let report = try Compressor.run(Recipe(steps: [.init(factorize: FactorizeOptions(rank: 8))]), on: &model)
        let row = try #require(report.factorizations.first)
        #expect(report.factorizations.count == 1 && row.tensor == "w" && row.ranks == [8])
        #expect(row.parametersBefore == 64 * 48 && row.parametersAfter == 8 * (64 + 48))
        #expect(row.multiplyAddsAfter == 8 * (64 + 48))
        guard case .factored(let storage) = model.tensors[0].storage else { Issue.record("not factored"); return }
        #expect(abs(row.relativeError - frobenius(w, storage.expand(tensorShape: [64, 48])) / norm(w)) < 1e-9)
        // Within a recipe, a factorized tensor is not clustered afterwards.
        var again = Model(
            format: .onnx,
            tensors: [
                Tensor(name: "w", dtype: .float32, shape: [64, 48], storage: .dense(TensorBuffer(values: w)), origin: .initializer(graph: .main))
            ])
        #expect(throws: PassError.self) {
            try Compressor.run(Recipe(steps: [.init(factorize: FactorizeOptions(rank: 8)), .init(cluster: ClusterOptions(bits: 4))]), on: &again)
        }
    }
}
