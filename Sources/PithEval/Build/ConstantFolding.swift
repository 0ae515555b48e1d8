import PithIR

/// Constant folding: a node whose inputs are all constants is run once, when the graph is built,
/// and its outputs become constants (shape arithmetic, casts of constants, weights stored in
/// another type or layout).
///
/// Preconditions, checked first: an operator of the default domain the evaluator supports, no
/// subgraph, not `ConstantOfShape` (its value is an attribute tensor), every input present a
/// constant, and outputs of at most `maximumElements` values in all. A node that fails to run is
/// left for the run, which reports the error where it always did.
enum ConstantFolding {
    /// Most values the outputs of one folded node may hold.
    static let maximumElements = 1 << 22

    static func apply(to build: inout GraphBuild) {
        // Nodes are usually in dependency order; a few passes catch the rest.
        for _ in 0..<4 {
            var changed = false
            for k in build.nodes.indices { if fold(k, in: &build) { changed = true } }
            if !changed { return }
        }
    }

    private static func fold(_ k: Int, in build: inout GraphBuild) -> Bool {
        guard let node = build.node(k), node.domain.isEmpty || node.domain == "ai.onnx",
            ONNXEvaluator.supportedOperators.contains(node.opType),
            !["If", "Loop", "Scan", "ConstantOfShape"].contains(node.opType),
            !node.attributes.contains(where: { if case .graph = $0.value { return true } else { return false } }),
            node.inputs.contains(where: { !$0.isEmpty }),
            node.inputs.allSatisfy({ $0.isEmpty || build.constants[$0] != nil })
        else { return false }
        let inputs: [Value?] = node.inputs.map { $0.isEmpty ? nil : build.constants[$0] }
        guard let results = try? Operators(node: node, opset: build.opset).run(inputs), results.count >= node.outputs.filter({ !$0.isEmpty }).count,
            results.reduce(0, { $0 + $1.count }) <= maximumElements
        else { return false }
        for (name, value) in zip(node.outputs, results) where !name.isEmpty { build.constants[name] = value }
        build.remove(k)
        return true
    }
}
