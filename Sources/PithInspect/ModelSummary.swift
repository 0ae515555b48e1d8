public import PithIR

/// What a model is, before its tensors: format and producer, opsets, the graph's inputs and outputs
/// with their types and shapes (symbolic dimensions by name), operator counts, and the parameters
/// each operator type holds. The first thing `pith inspect` prints, and what a user otherwise needs
/// Netron or Python's `onnx` for.
public struct ModelSummary: Sendable, Codable, Equatable {
    /// A graph input or output.
    public struct Value: Sendable, Codable, Equatable {
        public var name: String
        /// The element type; nil when the file does not say.
        public var dtype: String?
        /// Dimensions: numbers, the names of symbolic ones, `?` for unknown ones; nil when the rank
        /// is unknown.
        public var shape: [String]?
    }

    public struct OperatorCount: Sendable, Codable, Equatable {
        /// `op` in the default domain, `domain.op` in others.
        public var op: String
        public var count: Int
    }

    /// The tensors that feed one operator type (layer class for Keras), with their sizes.
    public struct Parameters: Sendable, Codable, Equatable {
        public var op: String
        public var tensors: Int
        public var elements: Int
        public var bytes: Int
    }

    /// Tensors of one role (`weight`, `bias`, `normalization`, `embedding`, `shape`, `other`, `unknown`).
    public struct RoleTotals: Sendable, Codable, Equatable {
        public var role: String
        public var tensors: Int
        public var elements: Int
        public var bytes: Int
    }

    public var irVersion: Int64?
    /// `ai.onnx 12`, `ai.onnx.ml 3`, …
    public var opsets: [String]
    /// Nodes of the main graph and every subgraph; nil without a graph (Keras, plain HDF5).
    public var nodes: Int?
    public var inputs: [Value]
    public var outputs: [Value]
    /// Most frequent first.
    public var operators: [OperatorCount]
    /// Largest first.
    public var parameters: [Parameters]
    public var roles: [RoleTotals]

    /// The summary of `model`, with each tensor's statistics (`statistics[i]` is tensor i) and role.
    public init(_ model: Model, statistics: [TensorStatistics], roles tensorRoles: [TensorRole]) {
        irVersion = model.metadata.irVersion == 0 ? nil : model.metadata.irVersion
        opsets = model.metadata.opsets.map { ($0.domain.isEmpty ? "ai.onnx" : $0.domain) + " \($0.version)" }
        inputs = []
        outputs = []
        operators = []
        nodes = nil
        if let graph = model.graph {
            let initializerNames = Set(graph.initializers.map { model.tensors[$0].name })
            // Old exporters list initializers among the inputs too; those are weights, not inputs.
            inputs = graph.inputs.filter { !initializerNames.contains($0.name) }.map(Self.value)
            outputs = graph.outputs.map(Self.value)
            var counts: [String: Int] = [:], total = 0
            func count(_ graph: Graph) {
                for node in graph.nodes {
                    total += 1
                    counts[(node.domain.isEmpty || node.domain == "ai.onnx" ? "" : node.domain + ".") + node.opType, default: 0] += 1
                    for attribute in node.attributes {
                        switch attribute.value {
                        case .graph(let sub): count(sub)
                        case .graphs(let subs): subs.forEach(count)
                        default: break
                        }
                    }
                }
            }
            count(graph)
            nodes = total
            operators = counts.map { OperatorCount(op: $0.key, count: $0.value) }.sorted { ($0.count, $1.op) > ($1.count, $0.op) }
        }
        var byOp: [String: Parameters] = [:], byRole: [String: RoleTotals] = [:]
        for (row, role) in zip(statistics, tensorRoles) {
            let op = row.op.isEmpty ? "(no consumer)" : row.op
            byOp[op, default: Parameters(op: op, tensors: 0, elements: 0, bytes: 0)].tensors += 1
            byOp[op]!.elements += row.count
            byOp[op]!.bytes += row.bytes
            let kind = role.kind.rawValue
            byRole[kind, default: RoleTotals(role: kind, tensors: 0, elements: 0, bytes: 0)].tensors += 1
            byRole[kind]!.elements += row.count
            byRole[kind]!.bytes += row.bytes
        }
        parameters = byOp.values.sorted { ($0.bytes, $1.op) > ($1.bytes, $0.op) }
        roles = byRole.values.sorted { ($0.bytes, $1.role) > ($1.bytes, $0.role) }
    }

    static func value(_ info: ValueInfo) -> Value {
        let shape = info.shape?.map { dimension -> String in
            switch dimension {
            case .fixed(let n): return String(n)
            case .symbolic(let name): return name
            case .unknown: return "?"
            }
        }
        return Value(name: info.name, dtype: info.dtype?.rawValue, shape: shape)
    }
}
