import Foundation
@_exported public import PithEval

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
            out +=
                "top-1 accuracy: \(String(format: "%.2f%%", accuracy * 100)) (\(TextTable.grouped(correct)) of \(TextTable.grouped(samples)) correct; error \(String(format: "%.2f%%", (1 - accuracy) * 100)))\n"
        }
        out += "time: \(String(format: "%.3f", seconds)) s in batches of \(batchSize) on \(Parallel.cores) cores\n"
        return out
    }

    static func scaleText(_ scale: Double) -> String { abs(scale - 1.0 / 255) < 1e-12 ? "1/255" : String(scale) }
}

/// `pith eval`: a model run on data with the reference evaluator.
public enum Evaluation {
    public static func run(model path: String, data: String, labels labelPath: String?, batchSize: Int, scale: Double?) throws -> (EvalReport, [Value]) {
        try PithError.translatingErrors {
            let evaluator = try Evaluator(model: ModelFile.loadForEvaluation(path))
            let (inputs, factor) = try EvaluationInputs.inputs(data, for: evaluator, scale: scale)
            let samples = inputs.first?.shape.first ?? 0
            let truth = try labelPath.map { try EvaluationInputs.labels($0, samples: samples) }
            let start = DispatchTime.now().uptimeNanoseconds
            let outputs = try evaluator.run(batched: inputs, batchSize: batchSize)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            var report = EvalReport(
                model: path, data: data, samples: samples, scale: factor, batchSize: batchSize, seconds: seconds,
                outputShape: outputs.first?.shape ?? [], labels: labelPath)
            if let truth, let first = outputs.first {
                let correct = zip(first.argmaxRows, truth).filter { $0 == $1 }.count
                report.correct = correct
                report.accuracy = samples == 0 ? 0 : Double(correct) / Double(samples)
            }
            return (report, outputs)
        }
    }
}

extension EvalReport {
    public func renderJSON() -> String { ReportJSON.text(self) }
}
