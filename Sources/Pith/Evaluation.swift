import Foundation
@_exported public import PithEval
import PithIR

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
    /// Every output computed, with its shape, in order.
    public var outputs: [Output] = []
    /// Outputs that could not be computed (an operator the evaluator lacks), with the reason.
    public var skipped: [Skipped] = []
    public var labels: String?
    public var correct: Int?
    public var accuracy: Double?

    public struct Output: Sendable, Codable {
        public var name: String
        public var shape: [Int]
    }

    public struct Skipped: Sendable, Codable {
        public var name: String
        public var reason: String
    }

    public func renderText() -> String {
        var out = "\(model) on \(data): \(TextTable.grouped(samples)) samples"
        if scale != 1 { out += " (values × \(Self.scaleText(scale)))" }
        if outputs.count > 1 {
            out += "\noutputs: " + outputs.map { "\($0.name) \(Shape.describe($0.shape))" }.joined(separator: ", ") + "\n"
        } else {
            out += ", output \(Shape.describe(outputShape))\n"
        }
        for skip in skipped { out += "skipped output `\(skip.name)`: \(skip.reason)\n" }
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
    /// Runs the model at `path` on `data`: the outputs `outputs` names (nil: every graph output that can
    /// be computed; the others are named in the report's `skipped`), with top-1 accuracy of the first
    /// output against `labels`. With `saveOutputs`, the outputs are written to that `.npz` under their
    /// names (checked writable before the model runs).
    public static func run(
        model path: String, data: String, labels labelPath: String?, batchSize: Int, scale: Double?, outputs names: [String]? = nil,
        saveOutputs: String? = nil
    ) throws -> (EvalReport, EvaluatedOutputs) {
        try PithError.translatingErrors {
            if let saveOutputs { try AtomicFile.checkWritable(saveOutputs, input: path, force: true) }
            Evaluator.prepareHeap()
            // The model is loaded and prepared on one core while the data file is read on another.
            let (evaluator, arrays) = try loadConcurrently(model: path, data: data)
            let (inputs, factor) = try EvaluationInputs.inputs(data, for: evaluator, scale: scale, arrays: arrays)
            let samples = inputs.first?.shape.first ?? 0
            let truth = try labelPath.map { try EvaluationInputs.labels($0, samples: samples) }
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try evaluator.run(batched: inputs, batchSize: batchSize, outputs: names)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            var report = EvalReport(
                model: path, data: data, samples: samples, scale: factor, batchSize: batchSize, seconds: seconds,
                outputShape: result.values.first?.shape ?? [], labels: labelPath)
            report.outputs = zip(result.names, result.values).map { EvalReport.Output(name: $0, shape: $1.shape) }
            report.skipped = result.skipped.map { EvalReport.Skipped(name: $0.name, reason: $0.reason.description) }
            if let truth, let first = result.values.first {
                let correct = zip(first.argmaxRows, truth).filter { $0 == $1 }.count
                report.correct = correct
                report.accuracy = samples == 0 ? 0 : Double(correct) / Double(samples)
            }
            if let saveOutputs {
                try AtomicFile.write(DataFiles.npz(zip(result.names, result.values).map { (name: $0, value: $1) }), to: saveOutputs)
            }
            return (report, result)
        }
    }
}

extension Evaluation {
    /// The evaluator of the model at `path` and the arrays of the data file at `data`, made at the
    /// same time on two cores (the model's errors first, as when done one after the other).
    ///
    /// Not for HDF5 models: their reader forks a child process to read the file first
    /// (`HDF5Reader.isolatesCrashes`), and a child forked while another thread holds a lock of the
    /// Swift runtime waits for it forever (seen: the data read instantiating type metadata). They are
    /// small; model, then data.
    static func loadConcurrently(model path: String, data: String) throws -> (Evaluator, [(name: String, value: Value)]) {
        if try ModelFile.detectFormat(of: path) == .hdf5 {
            let evaluator = try Evaluator(model: ModelFile.loadForEvaluation(path))
            return (evaluator, try DataFiles.read(data))
        }
        enum Part: Sendable {
            case evaluator(Evaluator)
            case arrays([(name: String, value: Value)])
        }
        let parts = try Parallel.map(count: 2, makeWorker: {}) { (_: inout Void, k: Int) throws -> Part in
            k == 0 ? .evaluator(try Evaluator(model: ModelFile.loadForEvaluation(path))) : .arrays(try DataFiles.read(data))
        }
        guard case .evaluator(let evaluator) = parts[0], case .arrays(let arrays) = parts[1] else { preconditionFailure("two parts, in order") }
        return (evaluator, arrays)
    }
}

extension EvalReport {
    public func renderJSON() -> String { ReportJSON.text(self) }
}
