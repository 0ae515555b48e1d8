public import PithIR

/// Which tensors a pass applies to: every condition given must hold.
///
/// With no conditions at all, the default applies: floating-point tensors of rank 2 or more
/// with at least 256 elements — weights, not biases, scales or shape constants (Han et al.
/// leave biases alone).
public struct TensorSelector: Sendable, Codable, Equatable {
    /// Glob patterns on the tensor name (`*` any run, `?` one character); any may match.
    public var names: [String]?
    /// Glob patterns a name must not match.
    public var exclude: [String]?
    /// Operator types or layer classes the tensor feeds (`Gemm`, `Conv`, `Dense`).
    public var ops: [String]?
    public var minElements: Int?
    public var maxElements: Int?
    public var minRank: Int?

    public init(
        names: [String]? = nil, exclude: [String]? = nil, ops: [String]? = nil,
        minElements: Int? = nil, maxElements: Int? = nil, minRank: Int? = nil
    ) {
        self.names = names
        self.exclude = exclude
        self.ops = ops
        self.minElements = minElements
        self.maxElements = maxElements
        self.minRank = minRank
    }

    enum CodingKeys: String, CodingKey {
        case names, exclude, ops
        case minElements = "min_elements"
        case maxElements = "max_elements"
        case minRank = "min_rank"
    }

    public static let defaultMinElements = 256
    public static let defaultMinRank = 2

    /// Whether `tensor` is selected. Only floating-point tensors are ever selected.
    public func matches(_ tensor: Tensor) -> Bool {
        guard tensor.dtype.isFloatingPoint else { return false }
        let minimum = minElements ?? (isEmpty ? Self.defaultMinElements : 0)
        let rank = minRank ?? (isEmpty ? Self.defaultMinRank : 0)
        guard tensor.count >= minimum, tensor.shape.count >= rank else { return false }
        if let maxElements, tensor.count > maxElements { return false }
        if let names, !names.contains(where: { Self.glob($0, tensor.name) }) { return false }
        if let exclude, exclude.contains(where: { Self.glob($0, tensor.name) }) { return false }
        if let ops, !ops.contains(tensor.consumer?.op ?? "") { return false }
        return true
    }

    var isEmpty: Bool { names == nil && exclude == nil && ops == nil && minElements == nil && maxElements == nil && minRank == nil }

    /// Shell-style matching of `*` and `?` over the whole string.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1; ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
