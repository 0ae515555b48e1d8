import Foundation
import PithEval

/// What `pith verify` measured: weights, and outputs when data is given.
public struct VerifyReport: Sendable, Codable {
    public struct Outputs: Sendable, Codable {
        public var data: String
        public var samples: Int
        /// Fraction of samples whose top-1 class is the same in both models.
        public var top1Agreement: Double
        public var maxOutputDifference: Double
        public var meanOutputDifference: Double
        public var originalAccuracy: Double?
        public var candidateAccuracy: Double?
    }

    public var weights: WeightComparison
    public var outputs: Outputs?
    /// Gates that failed, in words; empty when every requested threshold holds.
    public var failures: [String]

    public func renderText() -> String {
        var out = weights.renderText()
        if let o = outputs {
            out += "\noutputs on \(o.data) (\(TextTable.grouped(o.samples)) samples):\n"
            out += "  top-1 agreement: \(String(format: "%.2f%%", o.top1Agreement * 100))\n"
            if let a = o.originalAccuracy, let b = o.candidateAccuracy {
                out += "  accuracy: original \(String(format: "%.2f%%", a * 100)), candidate \(String(format: "%.2f%%", b * 100)) (\(String(format: "%+.2f", (b - a) * 100)) points)\n"
            }
            out += "  output difference: max \(WeightComparison.number(o.maxOutputDifference)), mean \(WeightComparison.number(o.meanOutputDifference))\n"
        }
        out += failures.isEmpty ? "\nverify: passed\n" : "\nverify: FAILED\n" + failures.map { "  \($0)\n" }.joined()
        return out
    }
}

/// `pith verify`: two models compared tensor by tensor and, with data, output by output; then gates.
public enum Verification {
    /// Gates for `verify`.
    public struct Thresholds: Sendable {
        public var maxRMSE: Double?
        public var minSNR: Double?
        public var requireExact = false
        public var minAgreement: Double?
        public init(maxRMSE: Double? = nil, minSNR: Double? = nil, requireExact: Bool = false, minAgreement: Double? = nil) {
            self.maxRMSE = maxRMSE
            self.minSNR = minSNR
            self.requireExact = requireExact
            self.minAgreement = minAgreement
        }
    }

    public static func run(original: String, candidate: String, data: String?, labels labelPath: String?, batchSize: Int, scale: Double?, thresholds: Thresholds) throws -> VerifyReport {
        try PithError.translatingErrors {
            let a = try ModelFile.loadForEvaluation(original), b = try ModelFile.loadForEvaluation(candidate)
            let weights = WeightComparison(original: a, candidate: b, originalFile: original, candidateFile: candidate)
            var report = VerifyReport(weights: weights, outputs: nil, failures: [])
            if let data {
                let ea = try Evaluator(model: a), eb = try Evaluator(model: b)
                let (inputs, _) = try EvaluationInputs.inputs(data, for: ea, scale: scale)
                let samples = inputs.first?.shape.first ?? 0
                let truth = try labelPath.map { try EvaluationInputs.labels($0, samples: samples) }
                guard let oa = try ea.run(batched: inputs, batchSize: batchSize).first, let ob = try eb.run(batched: inputs, batchSize: batchSize).first else {
                    throw PithError(.data, "the models produce no outputs")
                }
                guard oa.shape == ob.shape else { throw PithError(.data, "outputs differ in shape: \(oa.shape) and \(ob.shape)") }
                let pa = oa.argmaxRows, pb = ob.argmaxRows
                let x = oa.asFloats, y = ob.asFloats
                var maxDiff = 0.0, sumDiff = 0.0
                for i in 0..<x.count { let d = Double(abs(x[i] - y[i])); maxDiff = max(maxDiff, d); sumDiff += d }
                func accuracy(_ p: [Int]) -> Double? { truth.map { t in Double(zip(p, t).filter { $0 == $1 }.count) / Double(max(samples, 1)) } }
                report.outputs = .init(data: data, samples: samples, top1Agreement: Double(zip(pa, pb).filter { $0 == $1 }.count) / Double(max(samples, 1)),
                                       maxOutputDifference: maxDiff, meanOutputDifference: x.isEmpty ? 0 : sumDiff / Double(x.count),
                                       originalAccuracy: accuracy(pa), candidateAccuracy: accuracy(pb))
            }
            report.failures = gates(report, thresholds)
            return report
        }
    }

    static func gates(_ report: VerifyReport, _ t: Thresholds) -> [String] {
        var failures: [String] = []
        let w = report.weights
        // Weight gates need every tensor on both sides; a factored export (other tensors, same
        // function) is checked by its outputs instead.
        if t.maxRMSE != nil || t.minSNR != nil || t.requireExact {
            if !w.missingInCandidate.isEmpty { failures.append("\(w.missingInCandidate.count) tensors missing in the candidate: \(w.missingInCandidate.prefix(5).joined(separator: ", "))") }
            if !w.reshaped.isEmpty { failures.append("\(w.reshaped.count) tensors reshaped: \(w.reshaped.prefix(5).map(\.name).joined(separator: ", "))") }
        }
        if let limit = t.maxRMSE {
            for r in w.tensors where r.rmse > limit { failures.append("`\(r.name)`: RMSE \(WeightComparison.number(r.rmse)) > --max-rmse \(limit)") }
        }
        if let limit = t.minSNR {
            for r in w.tensors where !r.bitExact && (r.snrDB ?? -.infinity) < limit && r.rmse > 0 {
                failures.append("`\(r.name)`: SNR \(r.snrDB.map { String(format: "%.1f dB", $0) } ?? "undefined (zero signal)") < --min-snr \(limit) dB")
            }
        }
        if t.requireExact {
            for r in w.tensors where !r.bitExact { failures.append("`\(r.name)`: not bit-exact (--require-exact)") }
        }
        if let limit = t.minAgreement, let o = report.outputs, o.top1Agreement < limit {
            failures.append("top-1 agreement \(String(format: "%.4f", o.top1Agreement)) < --min-agreement \(limit)")
        }
        return failures
    }
}

extension VerifyReport {
    public func renderJSON() -> String { ReportJSON.text(self) }
}
