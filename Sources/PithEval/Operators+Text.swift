import Foundation
import PithIR

/// Text operators: StringNormalizer and TfIdfVectorizer.
extension Operators {
    // MARK: StringNormalizer

    /// StringNormalizer: the elements of a [C] or [1, C] string tensor that are not stop words
    /// (compared after lower-casing both when `is_case_sensitive` is 0), then lower- or
    /// upper-cased (`case_change_action` LOWER, UPPER or NONE). When every element is removed the
    /// output is one empty string, [1] or [1, 1]. Case mapping is Unicode's default, whatever
    /// `locale` says.
    func stringNormalizer(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard x.isString else { throw EvalError.invalid("StringNormalizer takes strings, not \(x.dtype.rawValue)") }
        guard x.rank == 1 || (x.rank == 2 && x.shape[0] == 1) else {
            throw EvalError.invalid("input of shape \(x.shape): StringNormalizer takes [C] or [1, C]")
        }
        let action = string("case_change_action", "NONE")
        guard ["NONE", "LOWER", "UPPER"].contains(action) else { throw EvalError.invalid("case_change_action `\(action)` is not one of NONE, LOWER, UPPER") }
        let caseSensitive = int("is_case_sensitive", 0) != 0
        let stopWords = Set((strings("stopwords") ?? []).map { caseSensitive ? $0 : $0.lowercased() })
        var kept = x.strings.filter { !stopWords.contains(caseSensitive ? $0 : $0.lowercased()) }
        switch action {
        case "LOWER": kept = kept.map { $0.lowercased() }
        case "UPPER": kept = kept.map { $0.uppercased() }
        default: break
        }
        if kept.isEmpty { kept = [""] }
        return Value(strings: kept, shape: x.rank == 1 ? [kept.count] : [1, kept.count])
    }

    // MARK: TfIdfVectorizer

    /// TfIdfVectorizer: counts, in each row of a [C] or [B, C] tensor of integers or strings, the
    /// n-grams of the pool (`pool_int64s` or `pool_strings`, grouped by length from the offsets in
    /// `ngram_counts`) whose length is within [min_gram_length, max_gram_length], their items
    /// taken 1 to max_skip_count + 1 positions apart (unigrams once). Each n-gram counts into
    /// column `ngram_indexes[k]` of a [max(ngram_indexes) + 1] or [B, …] float output; mode TF
    /// gives the counts, IDF the column's weight where the count is not 0, TFIDF count · weight
    /// (no weights: 1). Weights are read by output column, as onnxruntime and onnx's reference do.
    func tfIdfVectorizer(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard x.rank == 1 || x.rank == 2, !x.isFloat else {
            throw EvalError.invalid("input of type \(x.dtype.rawValue) and shape \(x.shape): TfIdfVectorizer takes [C] or [B, C] integers or strings")
        }
        let minLength = int("min_gram_length", 0), maxLength = int("max_gram_length", 0), maxSkip = int("max_skip_count", 0)
        guard minLength >= 1, minLength <= maxLength, maxSkip >= 0, maxSkip <= 1 << 20 else {
            throw EvalError.invalid(
                "min_gram_length \(minLength), max_gram_length \(maxLength), max_skip_count \(maxSkip): need 1 ≤ min ≤ max and a skip count of at least 0")
        }
        let mode = string("mode", "")
        guard ["TF", "IDF", "TFIDF"].contains(mode) else { throw EvalError.invalid("mode `\(mode)` is not one of TF, IDF, TFIDF") }
        let starts = ints("ngram_counts") ?? [], indexes = ints("ngram_indexes") ?? [], weights = floats("weights")
        // The pool as token numbers: integers as they are, strings numbered in pool order.
        let poolStrings = strings("pool_strings"), poolIntegers = ints("pool_int64s").map { $0.map(Int64.init) }
        guard (poolStrings == nil) != (poolIntegers == nil) else { throw EvalError.invalid("exactly one of pool_int64s and pool_strings must be given") }
        guard (poolStrings != nil) == x.isString else {
            throw EvalError.invalid("a pool of \(poolStrings != nil ? "strings" : "integers") for an input of \(x.dtype.rawValue)")
        }
        var numbers: [String: Int64] = [:]
        let pool: [Int64] =
            poolIntegers
            ?? poolStrings!.map { text in
                if let known = numbers[text] { return known }
                numbers[text] = Int64(numbers.count)
                return Int64(numbers.count - 1)
            }
        let tokens: [Int64] = x.isString ? x.strings.map { numbers[$0] ?? -1 } : x.ints

        // The n-grams, in pool order (so the k-th is numbered k), those of a wanted length by content.
        var grams: [[Int64]: Int] = [:], gramCount = 0
        for (level, start) in starts.enumerated() {
            let end = level + 1 < starts.count ? starts[level + 1] : pool.count
            let size = level + 1
            guard start >= 0, start <= end, end <= pool.count, (end - start) % size == 0 else {
                throw EvalError.invalid("ngram_counts \(starts) do not divide the pool of \(pool.count) items into whole n-grams of 1, 2, … items")
            }
            for first in stride(from: start, to: end, by: size) {
                if size >= minLength && size <= maxLength { grams[Array(pool[first..<(first + size)])] = gramCount }
                gramCount += 1
            }
        }
        guard indexes.count == gramCount else {
            throw EvalError.invalid("\(indexes.count) ngram_indexes for the \(gramCount) n-grams of the pool: one output column each")
        }
        if let bad = indexes.first(where: { $0 < 0 || $0 >= maximumElements }) {
            throw EvalError.invalid("ngram_indexes holds \(bad), which is not an output column")
        }
        let width = (indexes.max() ?? -1) + 1
        if let weights, mode != "TF", weights.count < width {
            throw EvalError.invalid("\(weights.count) weights for \(width) output columns")
        }
        let rows = x.rank == 2 ? x.shape[0] : 1, length = x.shape[x.rank - 1]
        let shape = x.rank == 2 ? [rows, width] : [width]
        try checkSize(shape, op: "TfIdfVectorizer")
        var counts = [Int](repeating: 0, count: rows * width)
        var gram: [Int64] = []
        for r in 0..<rows where !grams.isEmpty {
            let row = tokens[(r * length)..<((r + 1) * length)].map { $0 }
            for skip in 1...Swift.max(1, Swift.min(maxSkip + 1, length)) {
                let shortest = skip == 1 ? minLength : Swift.max(minLength, 2)
                guard shortest <= maxLength else { break }
                for start in 0..<length {
                    gram.removeAll(keepingCapacity: true)
                    var position = start
                    while gram.count < maxLength, position < length {
                        gram.append(row[position])
                        if gram.count >= shortest, let k = grams[gram] { counts[r * width + indexes[k]] += 1 }
                        position += skip
                    }
                }
            }
        }
        let out: [Float] = counts.enumerated().map { e, count in
            let weight = weights?[e % Swift.max(width, 1)] ?? 1
            switch mode {
            case "TF": return Float(count)
            case "IDF": return count > 0 ? weight : 0
            default: return Float(count) * weight
            }
        }
        return Value(floats: out, shape: shape)
    }
}
