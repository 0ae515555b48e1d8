import Foundation
import PithEval

/// How well a compressed model does on validation data, against the original model on the same data.
public struct ModelMetrics: Sendable, Codable, Equatable {
    /// Top-1 accuracy against the labels (0…1); nil without labels.
    public var accuracy: Double?
    /// Share of samples (or steps) whose top-1 class is the original model's: the first output's
    /// argmax agreement when it holds class scores, or its per-sample top-1 with labels; nil otherwise.
    public var agreement: Double?
    /// The lowest SNR in dB over the floating-point outputs, 10·log10(Σa² / Σ(b − a)²); infinite when
    /// the outputs are the original's exactly.
    public var outputSNR: Double

    enum CodingKeys: String, CodingKey {
        case accuracy, agreement
        case outputSNR = "output_snr_db"
    }
}

/// The data a compressed model is checked on (`--data`, `--labels`): read once, with the original
/// model's outputs on it, so that each candidate costs one run of the evaluator.
struct ValidationSet {
    let path: String
    let inputs: [Value]
    let labels: [Int]?
    let batchSize: Int
    /// The original model's outputs, by name.
    let names: [String]
    let reference: [Value]
    /// The original model measured: agreement 1, SNR infinite, and its accuracy.
    let original: ModelMetrics

    var samples: Int { inputs.first?.shape.first ?? 0 }

    /// Reads `data` (and `labels`) for `model` and runs the original model on it. Refused (exit 65,
    /// naming the file): data that does not fit the model's inputs, no samples, a value that is not
    /// finite (naming the sample), labels that do not match the samples or the classes.
    static func load(data: String, labels labelPath: String?, scale: Double?, batchSize: Int, for model: Model) throws -> ValidationSet {
        let evaluator: Evaluator, inputs: [Value]
        do {
            evaluator = try Evaluator(model: model)
            inputs = try EvaluationInputs.inputs(data, for: evaluator, scale: scale).values
        } catch let error as any ReportableError {
            let kind = [ExitKind.noInput, .io].contains(error.exitKind) ? error.exitKind : .data
            let message = error.description.hasPrefix(data) ? error.description : "\(data): \(error.description)"
            throw PithError(kind, "validation data (--data): \(message)")
        }
        let samples = inputs.first?.shape.first ?? 0
        guard samples > 0 else { throw PithError(.data, "validation data (--data): \(data): holds no samples") }
        for value in inputs where value.isFloat {
            if let bad = value.floats.firstIndex(where: { !$0.isFinite }) {
                throw PithError(
                    .data,
                    "validation data (--data): \(data): sample \(bad / Swift.max(1, value.count / samples)) holds \(value.floats[bad]); the data must be finite"
                )
            }
        }
        let unlabeled = try prepared(inputs: inputs, path: data, batchSize: batchSize, evaluator: evaluator)
        let (names, reference) = (unlabeled.names, unlabeled.reference)
        let first = reference[0]
        var truth: [Int]?
        if let labelPath {
            let labels = try EvaluationInputs.labels(labelPath, samples: samples)
            let classes = first.rank >= 2 ? (first.shape.last ?? 0) : 0
            if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
                throw PithError(
                    .data,
                    "\(labelPath): label \(labels[bad]) of sample \(bad) is not a class of the model's first output `\(names[0])` (\(Shape.describe(first.shape)), \(classes) classes)"
                )
            }
            truth = labels
        }
        let base = ValidationSet(
            path: data, inputs: inputs, labels: truth, batchSize: batchSize, names: names, reference: reference, original: ModelMetrics(outputSNR: .infinity))
        return ValidationSet(
            path: data, inputs: inputs, labels: truth, batchSize: batchSize, names: names, reference: reference, original: base.metrics(of: reference))
    }

    /// Unlabeled `inputs`, already prepared for `evaluator` (the original model's), with its outputs on them.
    static func prepared(inputs: [Value], path: String, batchSize: Int, evaluator: Evaluator) throws -> ValidationSet {
        let (names, reference) = try PithError.translatingErrors { () -> ([String], [Value]) in
            let result = try evaluator.run(batched: inputs, batchSize: batchSize, outputs: nil)
            return (result.names, result.values)
        }
        guard !reference.isEmpty else { throw PithError(.unsupported, "\(path): the model computes no output the evaluator can run") }
        return ValidationSet(
            path: path, inputs: inputs, labels: nil, batchSize: batchSize, names: names, reference: reference, original: ModelMetrics(outputSNR: .infinity))
    }

    /// Runs `model` on the data and measures it against the original.
    func measure(_ model: Model) throws -> ModelMetrics {
        try PithError.translatingErrors {
            let evaluator = try Evaluator(model: model)
            let plan = try evaluator.plan(outputs: names)
            return metrics(of: try evaluator.run(batched: inputs, batchSize: batchSize, plan: plan))
        }
    }

    /// The metrics of `outputs` (the reference's names, in order).
    func metrics(of outputs: [Value]) -> ModelMetrics {
        var snr = Double.infinity
        var agreement: Double?
        for (k, (a, b)) in zip(reference, outputs).enumerated() where a.isFloat && a.shape == b.shape {
            let comparison = OutputComparison.compare(name: names[k], original: a, candidate: b, rtol: 0, atol: 0)
            if let value = comparison.snrDB { snr = Swift.min(snr, value) }
            if k == 0 { agreement = comparison.agreement }
        }
        let predicted = outputs.first?.argmaxRows ?? []
        if agreement == nil, labels != nil {
            let original = reference[0].argmaxRows
            agreement = Double(zip(original, predicted).filter { $0 == $1 }.count) / Double(Swift.max(1, samples))
        }
        let accuracy = labels.map { truth in Double(zip(predicted, truth).filter { $0 == $1 }.count) / Double(Swift.max(1, samples)) }
        return ModelMetrics(accuracy: accuracy, agreement: agreement, outputSNR: snr)
    }
}
