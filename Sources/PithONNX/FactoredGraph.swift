import Foundation
import PithIR
internal import CONNXProto
internal import CProtobufC

/// What `ONNXWriter` did with factored tensors when writing a factored graph.
public struct FactoredWriteReport: Sendable {
    /// Tensors written as their factors, with the nodes that now compute them.
    public var rewritten: [(tensor: String, nodes: [String])] = []
    /// Tensors written dense, and why.
    public var densified: [(tensor: String, reason: String)] = []
}

/// Memory for protobuf-c messages built in Swift: C strings, arrays and messages, all freed
/// together once the model is packed. Nothing here is reachable from the unpacked skeleton after
/// its pointers are put back, so protobuf-c never frees it.
final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []
    deinit { for block in blocks { free(block) } }

    func keep(_ pointer: UnsafeMutableRawPointer) { blocks.append(pointer) }

    func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
        let pointer = strdup(text)!
        blocks.append(pointer)
        return pointer
    }

    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        guard !values.isEmpty else { return nil }
        let pointer = malloc(MemoryLayout<T>.stride * values.count)!
        blocks.append(pointer)
        let typed = pointer.bindMemory(to: T.self, capacity: values.count)
        typed.initialize(from: values, count: values.count)
        return typed
    }

    func message<T>(_ type: T.Type, _ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = calloc(1, MemoryLayout<T>.stride)!
        blocks.append(pointer)
        let typed = pointer.bindMemory(to: T.self, capacity: 1)
        initialize(typed)
        return typed
    }

    func intAttribute(_ name: String, _ value: Int64) -> UnsafeMutablePointer<Onnx__AttributeProto>? {
        message(Onnx__AttributeProto.self) { a in
            ProtobufCalls.initialize(a)
            a.pointee.name = cString(name)
            a.pointee.has_type = 1
            a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
            a.pointee.has_i = 1
            a.pointee.i = value
        }
    }

    func floatAttribute(_ name: String, _ value: Float) -> UnsafeMutablePointer<Onnx__AttributeProto>? {
        message(Onnx__AttributeProto.self) { a in
            ProtobufCalls.initialize(a)
            a.pointee.name = cString(name)
            a.pointee.has_type = 1
            a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
            a.pointee.has_f = 1
            a.pointee.f = value
        }
    }

    func intsAttribute(_ name: String, _ values: [Int64]) -> UnsafeMutablePointer<Onnx__AttributeProto>? {
        message(Onnx__AttributeProto.self) { a in
            ProtobufCalls.initialize(a)
            a.pointee.name = cString(name)
            a.pointee.has_type = 1
            a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
            a.pointee.n_ints = values.count
            a.pointee.ints = array(values)
        }
    }

    func node(
        _ op: String, name: String, inputs: [String], outputs: [String],
        attributes: [UnsafeMutablePointer<Onnx__AttributeProto>?] = []
    ) -> UnsafeMutablePointer<Onnx__NodeProto> {
        message(Onnx__NodeProto.self) { n in
            ProtobufCalls.initialize(n)
            n.pointee.op_type = cString(op)
            n.pointee.name = cString(name)
            n.pointee.n_input = inputs.count
            n.pointee.input = array(inputs.map { Optional(cString($0)) })
            n.pointee.n_output = outputs.count
            n.pointee.output = array(outputs.map { Optional(cString($0)) })
            n.pointee.n_attribute = attributes.count
            n.pointee.attribute = array(attributes)
        }
    }

    /// An initializer holding `values` as float32 (data_type 1) or int64 (7) raw data.
    func tensor<T>(_ name: String, dims: [Int], _ values: [T], dataType: Int32) -> UnsafeMutablePointer<Onnx__TensorProto> {
        message(Onnx__TensorProto.self) { t in
            ProtobufCalls.initialize(t)
            t.pointee.name = cString(name)
            t.pointee.n_dims = dims.count
            t.pointee.dims = array(dims.map(Int64.init))
            t.pointee.has_data_type = 1
            t.pointee.data_type = dataType
            let bytes = values.withUnsafeBytes { Array($0) }
            t.pointee.has_raw_data = 1
            t.pointee.raw_data = ProtobufCBinaryData(len: bytes.count, data: array(bytes))
        }
    }
}

/// Replaces, in the main graph of an unpacked model, each node that multiplies by a factored
/// weight with nodes that multiply by its factors: a split layer becomes two Gemm / MatMul / Conv
/// nodes, a tensor train a chain of Reshape / Transpose / MatMul. The original arrays are put back
/// by `restore()` before the message is freed.
final class FactoredGraphRewriter {
    let arena = Arena()
    private var undo: [() -> Void] = []
    var report = FactoredWriteReport()
    /// Where new value and node names come from, so that none collides with a name of the model;
    /// made from the model when `rewrite` starts unless given.
    var names: NameAllocator?

    func restore() {
        for action in undo.reversed() { action() }
        undo.removeAll()
    }

    /// `factored`: name → the tensor (with factored storage) of every main-graph initializer to
    /// rewrite. Returns the names actually rewritten (the others must be written dense).
    func rewrite(_ model: UnsafeMutablePointer<Onnx__ModelProto>, factored: [String: Tensor]) -> Set<String> {
        guard let graph = model.pointee.graph, !factored.isEmpty else { return [] }
        if names == nil { names = NameAllocator(model) }
        let opset =
            messages(model.pointee.n_opset_import, model.pointee.opset_import)
            .first { string($0.pointee.domain).isEmpty || string($0.pointee.domain) == "ai.onnx" }.map { Int($0.pointee.version) } ?? 1
        let nodes = messages(graph.pointee.n_node, graph.pointee.node)
        // Every use of every name: top-level node inputs (node index, input position), and names read
        // inside subgraphs or produced as graph outputs, which keep the dense tensor.
        var uses: [String: [(Int, Int)]] = [:]
        for (n, node) in nodes.enumerated() {
            for (k, input) in repeated(node.pointee.n_input, node.pointee.input).enumerated() { uses[string(input), default: []].append((n, k)) }
        }
        var pinned = Set(messages(graph.pointee.n_output, graph.pointee.output).map { string($0.pointee.name) })
        for node in nodes { for attribute in messages(node.pointee.n_attribute, node.pointee.attribute) { collectNames(attribute, into: &pinned) } }

        // Where each weight comes from: an initializer, or the one output of a Constant node.
        let initializerNames = Set(messages(graph.pointee.n_initializer, graph.pointee.initializer).map { string($0.pointee.name) })
        var constantNode: [String: Int] = [:]
        for (n, node) in nodes.enumerated() where TensorSlots.isConstantOperator(node) && node.pointee.n_output == 1 {
            constantNode[string(node.pointee.output[0])] = n
        }
        var dropped = Set<Int>()  // Constant nodes whose weight is now held by factors
        var replacement: [Int: [UnsafeMutablePointer<Onnx__NodeProto>?]] = [:]
        var initializers: [UnsafeMutablePointer<Onnx__TensorProto>?] = []
        var done = Set<String>()
        for (name, tensor) in factored.sorted(by: { $0.key < $1.key }) {
            guard case .factored(let storage) = tensor.storage else { continue }
            guard initializerNames.contains(name) || constantNode[name] != nil else {
                report.densified.append((name, "it is neither an initializer nor a Constant of the main graph"))
                continue
            }
            guard let use = uses[name], use.count == 1, !pinned.contains(name) else {
                report.densified.append((name, "it is read by \(uses[name]?.count ?? 0) nodes or inside a subgraph; only a weight read once is rewritten"))
                continue
            }
            let (n, position) = use[0]
            let node = nodes[n]
            let op = string(node.pointee.op_type)
            guard position == 1, replacement[n] == nil else {
                report.densified.append((name, "node `\(string(node.pointee.name))` (\(op)) reads it as input \(position), not as its weight"))
                continue
            }
            let result: (nodes: [UnsafeMutablePointer<Onnx__NodeProto>], initializers: [UnsafeMutablePointer<Onnx__TensorProto>])?
            switch (storage.method, op) {
            case (.lowRank, "Gemm"), (.lowRank, "MatMul"), (.lowRank, "Conv"):
                result = splitLayer(node, op: op, name: name, tensor: tensor, storage: storage)
            case (.tensorTrain, "Gemm"):
                result = trainLayer(node, name: name, tensor: tensor, storage: storage, opset: opset)
            default:
                result = nil
                report.densified.append(
                    (
                        name,
                        "\(op) nodes are rewritten for \(storage.method.isTensorTrain ? "tensor trains only when they are Gemm" : "splits only when they are Gemm, MatMul or 1×1 Conv")"
                    ))
                continue
            }
            guard let result else { continue }
            replacement[n] = result.nodes.map { Optional($0) }
            if let constant = constantNode[name] { dropped.insert(constant) }
            initializers += result.initializers.map { Optional($0) }
            report.rewritten.append((name, result.nodes.map { string($0.pointee.name) }))
            done.insert(name)
        }
        guard !done.isEmpty else { return [] }
        // The new node list, in order; the initializers without the rewritten weights, plus factors.
        var newNodes: [UnsafeMutablePointer<Onnx__NodeProto>?] = []
        for (n, node) in nodes.enumerated() where !dropped.contains(n) { newNodes += replacement[n] ?? [node] }
        let kept = repeated(graph.pointee.n_initializer, graph.pointee.initializer).filter { t in t.map { !done.contains(string($0.pointee.name)) } ?? true }
        let newInitializers = Array(kept) + initializers
        let inputs = repeated(graph.pointee.n_input, graph.pointee.input).filter { v in v.map { !done.contains(string($0.pointee.name)) } ?? true }
        let saved = (
            graph.pointee.n_node, graph.pointee.node, graph.pointee.n_initializer, graph.pointee.initializer, graph.pointee.n_input, graph.pointee.input
        )
        undo.append {
            graph.pointee.n_node = saved.0; graph.pointee.node = saved.1
            graph.pointee.n_initializer = saved.2; graph.pointee.initializer = saved.3
            graph.pointee.n_input = saved.4; graph.pointee.input = saved.5
        }
        graph.pointee.n_node = newNodes.count
        graph.pointee.node = arena.array(newNodes)
        graph.pointee.n_initializer = newInitializers.count
        graph.pointee.initializer = arena.array(newInitializers)
        graph.pointee.n_input = inputs.count
        graph.pointee.input = arena.array(Array(inputs))
        return done
    }

    private func collectNames(_ attribute: UnsafeMutablePointer<Onnx__AttributeProto>, into names: inout Set<String>) {
        var graphs: [UnsafeMutablePointer<Onnx__GraphProto>] = attribute.pointee.g.map { [$0] } ?? []
        graphs += messages(attribute.pointee.n_graphs, attribute.pointee.graphs)
        for g in graphs {
            for node in messages(g.pointee.n_node, g.pointee.node) {
                for input in repeated(node.pointee.n_input, node.pointee.input) { names.insert(string(input)) }
                for a in messages(node.pointee.n_attribute, node.pointee.attribute) { collectNames(a, into: &names) }
            }
        }
    }

    private func attributes(_ node: UnsafeMutablePointer<Onnx__NodeProto>) -> [String: UnsafeMutablePointer<Onnx__AttributeProto>] {
        var result: [String: UnsafeMutablePointer<Onnx__AttributeProto>] = [:]
        for a in messages(node.pointee.n_attribute, node.pointee.attribute) { result[string(a.pointee.name)] = a }
        return result
    }

    private func inputs(_ node: UnsafeMutablePointer<Onnx__NodeProto>) -> [String] {
        repeated(node.pointee.n_input, node.pointee.input).map { string($0) }
    }

    /// `W = A·B` (A rows × r, B r × columns) as two nodes.
    private func splitLayer(
        _ node: UnsafeMutablePointer<Onnx__NodeProto>, op: String, name: String, tensor: Tensor, storage: FactoredStorage
    )
        -> (nodes: [UnsafeMutablePointer<Onnx__NodeProto>], initializers: [UnsafeMutablePointer<Onnx__TensorProto>])?
    {
        guard case .lowRank(let rank) = storage.method else { return nil }
        let a = storage.factors[0], b = storage.factors[1]
        let rows = storage.rows, columns = storage.columns
        let ins = inputs(node), outs = repeated(node.pointee.n_output, node.pointee.output).map { string($0) }
        let attrs = attributes(node)
        let label = string(node.pointee.name).isEmpty ? name : string(node.pointee.name)
        let names = self.names ?? NameAllocator(taken: [])
        let hidden = names.fresh("\(name)__factored_hidden")
        let first = names.fresh("\(name)__factor_first"), second = names.fresh("\(name)__factor_second")
        let firstNode = names.fresh("\(label)/factor_first"), secondNode = names.fresh("\(label)/factor_second")
        let bias = ins.count > 2 ? [ins[2]] : []
        switch op {
        case "Gemm":
            let transB = attrs["transB"].map { $0.pointee.i } ?? 0
            let transA = attrs["transA"].map { $0.pointee.i } ?? 0
            let alpha = attrs["alpha"].map { $0.pointee.f } ?? 1, beta = attrs["beta"].map { $0.pointee.f } ?? 1
            // transB = 1: W is [out, in] and y = x·Wᵀ = (x·Bᵀ)·Aᵀ; transB = 0: W is [in, out], y = (x·A)·B.
            let (firstFactor, firstDims, secondFactor, secondDims) =
                transB == 1
                ? (b, [rank, columns], a, [rows, rank]) : (a, [rows, rank], b, [rank, columns])
            let n1 = arena.node(
                "Gemm", name: firstNode, inputs: [ins[0], first], outputs: [hidden],
                attributes: [
                    arena.intAttribute("transA", transA), arena.intAttribute("transB", transB), arena.floatAttribute("alpha", alpha),
                ])
            let n2 = arena.node(
                "Gemm", name: secondNode, inputs: [hidden, second] + bias, outputs: outs,
                attributes: [
                    arena.intAttribute("transB", transB), arena.floatAttribute("beta", beta),
                ])
            return (
                [n1, n2], [arena.tensor(first, dims: firstDims, firstFactor, dataType: 1), arena.tensor(second, dims: secondDims, secondFactor, dataType: 1)]
            )
        case "MatMul":
            // W is [in, out]: y = (x·A)·B.
            let n1 = arena.node("MatMul", name: firstNode, inputs: [ins[0], first], outputs: [hidden])
            let n2 = arena.node("MatMul", name: secondNode, inputs: [hidden, second], outputs: outs)
            return ([n1, n2], [arena.tensor(first, dims: [rows, rank], a, dataType: 1), arena.tensor(second, dims: [rank, columns], b, dataType: 1)])
        case "Conv":
            guard tensor.shape.count == 4, tensor.shape[2] == 1, tensor.shape[3] == 1, (attrs["group"].map { $0.pointee.i } ?? 1) == 1 else {
                report.densified.append((name, "only 1×1 convolutions without groups are split"))
                return nil
            }
            // W [M, C, 1, 1] = A [M, r] · B [r, C]: a C→r convolution (with the node's strides and
            // padding), then r→M (with its bias).
            var firstAttributes: [UnsafeMutablePointer<Onnx__AttributeProto>?] = []
            for (key, attribute) in attrs where ["strides", "pads", "auto_pad", "dilations"].contains(key) { firstAttributes.append(attribute) }
            let n1 = arena.node("Conv", name: firstNode, inputs: [ins[0], first], outputs: [hidden], attributes: firstAttributes)
            let n2 = arena.node("Conv", name: secondNode, inputs: [hidden, second] + bias, outputs: outs)
            return (
                [n1, n2], [arena.tensor(first, dims: [rank, columns, 1, 1], b, dataType: 1), arena.tensor(second, dims: [rows, rank, 1, 1], a, dataType: 1)]
            )
        default:
            return nil
        }
    }

    /// A Gemm whose weight is a TT-matrix, as a chain contracting one core at a time: for each core,
    /// Reshape → Transpose → Reshape → MatMul (the core as a matrix) → Reshape → Transpose.
    private func trainLayer(
        _ node: UnsafeMutablePointer<Onnx__NodeProto>, name: String, tensor: Tensor, storage: FactoredStorage, opset: Int
    )
        -> (nodes: [UnsafeMutablePointer<Onnx__NodeProto>], initializers: [UnsafeMutablePointer<Onnx__TensorProto>])?
    {
        guard case .tensorTrain(let m, let n, let ranks) = storage.method else { return nil }
        let attrs = attributes(node)
        let transA = attrs["transA"].map { $0.pointee.i } ?? 0, transB = attrs["transB"].map { $0.pointee.i } ?? 0
        let alpha = attrs["alpha"].map { $0.pointee.f } ?? 1, beta = attrs["beta"].map { $0.pointee.f } ?? 1
        guard transA == 0, alpha == 1, beta == 1, opset >= 11 else {
            report.densified.append((name, "tensor-train Gemm needs transA 0, alpha and beta 1 and opset ≥ 11 (Pad with a pads input)"))
            return nil
        }
        let ins = inputs(node), outs = repeated(node.pointee.n_output, node.pointee.output).map { string($0) }
        let label = string(node.pointee.name).isEmpty ? name : string(node.pointee.name)
        // transB = 1: W is [out = rows, in = columns], the input runs over the column factors.
        let inFactors = transB == 1 ? n : m, outFactors = transB == 1 ? m : n
        let inSize = transB == 1 ? storage.columns : storage.rows, outSize = transB == 1 ? storage.rows : storage.columns
        let inPadded = inFactors.reduce(1, *), outPadded = outFactors.reduce(1, *)
        var nodes: [UnsafeMutablePointer<Onnx__NodeProto>] = []
        var initializers: [UnsafeMutablePointer<Onnx__TensorProto>] = []
        var counter = 0
        let allocator = self.names ?? NameAllocator(taken: [])
        func value() -> String {
            counter += 1
            return allocator.fresh("\(name)__tt_\(counter)")
        }
        func constant(_ values: [Int64]) -> String {
            let v = value()
            initializers.append(arena.tensor(v, dims: [values.count], values, dataType: 7))
            return v
        }
        var current = ins[0]
        if inPadded > inSize {
            let padded = value()
            nodes.append(
                arena.node(
                    "Pad", name: allocator.fresh("\(label)/tt_pad"), inputs: [current, constant([0, 0, 0, Int64(inPadded - inSize)])], outputs: [padded]))
            current = padded
        }
        for k in inFactors.indices {
            let after = inFactors[(k + 1)...].reduce(1, *)
            let rIn = ranks[k], rOut = ranks[k + 1], a = inFactors[k], b = outFactors[k]
            // The core as a (rIn·a) × (b·rOut) matrix: G[r, m, n, r'] permuted so the input factor
            // comes right after rIn.
            let g = storage.factors[k]
            var matrix = [Float](repeating: 0, count: rIn * a * b * rOut)
            for r in 0..<rIn {
                for i in 0..<m[k] {
                    for j in 0..<n[k] {
                        for s in 0..<rOut {
                            let source = ((r * m[k] + i) * n[k] + j) * rOut + s
                            let (x, y) = transB == 1 ? (j, i) : (i, j)  // x over the input factor, y over the output factor
                            matrix[((r * a + x) * b + y) * rOut + s] = g[source]
                        }
                    }
                }
            }
            let core = value()
            initializers.append(arena.tensor(core, dims: [rIn * a, b * rOut], matrix, dataType: 1))
            let names = (0..<5).map { _ in value() }
            let step = "\(label)/tt_core\(k + 1)"
            nodes.append(
                arena.node(
                    "Reshape", name: allocator.fresh("\(step)/reshape_in"), inputs: [current, constant([-1, Int64(rIn * a), Int64(after)])], outputs: [names[0]]
                ))
            nodes.append(
                arena.node(
                    "Transpose", name: allocator.fresh("\(step)/transpose_in"), inputs: [names[0]], outputs: [names[1]],
                    attributes: [arena.intsAttribute("perm", [0, 2, 1])]))
            nodes.append(
                arena.node("Reshape", name: allocator.fresh("\(step)/rows"), inputs: [names[1], constant([-1, Int64(rIn * a)])], outputs: [names[2]]))
            nodes.append(arena.node("MatMul", name: allocator.fresh("\(step)/matmul"), inputs: [names[2], core], outputs: [names[3]]))
            nodes.append(
                arena.node(
                    "Reshape", name: allocator.fresh("\(step)/reshape_out"), inputs: [names[3], constant([-1, Int64(after), Int64(b * rOut)])],
                    outputs: [names[4]]))
            let transposed = value()
            nodes.append(
                arena.node(
                    "Transpose", name: allocator.fresh("\(step)/transpose_out"), inputs: [names[4]], outputs: [transposed],
                    attributes: [arena.intsAttribute("perm", [0, 2, 1])])
            )
            current = transposed
        }
        let flat = value()
        nodes.append(
            arena.node("Reshape", name: allocator.fresh("\(label)/tt_flatten"), inputs: [current, constant([-1, Int64(outPadded)])], outputs: [flat]))
        current = flat
        let hasBias = ins.count > 2 && !ins[2].isEmpty
        if outPadded > outSize {
            let sliced = hasBias ? value() : outs[0]
            nodes.append(
                arena.node(
                    "Slice", name: allocator.fresh("\(label)/tt_slice"), inputs: [current, constant([0]), constant([Int64(outSize)]), constant([1])],
                    outputs: [sliced]))
            current = sliced
        }
        if hasBias {
            nodes.append(arena.node("Add", name: allocator.fresh("\(label)/tt_bias"), inputs: [current, ins[2]], outputs: outs))
        } else if current != outs[0] {
            nodes.append(arena.node("Identity", name: allocator.fresh("\(label)/tt_output"), inputs: [current], outputs: outs))
        }
        return (nodes, initializers)
    }
}

extension FactoredStorage.Method {
    var isTensorTrain: Bool { if case .tensorTrain = self { return true } else { return false } }
}
