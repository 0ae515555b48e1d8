public import PithIR

/// Which tensors a pass applies to: every condition given must hold.
///
/// With no conditions at all, the default applies: weights and embedding tables (by their role in the
/// graph or layer configuration, `TensorRole`) of rank 2 or more with at least 256 elements — never
/// biases, normalization parameters or shape constants, whatever their shape (Han et al. leave
/// biases alone; skl2onnx stores them as 1×N matrices). Without `role`, a selection that names no
/// tensors (`names`) takes the default roles too.
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
    /// The roles a tensor may have (`role: weight` or `role: [weight, bias]`).
    public var roles: [TensorRole.Kind]?

    public init(
        names: [String]? = nil, exclude: [String]? = nil, ops: [String]? = nil,
        minElements: Int? = nil, maxElements: Int? = nil, minRank: Int? = nil, roles: [TensorRole.Kind]? = nil
    ) {
        self.roles = roles
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
        case roles = "role"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        names = try container.decodeIfPresent([String].self, forKey: .names)
        exclude = try container.decodeIfPresent([String].self, forKey: .exclude)
        ops = try container.decodeIfPresent([String].self, forKey: .ops)
        minElements = try container.decodeIfPresent(Int.self, forKey: .minElements)
        maxElements = try container.decodeIfPresent(Int.self, forKey: .maxElements)
        minRank = try container.decodeIfPresent(Int.self, forKey: .minRank)
        if let one = try? container.decodeIfPresent(TensorRole.Kind.self, forKey: .roles) {
            roles = [one]
        } else {
            roles = try container.decodeIfPresent([TensorRole.Kind].self, forKey: .roles)
        }
    }

    public static let defaultMinElements = 256
    public static let defaultMinRank = 2

    /// The roles a selection without `role` and without `names` takes: weights, embedding tables,
    /// and tensors whose role nothing tells (plain HDF5 datasets, which the size rule then decides).
    public static let defaultRoles: Set<TensorRole.Kind> = [.weight, .embedding, .unknown]

    /// Whether `tensor`, whose role is `role`, is selected. Only floating-point tensors are ever selected.
    public func matches(_ tensor: Tensor, role: TensorRole) -> Bool { exclusion(tensor, role: role) == nil }

    /// Why `tensor` is not selected (nil when it is): its role, type, size or name.
    public func exclusion(_ tensor: Tensor, role: TensorRole) -> String? {
        // Optimizer state is kept exactly, whatever the selection says (`--drop-optimizer` removes it).
        if role.kind == .optimizer { return "optimizer state (kept exactly; never compressed lossily)" }
        guard tensor.dtype.isFloatingPoint else { return "not floating point (\(tensor.dtype))" }
        if let roles {
            if !roles.contains(role.kind) { return "\(role) (the selection takes \(roles.map(\.rawValue).joined(separator: ", ")))" }
        } else if names == nil, !Self.defaultRoles.contains(role.kind) {
            return "\(role) (without `role` or `names` only weights are selected)"
        }
        let minimum = minElements ?? (isEmpty ? Self.defaultMinElements : 0)
        let rank = minRank ?? (isEmpty ? Self.defaultMinRank : 0)
        if tensor.count < minimum { return "\(tensor.count) elements, fewer than \(minimum)" }
        if tensor.shape.count < rank { return "rank \(tensor.shape.count), below \(rank)" }
        if let maxElements, tensor.count > maxElements { return "\(tensor.count) elements, more than \(maxElements)" }
        if let names, !names.contains(where: { Self.glob($0, tensor.name) }) { return "its name matches none of \(names.joined(separator: ", "))" }
        if let exclude, exclude.contains(where: { Self.glob($0, tensor.name) }) { return "excluded by name" }
        if let ops, !ops.contains(tensor.consumer?.op ?? "") { return "it feeds \(tensor.consumer?.op ?? "nothing"), not \(ops.joined(separator: ", "))" }
        return nil
    }

    var isEmpty: Bool { names == nil && exclude == nil && ops == nil && minElements == nil && maxElements == nil && minRank == nil && roles == nil }

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
