import Foundation
import PithEval

/// What `pith verify` measured: weights, and outputs when data is given.
public struct VerifyReport: Sendable, Codable {
    public struct Outputs: Sendable, Codable {
        public var data: String
        public var samples: Int
        /// The element tolerance of `withinTolerance`: |b − a| ≤ atol + rtol·|a|.
        public var rtol: Double
        public var atol: Double
        /// Every output of the models, compared (see `OutputComparison`).
        public var compared: [OutputComparison]
        /// Fraction of samples whose top-1 class is the same in both models: the agreement of the first
        /// output when it holds one score per class per sample (or when labels are given); nil otherwise.
        public var top1Agreement: Double?
        /// Largest and mean |candidate − original| over every element of every numeric output.
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
            func optional(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "-" }
            let rows = o.compared.map { c -> [String] in
                [
                    c.name, Shape.describe(c.shape), WeightComparison.number(c.maxAbsError), optional(c.relativeL2Error, "%.3g"),
                    optional(c.cosine, "%.6f"), c.snrDB.map { String(format: "%.1f", $0) } ?? (c.maxAbsError == 0 ? "exact" : "-"),
                    TextTable.percent(c.withinTolerance), c.agreement.map { TextTable.percent($0) } ?? "-",
                ]
            }
            out += TextTable.render(
                header: ["output", "shape", "max |err|", "rel L2", "cosine", "snr dB", "within tol", "argmax agree"], rows: rows,
                rightAligned: Set(2..<8))
            out += "  (within tol: |candidate − original| ≤ \(o.atol) + \(o.rtol)·|original|; argmax agreement only for class scores)\n"
            if let agreement = o.top1Agreement { out += "  top-1 agreement: \(String(format: "%.2f%%", agreement * 100))\n" }
            if let a = o.originalAccuracy, let b = o.candidateAccuracy {
                out +=
                    "  accuracy: original \(String(format: "%.2f%%", a * 100)), candidate \(String(format: "%.2f%%", b * 100)) (\(String(format: "%+.2f", (b - a) * 100)) points)\n"
            }
            out += "  output difference: max \(WeightComparison.number(o.maxOutputDifference)), mean \(WeightComparison.number(o.meanOutputDifference))\n"
        }
        out += failures.isEmpty ? "\nverify: passed\n" : "\nverify: FAILED\n" + failures.map { "  \($0)\n" }.joined()
        return out
    }
}

/// `pith verify`: two models compared tensor by tensor and, with data, output by output; then gates.
public enum Verification {
    /// Gates for `verify`, and the tolerance of the outputs' `withinTolerance`.
    public struct Thresholds: Sendable {
        public var maxRMSE: Double?
        public var minSNR: Double?
        public var requireExact = false
        /// Least argmax agreement of every class-score output (and top-1 with labels).
        public var minAgreement: Double?
        /// Least SNR in dB of every floating-point output.
        public var minOutputSNR: Double?
        /// Least cosine similarity of every floating-point output.
        public var minCosine: Double?
        /// Largest |candidate − original| allowed in any element of any output.
        public var maxOutputError: Double?
        public var rtol = 1e-3
        public var atol = 1e-5

        public init(
            maxRMSE: Double? = nil, minSNR: Double? = nil, requireExact: Bool = false, minAgreement: Double? = nil,
            minOutputSNR: Double? = nil, minCosine: Double? = nil, maxOutputError: Double? = nil, rtol: Double = 1e-3, atol: Double = 1e-5
        ) {
            self.maxRMSE = maxRMSE
            self.minSNR = minSNR
            self.requireExact = requireExact
            self.minAgreement = minAgreement
            self.minOutputSNR = minOutputSNR
            self.minCosine = minCosine
            self.maxOutputError = maxOutputError
            self.rtol = rtol
            self.atol = atol
        }

        /// Whether a gate needs the models run on data.
        public var needsData: Bool { minAgreement != nil || minOutputSNR != nil || minCosine != nil || maxOutputError != nil }
    }

    public static func run(
        original: String, candidate: String, data: String?, labels labelPath: String?, batchSize: Int, scale: Double?, thresholds: Thresholds
    ) throws -> VerifyReport {
        try PithError.translatingErrors {
            let a = try ModelFile.loadForEvaluation(original), b = try ModelFile.loadForEvaluation(candidate)
            let weights = WeightComparison(original: a, candidate: b, originalFile: original, candidateFile: candidate)
            var report = VerifyReport(weights: weights, outputs: nil, failures: [])
            if let data {
                report.outputs = try compareOutputs(a, b, data: data, labels: labelPath, batchSize: batchSize, scale: scale, thresholds: thresholds)
            }
            report.failures = gates(report, thresholds)
            return report
        }
    }

    /// Both models run on `data`, every output compared.
    static func compareOutputs(
        _ a: Model, _ b: Model, data: String, labels labelPath: String?, batchSize: Int, scale: Double?, thresholds t: Thresholds
    ) throws -> VerifyReport.Outputs {
        let ea = try Evaluator(model: a), eb = try Evaluator(model: b)
        let (inputs, _) = try EvaluationInputs.inputs(data, for: ea, scale: scale)
        let samples = inputs.first?.shape.first ?? 0
        let truth = try labelPath.map { try EvaluationInputs.labels($0, samples: samples) }
        let ra = try ea.run(batched: inputs, batchSize: batchSize, outputs: nil)
        let rb = try eb.run(batched: inputs, batchSize: batchSize, outputs: nil)
        // Outputs are paired by name; models whose output names differ entirely (an ONNX model and its
        // Keras twin) by position, when they have as many.
        var pairs = ra.names.filter { rb[$0] != nil }.map { (name: $0, a: ra[$0]!, b: rb[$0]!) }
        if pairs.isEmpty, ra.names.count == rb.names.count {
            pairs = zip(ra.names, zip(ra.values, rb.values)).map { (name: $0, a: $1.0, b: $1.1) }
        }
        guard !pairs.isEmpty else {
            throw PithError(
                .data,
                "the models have no output in common to compare (original: \(ra.names.joined(separator: ", ")); candidate: \(rb.names.joined(separator: ", ")))"
            )
        }
        let oa = pairs.map(\.a), ob = pairs.map(\.b), names = pairs.map(\.name)
        var compared: [OutputComparison] = []
        var maxDiff = 0.0, sumDiff = 0.0, elements = 0
        for (k, (x, y)) in zip(oa, ob).enumerated() {
            guard x.shape == y.shape else {
                throw PithError(
                    .data, "output `\(names[k])` has shape \(Shape.describe(x.shape)) in the original and \(Shape.describe(y.shape)) in the candidate")
            }
            let c = OutputComparison.compare(name: names[k], original: x, candidate: y, rtol: t.rtol, atol: t.atol)
            compared.append(c)
            if !x.isString {
                maxDiff = max(maxDiff, c.maxAbsError)
                sumDiff += c.meanAbsError * Double(x.count)
                elements += x.count
            }
        }
        let pa = oa[0].argmaxRows, pb = ob[0].argmaxRows
        let perSample = compared[0].agreement != nil && oa[0].rank == 2
        func accuracy(_ p: [Int]) -> Double? { truth.map { t in Double(zip(p, t).filter { $0 == $1 }.count) / Double(max(samples, 1)) } }
        return .init(
            data: data, samples: samples, rtol: t.rtol, atol: t.atol, compared: compared,
            top1Agreement: perSample || truth != nil ? Double(zip(pa, pb).filter { $0 == $1 }.count) / Double(max(samples, 1)) : nil,
            maxOutputDifference: maxDiff, meanOutputDifference: elements == 0 ? 0 : sumDiff / Double(elements),
            originalAccuracy: accuracy(pa), candidateAccuracy: accuracy(pb))
    }

    static func gates(_ report: VerifyReport, _ t: Thresholds) -> [String] {
        var failures: [String] = []
        let w = report.weights
        if report.outputs == nil, w.tensors.isEmpty {
            failures.append("nothing was compared: the models share no tensor name and no --data was given to compare their outputs")
        }
        // Weight gates need every tensor on both sides; a factored export (other tensors, same
        // function) is checked by its outputs instead.
        if t.maxRMSE != nil || t.minSNR != nil || t.requireExact {
            if !w.missingInCandidate.isEmpty {
                failures.append("\(w.missingInCandidate.count) tensors missing in the candidate: \(w.missingInCandidate.prefix(5).joined(separator: ", "))")
            }
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
        guard let o = report.outputs else { return failures }
        if let limit = t.minAgreement {
            let scored = o.compared.filter { $0.agreement != nil }
            for c in scored where c.agreement! < limit {
                failures.append("output `\(c.name)`: argmax agreement \(String(format: "%.4f", c.agreement!)) < --min-agreement \(limit)")
            }
            // With labels, the first output's top-1 class per sample counts even when it is not a score table.
            if o.compared.first?.agreement == nil, let top1 = o.top1Agreement, top1 < limit {
                failures.append("top-1 agreement \(String(format: "%.4f", top1)) < --min-agreement \(limit)")
            }
            if scored.isEmpty, o.top1Agreement == nil {
                failures.append(
                    "--min-agreement: no output holds class scores (rank 2 or 3, one score per class on the last axis); gate the outputs with --min-output-snr or --min-cosine"
                )
            }
        }
        if let limit = t.minOutputSNR {
            for c in o.compared {
                if let snr = c.snrDB, snr < limit {
                    failures.append("output `\(c.name)`: SNR \(String(format: "%.1f", snr)) dB < --min-output-snr \(limit) dB")
                }
            }
        }
        if let limit = t.minCosine {
            for c in o.compared where c.maxAbsError > 0 && (c.cosine ?? -1) < limit && c.relativeL2Error != nil {
                failures.append(
                    "output `\(c.name)`: cosine \(c.cosine.map { String(format: "%.6f", $0) } ?? "undefined (zero output)") < --min-cosine \(limit)")
            }
        }
        if let limit = t.maxOutputError {
            for c in o.compared where !(c.maxAbsError <= limit) {
                failures.append("output `\(c.name)`: max |error| \(WeightComparison.number(c.maxAbsError)) > --max-output-error \(limit)")
            }
        }
        return failures
    }
}

extension VerifyReport {
    public func renderJSON() -> String { ReportJSON.text(self) }
}
