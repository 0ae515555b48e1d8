public import PithIR
import Foundation

/// A value flowing through the evaluator: a tensor of floats (every floating-point dtype is computed
/// in `Float`), of integers (every integer dtype and bool, held as `Int64`), or of strings (which
/// only `Cast`, `Identity` and the operators that move elements handle).
public struct Value: Sendable {
    /// The ONNX element type the value has; computation happens in `Float` or `Int64`.
    public var dtype: DType
    public var shape: [Int]
    public var floats: [Float]
    public var ints: [Int64]
    public var strings: [String] = []

    public init(floats: [Float], shape: [Int], dtype: DType = .float32) {
        self.dtype = dtype
        self.shape = shape
        self.floats = floats
        self.ints = []
    }

    public init(ints: [Int64], shape: [Int], dtype: DType = .int64) {
        self.dtype = dtype
        self.shape = shape
        self.floats = []
        self.ints = ints
    }

    public init(strings: [String], shape: [Int]) {
        self.dtype = .string
        self.shape = shape
        self.floats = []
        self.ints = []
        self.strings = strings
    }

    public var count: Int { shape.reduce(1, *) }
    public var isString: Bool { dtype == .string }
    public var isFloat: Bool { dtype.isFloatingPoint }
    public var rank: Int { shape.count }

    /// The values as floats, whatever the type.
    public var asFloats: [Float] { isFloat ? floats : ints.map { Float($0) } }
    /// The values as integers (floats truncated toward zero).
    public var asInts: [Int64] { isFloat ? floats.map { $0.isFinite ? Int64($0) : 0 } : ints }

    /// A value from a model tensor (compressed storage expanded).
    public init(_ tensor: Tensor) throws {
        let dense = tensor.densified()
        if tensor.dtype.isFloatingPoint {
            if tensor.dtype == .float64 {
                // Computed in Float: a finite double beyond Float's range would silently become infinite.
                var outside: Double?
                dense.forEachValueChunk { chunk in
                    if outside == nil, let v = chunk.first(where: { $0.isFinite && abs($0) > Double(Float.greatestFiniteMagnitude) }) { outside = v }
                }
                if let outside {
                    throw EvalError.unsupported("`\(tensor.name)` holds \(outside), beyond the float32 range the evaluator computes float64 values in")
                }
            }
            self.init(floats: dense.floatValues(), shape: tensor.shape, dtype: tensor.dtype)
        } else if tensor.dtype == .bool || tensor.dtype.isInteger {
            var values: [Int64] = []
            values.reserveCapacity(tensor.count)
            if tensor.dtype == .int64, case .dense(let buffer) = dense.storage {
                values = buffer.withUnsafeBufferPointer(as: Int64.self) { Array($0) }
            } else if tensor.dtype == .uint8, case .dense(let buffer) = dense.storage {
                values = buffer.withUnsafeBufferPointer(as: UInt8.self) { $0.map { Int64($0) } }
            } else if tensor.dtype == .int8, case .dense(let buffer) = dense.storage {
                values = buffer.withUnsafeBufferPointer(as: Int8.self) { $0.map { Int64($0) } }
            } else if tensor.dtype == .int32, case .dense(let buffer) = dense.storage {
                values = buffer.withUnsafeBufferPointer(as: Int32.self) { $0.map { Int64($0) } }
            } else if tensor.dtype == .bool, case .dense(let buffer) = dense.storage {
                values = buffer.withUnsafeBytes { $0.map { $0 != 0 ? 1 : 0 } }
            } else {
                dense.forEachValueChunk { chunk in for v in chunk { values.append(Int64(v)) } }
            }
            self.init(ints: values, shape: tensor.shape, dtype: tensor.dtype)
        } else if tensor.dtype == .string, case .strings(let values) = tensor.storage {
            self.init(strings: values.map { String(decoding: $0, as: UTF8.self) }, shape: tensor.shape)
        } else {
            throw EvalError.unsupportedType(tensor.name, tensor.dtype)
        }
    }

    /// The value with another shape of the same element count.
    public func reshaped(_ shape: [Int]) -> Value {
        var copy = self
        copy.shape = shape
        return copy
    }

    /// The same elements converted to `dtype`, with the rounding and wrapping ONNX `Cast` does.
    public func cast(to dtype: DType) throws -> Value {
        if dtype == .string {
            // Shortest round-trip decimal forms, as numpy prints them (`inf`, `nan`).
            let text: [String] = isString ? strings : isFloat ? floats.map { $0.isNaN ? "nan" : "\($0)" } : ints.map { "\($0)" }
            return Value(strings: text, shape: shape)
        }
        if isString {
            if dtype.isFloatingPoint {
                let parsed = try strings.map { text -> Float in
                    guard let v = Float(text.trimmingCharacters(in: .whitespaces)) else { throw EvalError.invalid("Cast: `\(text)` is not a number") }
                    return v
                }
                return try Value(floats: parsed, shape: shape).cast(to: dtype)
            }
            let parsed = try strings.map { text -> Int64 in
                guard let v = Int64(text.trimmingCharacters(in: .whitespaces)) else { throw EvalError.invalid("Cast: `\(text)` is not an integer") }
                return v
            }
            return try Value(ints: parsed, shape: shape).cast(to: dtype)
        }
        if dtype.isFloatingPoint {
            var out = Value(floats: asFloats, shape: shape, dtype: dtype)
            switch dtype {
            case .float16: out.floats = out.floats.map { FloatRounding.float16($0) }
            case .bfloat16: out.floats = out.floats.map { FloatRounding.bfloat16($0) }
            default: break
            }
            return out
        }
        guard dtype == .bool || dtype.isInteger else { throw EvalError.unsupported("Cast to \(dtype.rawValue)") }
        if dtype == .bool { return Value(ints: isFloat ? floats.map { $0 != 0 ? 1 : 0 } : ints.map { $0 != 0 ? 1 : 0 }, shape: shape, dtype: .bool) }
        return Value(ints: asInts.map { wrap($0, to: dtype) }, shape: shape, dtype: dtype)
    }
}

/// `value` wrapped to the range of the integer `dtype`, as a C cast does.
func wrap(_ value: Int64, to dtype: DType) -> Int64 {
    switch dtype {
    case .int8: return Int64(Int8(truncatingIfNeeded: value))
    case .uint8: return Int64(UInt8(truncatingIfNeeded: value))
    case .int16: return Int64(Int16(truncatingIfNeeded: value))
    case .uint16: return Int64(UInt16(truncatingIfNeeded: value))
    case .int32: return Int64(Int32(truncatingIfNeeded: value))
    case .uint32: return Int64(UInt32(truncatingIfNeeded: value))
    case .bool: return value != 0 ? 1 : 0
    default: return value
    }
}

/// Why a model could not be evaluated: what the evaluator does not implement (exit 69 in the CLI),
/// or what in the model or its inputs contradicts itself (exit 65). The message names the operator,
/// layer, attribute or value.
public struct EvalError: ReportableError {
    public enum Kind: Sendable, Hashable {
        /// An operator, attribute value, layer or type the evaluator does not implement.
        case unsupported
        /// The model or its inputs contradict themselves (shapes, missing values).
        case invalid
    }

    public var kind: Kind
    public var message: String
    /// For values of a type the evaluator does not compute: that type.
    public var uncomputableType: DType?

    public var exitKind: ExitKind { kind == .invalid ? .data : .unsupported }

    init(_ kind: Kind, _ message: String, uncomputableType: DType? = nil) {
        self.kind = kind
        self.message = message
        self.uncomputableType = uncomputableType
    }

    static func unsupported(_ what: String) -> EvalError { EvalError(.unsupported, "not supported by the reference evaluator: \(what)") }

    static func unsupportedType(_ name: String, _ dtype: DType) -> EvalError {
        EvalError(.unsupported, "`\(name)`: the reference evaluator does not compute \(dtype.rawValue) values", uncomputableType: dtype)
    }

    static func invalid(_ message: String) -> EvalError { EvalError(.invalid, message) }

    public var description: String { message }
}

extension Value {
    /// The elements at `indices` (row-major positions in this value) as a value of `shape`, of this
    /// value's kind: what Transpose, Gather, Slice and the like move without arithmetic.
    func gathered(_ indices: [Int], shape: [Int]) -> Value {
        var out = self
        out.shape = shape
        if isString {
            out.strings = indices.map { strings[$0] }
        } else if isFloat {
            out.floats = indices.map { floats[$0] }
        } else {
            out.ints = indices.map { ints[$0] }
        }
        return out
    }

    /// The value with its axes in reverse order: a Fortran-ordered array, read as row-major with its
    /// shape reversed, is its own transpose.
    func axesReversed() -> Value {
        guard rank > 1 else { return self }
        let reversed = Array(shape.reversed())
        return gathered(stridedOffsets(reversed, strides: strides(shape).reversed()), shape: reversed)
    }
}

/// Row-major strides of `shape`.
func strides(_ shape: [Int]) -> [Int] {
    var result = [Int](repeating: 1, count: shape.count)
    var step = 1
    for axis in shape.indices.reversed() {
        result[axis] = step
        step *= shape[axis]
    }
    return result
}

/// Numpy broadcasting of two shapes.
func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
    let rank = max(a.count, b.count)
    let pa = [Int](repeating: 1, count: rank - a.count) + a
    let pb = [Int](repeating: 1, count: rank - b.count) + b
    return try zip(pa, pb).map { x, y in
        guard x == y || x == 1 || y == 1 else { throw EvalError.invalid("\(op): shapes \(a) and \(b) do not broadcast") }
        return x == 1 ? y : x
    }
}

/// For each element of `shape` broadcast to `output`, the index of its source element.
func broadcastIndices(from shape: [Int], to output: [Int]) -> [Int] {
    let total = output.reduce(1, *)
    let count = shape.reduce(1, *)
    if shape == output { return Array(0..<total) }
    if count == 1 { return [Int](repeating: 0, count: total) }
    let rank = output.count
    let padded = [Int](repeating: 1, count: rank - shape.count) + shape
    let sourceStrides = strides(padded)
    let effective = (0..<rank).map { padded[$0] == 1 ? 0 : sourceStrides[$0] }
    return stridedOffsets(output, strides: effective)
}

/// For each element of `shape` in row-major order, Σ index[a] · strides[a]: the source element of a
/// view with those strides (zero strides repeat, permuted strides transpose).
func stridedOffsets(_ shape: [Int], strides: [Int]) -> [Int] {
    let total = shape.reduce(1, *)
    let rank = shape.count
    var result = [Int](repeating: 0, count: total)
    var index = [Int](repeating: 0, count: rank)
    var source = 0
    for i in 0..<total {
        result[i] = source
        var axis = rank - 1
        while axis >= 0 {
            index[axis] += 1
            source += strides[axis]
            if index[axis] < shape[axis] { break }
            source -= strides[axis] * index[axis]
            index[axis] = 0
            axis -= 1
        }
    }
    return result
}

/// Normalises a possibly negative axis for a tensor of `rank`.
func normalizedAxis(_ axis: Int, rank: Int, op: String) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0, a < max(rank, 1) else { throw EvalError.invalid("\(op): axis \(axis) is outside a tensor of rank \(rank)") }
    return a
}

/// Most elements one computed value may have: sizes that come from attributes or shape inputs
/// (Resize scales, Pad amounts, ConvTranspose output shapes) are checked against it before any
/// memory is allocated.
let maximumElements = 1 << 31

/// Throws when `shape` is negative or larger than `maximumElements`.
func checkSize(_ shape: [Int], op: String) throws {
    var count = 1
    for d in shape {
        guard d >= 0 else { throw EvalError.invalid("\(op): output shape \(shape) has a negative size") }
        let (p, overflow) = count.multipliedReportingOverflow(by: d)
        guard !overflow, p <= maximumElements else { throw EvalError.invalid("\(op): output shape \(shape) is larger than \(maximumElements) elements") }
        count = p
    }
}
