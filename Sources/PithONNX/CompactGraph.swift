import PithIR
internal import CONNXProto
internal import CProtobufC

/// What `ONNXWriter.writeCompact` did with the model's compressed tensors.
public struct CompactWriteReport: Sendable {
    /// Tensors kept compressed, with their form: stored codes and the nodes that decode them.
    public var compact: [(tensor: String, form: String)] = []
    /// Factored tensors written as their factors, with the nodes that now compute them.
    public var factored: [(tensor: String, nodes: [String])] = []
    /// Compressed tensors written dense, and why.
    public var densified: [(tensor: String, reason: String)] = []
    /// The default-domain opset before and after; nil when the model imports none.
    public var opset: (from: Int, to: Int)?
    /// The IR version before and after.
    public var irVersion: (from: Int, to: Int) = (0, 0)
    /// Bytes of the same model written dense: what `restore` without `--compact` writes.
    public var denseBytes = 0
}

/// Rewrites an unpacked model so that each compressed tensor stays compressed: its slot (an
/// initializer, a sparse initializer or a `Constant` node, in any graph) is replaced by the stored
/// codes and decoder nodes whose output carries the tensor's name (see `CompactTensor`). Every node
/// that read the tensor — several nodes, or nodes inside subgraphs — reads that one output, so the
/// tensor is decoded once. Decoders of initializers go first in their graph; a Constant node's
/// take its place. New names come from a `NameAllocator`.
///
/// The model's default-domain opset is raised only as far as the chosen forms need, and only when
/// no node of the model (subgraphs and functions included) is redefined incompatibly between the
/// two versions (`OpsetHistory`); otherwise each tensor takes its best form under the highest opset
/// that keeps every node valid (int8 codes instead of int4, Cast and Mul instead of a per-axis
/// DequantizeLinear), or stays dense, and the report says why. The original arrays are put back by
/// `restore()` before the message is freed.
final class CompactGraphRewriter {
    let arena = Arena()
    let names: NameAllocator
    var report = CompactWriteReport()
    private var undo: [() -> Void] = []

    init(names: NameAllocator) { self.names = names }

    func restore() {
        for action in undo.reversed() { action() }
        undo.removeAll()
    }

    /// Where a tensor's slot sits, for the graph edit that replaces it.
    private enum Site {
        case initializer(UnsafeMutablePointer<Onnx__GraphProto>, UnsafeMutablePointer<Onnx__TensorProto>)
        case sparseInitializer(UnsafeMutablePointer<Onnx__GraphProto>, UnsafeMutablePointer<Onnx__SparseTensorProto>)
        case constant(UnsafeMutablePointer<Onnx__GraphProto>, UnsafeMutablePointer<Onnx__NodeProto>)

        var graph: UnsafeMutablePointer<Onnx__GraphProto> {
            switch self {
            case .initializer(let g, _), .sparseInitializer(let g, _), .constant(let g, _): return g
            }
        }
    }

    private struct Candidate {
        var index: Int
        var tensor: Tensor
        var codes: CompactTensor
        var choices: [CompactTensor.Choice]
        var site: Site
        /// The name the graph reads the tensor by.
        var output: String
        /// A MatMul reads it (see `rewrite`).
        var readByMatMul = false
    }

    /// The edits of one graph, applied together.
    private struct GraphEdit {
        var removedInitializers = Set<UnsafeMutablePointer<Onnx__TensorProto>>()
        var removedSparse = Set<UnsafeMutablePointer<Onnx__SparseTensorProto>>()
        var removedInputs = Set<String>()
        var front: [UnsafeMutablePointer<Onnx__NodeProto>] = []
        var replaced: [UnsafeMutablePointer<Onnx__NodeProto>: [UnsafeMutablePointer<Onnx__NodeProto>]] = [:]
        var added: [UnsafeMutablePointer<Onnx__TensorProto>] = []
    }

    /// Rewrites `model`, whose slots (in `TensorSlots` order) hold `tensors`, for every compressed
    /// tensor whose index is not in `skip`. Returns the indices of the slots no longer in the model
    /// (their data must not be written).
    func rewrite(
        _ model: UnsafeMutablePointer<Onnx__ModelProto>, slots: [(slot: TensorSlots.Slot, place: TensorSlots.Place)], tensors: [Tensor], skip: Set<Int>
    )
        -> Set<Int>
    {
        let main = model.pointee.graph
        var candidates: [Candidate] = []
        for (index, (slot, place)) in slots.enumerated() where !skip.contains(index) && tensors[index].storage.isCompressed {
            let tensor = tensors[index]
            func dense(_ reason: String) { report.densified.append((tensor.name, reason)) }
            let site: Site, output: String
            switch (slot, place.node, place.owner) {
            case (.tensor(let t), nil, .graph(let g)):
                site = .initializer(g, t)
                output = string(t.pointee.name)
            case (.sparseTensor(let s), nil, .graph(let g)):
                site = .sparseInitializer(g, s)
                output = s.pointee.values.map { string($0.pointee.name) } ?? ""
            case (_, let node?, .graph(let g)) where node.isConstant && node.message.pointee.n_output == 1:
                site = .constant(g, node.message)
                output = node.firstOutput
            case (_, let node?, .function(let f)) where node.isConstant:
                dense("it is a Constant inside the model-local function `\(string(f.pointee.name))`, which holds no initializers; only graphs are rewritten")
                continue
            case (_, let node?, _):
                dense("it is attribute `\(node.attribute)` of node `\(node.label)` (\(node.opType)), where only a tensor can stand")
                continue
            default:
                dense("its place in the model is not one a decoder can replace")
                continue
            }
            guard !output.isEmpty else {
                dense("it has no name for the graph to read it by")
                continue
            }
            if site.graph != main, messages(site.graph.pointee.n_input, site.graph.pointee.input).contains(where: { string($0.pointee.name) == output }) {
                dense("its subgraph also takes `\(output)` as an input")
                continue
            }
            do throws(CompactTensor.Refusal) {
                let codes = try CompactTensor(tensor)
                candidates.append(
                    Candidate(
                        index: index, tensor: tensor, codes: codes, choices: codes.choices(dtype: tensor.dtype, count: tensor.count, rank: tensor.shape.count),
                        site: site, output: output
                    ))
            } catch {
                dense(error.reason)
            }
        }
        guard !candidates.isEmpty else { return [] }

        // Weights a MatMul reads are decoded by Cast and Mul rather than DequantizeLinear (same bytes):
        // onnxruntime fuses DequantizeLinear → MatMul into MatMulNBits, which by default
        // (`session.qdq_matmulnbits_accuracy_level` 4) computes with 8-bit activations, 1.8% off the
        // dense model's outputs on a random layer (measured, onnxruntime 1.32).
        var matmulInputs = Set<String>()
        TensorSlots.forEachNode(in: model) { node, _ in
            let domain = string(node.pointee.domain)
            guard string(node.pointee.op_type) == "MatMul", domain.isEmpty || domain == "ai.onnx" else { return }
            for input in repeated(node.pointee.n_input, node.pointee.input) { matmulInputs.insert(string(input)) }
        }
        for k in candidates.indices where matmulInputs.contains(candidates[k].output) {
            candidates[k].choices.sort { ($0.bytes, $0.dequantize ? 1 : 0, $0.opset) < ($1.bytes, $1.dequantize ? 1 : 0, $1.opset) }
            candidates[k].readByMatMul = true
        }

        // The opset: as far as the best forms need, if every node of the model stays valid.
        let imports = messages(model.pointee.n_opset_import, model.pointee.opset_import)
        guard let defaultImport = imports.first(where: { string($0.pointee.domain).isEmpty || string($0.pointee.domain) == "ai.onnx" }) else {
            for c in candidates { report.densified.append((c.tensor.name, "the model imports no opset of ONNX's default domain, which has the decoders")) }
            return []
        }
        let from = Int(defaultImport.pointee.version)
        let wanted = candidates.compactMap { $0.choices.first?.opset }.max() ?? from
        let (ceiling, blocker) = Self.opsetCeiling(model, from: from, upTo: max(from, wanted))

        // Each tensor's form: the best its decoders allow under the ceiling.
        var decided: [(candidate: Candidate, choice: CompactTensor.Choice, note: String?)] = []
        for c in candidates {
            guard let choice = c.choices.first(where: { $0.opset <= ceiling }) else {
                report.densified.append((c.tensor.name, "its decoders need opset \(c.choices.first?.opset ?? 0); \(blocker ?? "the model's opset is \(from)")"))
                continue
            }
            if choice.isDense {
                let sparse = c.choices.first { $0.sparse }
                if let sparse, sparse.bytes < choice.bytes {
                    report.densified.append(
                        (c.tensor.name, "its sparse Constant (\(sparse.bytes) bytes) needs opset \(sparse.opset); \(blocker ?? "the model's opset is \(from)")")
                    )
                } else {
                    report.densified.append(
                        (
                            c.tensor.name,
                            "its \(c.codes.nonzero) nonzero values as a sparse Constant would take \(sparse?.bytes ?? 0) bytes, "
                                + "more than the \(choice.bytes) of the dense tensor"
                        ))
                }
                continue
            }
            decided.append((c, choice, nil))
        }
        // Packed codes must repay their pair table: where the tensors sharing one save fewer bytes
        // than it takes, they take their best form without it.
        var users: [CompactTensor.PairTable: [Int]] = [:]
        for (k, d) in decided.enumerated() { if let table = d.choice.table { users[table, default: []].append(k) } }
        for (table, members) in users {
            let fallbacks = members.map { k in decided[k].candidate.choices.first { !$0.packed && !$0.isDense && $0.opset <= ceiling } }
            let saved = zip(members, fallbacks).reduce(0) { $0 + (($1.1?.bytes ?? Int.max / 2) - decided[$1.0].choice.bytes) }
            guard saved <= table.bytes else { continue }
            for (k, fallback) in zip(members, fallbacks) {
                guard let fallback else { continue }
                decided[k].note =
                    "packed two per byte they would save \(fallback.bytes - decided[k].choice.bytes) bytes, less than their \(table.bytes)-byte pair table"
                decided[k].choice = fallback
            }
        }
        let opset = decided.reduce(from) { max($0, $1.choice.opset) }

        var edits: [UnsafeMutablePointer<Onnx__GraphProto>: GraphEdit] = [:]
        var order: [UnsafeMutablePointer<Onnx__GraphProto>] = []
        var removed = Set<Int>()
        var irNeeded = 0
        // Pair tables go in the main graph, where every subgraph can read them.
        var tableNames: [CompactTensor.PairTable: String] = [:]
        func tableName(_ table: CompactTensor.PairTable, for c: Candidate) -> String {
            if let name = tableNames[table] { return name }
            let name: String
            switch (c.codes.decoder, c.codes.codes) {
            case (.lookup, _): name = names.fresh("nibble_pairs")
            case (_, .integer(_, let signed)): name = names.fresh(signed ? "int4_pairs" : "uint4_pairs")
            default: name = names.fresh("\(c.output)_pairs")
            }
            tableNames[table] = name
            let home = main ?? c.site.graph
            if edits[home] == nil { order.append(home) }
            edits[home, default: GraphEdit()].added.append(arena.tensor(name, dtype: table.element, dims: [256, 2], bytes: table.rawData))
            return name
        }
        for (c, choice, note) in decided {
            let best = c.choices.first!
            var form = emit(c, choice, opset: opset, table: choice.table.map { tableName($0, for: c) })
            // Said only where DequantizeLinear could have decoded the same codes.
            if c.readByMatMul, !choice.dequantize, !choice.packed,
                c.choices.contains(where: { $0.dequantize && $0.element == choice.element && $0.sparse == choice.sparse && $0.opset <= ceiling })
            {
                form.description +=
                    " (not DequantizeLinear: onnxruntime fuses it with the MatMul into MatMulNBits, which computes with 8-bit activations by default)"
            }
            if choice != best {
                // (Packed codes are never the best form: int4 / uint4 codes take fewer bytes.)
                var wanted = Self.describe(best.element, sparse: best.sparse)
                if best.dequantize, !choice.dequantize { wanted += " with DequantizeLinear" }
                form.description += " (\(wanted) would need opset \(best.opset): \(blocker ?? "the model's opset is \(from)")\(note.map { "; \($0)" } ?? ""))"
            }
            if choice.element == .int4 || choice.element == .uint4 { irNeeded = max(irNeeded, 10) }
            if choice.sparse { irNeeded = max(irNeeded, 6) }
            let graph = c.site.graph
            if edits[graph] == nil { order.append(graph) }
            var edit = edits[graph] ?? GraphEdit()
            switch c.site {
            case .initializer(_, let t):
                edit.removedInitializers.insert(t)
                edit.front += form.nodes
                if graph == main { edit.removedInputs.insert(c.output) }
            case .sparseInitializer(_, let s):
                edit.removedSparse.insert(s)
                edit.front += form.nodes
                if graph == main { edit.removedInputs.insert(c.output) }
            case .constant(_, let node):
                edit.replaced[node] = form.nodes
            }
            edit.added += form.initializers
            edits[graph] = edit
            removed.insert(c.index)
            report.compact.append((c.tensor.name, form.description))
        }
        for graph in order { apply(edits[graph]!, to: graph) }
        // Before IR version 4 every initializer had to be a graph input as well; from 4 it need not be,
        // which is all that changes, so the new initializers raise an older model to 4.
        if edits.values.contains(where: { !$0.added.isEmpty }) { irNeeded = max(irNeeded, 4) }

        // Raise the opset (the model's, and the functions' that imported the same version) and the
        // IR version as far as the new nodes and types need.
        report.opset = (from, opset)
        if opset > from {
            var raised = [defaultImport]
            for function in messages(model.pointee.n_functions, model.pointee.functions) {
                raised += messages(function.pointee.n_opset_import, function.pointee.opset_import).filter {
                    (string($0.pointee.domain).isEmpty || string($0.pointee.domain) == "ai.onnx") && Int($0.pointee.version) == from
                }
            }
            for entry in raised {
                let saved = (entry.pointee.has_version, entry.pointee.version)
                undo.append {
                    entry.pointee.has_version = saved.0; entry.pointee.version = saved.1
                }
                entry.pointee.has_version = 1
                entry.pointee.version = Int64(opset)
            }
            irNeeded = max(irNeeded, OpsetHistory.irVersion[opset] ?? 10)
        }
        let ir = Int(model.pointee.ir_version)
        report.irVersion = (ir, max(ir, irNeeded))
        if irNeeded > ir {
            let saved = (model.pointee.has_ir_version, model.pointee.ir_version)
            undo.append {
                model.pointee.has_ir_version = saved.0; model.pointee.ir_version = saved.1
            }
            model.pointee.has_ir_version = 1
            model.pointee.ir_version = Int64(irNeeded)
        }
        return removed
    }

    /// The highest opset in `from...target` to which the model's default-domain opset can be raised
    /// without any node being redefined incompatibly (`OpsetHistory.breaking`), and, when that is
    /// below `target`, what stops it. BatchNormalization's change at 14 only drops outputs 4 and 5
    /// (training statistics), so a node with at most 3 outputs passes it, as onnx's converter allows.
    static func opsetCeiling(_ model: UnsafeMutablePointer<Onnx__ModelProto>, from: Int, upTo target: Int) -> (Int, String?) {
        guard target > from else { return (from, nil) }
        var ceiling = target, blocker: String?
        TensorSlots.forEachNode(in: model) { node, _ in
            let domain = string(node.pointee.domain), op = string(node.pointee.op_type)
            guard domain.isEmpty || domain == "ai.onnx", ceiling > from else { return }
            let label = string(node.pointee.name).isEmpty ? op : string(node.pointee.name)
            guard let breaking = OpsetHistory.breaking[op] else {
                ceiling = from
                blocker = "the opset stays \(from): node `\(label)` is \(op), which Pith's opset table (to opset \(OpsetHistory.newest)) does not know"
                return
            }
            let exempt = op == "BatchNormalization" && node.pointee.n_output <= 3 ? [14] : []
            if let version = breaking.first(where: { $0 > from && !exempt.contains($0) }), version <= ceiling {
                ceiling = version - 1
                blocker = "raising opset \(from) to \(version) would change node `\(label)` (\(op) is redefined at opset \(version))"
            }
        }
        return (ceiling, blocker)
    }

    private func apply(_ edit: GraphEdit, to graph: UnsafeMutablePointer<Onnx__GraphProto>) {
        let g = graph.pointee
        let saved = (g.n_node, g.node, g.n_initializer, g.initializer, g.n_sparse_initializer, g.sparse_initializer, g.n_input, g.input)
        undo.append {
            graph.pointee.n_node = saved.0; graph.pointee.node = saved.1
            graph.pointee.n_initializer = saved.2; graph.pointee.initializer = saved.3
            graph.pointee.n_sparse_initializer = saved.4; graph.pointee.sparse_initializer = saved.5
            graph.pointee.n_input = saved.6; graph.pointee.input = saved.7
        }
        var nodes: [UnsafeMutablePointer<Onnx__NodeProto>?] = edit.front.map { Optional($0) }
        for node in messages(g.n_node, g.node) { nodes += (edit.replaced[node] ?? [node]).map { Optional($0) } }
        let initializers = messages(g.n_initializer, g.initializer).filter { !edit.removedInitializers.contains($0) } + edit.added
        let sparse = messages(g.n_sparse_initializer, g.sparse_initializer).filter { !edit.removedSparse.contains($0) }
        let inputs = messages(g.n_input, g.input).filter { !edit.removedInputs.contains(string($0.pointee.name)) }
        graph.pointee.n_node = nodes.count
        graph.pointee.node = arena.array(nodes)
        graph.pointee.n_initializer = initializers.count
        graph.pointee.initializer = arena.array(initializers.map { Optional($0) })
        graph.pointee.n_sparse_initializer = sparse.count
        graph.pointee.sparse_initializer = arena.array(sparse.map { Optional($0) })
        graph.pointee.n_input = inputs.count
        graph.pointee.input = arena.array(inputs.map { Optional($0) })
    }

    static func describe(_ element: DType, sparse: Bool) -> String {
        sparse ? "a sparse Constant of \(element.rawValue) codes" : "\(element.rawValue) codes"
    }

    /// The nodes and initializers that give `c.output` from its codes stored as `choice` says, in a
    /// model of default-domain opset `opset`; packed codes are looked up in the pair table `table`.
    private func emit(
        _ c: Candidate, _ choice: CompactTensor.Choice, opset: Int, table: String?
    ) -> (
        nodes: [UnsafeMutablePointer<Onnx__NodeProto>], initializers: [UnsafeMutablePointer<Onnx__TensorProto>], description: String
    ) {
        let w = c.output, dtype = c.tensor.dtype, shape = c.tensor.shape, element = choice.element
        var nodes: [UnsafeMutablePointer<Onnx__NodeProto>] = [], initializers: [UnsafeMutablePointer<Onnx__TensorProto>] = []
        func node(_ op: String, _ inputs: [String], _ output: String, _ attributes: [UnsafeMutablePointer<Onnx__AttributeProto>?] = []) {
            nodes.append(arena.node(op, name: names.fresh("\(w)/\(op)"), inputs: inputs, outputs: [output], attributes: attributes))
        }
        func cast(_ input: String, to type: DType, _ output: String) {
            node("Cast", [input], output, [arena.intAttribute("to", Int64(ONNXDataType(type).rawValue))])
        }
        func int64s(_ base: String, _ values: [Int]) -> String {
            let name = names.fresh("\(w)_\(base)")
            initializers.append(arena.tensor(name, dims: [values.count], values.map(Int64.init), dataType: 7))
            return name
        }
        // A per-axis parameter shaped to broadcast against the tensor: [C, 1, …, 1].
        func broadcastShape(_ count: Int, axis: Int) -> [Int] { count == 1 ? [] : [count] + [Int](repeating: 1, count: max(0, shape.count - 1 - axis)) }

        // The codes: an initializer, or a sparse Constant.
        let codesName: String
        switch c.codes.decoder {
        case .none: codesName = w
        case .linear: codesName = names.fresh("\(w)_quantized")
        case .lookup: codesName = names.fresh("\(w)_indices")
        case .cast: codesName = names.fresh("\(w)_\(element.rawValue)")
        }
        var description: String
        // Packed codes: the tensor of what each code decodes to through the pair table (the codes
        // less their zero point, or the indices).
        var unpacked: String?, unpacking: [String] = []
        if choice.packed, let table {
            let count = c.tensor.count, pairs = (count + 1) / 2
            initializers.append(arena.tensor(codesName, dtype: .uint8, dims: [pairs], bytes: CompactTensor.pack(c.codes.values, as: .uint4)))
            var signed = false
            if case .integer(_, let s) = c.codes.codes { signed = s }
            description = "\(signed ? "int4" : "uint4") \(c.codes.decoder.noun) packed two per byte"
            var steps = ["Cast", "Gather", "Reshape"]
            let index = names.fresh("\(w)_index"), looked = names.fresh("\(w)_pairs")
            // Gather takes int32 or int64 indices only.
            cast(codesName, to: .int32, index)
            node("Gather", [table, index], looked)
            let values = names.fresh("\(w)_unpacked")
            if count % 2 == 0 {
                node("Reshape", [looked, int64s("shape", shape)], values)
            } else {
                // The last byte's high nibble pads: flatten, drop it, then shape.
                let flat = names.fresh("\(w)_flat"), kept = shape.count == 1 ? values : names.fresh("\(w)_kept")
                node("Reshape", [looked, int64s("padded_shape", [2 * pairs])], flat)
                if opset >= 10 {
                    node("Slice", [flat, int64s("starts", [0]), int64s("ends", [count])], kept)
                } else {
                    node("Slice", [flat], kept, [arena.intsAttribute("starts", [0]), arena.intsAttribute("ends", [Int64(count)])])
                }
                steps.append("Slice")
                if shape.count != 1 {
                    node("Reshape", [kept, int64s("shape", shape)], values)
                    steps.append("Reshape")
                }
            }
            unpacking = steps
            unpacked = values
        } else if choice.sparse {
            let positions = c.codes.values.indices.filter { c.codes.values[$0] != 0 }
            nodes.append(
                arena.sparseConstant(
                    name: names.fresh("\(w)/Constant"), output: codesName, dtype: element, dims: shape,
                    values: CompactTensor.pack(c.codes.values, as: element, positions: positions), positions: positions.map(Int64.init)))
            description = "a sparse Constant of \(positions.count) of \(c.tensor.count) \(element.rawValue) \(c.codes.decoder.noun)"
        } else {
            initializers.append(arena.tensor(codesName, dtype: element, dims: shape, bytes: CompactTensor.pack(c.codes.values, as: element)))
            description = "\(element.rawValue) \(c.codes.decoder.noun)"
        }

        switch c.codes.decoder {
        case .none:
            break
        case .cast:
            cast(codesName, to: dtype, w)
            description += " → Cast to \(dtype.rawValue)"
        case .linear(let scales, let zeroPoints, let axis):
            let decoded = dtype == .float32 ? w : names.fresh("\(w)_dequantized")
            let perAxis = scales.count > 1
            description += perAxis ? ", \(scales.count) scales along axis \(axis)" : ", one scale"
            if !zeroPoints.isEmpty { description += " and zero points" }
            if choice.dequantize {
                let scale = names.fresh("\(w)_scale")
                initializers.append(arena.tensor(scale, dims: perAxis ? [scales.count] : [], scales, dataType: 1))
                var inputs = [codesName, scale]
                if !zeroPoints.isEmpty {
                    let zero = names.fresh("\(w)_zero_point")
                    initializers.append(
                        arena.tensor(zero, dtype: element, dims: perAxis ? [scales.count] : [], bytes: CompactTensor.pack(zeroPoints, as: element)))
                    inputs.append(zero)
                }
                node("DequantizeLinear", inputs, decoded, perAxis ? [arena.intAttribute("axis", Int64(axis))] : [])
                description += " → DequantizeLinear"
            } else {
                var steps = unpacking
                let floats: String
                if let unpacked {
                    floats = unpacked
                } else {
                    floats = names.fresh("\(w)_codes_float")
                    cast(codesName, to: .float32, floats)
                    steps.append("Cast")
                }
                var centered = floats
                // Packed codes have a zero point shared by every channel taken off in their table.
                if !zeroPoints.isEmpty, unpacked == nil || Set(zeroPoints).count > 1 {
                    let zero = names.fresh("\(w)_zero_point")
                    initializers.append(arena.tensor(zero, dims: broadcastShape(scales.count, axis: axis), zeroPoints.map(Float.init), dataType: 1))
                    centered = names.fresh("\(w)_centered")
                    node("Sub", [floats, zero], centered)
                    steps.append("Sub")
                }
                let scale = names.fresh("\(w)_scale")
                initializers.append(arena.tensor(scale, dims: broadcastShape(scales.count, axis: axis), scales, dataType: 1))
                node("Mul", [centered, scale], decoded)
                steps.append("Mul")
                description += " → " + steps.joined(separator: ", ")
            }
            if decoded != w {
                cast(decoded, to: dtype, w)
                description += ", Cast to \(dtype.rawValue)"
            }
        case .lookup(let table, let channels, let axis):
            let per = table.count / channels
            description +=
                channels > 1
                ? " into \(channels) codebooks of \(per) \(dtype.rawValue) along axis \(axis)" : " into a codebook of \(per) \(dtype.rawValue)"
            // The indices: int64 from a Cast, or int32 from the pair table.
            var steps = unpacking, flat: String
            if let unpacked {
                flat = unpacked
            } else {
                flat = names.fresh("\(w)_index")
                cast(codesName, to: .int64, flat)
                steps.append("Cast")
            }
            if channels > 1 {
                let offsets = names.fresh("\(w)_offsets"), starts = (0..<channels).map { $0 * per }
                let dims = broadcastShape(channels, axis: axis)
                initializers.append(
                    unpacked == nil
                        ? arena.tensor(offsets, dims: dims, starts.map(Int64.init), dataType: 7)
                        : arena.tensor(offsets, dims: dims, starts.map(Int32.init), dataType: 6))
                let index = flat
                flat = names.fresh("\(w)_flat_index")
                node("Add", [index, offsets], flat)
                steps.append("Add")
            }
            let codebook = names.fresh("\(w)_codebook")
            initializers.append(arena.tensor(codebook, dtype: dtype, dims: [table.count], bytes: Tensor.encode(table, as: dtype).bytes))
            node("Gather", [codebook, flat], w)
            description += " → " + (steps + ["Gather"]).joined(separator: ", ")
        }
        return (nodes, initializers, description)
    }
}

extension CompactTensor.Decoder {
    /// What the stored codes are called in reports.
    var noun: String {
        switch self {
        case .none: return "values"
        case .lookup: return "indices"
        case .linear, .cast: return "codes"
        }
    }
}
