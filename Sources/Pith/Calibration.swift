import Foundation
import PithEval

/// Calibration data for the data-aware passes (`pith compress --calibration FILE`): unlabeled samples
/// the model is run on to capture each compressed layer's input. `.npy`, `.npz` (arrays matched to the
/// model's inputs by name, else in order) or IDX; 8-bit IDX images are scaled by 1/255, as `pith eval`
/// does.
public struct Calibration: CalibrationSource {
    /// What `--calibration`, `--calibration-samples` and `--calibration-scale` ask for.
    public struct Request: Sendable {
        public var path: String
        /// The first `samples` samples of the file (default `Calibration.defaultSamples`).
        public var samples: Int?
        /// What each value is multiplied by (default: 1/255 for 8-bit IDX images, else 1).
        public var scale: Double?

        public init(path: String, samples: Int? = nil, scale: Double? = nil) {
            self.path = path
            self.samples = samples
            self.scale = scale
        }
    }

    /// Samples taken from a larger file unless `--calibration-samples` says otherwise.
    public static let defaultSamples = 1024
    /// Samples run through the model at once: a capture holds at most this many samples' activations.
    public static let batchSamples = 256

    public let name: String
    public let samples: Int
    /// One value per model input, every sample, prepared for the evaluator.
    let inputs: [Value]

    /// Reads and checks the data for `model`: it must fit the model's inputs (exit 65, naming the file
    /// and the input), hold at least one sample, and be finite.
    public static func load(_ request: Request, for model: Model) throws -> Calibration {
        let path = request.path
        let prepared: [Value]
        do {
            let evaluator = try Evaluator(model: model)
            prepared = try EvaluationInputs.inputs(path, for: evaluator, scale: request.scale).values
        } catch let error as any ReportableError {
            let kind = [ExitKind.noInput, .io].contains(error.exitKind) ? error.exitKind : .data
            let message = error.description.hasPrefix(path) ? error.description : "\(path): \(error.description)"
            throw PithError(kind, "calibration data: \(message)")
        }
        let available = prepared.first?.shape.first ?? 0
        guard available > 0 else { throw PithError(.data, "calibration data: \(path): holds no samples; calibration needs at least one") }
        let count = Swift.min(available, request.samples ?? defaultSamples)
        let inputs = prepared.map { rows($0, 0..<count) }
        for value in inputs where value.isFloat {
            if let bad = value.floats.firstIndex(where: { !$0.isFinite }) {
                let perSample = value.count / Swift.max(1, value.shape.first ?? 1)
                throw PithError(
                    .data, "calibration data: \(path): sample \(bad / Swift.max(1, perSample)) holds \(value.floats[bad]); calibration data must be finite")
            }
        }
        let name = count < available ? "\(path) (first \(count) of \(available) samples)" : path
        return Calibration(name: name, samples: count, inputs: inputs)
    }

    public func capture(_ value: String, in model: Model, _ body: (_ values: [Float], _ shape: [Int]) throws -> Void) throws {
        try PithError.translatingErrors {
            let evaluator = try Evaluator(model: model)
            let plan = try evaluator.plan(outputs: [value])
            var start = 0
            while start < samples {
                let range = start..<Swift.min(start + Self.batchSamples, samples)
                let part = inputs.map { Self.rows($0, range) }
                let batch = Swift.max(1, (range.count + Parallel.cores - 1) / Parallel.cores)
                guard let captured = try evaluator.run(batched: part, batchSize: batch, plan: plan).first else { return }
                try body(captured.asFloats, captured.shape)
                start = range.upperBound
            }
        }
    }

    /// Samples `range` (axis 0) of `value`.
    static func rows(_ value: Value, _ range: Range<Int>) -> Value {
        var out = value
        guard let samples = value.shape.first, samples > 0 else { return out }
        let inner = value.count / samples
        out.shape[0] = range.count
        let slice = range.lowerBound * inner..<range.upperBound * inner
        if value.isString {
            out.strings = Array(value.strings[slice])
        } else if value.isFloat {
            out.floats = Array(value.floats[slice])
        } else {
            out.ints = Array(value.ints[slice])
        }
        return out
    }
}
