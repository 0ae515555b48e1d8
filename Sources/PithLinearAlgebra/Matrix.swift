/// A dense row-major matrix of `Float`.
public struct Matrix: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    /// `rows × columns` values, row after row.
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(rows >= 0 && columns >= 0 && values.count == rows * columns, "Matrix: \(values.count) values for \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public init(rows: Int, columns: Int, repeating value: Float = 0) {
        self.init(rows: rows, columns: columns, values: [Float](repeating: value, count: rows * columns))
    }

    public subscript(row: Int, column: Int) -> Float {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    public var transposed: Matrix {
        var result = Matrix(rows: columns, columns: rows)
        for r in 0..<rows { for c in 0..<columns { result.values[c * rows + r] = values[r * columns + c] } }
        return result
    }

    /// The columns in `range`, as a matrix.
    public func columns(_ range: Range<Int>) -> Matrix {
        var result = Matrix(rows: rows, columns: range.count)
        for r in 0..<rows { for (j, c) in range.enumerated() { result.values[r * range.count + j] = values[r * columns + c] } }
        return result
    }

    /// The rows in `range`, as a matrix.
    public func rows(_ range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, columns: columns, values: Array(values[range.lowerBound * columns..<range.upperBound * columns]))
    }

    /// Frobenius norm, accumulated in `Double`.
    public var frobeniusNorm: Double {
        values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    }
}
