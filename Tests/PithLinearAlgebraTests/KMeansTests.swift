import Testing
@testable import PithLinearAlgebra

@Suite struct KMeansTests {
    func sample(_ n: Int, seed: UInt64) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            // A mixture: most values small, a few large, some repeats — like trained weights.
            let u = Float.random(in: -1...1, using: &g)
            return Bool.random(using: &g) ? u * 0.1 : (Int.random(in: 0..<10, using: &g) == 0 ? u * 3 : Float(Int(u * 20)) / 20)
        }
    }

    @Test(arguments: KMeansInit.allCases)
    func lloydObjectiveNeverIncreases(initialization: KMeansInit) {
        for seed in 0..<20 as Range<UInt64> {
            let kmeans = KMeans1D(sample(2000, seed: seed))
            for k in [1, 2, 7, 32] {
                let result = kmeans.lloyd(from: kmeans.initialCentroids(k: k, method: initialization, seed: seed))
                for (before, after) in zip(result.history, result.history.dropFirst()) {
                    #expect(after <= before * (1 + 1e-12) + 1e-12, "seed \(seed) k \(k): \(before) → \(after)")
                }
                #expect(abs(kmeans.objective(of: result.centroids) - result.objective) <= 1e-6 * max(1, result.objective))
            }
        }
    }

    @Test func optimalIsNeverWorseThanLloyd() throws {
        for seed in 0..<20 as Range<UInt64> {
            let kmeans = KMeans1D(sample(1500, seed: seed))
            for k in [2, 5, 16] {
                let optimal = try #require(kmeans.optimal(k: k))
                for method in KMeansInit.allCases {
                    let lloyd = kmeans.lloyd(from: kmeans.initialCentroids(k: k, method: method, seed: seed))
                    #expect(optimal.objective <= lloyd.objective * (1 + 1e-9) + 1e-9, "seed \(seed) k \(k) \(method)")
                }
                #expect(abs(kmeans.objective(of: optimal.centroids) - optimal.objective) <= 1e-6 * max(1, optimal.objective))
            }
        }
    }

    /// On tiny inputs the optimum can be found by trying every split of the sorted values.
    @Test func optimalMatchesBruteForce() throws {
        for seed in 0..<30 as Range<UInt64> {
            let values = sample(9, seed: seed)
            let kmeans = KMeans1D(values)
            let sorted = kmeans.sorted.map(Double.init)
            for k in 1...3 {
                var best = Double.infinity
                func cost(_ range: ArraySlice<Double>) -> Double {
                    let mean = range.reduce(0, +) / Double(range.count)
                    return range.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
                }
                func search(_ start: Int, _ left: Int, _ total: Double) {
                    if left == 1 { best = min(best, total + cost(sorted[start...])); return }
                    if start + 1 > sorted.count - left + 1 { return }
                    for end in (start + 1)...(sorted.count - left + 1) { search(end, left - 1, total + cost(sorted[start..<end])) }
                }
                search(0, k, 0)
                let optimal = try #require(kmeans.optimal(k: k))
                #expect(abs(optimal.objective - best) <= 1e-9 * max(1, best), "seed \(seed) k \(k): \(optimal.objective) vs \(best)")
            }
        }
    }

    @Test func radixSortSortsEverything() {
        var g = SplitMix64(seed: 5)
        var values = (0..<10_000).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &g)) }.filter { !$0.isNaN }
        values += [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude]
        let sorted = RadixSort.sorted(values)
        #expect(sorted.count == values.count)
        for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a <= b) }
        #expect(Set(sorted.map(\.bitPattern)) == Set(values.map(\.bitPattern)))
    }

    /// Weight-like inputs (most keys share their top bytes, values repeat, zeros of both signs) of
    /// sizes around each cut-over, against the standard library's sort by the same key.
    @Test func radixSortMatchesAComparisonSortBitForBit() {
        func key(_ v: Float) -> UInt32 { v.bitPattern & 0x8000_0000 != 0 ? ~v.bitPattern : v.bitPattern | 0x8000_0000 }
        var g = SplitMix64(seed: 11)
        for count in [0, 1, 47, 48, 49, 64, 65, 300, 4_097, 70_000] {
            var values = sample(count, seed: UInt64(count)).map { ($0 * 64).rounded() / 64 }
            for i in values.indices where Double(g.next() % 16) == 0 { values[i] = g.next() % 2 == 0 ? 0 : -0.0 }
            let sorted = RadixSort.sorted(values)
            // Up to 64 values it is the standard sort, for which −0 and +0 are equal.
            let expected = count <= 64 ? values.sorted() : values.sorted { key($0) < key($1) }
            #expect(sorted.map(\.bitPattern) == expected.map(\.bitPattern), "\(count) values")
        }
    }

    @Test func assignPicksTheNearestCentroid() {
        let values = sample(3000, seed: 9)
        let centroids: [Float] = [-0.5, -0.05, 0, 0.02, 0.4, 2]
        let codes = values.withUnsafeBufferPointer { KMeans1D.assign($0, to: centroids) }
        for (value, code) in zip(values, codes) {
            let distance = abs(value - centroids[Int(code)])
            #expect(centroids.allSatisfy { abs(value - $0) >= distance })
        }
    }

    @Test func initialisationsAreSeededAndInRange() {
        let kmeans = KMeans1D(sample(500, seed: 3))
        for method in KMeansInit.allCases {
            let a = kmeans.initialCentroids(k: 8, method: method, seed: 42)
            #expect(a == kmeans.initialCentroids(k: 8, method: method, seed: 42))
            #expect(a.allSatisfy { $0 >= kmeans.sorted.first! && $0 <= kmeans.sorted.last! })
        }
        let linear = kmeans.initialCentroids(k: 3, method: .linear, seed: 0)
        #expect(linear == [kmeans.sorted.first!, (kmeans.sorted.first! + kmeans.sorted.last!) / 2, kmeans.sorted.last!])
    }
}

@Suite struct BLASTests {
    @Test func gemmMatchesTheDefinition() {
        var g = SplitMix64(seed: 1)
        let a = Matrix(rows: 5, columns: 7, values: (0..<35).map { _ in Float.random(in: -1...1, using: &g) })
        let b = Matrix(rows: 7, columns: 3, values: (0..<21).map { _ in Float.random(in: -1...1, using: &g) })
        let c = LinearAlgebra.multiply(a, b)
        for i in 0..<5 {
            for j in 0..<3 {
                let expected = (0..<7).reduce(Float(0)) { $0 + a[i, $1] * b[$1, j] }
                #expect(abs(c[i, j] - expected) < 1e-5)
            }
        }
        let ct = LinearAlgebra.multiply(b, a, transposeA: true, transposeB: true)
        #expect(ct.rows == 3 && ct.columns == 5)
        for i in 0..<5 { for j in 0..<3 { #expect(abs(ct[j, i] - c[i, j]) < 1e-5) } }
    }

    /// Truncating the SVD at rank r leaves an error whose Frobenius norm is the norm of the
    /// dropped singular values (Eckart–Young).
    @Test func svdTruncationErrorIsTheDroppedSingularValues() throws {
        var g = SplitMix64(seed: 2)
        let a = Matrix(rows: 40, columns: 25, values: (0..<1000).map { _ in Float.random(in: -1...1, using: &g) })
        let (u, s, vt) = try LinearAlgebra.svd(a)
        #expect(s.count == 25)
        for (x, y) in zip(s, s.dropFirst()) { #expect(x >= y) }
        for rank in [25, 10, 3] {
            var us = Matrix(rows: 40, columns: rank)
            for i in 0..<40 { for j in 0..<rank { us[i, j] = u[i, j] * s[j] } }
            var vr = Matrix(rows: rank, columns: 25)
            for i in 0..<rank { for j in 0..<25 { vr[i, j] = vt[i, j] } }
            let approximation = LinearAlgebra.multiply(us, vr)
            let error = Matrix(rows: 40, columns: 25, values: zip(a.values, approximation.values).map { $0 - $1 }).frobeniusNorm
            let dropped = s[rank...].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(error - dropped) <= 1e-4 * max(1, dropped), "rank \(rank): \(error) vs \(dropped)")
        }
    }
}
