import Foundation
import PithEval

/// One model output of `verify`: the candidate's values against the original's, element by element.
///
/// Every measure is over all samples at once: `relativeL2Error` = ‖b − a‖ / ‖a‖, `cosine` =
/// ⟨a, b⟩ / (‖a‖ ‖b‖), `snrDB` = 10 log₁₀(‖a‖² / ‖b − a‖²) (nil when the outputs are equal), and
/// `withinTolerance` the share of elements with |b − a| ≤ atol + rtol·|a| (numpy's `allclose` rule).
/// Integer, boolean and string outputs are compared exactly: `withinTolerance` is then the share of
/// equal elements. `agreement` is set only for outputs that hold class scores — floating-point, rank
/// 2 or 3, at least two entries on the last axis (one score per class, per sample or per step) —
/// and is the share of positions whose largest score has the same index in both.
public struct OutputComparison: Sendable, Codable {
    public var name: String
    public var shape: [Int]
    public var maxAbsError: Double
    public var meanAbsError: Double
    public var relativeL2Error: Double?
    public var cosine: Double?
    public var snrDB: Double?
    public var withinTolerance: Double
    /// Argmax agreement along the last axis, for class-score outputs.
    public var agreement: Double?
    /// Positions the agreement counts (samples, or samples × steps).
    public var agreementPositions: Int?

    /// Compares `candidate` with `original` (same shape; checked by the caller).
    public static func compare(name: String, original a: Value, candidate b: Value, rtol: Double, atol: Double) -> OutputComparison {
        var result = OutputComparison(name: name, shape: a.shape, maxAbsError: 0, meanAbsError: 0, withinTolerance: 1)
        let count = a.count
        guard count > 0 else { return result }
        if a.isString || b.isString {
            let equal = zip(a.strings, b.strings).filter { $0 == $1 }.count
            result.withinTolerance = Double(equal) / Double(count)
            return result
        }
        if !a.isFloat && !b.isFloat {
            var equal = 0, maxError = 0.0, sumError = 0.0
            for (x, y) in zip(a.ints, b.ints) {
                if x == y { equal += 1 }
                let d = abs(Double(x) - Double(y))
                maxError = max(maxError, d)
                sumError += d
            }
            result.maxAbsError = maxError
            result.meanAbsError = sumError / Double(count)
            result.withinTolerance = Double(equal) / Double(count)
            return result
        }
        let x = a.asFloats, y = b.asFloats
        var maxError = 0.0, sumError = 0.0, within = 0
        var aa = 0.0, bb = 0.0, ab = 0.0, ee = 0.0
        for i in 0..<count {
            let u = Double(x[i]), v = Double(y[i])
            let d = v - u
            let magnitude = abs(d)
            if magnitude.isNaN || u.isNaN != v.isNaN { maxError = .infinity } else { maxError = max(maxError, magnitude) }
            sumError += magnitude
            if magnitude <= atol + rtol * abs(u) || (u == v) { within += 1 }
            aa += u * u
            bb += v * v
            ab += u * v
            ee += d * d
        }
        result.maxAbsError = maxError
        result.meanAbsError = sumError / Double(count)
        result.withinTolerance = Double(within) / Double(count)
        result.relativeL2Error = aa > 0 ? (ee / aa).squareRoot() : (ee == 0 ? 0 : nil)
        result.cosine = aa > 0 && bb > 0 ? ab / (aa.squareRoot() * bb.squareRoot()) : nil
        result.snrDB = ee > 0 ? (aa > 0 ? 10 * log10(aa / ee) : -Double.infinity) : nil
        if a.isFloat, (2...3).contains(a.rank), let classes = a.shape.last, classes >= 2 {
            let positions = count / classes
            let pa = argmax(x, width: classes), pb = argmax(y, width: classes)
            result.agreement = Double(zip(pa, pb).filter { $0 == $1 }.count) / Double(max(positions, 1))
            result.agreementPositions = positions
        }
        return result
    }

    /// The index of the largest value of each run of `width` values.
    static func argmax(_ values: [Float], width: Int) -> [Int] {
        stride(from: 0, to: values.count, by: width).map { start in
            var best = 0
            for k in 1..<width where values[start + k] > values[start + best] { best = k }
            return best
        }
    }
}
