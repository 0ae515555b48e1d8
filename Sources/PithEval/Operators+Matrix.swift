import Foundation
import PithIR

/// Operators on matrices that are not products: Det and EyeLike.
extension Operators {
    /// Det: the determinant of each square matrix in the last two axes ([…, M, M] → […]), by LU
    /// decomposition with partial pivoting in `Double` (an empty matrix has determinant 1).
    func det(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        guard x.rank >= 2, x.shape[x.rank - 1] == x.shape[x.rank - 2] else {
            throw EvalError.invalid("input of shape \(x.shape): Det needs square matrices in the last two axes")
        }
        let m = x.shape[x.rank - 1], size = m * m
        let batch = Array(x.shape.dropLast(2)), count = batch.reduce(1, *)
        var out = [Float](repeating: 1, count: count)
        var a = [Double](repeating: 0, count: size)
        for t in 0..<count {
            for k in 0..<size { a[k] = Double(x.floats[t * size + k]) }
            var determinant = 1.0
            for column in 0..<m {
                var pivot = column
                for row in (column + 1)..<m where abs(a[row * m + column]) > abs(a[pivot * m + column]) { pivot = row }
                if a[pivot * m + column] == 0 {
                    determinant = 0
                    break
                }
                if pivot != column {
                    for k in 0..<m { a.swapAt(pivot * m + k, column * m + k) }
                    determinant = -determinant
                }
                let p = a[column * m + column]
                determinant *= p
                for row in (column + 1)..<m {
                    let factor = a[row * m + column] / p
                    guard factor != 0 else { continue }
                    for k in column..<m { a[row * m + k] -= factor * a[column * m + k] }
                }
            }
            out[t] = Float(determinant)
        }
        return roundedValue(out, shape: batch, dtype: x.dtype)
    }

    /// EyeLike: a 2-D tensor of the input's shape with ones on diagonal `k` (0 the main one,
    /// positive above it) and zeros elsewhere, of type `dtype` (default: the input's).
    func eyeLike(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard x.rank == 2 else { throw EvalError.invalid("input of shape \(x.shape): EyeLike takes a 2-D tensor") }
        var dtype = x.dtype
        if case .int(let code) = node.attribute("dtype") {
            guard let given = onnxType(Int(code)) else { throw EvalError.unsupported("EyeLike to ONNX type \(code)") }
            dtype = given
        }
        guard dtype != .string else { throw EvalError.invalid("EyeLike makes numbers, not strings") }
        let rows = x.shape[0], columns = x.shape[1], k = int("k", 0)
        var ones = [Int64](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            let (c, overflow) = r.addingReportingOverflow(k)
            if !overflow, c >= 0, c < columns { ones[r * columns + c] = 1 }
        }
        return try Value(ints: ones, shape: x.shape).cast(to: dtype)
    }
}
