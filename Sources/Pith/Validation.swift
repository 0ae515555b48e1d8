import Foundation
@_exported public import PithEval
import PithONNX
import PithContainer

extension ModelFile {
    /// The model at `path` ready to evaluate: for a `.pith` container of an ONNX model, the graph
    /// is read back from the container's skeleton, with the container's tensors.
    public static func loadForEvaluation(_ path: String) throws -> Model {
        try PithError.translatingErrors {
            guard try detectFormat(of: path) == .pith else { return try load(path) }
            let contents = try ContainerReader.read(contentsOf: path)
            guard contents.model.format == .onnx else { return contents.model }
            guard let skeleton = contents.skeleton else { throw PithError(.data, "\(path): the container has no ONNX skeleton to evaluate the graph of") }
            var model = try ONNXReader.read(skeleton: skeleton, tensors: contents.model.tensors, file: path)
            model.metadata.producerName = contents.model.metadata.producerName
            return model
        }
    }
}

/// What `pith eval` measured.
public struct EvalReport: Sendable, Codable {
    public var model: String
    public var data: String
    public var samples: Int
    /// What each input value was multiplied by.
    public var scale: Double
    public var batchSize: Int
    public var seconds: Double
    /// Shape of the first output.
    public var outputShape: [Int]
    public var labels: String?
    public var correct: Int?
    public var accuracy: Double?

    public func renderText() -> String {
        var out = "\(model) on \(data): \(TextTable.grouped(samples)) samples"
        if scale != 1 { out += " (values × \(Self.scaleText(scale)))" }
        out += ", output \(Shape.describe(outputShape))\n"
        if let correct, let accuracy {
            out += "top-1 accuracy: \(String(format: "%.2f%%", accuracy * 100)) (\(TextTable.grouped(correct)) of \(TextTable.grouped(samples)) correct; error \(String(format: "%.2f%%", (1 - accuracy) * 100)))\n"
        }
        out += "time: \(String(format: "%.3f", seconds)) s in batches of \(batchSize) on \(Parallel.cores) cores\n"
        return out
    }

    static func scaleText(_ scale: Double) -> String { abs(scale - 1.0 / 255) < 1e-12 ? "1/255" : String(scale) }
}

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

/// Evaluation and verification of models on data.
public enum Validation {
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

    /// Inputs from `dataPath` for the evaluator: arrays matched to inputs by name (`.npz`) or in
    /// order, multiplied by `scale` (default: 1/255 for 8-bit IDX images, else 1).
    static func inputs(_ dataPath: String, for evaluator: Evaluator, scale: Double?) throws -> (values: [Value], scale: Double) {
        let arrays = try DataFiles.read(dataPath)
        var chosen: [Value] = []
        for (index, input) in evaluator.inputs.enumerated() {
            if let named = arrays.first(where: { $0.name == input.name }) { chosen.append(named.value) } else if index < arrays.count {
                chosen.append(arrays[index].value)
            } else {
                throw PithError(.usage, "\(dataPath): no array for model input `\(input.name)` (the file holds \(arrays.map(\.name).joined(separator: ", ")))")
            }
        }
        let isImageBytes = chosen.first?.dtype == .uint8 && !dataPath.hasSuffix(".npy") && !dataPath.hasSuffix(".npz")
        let factor = scale ?? (isImageBytes ? 1.0 / 255 : 1)
        let values = try chosen.enumerated().map { index, value -> Value in
            var v = try evaluator.prepare(value, forInput: index)
            if factor != 1 {
                if !v.isFloat { v = try v.cast(to: .float32) }
                v.floats = v.floats.map { Float(Double($0) * factor) }
            }
            return v
        }
        return (values, factor)
    }

    static func labels(_ path: String, samples: Int) throws -> [Int] {
        guard let first = try DataFiles.read(path).first else { throw PithError(.data, "\(path): holds no labels") }
        let labels = first.value.asInts.map { Int($0) }
        guard labels.count == samples else { throw PithError(.data, "\(path): \(labels.count) labels for \(samples) samples") }
        return labels
    }

    public static func evaluate(model path: String, data: String, labels labelPath: String?, batchSize: Int, scale: Double?) throws -> (EvalReport, [Value]) {
        try PithError.translatingErrors {
            let evaluator = try Evaluator(model: ModelFile.loadForEvaluation(path))
            let (inputs, factor) = try Self.inputs(data, for: evaluator, scale: scale)
            let samples = inputs.first?.shape.first ?? 0
            let truth = try labelPath.map { try labels($0, samples: samples) }
            let start = DispatchTime.now().uptimeNanoseconds
            let outputs = try evaluator.run(batched: inputs, batchSize: batchSize)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            var report = EvalReport(model: path, data: data, samples: samples, scale: factor, batchSize: batchSize, seconds: seconds,
                                    outputShape: outputs.first?.shape ?? [], labels: labelPath)
            if let truth, let first = outputs.first {
                let correct = zip(first.argmaxRows, truth).filter { $0 == $1 }.count
                report.correct = correct
                report.accuracy = samples == 0 ? 0 : Double(correct) / Double(samples)
            }
            return (report, outputs)
        }
    }

    public static func verify(original: String, candidate: String, data: String?, labels labelPath: String?, batchSize: Int, scale: Double?, thresholds: Thresholds) throws -> VerifyReport {
        try PithError.translatingErrors {
            let a = try ModelFile.loadForEvaluation(original), b = try ModelFile.loadForEvaluation(candidate)
            let weights = WeightComparison(original: a, candidate: b, originalFile: original, candidateFile: candidate)
            var report = VerifyReport(weights: weights, outputs: nil, failures: [])
            if let data {
                let ea = try Evaluator(model: a), eb = try Evaluator(model: b)
                let (inputs, _) = try Self.inputs(data, for: ea, scale: scale)
                let samples = inputs.first?.shape.first ?? 0
                let truth = try labelPath.map { try labels($0, samples: samples) }
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

extension EvalReport {
    public func renderJSON() -> String { jsonText(self) }
}

extension VerifyReport {
    public func renderJSON() -> String { jsonText(self) }
}

func jsonText<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try! encoder.encode(value), as: UTF8.self) + "\n"
}
