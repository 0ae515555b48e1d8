import Foundation
import PithIR

/// Operators whose output keeps some of the input's elements or slices, chosen by their values or
/// by a condition: Unique, Compress, ReverseSequence. Output sizes never exceed the input's.
extension Operators {
    // MARK: Unique

    /// Unique: the distinct elements of the flattened input (no `axis`) or the distinct slices
    /// along `axis`, in ascending order (`sorted` 1, the default; slices compared element by
    /// element in row-major order) or in order of first occurrence (`sorted` 0). Outputs Y, the
    /// index of each one's first occurrence, the index in Y of every input element (slice), and
    /// how often each occurs. NaN sorts last and equals NaN (numpy's rule; onnxruntime merges NaNs
    /// with whatever neighbours them); strings compare by code point.
    func unique(_ inputs: [Value?]) throws -> [Value] {
        let x = try required(inputs, 0)
        let sorted = int("sorted", 1) != 0
        var axis: Int?
        if node.attribute("axis") != nil {
            guard x.rank >= 1 else { throw EvalError.invalid("axis \(int("axis", 0)) for a scalar input") }
            axis = try normalizedAxis(int("axis", 0), rank: x.rank, op: "Unique")
        }
        let n = axis.map { x.shape[$0] } ?? x.count
        let inner = axis.map { x.shape[($0 + 1)...].reduce(1, *) } ?? 1, outer = axis.map { x.shape[..<$0].reduce(1, *) } ?? 1
        let sliceLength = outer * inner
        /// Element j (row-major over the other axes) of slice k.
        func element(_ k: Int, _ j: Int) -> Int { ((j / inner) * n + k) * inner + j % inner }
        func compareElements(_ a: Int, _ b: Int) -> Int {
            if x.isString {
                let p = x.strings[a], q = x.strings[b]
                return p == q ? 0 : p.utf8.lexicographicallyPrecedes(q.utf8) ? -1 : 1
            }
            if x.isFloat {
                let p = x.floats[a], q = x.floats[b]
                if p.isNaN || q.isNaN { return p.isNaN == q.isNaN ? 0 : p.isNaN ? 1 : -1 }
                return p < q ? -1 : p > q ? 1 : 0
            }
            return x.ints[a] < x.ints[b] ? -1 : x.ints[a] > x.ints[b] ? 1 : 0
        }
        func compareSlices(_ p: Int, _ q: Int) -> Int {
            for j in 0..<sliceLength {
                let c = compareElements(element(p, j), element(q, j))
                if c != 0 { return c }
            }
            return 0
        }
        let order = (0..<n).sorted { a, b in
            let c = compareSlices(a, b)
            return c != 0 ? c < 0 : a < b
        }
        // Groups of equal slices, in ascending order; each group's first index is its smallest.
        var firsts: [Int] = [], counts: [Int64] = [], group = [Int](repeating: 0, count: n)
        for (position, k) in order.enumerated() {
            if position == 0 || compareSlices(order[position - 1], k) != 0 {
                firsts.append(k)
                counts.append(0)
            }
            counts[counts.count - 1] += 1
            group[k] = firsts.count - 1
        }
        if !sorted {
            let byOccurrence = firsts.indices.sorted { firsts[$0] < firsts[$1] }
            var renumbered = [Int](repeating: 0, count: firsts.count)
            for (newIndex, old) in byOccurrence.enumerated() { renumbered[old] = newIndex }
            firsts = byOccurrence.map { firsts[$0] }
            counts = byOccurrence.map { counts[$0] }
            group = group.map { renumbered[$0] }
        }
        let u = firsts.count
        return [
            axis.map { slices(x, firsts, along: $0) } ?? pick(x, firsts, shape: [u]), Value(ints: firsts.map(Int64.init), shape: [u]),
            Value(ints: group.map(Int64.init), shape: [n]), Value(ints: counts, shape: [u]),
        ]
    }

    // MARK: Compress

    /// Compress: the slices along `axis` (without it, the elements of the flattened input) whose
    /// entry in the 1-D `condition` is true. A condition shorter than the axis drops the rest; the
    /// entries of a longer one beyond the axis are ignored, as onnxruntime does (numpy.compress
    /// refuses a true one there).
    func compress(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0), condition = try required(inputs, 1)
        guard condition.rank == 1, !condition.isFloat, !condition.isString else {
            throw EvalError.invalid("condition of type \(condition.dtype.rawValue) and shape \(condition.shape): it must be a 1-D bool tensor")
        }
        var axis: Int?
        if node.attribute("axis") != nil {
            guard x.rank >= 1 else { throw EvalError.invalid("axis \(int("axis", 0)) for a scalar input") }
            axis = try normalizedAxis(int("axis", 0), rank: x.rank, op: "Compress")
        }
        let n = axis.map { x.shape[$0] } ?? x.count
        let chosen = (0..<Swift.min(n, condition.count)).filter { condition.ints[$0] != 0 }
        return axis.map { slices(x, chosen, along: $0) } ?? pick(x, chosen, shape: [chosen.count])
    }

    /// The slices of `x` at `positions` along `axis`, in that order.
    private func slices(_ x: Value, _ positions: [Int], along axis: Int) -> Value {
        let n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        var picks: [Int] = []
        picks.reserveCapacity(outer * positions.count * inner)
        for o in 0..<outer { for k in positions { for i in 0..<inner { picks.append((o * n + k) * inner + i) } } }
        var shape = x.shape
        shape[axis] = positions.count
        return pick(x, picks, shape: shape)
    }

    // MARK: ReverseSequence

    /// ReverseSequence: for each batch entry b, the first sequence_lens[b] steps along the time
    /// axis reversed, the rest kept. `batch_axis` and `time_axis` are 0 and 1 in either order.
    func reverseSequence(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0), lengths = try integerIndices(inputs, 1)
        guard x.rank >= 2 else { throw EvalError.invalid("input of shape \(x.shape): ReverseSequence needs rank 2 or more") }
        let batchAxis = int("batch_axis", 1), timeAxis = int("time_axis", 0)
        guard Set([batchAxis, timeAxis]) == [0, 1] else {
            throw EvalError.invalid("batch_axis \(batchAxis) and time_axis \(timeAxis): one must be 0 and the other 1")
        }
        let batch = x.shape[batchAxis], steps = x.shape[timeAxis], inner = x.shape[2...].reduce(1, *)
        guard lengths.shape == [batch] else { throw EvalError.invalid("sequence_lens of shape \(lengths.shape) for a batch of \(batch)") }
        for length in lengths.ints where length < 0 || length > Int64(steps) {
            throw EvalError.invalid("sequence length \(length) is outside 0…\(steps), the size of the time axis")
        }
        var picks = [Int](repeating: 0, count: x.count)
        for a in 0..<x.shape[0] {
            for b in 0..<x.shape[1] {
                let (entry, step) = batchAxis == 0 ? (a, b) : (b, a)
                let length = Int(lengths.ints[entry])
                let source = step < length ? length - 1 - step : step
                let (s0, s1) = batchAxis == 0 ? (a, source) : (source, b)
                for i in 0..<inner { picks[(a * x.shape[1] + b) * inner + i] = (s0 * x.shape[1] + s1) * inner + i }
            }
        }
        return pick(x, picks, shape: x.shape)
    }
}
