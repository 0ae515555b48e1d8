import Foundation
import PithEval

/// The data files `eval` and `verify` share: inputs matched to the model, and labels.
public enum EvaluationInputs {
    /// Inputs from `dataPath` for the evaluator: arrays matched to inputs by name (`.npz`) or in
    /// order, multiplied by `scale` (default: 1/255 for 8-bit IDX images, else 1).
    /// `arrays` are the file's arrays when the caller has read them already (`DataFiles.read`).
    public static func inputs(
        _ dataPath: String, for evaluator: Evaluator, scale: Double?, arrays: [(name: String, value: Value)]? = nil
    ) throws -> (values: [Value], scale: Double) {
        let (values, factor, _) = try inputs(dataPath, for: evaluator, scale: scale, first: nil, arrays: arrays)
        return (values, factor)
    }

    /// As `inputs(_:for:scale:arrays:)`, only the first `first` samples (all when nil) prepared and
    /// scaled; `available` is how many samples the file holds.
    static func inputs(
        _ dataPath: String, for evaluator: Evaluator, scale: Double?, first: Int?, arrays read: [(name: String, value: Value)]? = nil
    ) throws -> (
        values: [Value], scale: Double, available: Int
    ) {
        let arrays = try read ?? DataFiles.read(dataPath)
        var chosen: [Value] = []
        for (index, input) in evaluator.inputs.enumerated() {
            if let named = arrays.first(where: { $0.name == input.name }) {
                chosen.append(named.value)
            } else if index < arrays.count {
                chosen.append(arrays[index].value)
            } else {
                throw PithError(.usage, "\(dataPath): no array for model input `\(input.name)` (the file holds \(arrays.map(\.name).joined(separator: ", ")))")
            }
        }
        let available = chosen.first?.shape.first ?? 0
        if let first {
            // Sliced before they are prepared and scaled (a file may hold far more samples than asked for).
            chosen = chosen.map { $0.rank >= 2 ? Calibration.rows($0, 0..<Swift.min(first, $0.shape.first ?? 0)) : $0 }
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
        return (values, factor, available)
    }

    public static func labels(_ path: String, samples: Int) throws -> [Int] {
        guard let first = try DataFiles.read(path).first else { throw PithError(.data, "\(path): holds no labels") }
        let labels = first.value.asInts.map { Int($0) }
        guard labels.count == samples else { throw PithError(.data, "\(path): \(labels.count) labels for \(samples) samples") }
        return labels
    }
}
