import Foundation
public import PithIR

/// Tensor-by-tensor comparison of two models' weights (`pith verify`): tensors are matched by
/// name; each pair gets its error measures, and tensors present on one side only, or with another
/// shape, are listed by name.
public struct WeightComparison: Sendable, Codable, Equatable {
    public struct Row: Sendable, Codable, Equatable {
        public var name: String
        public var shape: [Int]
        public var dtype: String
        public var maxAbsError: Double
        public var rmse: Double
        /// 10·log10(signal power / error power); nil when the error is zero (infinite SNR) or the
        /// signal is zero.
        public var snrDB: Double?
        /// Cosine similarity of the two value vectors; nil when either is all zero.
        public var cosine: Double?
        /// Same dtype and the same bytes.
        public var bitExact: Bool
    }

    public struct Reshaped: Sendable, Codable, Equatable {
        public var name: String
        public var originalShape: [Int]
        public var candidateShape: [Int]
    }

    public var original: String
    public var candidate: String
    public var tensors: [Row]
    /// Names only in the original, or only in the candidate.
    public var missingInCandidate: [String]
    public var missingInOriginal: [String]
    public var reshaped: [Reshaped]

    public init(original: Model, candidate: Model, originalFile: String, candidateFile: String) {
        self.original = originalFile
        self.candidate = candidateFile
        var candidates: [String: Tensor] = [:]
        for t in candidate.tensors where candidates[t.name] == nil { candidates[t.name] = t }
        let originalNames = Set(original.tensors.map(\.name))
        var pairs: [(Tensor, Tensor)] = []
        var reshaped: [Reshaped] = []
        var missing: [String] = []
        for t in original.tensors {
            guard let c = candidates[t.name] else { missing.append(t.name); continue }
            if c.shape != t.shape { reshaped.append(Reshaped(name: t.name, originalShape: t.shape, candidateShape: c.shape)); continue }
            pairs.append((t, c))
        }
        let matched = pairs
        tensors = Parallel.map(Array(matched.indices)) { i in Self.compare(matched[i].0, matched[i].1) }
        missingInCandidate = missing
        missingInOriginal = candidate.tensors.map(\.name).filter { !originalNames.contains($0) }
        self.reshaped = reshaped
    }

    static func compare(_ a: Tensor, _ b: Tensor) -> Row {
        let da = a.densified(), db = b.densified()
        var exact = false
        if a.dtype == b.dtype {
            switch (da.storage, db.storage) {
            case (.dense(let x), .dense(let y)): exact = x == y
            case (.strings(let x), .strings(let y)): exact = x == y
            default: break
            }
        }
        let x = da.floatValues(), y = db.floatValues()
        var maxError = 0.0, squaredError = 0.0, signal = 0.0, dot = 0.0, normA = 0.0, normB = 0.0
        for i in 0..<min(x.count, y.count) {
            let u = Double(x[i]), v = Double(y[i])
            let e = abs(u - v)
            if e.isNaN || e > maxError { maxError = e.isNaN ? .infinity : e }
            squaredError += e * e
            signal += u * u
            dot += u * v
            normA += u * u
            normB += v * v
        }
        let n = Double(max(1, min(x.count, y.count)))
        let snr: Double? = squaredError > 0 && signal > 0 && squaredError.isFinite ? 10 * log10(signal / squaredError) : nil
        let cosine: Double? = normA > 0 && normB > 0 ? dot / (normA.squareRoot() * normB.squareRoot()) : nil
        return Row(
            name: a.name, shape: a.shape, dtype: a.dtype.rawValue, maxAbsError: maxError.isFinite ? maxError : Double.greatestFiniteMagnitude,
            rmse: (squaredError / n).squareRoot(), snrDB: snr, cosine: cosine, bitExact: exact)
    }

    /// Aligned text: one row per tensor, then what did not match.
    public func renderText() -> String {
        var out = "weights: \(original) → \(candidate)\n\n"
        let rows = tensors.map { r in
            [
                r.name, Shape.describe(r.shape), r.dtype, Self.number(r.maxAbsError), Self.number(r.rmse),
                r.snrDB.map { String(format: "%.1f", $0) } ?? (r.rmse == 0 ? "inf" : "-"),
                r.cosine.map { String(format: "%.6f", $0) } ?? "-", r.bitExact ? "yes" : "no",
            ]
        }
        out += TextTable.render(header: ["tensor", "shape", "dtype", "max abs err", "rmse", "snr dB", "cosine", "exact"], rows: rows, rightAligned: Set(3..<7))
        let exact = tensors.filter(\.bitExact).count
        out += "\n\(tensors.count) tensors compared, \(exact) bit-exact"
        if let worst = tensors.filter({ !$0.bitExact }).compactMap(\.snrDB).min() { out += ", lowest SNR \(String(format: "%.1f", worst)) dB" }
        out += "\n"
        for name in missingInCandidate { out += "missing in candidate: \(name)\n" }
        for name in missingInOriginal { out += "only in candidate: \(name)\n" }
        for r in reshaped { out += "reshaped: \(r.name) \(Shape.describe(r.originalShape)) → \(Shape.describe(r.candidateShape))\n" }
        return out
    }

    public static func number(_ value: Double) -> String {
        value == 0 ? "0" : (abs(value) >= 1e-3 && abs(value) < 1e4 ? String(format: "%.6f", value) : String(format: "%.3e", value))
    }
}
