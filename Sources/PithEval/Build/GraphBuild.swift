import PithIR

/// The build step: rewrites of a graph done once, when it is prepared, before any input is seen
/// (onnxruntime's graph optimizers are the model: one small file per rewrite, its preconditions
/// checked first). In order:
///
/// 1. `ConstantFolding`: nodes whose inputs are all constants run now, and their outputs become constants.
/// 2. `HardSwishRecognition`: `x · clip(x + 3, 0, 6) / 6`, as exporters write it, becomes one HardSwish.
/// 3. `ConvBatchNormFusion`: BatchNormalization, and multiplications and additions by per-channel
///    constants, directly after a Conv are folded into its weights and bias.
/// 4. `ActivationFusion`: activations after a Conv, and per-channel scales and shifts after them,
///    become the Conv's epilogue, applied while its output is in cache.
///
/// A rewrite only removes a value that exactly one node reads and that is not a graph output or
/// read by a subgraph, so every value a caller can ask for is either kept or recomputed by the
/// unrewritten program (`ONNXEvaluator.plan(outputs:)`). The weights `ConvKernel` uses (`PrepackedWeights.swift`)
/// are made here, once.
struct GraphBuild {
    /// A Conv whose weights, bias or epilogue the rewrites changed.
    struct FusedConv {
        var weights: [Float]
        var weightShape: [Int]
        var bias: [Float]?
        var epilogue: [EpilogueStep]
    }

    let opset: Int
    /// The nodes (nil once removed by a rewrite) with their positions in the file.
    var nodes: [(index: Int, node: Node)?]
    var constants: [String: Value]
    /// Values no rewrite may remove: graph outputs and every name a subgraph mentions.
    let pinned: Set<String>
    /// The graph's inputs (an initializer of the same name is a default a feed may replace).
    let graphInputs: Set<String>
    /// For each value, the nodes that read it, once per read.
    private(set) var readers: [String: [Int]] = [:]
    /// Conv nodes changed by the rewrites, by position in `nodes`.
    var convs: [Int: FusedConv] = [:]
    /// Activations fused after Gemm nodes, by position in `nodes`.
    var gemmEpilogues: [Int: [EpilogueStep]] = [:]
    /// Convs whose weight constant `releaseWeights` took out, by position in `nodes`: the new name
    /// they read and the constant's type (the constant is defined again, with the changed weights,
    /// when the rewrites end).
    var released: [Int: (name: String, dtype: DType)] = [:]

    init(nodes: [(index: Int, node: Node)], constants: [String: Value], outputs: [String], inputs: [String] = [], opset: Int) {
        self.opset = opset
        graphInputs = Set(inputs)
        self.nodes = nodes
        self.constants = constants
        var pinned = Set(outputs)
        func mention(_ graph: Graph) {
            for node in graph.nodes {
                pinned.formUnion(node.inputs)
                for attribute in node.attributes { if case .graph(let sub) = attribute.value { mention(sub) } }
            }
            pinned.formUnion(graph.outputs.map(\.name))
        }
        for (_, node) in nodes {
            for attribute in node.attributes {
                if case .graph(let sub) = attribute.value { mention(sub) }
                if case .graphs(let subs) = attribute.value { subs.forEach(mention) }
            }
        }
        self.pinned = pinned
        for (k, entry) in nodes.enumerated() { for name in entry.node.inputs where !name.isEmpty { readers[name, default: []].append(k) } }
    }

    /// Runs every rewrite, in order.
    static func optimize(nodes: [(index: Int, node: Node)], constants: [String: Value], outputs: [String], inputs: [String] = [], opset: Int) -> GraphBuild {
        var build = GraphBuild(nodes: nodes, constants: constants, outputs: outputs, inputs: inputs, opset: opset)
        ConstantFolding.apply(to: &build)
        HardSwishRecognition.apply(to: &build)
        ConvBatchNormFusion.apply(to: &build)
        ActivationFusion.apply(to: &build)
        for (k, constant) in build.released {
            guard let conv = build.convs[k] else { continue }
            build.constants[constant.name] = Value(floats: conv.weights, shape: conv.weightShape, dtype: constant.dtype)
        }
        return build
    }

    /// The nodes left, with the Conv changes and the Gemm epilogues keyed by the node's (new) first output.
    var result: (nodes: [(index: Int, node: Node)], convs: [String: FusedConv], gemmEpilogues: [String: [EpilogueStep]]) {
        var fused: [String: FusedConv] = [:], epilogues: [String: [EpilogueStep]] = [:]
        for (k, conv) in convs { if let entry = nodes[k], let output = entry.node.outputs.first { fused[output] = conv } }
        for (k, steps) in gemmEpilogues { if let entry = nodes[k], let output = entry.node.outputs.first { epilogues[output] = steps } }
        return (nodes.compactMap { $0 }, fused, epilogues)
    }

    // MARK: Helpers for the rewrites

    /// The node at `k`, if it is still there.
    func node(_ k: Int) -> Node? { nodes[k]?.node }

    /// Whether the node is of the default domain and type `opType`.
    func isOperator(_ k: Int, _ opTypes: String...) -> Bool {
        guard let node = node(k) else { return false }
        return (node.domain.isEmpty || node.domain == "ai.onnx") && opTypes.contains(node.opType)
    }

    /// The one node reading `name`, when exactly one read of it exists and the value is not pinned.
    func soleReader(of name: String) -> Int? {
        guard !pinned.contains(name), let list = readers[name], list.count == 1 else { return nil }
        return list[0]
    }

    /// The floating-point constant called `name`.
    func floatConstant(_ name: String) -> Value? {
        guard let value = constants[name], value.isFloat else { return nil }
        return value
    }

    /// The single value of a one-element floating-point constant.
    func scalar(_ name: String) -> Float? {
        guard let value = floatConstant(name), value.count == 1 else { return nil }
        return value.floats[0]
    }

    /// The bounds of the Clip at `k` when they are constants (attributes before opset 11, inputs
    /// after; a bound not given is infinite).
    func clipBounds(_ k: Int) -> (low: Float, high: Float)? {
        guard isOperator(k, "Clip"), let clip = node(k), !clip.inputs.isEmpty else { return nil }
        if opset < 11 {
            let operators = Operators(node: clip, opset: opset)
            return (operators.float("min", -.infinity), operators.float("max", .infinity))
        }
        var low = -Float.infinity, high = Float.infinity
        if clip.inputs.count > 1, !clip.inputs[1].isEmpty {
            guard let value = scalar(clip.inputs[1]) else { return nil }
            low = value
        }
        if clip.inputs.count > 2, !clip.inputs[2].isEmpty {
            guard let value = scalar(clip.inputs[2]) else { return nil }
            high = value
        }
        return (low, high)
    }

    /// Removes node `k`.
    mutating func remove(_ k: Int) {
        guard let node = node(k) else { return }
        for name in node.inputs where !name.isEmpty { readers[name]?.removeAll { $0 == k } }
        nodes[k] = nil
    }

    /// Replaces node `k`, keeping its position.
    mutating func replace(_ k: Int, with node: Node) {
        guard let old = self.node(k) else { return }
        for name in old.inputs where !name.isEmpty { readers[name]?.removeAll { $0 == k } }
        for name in node.inputs where !name.isEmpty { readers[name, default: []].append(k) }
        nodes[k]!.node = node
    }

    /// Node `k` (a Conv) now ends where `absorbed`, the sole reader of its output, ended: the Conv
    /// takes the absorbed node's outputs and the absorbed node is removed.
    mutating func absorb(_ absorbed: Int, into k: Int) {
        guard var conv = node(k), let next = node(absorbed) else { return }
        // (`conv` is a Conv or a Gemm.)
        conv.outputs = next.outputs.filter { !$0.isEmpty }
        remove(absorbed)
        nodes[k]!.node = conv
    }

    /// The Conv at `k` as a `FusedConv` (made from its constant weights and bias the first time), or
    /// nil when it is not a Conv of constant floating-point weights.
    mutating func fusedConv(_ k: Int) -> FusedConv? {
        if let existing = convs[k] { return existing }
        guard isOperator(k, "Conv"), let node = node(k), node.inputs.count >= 2, node.inputs.count <= 3, node.outputs.count == 1,
            let w = floatConstant(node.inputs[1]), w.rank >= 3, w.shape[0] > 0
        else { return nil }
        var bias: [Float]?
        if node.inputs.count == 3, !node.inputs[2].isEmpty {
            guard let b = floatConstant(node.inputs[2]), b.count == w.shape[0] else { return nil }
            bias = b.floats
        }
        let fused = FusedConv(weights: w.floats, weightShape: w.shape, bias: bias, epilogue: [])
        convs[k] = fused
        return fused
    }

    /// Before the weights of the Conv at `k` are changed in place: when the Conv is the only reader
    /// of its weight constant (not pinned, not a graph input), the constant leaves `constants` and the Conv reads a
    /// constant of a new name that holds the changed weights themselves (`FusedConv.weights`, the
    /// same memory the kernel uses). The weights are then held once, not twice — on PP-OCRv4 rec,
    /// 11 MB less heap for the run to start from — and the original name, no longer defined by this
    /// program, is computed by the graph as written if a caller asks for it.
    mutating func releaseWeights(of k: Int) {
        guard var conv = node(k), conv.inputs.count >= 2, let original = constants[conv.inputs[1]], soleReader(of: conv.inputs[1]) == k,
            !graphInputs.contains(conv.inputs[1])
        else { return }
        let name = conv.inputs[1]
        var renamed = "\(name) (folded)"
        while constants[renamed] != nil || readers[renamed] != nil || pinned.contains(renamed) { renamed += "'" }
        constants[name] = nil
        conv.inputs[1] = renamed
        replace(k, with: conv)
        released[k] = (renamed, original.dtype)
    }

    /// The per-channel values of a binary node's constant operand, when the node (Add, Sub, Mul or
    /// Div, reading `value` — the output of a Conv with `channels` filters and `rank` axes — and a
    /// constant) changes each channel by one number: a scalar, or a constant of shape [channels, 1, …]
    /// or [1, channels, 1, …]. Returns the scale and shift the node applies (`x · scale + shift`).
    func channelAffine(_ k: Int, of value: String, channels: Int, rank: Int) -> (scale: [Float], shift: [Float])? {
        guard isOperator(k, "Add", "Sub", "Mul", "Div"), let node = node(k), node.inputs.count == 2, node.outputs.count == 1 else { return nil }
        let valueFirst = node.inputs[0] == value
        guard valueFirst || node.inputs[1] == value, node.inputs[0] != node.inputs[1] else { return nil }
        guard let constant = floatConstant(node.inputs[valueFirst ? 1 : 0]), constant.rank <= rank, constant.count > 0 else { return nil }
        let padded = [Int](repeating: 1, count: rank - constant.rank) + constant.shape
        guard padded.enumerated().allSatisfy({ $0.element == 1 || ($0.offset == 1 && $0.element == channels) }) else { return nil }
        let c = constant.floats
        let ones = [Float](repeating: 1, count: c.count), zeros = [Float](repeating: 0, count: c.count)
        switch node.opType {
        case "Add": return (ones, c)
        case "Mul": return (c, zeros)
        case "Sub": return valueFirst ? (ones, c.map { -$0 }) : (ones.map { -$0 }, c)
        default: return valueFirst ? (c.map { 1 / $0 }, zeros) : nil
        }
    }
}
