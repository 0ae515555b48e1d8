import PithIR

/// Initializers of 4-bit codes packed two per byte, as `pith restore --compact` writes them where
/// the model's opset is below 21 (the first with int4 and uint4): a uint8 tensor that a `Cast` to
/// int32 or int64 turns into the indices of a `Gather` from a 256 × 2 table, each byte giving two
/// weights. Their bits per weight count the weights, not the bytes.
enum PackedCodes {
    /// Each packed tensor's id → the number of weights its bytes decode to: twice its elements, or
    /// the `ends` of the `Slice` that drops the padding nibble of an odd count.
    static func weights(in model: Model) -> [TensorID: Int] {
        guard let graph = model.graph else { return [:] }
        var result: [TensorID: Int] = [:]
        walk(graph, outer: [:], model: model, into: &result)
        return result
    }

    /// Finds the packed codes of `graph` (tables may lie in the graphs around it), then of its subgraphs.
    private static func walk(_ graph: Graph, outer: [String: TensorID], model: Model, into result: inout [TensorID: Int]) {
        var visible = outer
        for id in graph.initializers { visible[localName(of: model.tensors[id])] = id }
        var readers: [String: [Node]] = [:]
        for node in graph.nodes { for input in Set(node.inputs) where !input.isEmpty { readers[input, default: []].append(node) } }
        func only(_ value: String, _ op: String) -> Node? {
            guard let nodes = readers[value], nodes.count == 1, nodes[0].opType == op, nodes[0].domain.isEmpty else { return nil }
            return nodes[0]
        }
        for cast in graph.nodes where cast.opType == "Cast" && cast.domain.isEmpty && cast.inputs.count == 1 {
            guard let id = graph.initializers.first(where: { localName(of: model.tensors[$0]) == cast.inputs[0] }),
                model.tensors[id].dtype == .uint8, case .int(let to)? = cast.attribute("to"), to == 6 || to == 7,
                let output = cast.outputs.first, let gather = only(output, "Gather"), gather.inputs.count == 2, gather.inputs[1] == output,
                let table = visible[gather.inputs[0]], model.tensors[table].shape == [256, 2]
            else { continue }
            var weights = 2 * model.tensors[id].count
            if let looked = gather.outputs.first, let reshape = only(looked, "Reshape"), let flat = reshape.outputs.first,
                let slice = only(flat, "Slice"), let ends = sliceEnds(slice, visible: visible, model: model), ends.count == 1
            {
                weights = min(weights, max(0, ends[0]))
            }
            result[id] = weights
        }
        for node in graph.nodes {
            for attribute in node.attributes {
                switch attribute.value {
                case .graph(let g): walk(g, outer: visible, model: model, into: &result)
                case .graphs(let gs): for g in gs { walk(g, outer: visible, model: model, into: &result) }
                default: break
                }
            }
        }
    }

    /// A Slice's `ends`: its attribute (opsets before 10) or its third input, an initializer.
    private static func sliceEnds(_ slice: Node, visible: [String: TensorID], model: Model) -> [Int]? {
        if case .ints(let ends)? = slice.attribute("ends") { return ends.map { Int(clamping: $0) } }
        guard slice.inputs.count > 2, let id = visible[slice.inputs[2]] else { return nil }
        var ends: [Int] = []
        model.tensors[id].forEachValueChunk { chunk in ends += chunk.map { Int(clamping: Int64(exactly: $0) ?? 0) } }
        return ends
    }

    /// The name a graph reads an initializer by: its tensor name without the graph-path prefix the
    /// reader gives the tensors of subgraphs.
    private static func localName(of tensor: Tensor) -> String {
        switch tensor.origin {
        case .initializer(let graph), .sparseInitializer(let graph):
            let prefix = graph.description
            return tensor.name.hasPrefix(prefix) ? String(tensor.name.dropFirst(prefix.count)) : tensor.name
        default: return tensor.name
        }
    }
}
