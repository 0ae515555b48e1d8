import PithIR

/// Structured pruning: whole output neurons (dense) or filters (conv) removed, and the consumer
/// layer's matching input columns with them, so the model stays valid and smaller.
public struct StructuredOptions: Sendable, Codable, Equatable {
    public enum Criterion: String, Sendable, Codable, CaseIterable {
        /// Remove the neurons whose incoming weights have the smallest L1 norm.
        case l1
        /// … the smallest L2 norm.
        case l2
        /// Merge near-duplicate neurons into their twin (Srinivas & Babu 2015, data-free): the
        /// removed neuron's outgoing weights are added to its twin's. Needs a ReLU between the layers.
        case merge
        /// Data-aware (needs calibration): Optimal Brain Surgeon on the consumer's inputs
        /// (`NeuronSurgery`): the neurons whose removal moves the consumer's output least go, and the
        /// consumer's other weights and its bias are updated to make up for them.
        case obs
    }

    /// Fraction of each selected layer's neurons to remove, 0…1 (exclusive of 1).
    public var fraction: Double
    public var criterion: Criterion?

    public init(fraction: Double, criterion: Criterion? = nil) {
        self.fraction = fraction
        self.criterion = criterion
    }

    func validate(_ label: String) throws {
        guard fraction >= 0, fraction < 1 else { throw PassError(.invalidRecipe, "\(label): structured fraction must be in [0, 1), got \(fraction)") }
    }
}

extension StructuredOptions: CompressionPass {
    static let action = "structured"

    /// Works on layers, not tensors: `selector` picks the producers' weights (see `StructuredPruning`).
    func run(selecting selector: TensorSelector, in run: inout CompressionRun, step: Int) throws {
        try StructuredPruning.apply(self, selector: selector, to: &run, step: step)
    }

    var isDataAware: Bool { criterion == .obs }
}

/// Removes whole output neurons of dense layers and filters of conv layers, together with the
/// matching inputs of the one layer that consumes them, so the model stays valid and smaller.
///
/// Only where the graph makes the consumer unambiguous: a `Gemm`, `MatMul` or `Conv` (group 1)
/// whose output goes, directly or through one elementwise activation, to exactly one `Gemm`,
/// `MatMul` or `Conv` and nowhere else. Every other selected layer is reported as skipped, with why.
enum StructuredPruning {
    static let activations: Set<String> = [
        "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Softplus", "Softsign", "HardSigmoid",
        "HardSwish", "Clip", "Identity", "Dropout", "Gelu", "Mish",
    ]
    static let layers: Set<String> = ["Gemm", "MatMul", "Conv"]

    /// Where a layer's neurons sit in its tensors.
    struct Plan {
        var producer: Int  // node index
        var weight: TensorID
        var neuronAxis: Int  // in the producer's weight
        var bias: TensorID?
        var consumer: Int
        var consumerWeight: TensorID
        var inputAxis: Int  // in the consumer's weight
        var activation: String?
        var droppedValues: [String]  // value_info entries that no longer fit
    }

    static func apply(_ options: StructuredOptions, selector: TensorSelector, to run: inout CompressionRun, step: Int) throws {
        guard var graph = run.model.graph else {
            run.skipped.append(
                .init(
                    step: step, action: "structured", target: "*",
                    reason:
                        "structured pruning rewrites a computation graph; this \(run.model.format.rawValue) model has none (Keras configs are not rewritten)"))
            return
        }
        var plans: [Plan] = []
        for (index, node) in graph.nodes.enumerated() where layers.contains(node.opType) && node.domain.isEmpty {
            guard node.inputs.count >= 2, let weight = initializer(named: node.inputs[1], in: graph, model: run.model),
                selector.matches(run.model.tensors[weight], role: run.roles[weight])
            else { continue }
            let label = node.name.isEmpty ? "\(node.opType)#\(index)" : node.name
            switch plan(producer: index, weight: weight, graph: graph, model: run.model) {
            case .success(let plan):
                if run.working[plan.weight] != nil || run.working[plan.consumerWeight] != nil || plan.bias.map({ run.working[$0] != nil }) == true {
                    throw PassError(.notApplicable, "layer `\(label)`: structured pruning must run before the other passes")
                }
                plans.append(plan)
            case .failure(let reason):
                run.skipped.append(.init(step: step, action: "structured", target: label, reason: reason.message))
            }
        }
        // A tensor rewritten by two plans (a layer both producer and consumer) is handled in
        // sequence: each plan reads the tensors as the previous one left them.
        for plan in plans {
            let node = graph.nodes[plan.producer]
            let label = node.name.isEmpty ? "\(node.opType)#\(plan.producer)" : node.name
            if options.criterion == .merge, let activation = plan.activation, activation != "Relu", activation != "LeakyRelu" {
                run.skipped.append(
                    .init(
                        step: step, action: "structured", target: label,
                        reason: "merging neurons needs a ReLU (positively homogeneous) between the layers; found \(activation)"))
                continue
            }
            var weight = run.model.tensors[plan.weight]
            var consumerWeight = run.model.tensors[plan.consumerWeight]
            var weightValues = weight.floatValues(), consumerValues = consumerWeight.floatValues()
            let neurons = weight.shape[plan.neuronAxis]
            let remove = min(neurons - 1, Int(options.fraction * Double(neurons)))
            guard remove > 0 else {
                run.skipped.append(
                    .init(step: step, action: "structured", target: label, reason: "fraction \(options.fraction) of \(neurons) neurons removes none"))
                continue
            }
            let biasValues = plan.bias.map { run.model.tensors[$0].floatValues() }
            let removed: [Int]
            var surgery: Surgery?
            switch options.criterion ?? .l2 {
            case .l1, .l2:
                removed = smallest(remove, weightValues, shape: weight.shape, axis: plan.neuronAxis, l1: options.criterion == .l1)
            case .obs:
                run.model.graph = graph
                switch try obs(plan, remove: remove, weight: weightValues, shape: weight.shape, consumer: consumerValues, in: run) {
                case .success(let done):
                    surgery = done
                    removed = done.removed
                    consumerValues = done.consumer
                case .failure(let reason):
                    run.skipped.append(.init(step: step, action: "structured", target: label, reason: reason.message))
                    continue
                }
            case .merge:
                removed = merge(
                    remove: remove, weight: weightValues, weightShape: weight.shape, neuronAxis: plan.neuronAxis,
                    bias: biasValues, consumer: &consumerValues, consumerShape: consumerWeight.shape, inputAxis: plan.inputAxis)
            }
            let drop = Set(removed)
            let before = weight.storedBytes + consumerWeight.storedBytes + (plan.bias.map { run.model.tensors[$0].storedBytes } ?? 0)
            (weightValues, weight.shape) = removing(drop, axis: plan.neuronAxis, from: weightValues, shape: weight.shape)
            weight.storage = .dense(Tensor.encode(weightValues, as: weight.dtype))
            (consumerValues, consumerWeight.shape) = removing(drop, axis: plan.inputAxis, from: consumerValues, shape: consumerWeight.shape)
            consumerWeight.storage = .dense(Tensor.encode(consumerValues, as: consumerWeight.dtype))
            run.model.tensors[plan.weight] = weight
            run.model.tensors[plan.consumerWeight] = consumerWeight
            if let surgery, let id = surgery.biasID, let values = surgery.bias {
                run.model.tensors[id].storage = .dense(Tensor.encode(values, as: run.model.tensors[id].dtype))
            }
            var after = weight.storedBytes + consumerWeight.storedBytes
            if let id = plan.bias, let values = biasValues {
                var bias = run.model.tensors[id]
                let (kept, shape) = removing(drop, axis: 0, from: values, shape: bias.shape)
                bias.shape = shape
                bias.storage = .dense(Tensor.encode(kept, as: bias.dtype))
                run.model.tensors[id] = bias
                after += bias.storedBytes
            }
            graph.valueInfo.removeAll { plan.droppedValues.contains($0.name) }
            let consumerNode = graph.nodes[plan.consumer]
            let consumerLabel = consumerNode.name.isEmpty ? "\(consumerNode.opType)#\(plan.consumer)" : consumerNode.name
            run.passes.append(
                .init(
                    step: step, action: "structured", tensor: weight.name, elements: weight.count, kept: weight.count,
                    bitsPerWeight: Double(weight.dtype.bitWidth), bytesBefore: before, bytesAfter: after, error: nil,
                    detail:
                        "removed \(remove) of \(neurons) neurons of `\(label)` (\((options.criterion ?? .l2).rawValue)); inputs of `\(consumerLabel)` (\(consumerWeight.name)) removed to match"
                        + (surgery == nil ? "" : ", its other weights\(surgery?.biasID == nil ? "" : " and bias") updated")
                ))
            if let surgery { run.attach(surgery.error) }
        }
        run.model.graph = graph
    }

    /// The `removal` neurons with the smallest L1 or L2 norm of their incoming weights.
    static func smallest(_ removal: Int, _ values: [Float], shape: [Int], axis: Int, l1: Bool) -> [Int] {
        let neurons = shape[axis]
        let norms = (0..<neurons).map { j in
            slice(values, shape: shape, axis: axis, index: j).reduce(0.0) { $0 + (l1 ? Double(abs($1)) : Double($1) * Double($1)) }
        }
        return Array((0..<neurons).sorted { (norms[$0], $0) < (norms[$1], $1) }.prefix(removal))
    }

    /// What `obs` did to one consumer: the removed neurons, its weight (stored order, removed inputs
    /// still in place and zero), its bias, and the consumer's output error against magnitude removal.
    struct Surgery {
        var removed: [Int]
        var consumer: [Float]
        var biasID: TensorID?
        var bias: [Float]?
        var error: LayerError
    }

    /// OBS on the consumer's inputs (`NeuronSurgery`), calibrated on the model as it is now; or why
    /// the consumer cannot be calibrated.
    static func obs(
        _ plan: Plan, remove: Int, weight: [Float], shape: [Int], consumer: [Float], in run: CompressionRun
    ) throws -> Result<Surgery, Refusal> {
        let geometry: LayerGeometry
        switch LayerGeometry.make(plan.consumerWeight, in: run) {
        case .success(let found): geometry = found
        case .failure(let reason): return .failure(.reason("its consumer cannot be calibrated: \(reason.message)"))
        }
        let neurons = shape[plan.neuronAxis]
        guard geometry.groups == 1, geometry.columns % neurons == 0 else {
            return .failure(.reason("its consumer reads \(geometry.columns) inputs, not a whole number per each of \(neurons) neurons"))
        }
        let statistics = try run.statistics(geometry)
        let layerForm = geometry.layerForm(consumer)
        let biasValues = geometry.bias.map { run.model.tensors[$0].floatValues() }
        let scale = geometry.alpha == 0 ? 0 : geometry.beta / geometry.alpha
        let block = geometry.columns / neurons
        let result = try NeuronSurgery.remove(
            count: remove, neurons: neurons, block: block, weight: layerForm, rows: geometry.outputs, bias: biasValues, biasScale: scale,
            hessian: statistics.hessians[0], mean: statistics.means[0], damp: run.damp, layer: geometry.layer)
        // The data-free twin: the same number removed by the L2 norm of their incoming weights, nothing updated.
        var twin = layerForm
        for c in smallest(remove, weight, shape: shape, axis: plan.neuronAxis, l1: false) {
            for r in 0..<geometry.outputs { for p in 0..<block { twin[r * geometry.columns + c * block + p] = 0 } }
        }
        let error = LayerError(
            samples: statistics.samples, rows: statistics.rows, before: 0,
            dataFree: run.layerError(geometry, statistics, approximation: twin, bias: biasValues),
            after: run.layerError(geometry, statistics, approximation: result.weight, bias: result.bias ?? biasValues))
        return .success(
            Surgery(removed: result.removed, consumer: geometry.storedOrder(result.weight), biasID: geometry.bias, bias: result.bias, error: error))
    }

    enum Refusal: Error {
        case reason(String)
        var message: String { if case .reason(let text) = self { return text }; return "" }
    }

    static func initializer(named name: String, in graph: Graph, model: Model) -> TensorID? {
        graph.initializers.first { model.tensors[$0].name == name }
    }

    static func integer(_ node: Node, _ name: String, default value: Int64) -> Int64 {
        if case .int(let v)? = node.attribute(name) { return v }
        return value
    }

    /// The node indices that read `value`; a subgraph that captures it counts as its holder reading it twice
    /// (so that the consumer is never taken as unambiguous).
    static func readers(of value: String, in graph: Graph) -> [Int] {
        var result: [Int] = []
        for (index, node) in graph.nodes.enumerated() {
            result += Array(repeating: index, count: node.inputs.filter { $0 == value }.count)
            for attribute in node.attributes {
                switch attribute.value {
                case .graph, .graphs: if captures(attribute.value, value) { result += [index, index] }
                default: break
                }
            }
        }
        return result
    }

    static func captures(_ value: AttributeValue, _ name: String) -> Bool {
        let graphs: [Graph]
        switch value {
        case .graph(let g): graphs = [g]
        case .graphs(let gs): graphs = gs
        default: return false
        }
        return graphs.contains { g in g.nodes.contains { $0.inputs.contains(name) || $0.attributes.contains { captures($0.value, name) } } }
    }

    /// Where the neurons of the layer at `producer` sit, and its unique consumer; or why not.
    static func plan(producer: Int, weight: TensorID, graph: Graph, model: Model) -> Result<Plan, Refusal> {
        let node = graph.nodes[producer]
        let shape = model.tensors[weight].shape
        guard case .dense = model.tensors[weight].storage else {
            return .failure(.reason("weight is not dense"))
        }
        if readers(of: node.inputs[1], in: graph).count != 1 { return .failure(.reason("its weight is shared with another node")) }
        var neuronAxis: Int
        var bias: TensorID?
        switch node.opType {
        case "Gemm":
            guard integer(node, "transA", default: 0) == 0, shape.count == 2 else {
                return .failure(.reason("Gemm with transA = 1 or a weight that is not 2-D"))
            }
            neuronAxis = integer(node, "transB", default: 0) == 1 ? 0 : 1
        case "MatMul":
            guard shape.count == 2 else { return .failure(.reason("MatMul weight is not 2-D")) }
            neuronAxis = 1
        default:  // Conv
            guard integer(node, "group", default: 1) == 1 else { return .failure(.reason("grouped or depthwise convolution")) }
            neuronAxis = 0
        }
        let neurons = shape[neuronAxis]
        if node.inputs.count > 2, !node.inputs[2].isEmpty {
            guard let id = initializer(named: node.inputs[2], in: graph, model: model), model.tensors[id].shape == [neurons],
                model.tensors[id].dtype.isFloatingPoint
            else {
                return .failure(.reason("its bias is not a per-neuron initializer of shape [\(neurons)]"))
            }
            if readers(of: node.inputs[2], in: graph).count != 1 { return .failure(.reason("its bias is shared with another node")) }
            bias = id
        }
        let outputs = Set(graph.outputs.map(\.name))
        guard let output = node.outputs.first, !outputs.contains(output) else { return .failure(.reason("its output is a graph output")) }
        var readerIndices = readers(of: output, in: graph)
        guard readerIndices.count == 1 else { return .failure(.reason("its output is read by \(readerIndices.count) nodes, not one")) }
        var activation: String?
        var dropped = [output]
        var consumerIndex = readerIndices[0]
        let next = graph.nodes[consumerIndex]
        if activations.contains(next.opType), next.domain.isEmpty {
            guard let activated = next.outputs.first, !outputs.contains(activated) else {
                return .failure(.reason("the activation's output is a graph output"))
            }
            if next.inputs.dropFirst().contains(where: { !$0.isEmpty }) && next.opType != "Clip" {
                return .failure(.reason("the \(next.opType) after it has more than one input"))
            }
            readerIndices = readers(of: activated, in: graph)
            guard readerIndices.count == 1 else { return .failure(.reason("the \(next.opType) output is read by \(readerIndices.count) nodes, not one")) }
            activation = next.opType
            dropped.append(activated)
            consumerIndex = readerIndices[0]
        }
        let consumer = graph.nodes[consumerIndex]
        guard layers.contains(consumer.opType), consumer.domain.isEmpty else {
            return .failure(.reason("its output goes to \(consumer.opType) `\(consumer.name)`, not straight to a Gemm, MatMul or Conv"))
        }
        guard consumer.inputs.first == dropped.last else { return .failure(.reason("the consumer reads it as its weight, not its input")) }
        guard consumer.inputs.count >= 2, let consumerWeight = initializer(named: consumer.inputs[1], in: graph, model: model) else {
            return .failure(.reason("the consumer's weight is not an initializer"))
        }
        if readers(of: consumer.inputs[1], in: graph).count != 1 { return .failure(.reason("the consumer's weight is shared with another node")) }
        let consumerShape = model.tensors[consumerWeight].shape
        var inputAxis: Int
        switch consumer.opType {
        case "Gemm":
            guard integer(consumer, "transA", default: 0) == 0, consumerShape.count == 2 else { return .failure(.reason("the consumer Gemm has transA = 1")) }
            inputAxis = integer(consumer, "transB", default: 0) == 1 ? 1 : 0
        case "MatMul":
            guard consumerShape.count == 2 else { return .failure(.reason("the consumer MatMul weight is not 2-D")) }
            inputAxis = 0
        default:
            guard integer(consumer, "group", default: 1) == 1 else { return .failure(.reason("the consumer is a grouped convolution")) }
            guard node.opType == "Conv" else { return .failure(.reason("a dense layer feeding a convolution")) }
            inputAxis = 1
        }
        if node.opType == "Conv", consumer.opType != "Conv" {
            return .failure(.reason("a convolution feeding a dense layer (its channels spread over many inputs)"))
        }
        guard consumerShape.count > inputAxis, consumerShape[inputAxis] == neurons else {
            return .failure(
                .reason(
                    "the consumer's weight has \(consumerShape.count > inputAxis ? consumerShape[inputAxis] : 0) inputs, not the \(neurons) this layer produces"
                ))
        }
        return .success(
            Plan(
                producer: producer, weight: weight, neuronAxis: neuronAxis, bias: bias, consumer: consumerIndex,
                consumerWeight: consumerWeight, inputAxis: inputAxis, activation: activation, droppedValues: dropped))
    }

    // MARK: Tensor surgery

    /// Strides of a row-major shape around `axis`: (outer count, axis size, inner count).
    static func split(_ shape: [Int], axis: Int) -> (outer: Int, size: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    static func slice(_ values: [Float], shape: [Int], axis: Int, index: Int) -> [Float] {
        let (outer, size, inner) = split(shape, axis: axis)
        var result: [Float] = []
        result.reserveCapacity(outer * inner)
        for o in 0..<outer { result += values[(o * size + index) * inner..<(o * size + index + 1) * inner] }
        return result
    }

    static func removing(_ drop: Set<Int>, axis: Int, from values: [Float], shape: [Int]) -> ([Float], [Int]) {
        let (outer, size, inner) = split(shape, axis: axis)
        var result: [Float] = []
        result.reserveCapacity(values.count)
        for o in 0..<outer {
            for i in 0..<size where !drop.contains(i) {
                result += values[(o * size + i) * inner..<(o * size + i + 1) * inner]
            }
        }
        var newShape = shape
        newShape[axis] = size - drop.count
        return (result, newShape)
    }

    /// Srinivas & Babu's data-free merging: repeatedly remove the neuron j whose removal costs least,
    /// saliency ‖a_j‖² · ‖w_i − w_j‖² (w: incoming weights and bias, a: outgoing weights), and add
    /// its outgoing weights to its twin i. Returns the removed neurons.
    static func merge(
        remove: Int, weight: [Float], weightShape: [Int], neuronAxis: Int, bias: [Float]?,
        consumer: inout [Float], consumerShape: [Int], inputAxis: Int
    ) -> [Int] {
        let n = weightShape[neuronAxis]
        let incoming = (0..<n).map { j in slice(weight, shape: weightShape, axis: neuronAxis, index: j) + (bias.map { [$0[j]] } ?? []) }
        var outgoingNorm = (0..<n).map { j in slice(consumer, shape: consumerShape, axis: inputAxis, index: j).reduce(0.0) { $0 + Double($1) * Double($1) } }
        var distance = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) {
                var d = 0.0
                for (x, y) in zip(incoming[i], incoming[j]) { d += (Double(x) - Double(y)) * (Double(x) - Double(y)) }
                distance[i * n + j] = d
                distance[j * n + i] = d
            }
        }
        var alive = Array(repeating: true, count: n)
        var removed: [Int] = []
        let (outer, size, inner) = split(consumerShape, axis: inputAxis)
        for _ in 0..<remove {
            var best = (saliency: Double.infinity, keep: -1, drop: -1)
            for j in 0..<n where alive[j] {
                for i in 0..<n where alive[i] && i != j {
                    let saliency = outgoingNorm[j] * distance[i * n + j]
                    if saliency < best.saliency { best = (saliency, i, j) }
                }
            }
            guard best.drop >= 0 else { break }
            // The twin takes over the removed neuron's outgoing weights.
            for o in 0..<outer {
                for k in 0..<inner {
                    consumer[(o * size + best.keep) * inner + k] += consumer[(o * size + best.drop) * inner + k]
                }
            }
            outgoingNorm[best.keep] = slice(consumer, shape: consumerShape, axis: inputAxis, index: best.keep).reduce(0.0) { $0 + Double($1) * Double($1) }
            alive[best.drop] = false
            removed.append(best.drop)
        }
        return removed
    }
}
