internal import CONNXProto

/// Fresh names for the values and nodes a writer adds to a model. Every name the model already uses
/// anywhere is taken — graph inputs, outputs and `value_info`, initializers and sparse initializers,
/// node names, inputs and outputs, in the main graph, every subgraph and every function body, and
/// the functions' own names and parameters — because a subgraph sees the names of the graphs around
/// it and ONNX names are single-assignment across the whole model. Values and nodes share one
/// namespace here, so a new node is never named like an existing value either.
final class NameAllocator {
    private var taken: Set<String> = []

    /// Every name `model` uses, taken.
    init(_ model: UnsafeMutablePointer<Onnx__ModelProto>) {
        func graph(_ g: UnsafeMutablePointer<Onnx__GraphProto>) {
            let p = g.pointee
            for v in messages(p.n_input, p.input) + messages(p.n_output, p.output) + messages(p.n_value_info, p.value_info) {
                taken.insert(string(v.pointee.name))
            }
            for t in messages(p.n_initializer, p.initializer) { taken.insert(string(t.pointee.name)) }
            for s in messages(p.n_sparse_initializer, p.sparse_initializer) {
                if let values = s.pointee.values { taken.insert(string(values.pointee.name)) }
            }
        }
        if let main = model.pointee.graph { graph(main) }
        for function in messages(model.pointee.n_functions, model.pointee.functions) {
            let f = function.pointee
            taken.insert(string(f.name))
            for name in Array(repeated(f.n_input, f.input)) + Array(repeated(f.n_output, f.output)) { taken.insert(string(name)) }
            for v in messages(f.n_value_info, f.value_info) { taken.insert(string(v.pointee.name)) }
        }
        TensorSlots.forEachNode(in: model) { node, owner in
            let n = node.pointee
            taken.insert(string(n.name))
            for name in Array(repeated(n.n_input, n.input)) + Array(repeated(n.n_output, n.output)) { taken.insert(string(name)) }
            // A subgraph's own inputs, outputs and initializers (its nodes are visited in turn).
            if case .graph(let g) = owner { graph(g) }
        }
        taken.remove("")
    }

    /// Nothing taken: for tests.
    init(taken: Set<String>) { self.taken = taken }

    /// `base` if it is free, else the first free of `base_1`, `base_2`, …; the name is taken from now on.
    func fresh(_ base: String) -> String {
        if taken.insert(base).inserted { return base }
        var k = 1
        while !taken.insert("\(base)_\(k)").inserted { k += 1 }
        return "\(base)_\(k)"
    }

    /// Whether `name` is in use.
    func isTaken(_ name: String) -> Bool { taken.contains(name) }
}
