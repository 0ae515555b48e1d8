import PithLinearAlgebra

/// Magnitude pruning kernels: zero the smallest weights.
enum Pruning {
    /// Zeros exactly `round(sparsity · N)` of the `N` weights across all `states` — the smallest
    /// in magnitude, ties broken by position — so one threshold serves every tensor.
    /// Returns the threshold magnitude (the largest pruned).
    static func pruneGlobally(_ states: inout [Working], sparsity: Double) -> Float {
        let total = states.reduce(0) { $0 + $1.values.count }
        let k = Int((sparsity * Double(total)).rounded())
        guard k > 0 else { return 0 }
        var magnitudes = [Float]()
        magnitudes.reserveCapacity(total)
        for s in states { for v in s.values { magnitudes.append(Swift.abs(v)) } }
        let sorted = RadixSort.sorted(magnitudes)
        let threshold = sorted[k - 1]
        let below = lowerBound(sorted, threshold)  // strictly smaller: all pruned
        var ties = k - below  // this many of the elements equal to the threshold, in order
        for i in states.indices {
            for j in states[i].values.indices {
                let m = Swift.abs(states[i].values[j])
                if m < threshold { states[i].values[j] = 0 }
                else if m == threshold, ties > 0 { states[i].values[j] = 0; ties -= 1 }
            }
        }
        return threshold
    }

    /// Zeros exactly `round(sparsity · n)` of one tensor's weights. Returns the threshold.
    static func pruneToSparsity(_ values: inout [Float], sparsity: Double) -> Float {
        var states = [Working(values: values)]
        let threshold = pruneGlobally(&states, sparsity: sparsity)
        values = states[0].values
        return threshold
    }

    /// Zeros every weight with `|w| < threshold`.
    static func pruneBelow(_ values: inout [Float], threshold: Float) {
        for i in values.indices where Swift.abs(values[i]) < threshold { values[i] = 0 }
    }

    static func standardDeviation(_ values: [Float]) -> Double {
        guard !values.isEmpty else { return 0 }
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
        return variance.squareRoot()
    }

    /// First index of `sorted` whose value is not less than `value`.
    static func lowerBound(_ sorted: [Float], _ value: Float) -> Int {
        var low = 0, high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
