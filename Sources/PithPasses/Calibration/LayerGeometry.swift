import PithIR

/// How a weight's layer reads its input, as the data-aware passes need it: the value to capture, the
/// weight as an outputs × inputs matrix ("layer form": y = W·x per output row), the input patches of a
/// convolution, and the layer's bias.
///
/// Found from the graph: a `Gemm` (transA = 0) B, a `MatMul` B of rank 2, or a `Conv` W, in the main
/// graph, read by that one node. Everything else has a reason instead (`LayerGeometry.make`).
struct LayerGeometry: Sendable {
    /// A convolution's sliding window, per spatial axis.
    struct Convolution: Sendable, Equatable {
        var kernel: [Int]
        var strides: [Int]
        var dilations: [Int]
        var padsBegin: [Int]
        var padsEnd: [Int]
        /// `NOTSET`, `SAME_UPPER`, `SAME_LOWER` or `VALID`.
        var autoPad: String
        /// Input channels of the whole layer (every group).
        var channels: Int
        var groups: Int
    }

    var tensor: TensorID
    /// Node name (or `op#index`) and operator.
    var layer: String
    var op: String
    /// The node's index in the main graph.
    var node: Int
    /// The value the layer reads: what calibration captures.
    var input: String
    /// Nil for a dense layer.
    var convolution: Convolution?
    /// Output rows of the layer form (N, or M filters).
    var outputs: Int
    /// Inputs per group: the layer form's columns (K, or C/group · kH · kW).
    var columns: Int
    var groups: Int
    /// The tensor is stored inputs × outputs (`MatMul`, `Gemm` transB = 0): the layer form is its transpose.
    var transposed: Bool
    /// y = alpha · W·x + beta · bias (`Gemm`); 1 and 1 otherwise.
    var alpha: Float = 1
    var beta: Float = 1
    /// The bias with one value per output, when the layer has one.
    var bias: TensorID?
    /// Why there is no usable bias, when there is none.
    var biasMissing: String?

    /// Output rows of group `g`.
    func rows(ofGroup g: Int) -> Range<Int> {
        let per = outputs / groups
        return g * per..<(g + 1) * per
    }

    /// The weight's stored values as the outputs × columns layer form.
    func layerForm(_ stored: [Float]) -> [Float] {
        guard transposed else { return stored }
        var out = [Float](repeating: 0, count: stored.count)
        for k in 0..<columns { for n in 0..<outputs { out[n * columns + k] = stored[k * outputs + n] } }
        return out
    }

    /// Layer-form values back in the tensor's stored order.
    func storedOrder(_ rows: [Float]) -> [Float] {
        guard transposed else { return rows }
        var out = [Float](repeating: 0, count: rows.count)
        for k in 0..<columns { for n in 0..<outputs { out[k * outputs + n] = rows[n * columns + k] } }
        return out
    }

    /// Index in stored order of layer-form element (row n, column k).
    func storedIndex(row n: Int, column k: Int) -> Int { transposed ? k * outputs + n : n * columns + k }

    /// The geometry of the layer whose weight is `id`, or why the data-aware passes cannot use it.
    static func make(_ id: TensorID, in run: CompressionRun) -> Result<LayerGeometry, Reason> {
        let tensor = run.model.tensors[id]
        let role = run.roles[id]
        guard let graph = run.model.graph else {
            return .failure(
                Reason(
                    "the layer inputs of \(run.model.format.rawValue) models cannot be captured yet (the evaluator runs a Keras configuration whole)"))
        }
        guard role.kind == .weight else { return .failure(Reason("\(role): data-aware passes work on the weights of Gemm, MatMul and Conv")) }
        guard let index = role.node, let slot = role.slot else { return .failure(Reason("\(role): weights inside subgraphs are not calibrated")) }
        let node = graph.nodes[index]
        let readers = graph.nodes.filter { $0.inputs.contains(tensor.name) }.count
        guard readers == 1 else { return .failure(Reason("read by \(readers) nodes; data-aware passes need one layer")) }
        let shape = tensor.shape
        var geometry = LayerGeometry(
            tensor: id, layer: role.layer, op: node.opType, node: index, input: node.inputs[0], convolution: nil, outputs: 0, columns: 0, groups: 1,
            transposed: false)
        func int(_ name: String, _ fallback: Int) -> Int {
            if case .int(let v)? = node.attribute(name) { return Int(v) }
            return fallback
        }
        func ints(_ name: String) -> [Int]? {
            if case .ints(let v)? = node.attribute(name) { return v.map { Int($0) } }
            return nil
        }
        switch node.opType {
        case "Gemm" where slot == 1 && shape.count == 2:
            guard int("transA", 0) == 0 else { return .failure(Reason("Gemm `\(role.layer)` transposes its input (transA = 1)")) }
            geometry.transposed = int("transB", 0) == 0
            geometry.outputs = geometry.transposed ? shape[1] : shape[0]
            geometry.columns = geometry.transposed ? shape[0] : shape[1]
            if case .float(let a)? = node.attribute("alpha") { geometry.alpha = a }
            if case .float(let b)? = node.attribute("beta") { geometry.beta = b }
            geometry.findBias(slot: 2, node: node, in: run)
        case "MatMul" where slot == 1 && shape.count == 2:
            geometry.transposed = true
            geometry.outputs = shape[1]
            geometry.columns = shape[0]
            geometry.findAddedBias(graph: graph, node: node, in: run)
        case "Conv" where slot == 1 && shape.count >= 3:
            let spatial = shape.count - 2
            let groups = int("group", 1)
            guard groups >= 1, shape[0] % groups == 0 else { return .failure(Reason("Conv `\(role.layer)`: \(shape[0]) filters in \(groups) groups")) }
            let kernel = Array(shape[2...])
            let pads = ints("pads") ?? [Int](repeating: 0, count: 2 * spatial)
            guard pads.count == 2 * spatial else { return .failure(Reason("Conv `\(role.layer)`: \(pads.count) pads for \(spatial) spatial axes")) }
            var autoPad = "NOTSET"
            if case .string(let bytes)? = node.attribute("auto_pad") { autoPad = String(decoding: bytes, as: UTF8.self) }
            geometry.convolution = Convolution(
                kernel: kernel, strides: ints("strides") ?? [Int](repeating: 1, count: spatial),
                dilations: ints("dilations") ?? [Int](repeating: 1, count: spatial), padsBegin: Array(pads[..<spatial]), padsEnd: Array(pads[spatial...]),
                autoPad: autoPad.isEmpty ? "NOTSET" : autoPad, channels: shape[1] * groups, groups: groups)
            geometry.groups = groups
            geometry.outputs = shape[0]
            geometry.columns = kernel.reduce(shape[1], *)
            geometry.findBias(slot: 2, node: node, in: run)
        default:
            return .failure(Reason("\(role): data-aware passes work on the weights of Gemm (B), MatMul (a rank-2 B) and Conv"))
        }
        return .success(geometry)
    }

    /// A `Gemm` C or `Conv` B with one value per output.
    private mutating func findBias(slot: Int, node: Node, in run: CompressionRun) {
        guard node.inputs.count > slot, !node.inputs[slot].isEmpty else {
            biasMissing = "\(op) `\(layer)` has no bias input, and one cannot be added (the container keeps the source graph's tensors)"
            return
        }
        guard let id = run.model.tensors.indices.first(where: { run.model.tensors[$0].name == node.inputs[slot] }) else {
            biasMissing = "the bias of \(op) `\(layer)` is computed, not a constant"
            return
        }
        guard run.model.tensors[id].count == outputs, run.model.tensors[id].dtype.isFloatingPoint else {
            biasMissing = "the bias of \(op) `\(layer)` has \(run.model.tensors[id].count) values for \(outputs) outputs (broadcast)"
            return
        }
        bias = id
    }

    /// The per-output constant `Add`ed to a `MatMul`'s output (its role is `bias`).
    private mutating func findAddedBias(graph: Graph, node: Node, in run: CompressionRun) {
        guard let output = node.outputs.first else { return }
        for reader in graph.nodes where reader.opType == "Add" && reader.inputs.contains(output) {
            for name in reader.inputs where name != output {
                if let id = run.model.tensors.indices.first(where: { run.model.tensors[$0].name == name }), run.roles[id].kind == .bias,
                    run.model.tensors[id].count == outputs
                {
                    bias = id
                    return
                }
            }
        }
        biasMissing = "MatMul `\(layer)` is followed by no per-output Add, and a bias cannot be added (the container keeps the source graph's tensors)"
    }

    /// Why a tensor has no geometry.
    struct Reason: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }
}
