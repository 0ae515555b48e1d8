/// How k-means picks its starting centroids (Han et al. §3.2 compare the first three).
public enum KMeansInit: String, Sendable, CaseIterable, Codable {
    /// Evenly spaced on [min, max] (best in Deep Compression's Fig. 8: keeps large weights).
    case linear
    /// Evenly spaced on the cumulative distribution: the quantiles (j + ½)/k.
    case density
    /// k distinct samples drawn at random (seeded).
    case forgy
    /// k-means++: each next centroid drawn with probability proportional to squared distance.
    case kmeansPlusPlus = "kmeans++"
}

/// The outcome of clustering: centroids in increasing order and the objective they reach.
public struct KMeansResult: Sendable {
    /// Sorted centroids (fewer than k when there are fewer distinct values).
    public var centroids: [Float]
    /// Sum of squared distances from every value to its nearest centroid (in `Double`).
    public var objective: Double
    public var iterations: Int
    /// The objective after each Lloyd step, starting with the initial centroids.
    public var history: [Double]
}

/// Exact, fast k-means in one dimension.
///
/// The values are sorted once (radix sort) and summarised by prefix sums of x and x².
/// With sorted centroids, each cluster is a contiguous run of the sorted values bounded
/// by the midpoints between neighbouring centroids, so a Lloyd step is k − 1 binary
/// searches plus k near-constant-time means: O(k log n) per iteration instead of O(n k).
///
/// The prefix sums are kept every `block` values (4.25 bytes per value with the sorted floats,
/// not 20 as with a Double pair per value); a sum up to any index adds the values after the last
/// kept one, in the same order, so it is bit for bit the sum a prefix per value would hold.
public struct KMeans1D: Sendable {
    public let sorted: [Float]
    /// prefix[b] = Σ sorted[0..<b·block]; squares likewise with x².
    private let prefix: [Double]
    private let squares: [Double]
    static let block = 64

    public init<C: Collection>(_ values: C) where C.Element == Float {
        self.init(Array(values))
    }

    /// As `init(_:)`, sorting `values` in place when the caller gives them up (a list made for
    /// the call, such as the nonzero weights): no second copy.
    public init(_ values: consuming [Float]) {
        var owned = values
        RadixSort.sort(&owned)
        self.init(sortedValues: owned)
    }

    public init(sortedValues: [Float]) {
        sorted = sortedValues
        var prefix = [0.0], squares = [0.0]
        prefix.reserveCapacity(sortedValues.count / Self.block + 1)
        squares.reserveCapacity(sortedValues.count / Self.block + 1)
        var sum = 0.0, sumOfSquares = 0.0
        for (i, value) in sortedValues.enumerated() {
            let x = Double(value)
            sum = sum + x
            sumOfSquares = sumOfSquares + x * x
            if (i + 1) % Self.block == 0 {
                prefix.append(sum)
                squares.append(sumOfSquares)
            }
        }
        self.prefix = prefix
        self.squares = squares
    }

    /// Σ sorted[0..<i] and Σ sorted[0..<i]², each added up in order from the start.
    @inline(__always)
    private func sums(upTo i: Int) -> (sum: Double, squares: Double) {
        let b = i / Self.block
        var sum = prefix[b], sumOfSquares = squares[b]
        for j in b * Self.block..<i {
            let x = Double(sorted[j])
            sum = sum + x
            sumOfSquares = sumOfSquares + x * x
        }
        return (sum, sumOfSquares)
    }

    public var count: Int { sorted.count }

    // MARK: Initialisation

    public func initialCentroids(k: Int, method: KMeansInit, seed: UInt64) -> [Float] {
        precondition(k >= 1, "k must be at least 1")
        guard let low = sorted.first, let high = sorted.last else { return [] }
        let n = sorted.count
        switch method {
        case .linear:
            if k == 1 { return [Float(sums(upTo: n).sum / Double(n))] }
            return (0..<k).map { j in Float(Double(low) + (Double(high) - Double(low)) * Double(j) / Double(k - 1)) }
        case .density:
            return (0..<k).map { j in sorted[min(n - 1, Int((Double(j) + 0.5) / Double(k) * Double(n)))] }
        case .forgy:
            var generator = SplitMix64(seed: seed)
            var chosen = Set<Int>()
            while chosen.count < min(k, n) { chosen.insert(Int.random(in: 0..<n, using: &generator)) }
            return chosen.map { sorted[$0] }.sorted()
        case .kmeansPlusPlus:
            var generator = SplitMix64(seed: seed)
            var centroids = [sorted[Int.random(in: 0..<n, using: &generator)]]
            var distance = sorted.map { (Double($0) - Double(centroids[0])) * (Double($0) - Double(centroids[0])) }
            while centroids.count < k {
                let total = distance.reduce(0, +)
                guard total > 0 else { break }  // every value already is a centroid
                var target = Double.random(in: 0..<total, using: &generator)
                var pick = n - 1
                for (i, d) in distance.enumerated() {
                    target -= d
                    if target < 0 { pick = i; break }
                }
                let c = Double(sorted[pick])
                centroids.append(sorted[pick])
                for i in 0..<n {
                    let d = (Double(sorted[i]) - c) * (Double(sorted[i]) - c)
                    if d < distance[i] { distance[i] = d }
                }
            }
            return centroids.sorted()
        }
    }

    // MARK: Lloyd

    /// Iteration cap of Lloyd's algorithm. An iteration costs O(k log n), so the cap is generous:
    /// runs on real weights stop long before it, when no cluster changes.
    public static let defaultMaxIterations = 10_000

    /// Runs Lloyd's algorithm from `initial` until the clusters stop changing (or `maxIterations`).
    /// The objective never increases from one iteration to the next.
    public func lloyd(from initial: [Float], maxIterations: Int = KMeans1D.defaultMaxIterations) -> KMeansResult {
        guard !sorted.isEmpty, !initial.isEmpty else {
            return KMeansResult(centroids: initial.sorted(), objective: 0, iterations: 0, history: [0])
        }
        var centroids = initial.map(Double.init).sorted()
        var bounds = boundaries(centroids)
        var history = [objective(centroids: centroids, bounds: bounds)]
        var iterations = 0
        while iterations < maxIterations {
            iterations += 1
            // Update: each centroid moves to the mean of its run; an empty run keeps its centroid.
            var start = 0
            for j in 0..<centroids.count {
                let end = bounds[j]
                if end > start { centroids[j] = (sums(upTo: end).sum - sums(upTo: start).sum) / Double(end - start) }
                start = end
            }
            // Assignment: runs split at the new midpoints.
            let next = boundaries(centroids)
            history.append(objective(centroids: centroids, bounds: next))
            if next == bounds { break }
            bounds = next
        }
        return KMeansResult(centroids: centroids.map { Float($0) }, objective: history.last!, iterations: iterations, history: history)
    }

    /// End index (exclusive) in `sorted` of each centroid's run: values ≤ the midpoint go left.
    private func boundaries(_ centroids: [Double]) -> [Int] {
        var result = [Int](repeating: sorted.count, count: centroids.count)
        for j in 0..<(centroids.count - 1) {
            result[j] = upperBound((centroids[j] + centroids[j + 1]) / 2)
        }
        return result
    }

    /// First index whose value is greater than `value`.
    private func upperBound(_ value: Double) -> Int {
        var low = 0, high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if Double(sorted[mid]) <= value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private func objective(centroids: [Double], bounds: [Int]) -> Double {
        var total = 0.0, start = 0
        for (j, end) in bounds.enumerated() where end > start {
            let (high, low) = (sums(upTo: end), sums(upTo: start))
            let n = Double(end - start), sum = high.sum - low.sum, sq = high.squares - low.squares
            total += max(0, sq - 2 * centroids[j] * sum + n * centroids[j] * centroids[j])
            start = end
        }
        return total
    }

    /// Sum of squared distances of every value to its nearest centroid in `centroids`.
    public func objective(of centroids: [Float]) -> Double {
        let sortedCentroids = centroids.map(Double.init).sorted()
        return objective(centroids: sortedCentroids, bounds: boundaries(sortedCentroids))
    }

    // MARK: Optimal

    /// Work bound for `optimal`: k · (distinct values) must not exceed this (the backtracking table).
    public static let optimalWorkLimit = 1 << 25

    /// The exact optimum of 1-D k-means by dynamic programming over the distinct values
    /// (divide-and-conquer optimisation, O(k · m log m) for m distinct values).
    /// Nil when k · m exceeds `optimalWorkLimit`.
    public func optimal(k: Int) -> KMeansResult? {
        precondition(k >= 1, "k must be at least 1")
        // Distinct values with their multiplicities.
        var values: [Double] = [], weight: [Double] = []
        for value in sorted {
            if let last = values.last, last == Double(value) { weight[weight.count - 1] += 1 } else { values.append(Double(value)); weight.append(1) }
        }
        let m = values.count
        guard m > 0 else { return KMeansResult(centroids: [], objective: 0, iterations: 0, history: [0]) }
        if m <= k { return KMeansResult(centroids: values.map { Float($0) }, objective: 0, iterations: 0, history: [0]) }
        guard k * m <= Self.optimalWorkLimit else { return nil }
        var w = [Double](repeating: 0, count: m + 1), s = w, q = w
        for i in 0..<m {
            w[i + 1] = w[i] + weight[i]
            s[i + 1] = s[i] + weight[i] * values[i]
            q[i + 1] = q[i] + weight[i] * values[i] * values[i]
        }
        func cost(_ a: Int, _ b: Int) -> Double {  // values a..<b in one cluster
            let n = w[b] - w[a], sum = s[b] - s[a]
            return max(0, (q[b] - q[a]) - sum * sum / n)
        }
        var previous = (0...m).map { $0 == 0 ? 0 : cost(0, $0) }
        var choice = [[Int32]](repeating: [], count: k)
        for layer in 1..<k {
            var current = [Double](repeating: .infinity, count: m + 1)
            var argmin = [Int32](repeating: 0, count: m + 1)
            // current[i] = min over t in [layer, i) of previous[t] + cost(t, i); the best t is monotone in i.
            func solve(_ low: Int, _ high: Int, _ optLow: Int, _ optHigh: Int) {
                guard low <= high else { return }
                let mid = (low + high) / 2
                var best = Double.infinity, bestT = optLow
                let upper = min(mid - 1, optHigh)
                if optLow <= upper {
                    for t in optLow...upper {
                        let candidate = previous[t] + cost(t, mid)
                        if candidate < best { best = candidate; bestT = t }
                    }
                }
                current[mid] = best
                argmin[mid] = Int32(bestT)
                solve(low, mid - 1, optLow, bestT)
                solve(mid + 1, high, bestT, optHigh)
            }
            solve(layer + 1, m, layer, m - 1)
            choice[layer] = argmin
            previous = current
        }
        // Walk back the cluster boundaries.
        var centroids: [Float] = []
        var end = m
        for layer in stride(from: k - 1, to: 0, by: -1) {
            let start = Int(choice[layer][end])
            centroids.append(Float((s[end] - s[start]) / (w[end] - w[start])))
            end = start
        }
        centroids.append(Float(s[end] / w[end]))
        centroids.reverse()
        return KMeansResult(centroids: centroids, objective: previous[m], iterations: 0, history: [previous[m]])
    }

    // MARK: Assignment

    /// The index of the nearest of the sorted `centroids` for every value (ties to the lower).
    public static func assign(_ values: UnsafeBufferPointer<Float>, to centroids: [Float]) -> [UInt8] {
        precondition(!centroids.isEmpty && centroids.count <= 256, "assign: 1…256 centroids")
        let midpoints = zip(centroids, centroids.dropFirst()).map { (Double($0) + Double($1)) / 2 }
        return values.map { value in
            var low = 0, high = midpoints.count
            let x = Double(value)
            while low < high {
                let mid = (low + high) / 2
                if x <= midpoints[mid] { high = mid } else { low = mid + 1 }
            }
            return UInt8(low)
        }
    }
}

/// A small, fast, seeded generator (SplitMix64): the same seed gives the same sequence everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Radix sort of `Float` over order-preserving keys, in place: most significant byte first,
/// each byte's buckets permuted in place (American flag sort), small buckets by insertion. The keys
/// are the values' own bits rewritten in the returned array, so a sort holds that array alone:
/// sorting the 8.4 million weights of a 33 MB tensor needs no second 33 MB.
public enum RadixSort {
    public static func sorted(_ values: [Float]) -> [Float] {
        var result = values
        sort(&result)
        return result
    }

    /// Sorts `values` in place, as `sorted` orders them.
    public static func sort(_ values: inout [Float]) {
        guard values.count > 64 else { return values.sort() }
        values.withUnsafeMutableBufferPointer { floats in
            floats.withMemoryRebound(to: UInt32.self) { keys in
                // Order-preserving keys: flip every bit of negatives, the sign bit of the rest.
                for i in keys.indices {
                    let bits = keys[i]
                    keys[i] = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
                }
                sortInPlace(keys, shift: 24)
                for i in keys.indices {
                    let key = keys[i]
                    keys[i] = key & 0x8000_0000 != 0 ? key & 0x7FFF_FFFF : ~key
                }
            }
        }
    }

    /// Sorts `keys` whose bits above `shift + 8` are all equal.
    private static func sortInPlace(_ keys: UnsafeMutableBufferPointer<UInt32>, shift: UInt32) {
        let n = keys.count
        if n <= 48 {
            // Insertion sort.
            for i in 1..<Swift.max(1, n) {
                let key = keys[i]
                var j = i
                while j > 0, keys[j - 1] > key {
                    keys[j] = keys[j - 1]
                    j -= 1
                }
                keys[j] = key
            }
            return
        }
        var counts = [Int](repeating: 0, count: 256)
        for key in keys { counts[Int((key >> shift) & 0xFF)] += 1 }
        var ends = [Int](repeating: 0, count: 256), next = [Int](repeating: 0, count: 256)
        var total = 0
        for bucket in 0..<256 {
            next[bucket] = total
            total += counts[bucket]
            ends[bucket] = total
        }
        if !counts.contains(n) {
            // Each key goes to the next free place of its bucket, taking the key there along.
            for bucket in 0..<256 {
                while next[bucket] < ends[bucket] {
                    var key = keys[next[bucket]]
                    var home = Int((key >> shift) & 0xFF)
                    while home != bucket {
                        swap(&key, &keys[next[home]])
                        next[home] += 1
                        home = Int((key >> shift) & 0xFF)
                    }
                    keys[next[bucket]] = key
                    next[bucket] += 1
                }
            }
        }
        guard shift > 0 else { return }
        var start = 0
        for bucket in 0..<256 {
            let end = ends[bucket]
            if end - start > 1 { sortInPlace(UnsafeMutableBufferPointer(rebasing: keys[start..<end]), shift: shift - 8) }
            start = end
        }
    }
}
