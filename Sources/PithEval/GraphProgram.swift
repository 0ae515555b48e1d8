import Foundation
import PithIR

/// A graph made ready to run, once, before any input is seen: its constants decoded, its nodes in
/// dependency order with every value each one reads (the outer-scope values its subgraphs capture
/// included), the subgraphs of `If`, `Loop` and `Scan` prepared the same way, and for every node
/// the first reason, if any, that it cannot be computed.
///
/// The main graph and every subgraph are one of these. Building one refuses a malformed graph with
/// a named error: a value produced by two nodes, a cycle, a read of a name nothing defines (in a
/// subgraph: nothing in it or in an enclosing graph). An operator the evaluator lacks is not an
/// error here: it is recorded, and only the outputs that need it are refused (`problem(of:)`).
///
/// Scoping is lexical, as ONNX defines it: a subgraph sees its own inputs, initializers and node
/// outputs first, then every enclosing graph's values. Those outer values (`freeNames`) are read by
/// the node holding the subgraph, so they count as its inputs for ordering and for freeing memory.
final class GraphProgram: Sendable {
    /// One node to run.
    struct Step: Sendable {
        let node: Node
        /// The node's position in the file, for messages about unnamed nodes.
        let index: Int
        /// Every value the node needs: its inputs, then what its subgraphs read from enclosing scopes.
        let reads: [String]
        /// The node's subgraphs by attribute name (`then_branch`, `else_branch`, `body`).
        let subgraphs: [String: GraphProgram]
        /// Tensor-valued attributes the operator reads (ConstantOfShape's `value`), decoded.
        let tensors: [String: Value]
        /// Why the node cannot be computed, if it cannot: an operator or domain the evaluator lacks,
        /// or an uncomputable node inside one of its subgraphs.
        let problem: EvalError?
        /// The node's computation made ready by the build step (`GraphBuild`), if it has one.
        var kernel: (any PreparedKernel)?
    }

    /// Which steps to run for a set of outputs, in order, and how many of them read each value
    /// (so that a value is freed after its last reader).
    struct Plan: Sendable {
        let outputs: [String]
        let steps: [Int]
        let readers: [String: Int]
    }

    let opset: Int
    /// Most iterations one Loop may run (`ControlFlow.maximumLoopIterations` unless a caller chose).
    let maximumLoopIterations: Int
    /// The graph's declared inputs (for a subgraph: what its node feeds it, in order).
    let inputs: [ValueInfo]
    let outputs: [ValueInfo]
    /// Initializers and Constant outputs, by the name the graph reads them under.
    let constants: [String: Value]
    /// Constants of types the evaluator does not compute (strings aside): an error only if needed.
    let uncomputable: [String: DType]
    /// The nodes (Constant nodes aside), in dependency order.
    let steps: [Step]
    /// The step producing each value.
    let producer: [String: Int]
    /// Names read from enclosing scopes by the nodes that compute the outputs (nested subgraphs
    /// included) or named as outputs; sorted. What the node holding this graph reads for it.
    let freeNames: [String]
    /// Names read from enclosing scopes by any node, needed or not: each must be defined somewhere.
    let everyFreeName: [String]
    /// For each step, the first reason it or a value it needs cannot be computed.
    let coneProblems: [EvalError?]
    /// The plan computing every output (how a subgraph always runs).
    let fullPlan: Plan

    /// Prepares `graph`, a graph of `model` (the main graph, or a subgraph at `path`). With `optimize`,
    /// the build step (`GraphBuild`) rewrites the graph first: constants folded, BatchNormalization and
    /// activations fused into convolutions; the values it removes can then not be asked for.
    init(
        _ graph: Graph, model: Model, opset: Int, maximumLoopIterations: Int = ControlFlow.maximumLoopIterations, path: GraphPath = .main,
        optimize: Bool = false
    ) throws {
        self.opset = opset
        self.maximumLoopIterations = maximumLoopIterations
        inputs = graph.inputs
        outputs = graph.outputs
        let isMain = path == .main

        // Constants: initializers (named, in subgraphs, with their graph path as a prefix) and Constant nodes.
        var constants: [String: Value] = [:], uncomputable: [String: DType] = [:]
        // Initializers decoded over the cores (each into the evaluator's floats or integers), then
        // stored in file order, so that a name given twice keeps the later tensor as before.
        let ids = (graph.initializers + graph.sparseInitializers).filter { $0 >= 0 && $0 < model.tensors.count }
        let tensors = model.tensors
        let decoded = Parallel.map(ids) { id -> Result<Value, EvalError> in
            do { return .success(try Value(tensors[id])) } catch let error as EvalError { return .failure(error) } catch {
                return .failure(.invalid("\(error)"))
            }
        }
        for (id, result) in zip(ids, decoded) {
            let name = Self.localName(of: model.tensors[id])
            switch result {
            case .success(let value): constants[name] = value
            case .failure(let error) where error.uncomputableType != nil: uncomputable[name] = error.uncomputableType
            case .failure(let error): throw error
            }
        }
        // Constant nodes' tensors (where PaddleOCR's exports keep every weight) the same way: decoded
        // over the cores, stored in graph order.
        var constantSlots: [(index: Int, output: String, id: TensorID)] = []
        for (index, node) in graph.nodes.enumerated() where node.opType == "Constant" && (node.domain.isEmpty || node.domain == "ai.onnx") {
            guard let output = node.outputs.first, !output.isEmpty else { continue }
            for attribute in node.attributes {
                switch attribute.value {
                case .tensor(let id), .sparseTensor(let id): constantSlots.append((index, output, id))
                default: continue
                }
            }
        }
        let slotValues = Parallel.map(constantSlots.map(\.id)) { id -> Result<Value, EvalError>? in
            guard id >= 0, id < tensors.count else { return nil }
            do { return .success(try Value(tensors[id])) } catch let error as EvalError { return .failure(error) } catch {
                return .failure(.invalid("\(error)"))
            }
        }
        var constantNodes = Set<Int>()
        for (slot, result) in zip(constantSlots, slotValues) {
            switch result {
            case nil:
                throw EvalError.invalid("\(Self.where(path))constant `\(slot.output)` refers to tensor \(slot.id), which the model does not hold")
            case .success(let value): constants[slot.output] = value
            case .failure(let error) where error.uncomputableType != nil: uncomputable[slot.output] = error.uncomputableType
            case .failure(let error): throw error
            }
            constantNodes.insert(slot.index)
        }
        var nodes = graph.nodes.enumerated().filter { !constantNodes.contains($0.offset) }.map { (index: $0.offset, node: $0.element) }
        var fusedConvs: [String: GraphBuild.FusedConv] = [:], gemmEpilogues: [String: [EpilogueStep]] = [:]
        if optimize {
            let build = GraphBuild.optimize(
                nodes: nodes, constants: constants, outputs: graph.outputs.map(\.name), inputs: graph.inputs.map(\.name), opset: opset)
            constants = build.constants
            (nodes, fusedConvs, gemmEpilogues) = build.result
        }
        self.constants = constants
        self.uncomputable = uncomputable

        // Steps, in file order for now.
        var unordered: [Step] = []
        var everyRead: [[String]] = []  // per step, every name it or any node of its subgraphs reads
        var producer: [String: Int] = [:]
        for (index, node) in nodes {
            let label = Self.label(node, index)
            var subgraphs: [String: GraphProgram] = [:]
            for attribute in node.attributes {
                if case .graph(let sub) = attribute.value {
                    subgraphs[attribute.name] = try GraphProgram(
                        sub, model: model, opset: opset, maximumLoopIterations: maximumLoopIterations,
                        path: path.appending(.init(node: label, attribute: attribute.name)))
                }
            }
            var reads: [String] = [], seen = Set<String>()
            for name in node.inputs + subgraphs.keys.sorted().flatMap({ subgraphs[$0]!.freeNames }) where !name.isEmpty && seen.insert(name).inserted {
                reads.append(name)
            }
            everyRead.append(node.inputs.filter { !$0.isEmpty } + subgraphs.values.flatMap(\.everyFreeName))
            var tensors: [String: Value] = [:]
            if node.opType == "ConstantOfShape", case .tensor(let id)? = node.attribute("value"), id >= 0, id < model.tensors.count {
                tensors["value"] = try? Value(model.tensors[id])
            }
            if node.domain == "ai.onnx.ml" {
                for attribute in node.attributes {
                    if case .tensor(let id) = attribute.value, id >= 0, id < model.tensors.count { tensors[attribute.name] = try? Value(model.tensors[id]) }
                }
            }
            let problem: EvalError?
            if node.domain == "ai.onnx.ml" {
                problem =
                    ONNXEvaluator.supportedMLOperators.contains(node.opType)
                    ? Operators(node: node, opset: opset).mlModelProblem(tensors) : .unsupported(ONNXEvaluator.refusal(node))
            } else if node.domain == "com.microsoft", ONNXEvaluator.supportedMicrosoftOperators.contains(node.opType) {
                problem = nil
            } else if !(node.domain.isEmpty || node.domain == "ai.onnx") {
                problem = .unsupported("operator `\(node.domain).\(node.opType)` (node `\(label)`)")
            } else if !ONNXEvaluator.supportedOperators.contains(node.opType) {
                problem = .unsupported("operator `\(node.opType)` (node `\(label)`)")
            } else if let (attribute, inner) = subgraphs.keys.sorted().lazy.compactMap({ name in subgraphs[name]!.outputProblem.map { (name, $0) } }).first {
                problem = .unsupported("\(node.opType) node `\(label)` (\(attribute)): \(inner.message.droppingPrefix(EvalError.unsupportedPrefix))")
            } else {
                problem = nil
            }
            for name in node.outputs where !name.isEmpty {
                if let other = producer[name] {
                    throw EvalError.invalid(
                        "\(Self.where(path))value `\(name)` is produced by two nodes, `\(Self.label(unordered[other].node, unordered[other].index))` and `\(label)`"
                    )
                }
                producer[name] = unordered.count
            }
            var kernel = problem == nil ? Self.kernel(for: node, opset: opset, constants: constants, fused: node.outputs.first.flatMap { fusedConvs[$0] }) : nil
            if problem == nil, let steps = node.outputs.first.flatMap({ gemmEpilogues[$0] }) { kernel = GemmKernel(epilogue: steps) }
            unordered.append(Step(node: node, index: index, reads: reads, subgraphs: subgraphs, tensors: tensors, problem: problem, kernel: kernel))
        }

        // Dependency order: a depth-first walk from each node in file order (a graph already in
        // topological order keeps its order), iterative so that long chains cannot exhaust the stack.
        var state = [UInt8](repeating: 0, count: unordered.count)  // 0 new, 1 on the walk, 2 placed
        var order: [Int] = []
        order.reserveCapacity(unordered.count)
        for root in unordered.indices where state[root] == 0 {
            var stack: [(step: Int, next: Int)] = [(root, 0)]
            state[root] = 1
            while let top = stack.last {
                let reads = unordered[top.step].reads
                if top.next < reads.count {
                    stack[stack.count - 1].next += 1
                    guard let p = producer[reads[top.next]] else { continue }
                    if state[p] == 1 {
                        let cycle = stack.drop(while: { $0.step != p }).map { "`\(Self.label(unordered[$0.step].node, unordered[$0.step].index))`" }
                        throw EvalError.invalid("\(Self.where(path))the graph has a cycle through nodes \(cycle.joined(separator: ", "))")
                    }
                    if state[p] == 0 {
                        state[p] = 1
                        stack.append((p, 0))
                    }
                } else {
                    state[top.step] = 2
                    order.append(top.step)
                    stack.removeLast()
                }
            }
        }
        var position = [Int](repeating: 0, count: unordered.count)
        for (k, s) in order.enumerated() { position[s] = k }
        steps = order.map { unordered[$0] }
        self.producer = producer.mapValues { position[$0] }

        // Names read but defined nowhere in this graph: outer-scope values, or (in the main graph) errors.
        var defined = Set(graph.inputs.map(\.name))
        defined.formUnion(constants.keys)
        defined.formUnion(uncomputable.keys)
        defined.formUnion(producer.keys)
        var every = Set<String>()
        for (k, names) in everyRead.enumerated() {
            for name in names where !defined.contains(name) {
                if isMain {
                    throw EvalError.invalid(
                        "node `\(Self.label(unordered[k].node, unordered[k].index))` (\(unordered[k].node.opType)) reads `\(name)`, which no node, initializer or graph input defines"
                    )
                }
                every.insert(name)
            }
        }
        for output in graph.outputs where !defined.contains(output.name) {
            if isMain { throw EvalError.invalid("graph output `\(output.name)` is not produced by any node, initializer or graph input") }
            every.insert(output.name)
        }
        everyFreeName = every.sorted()

        // The first problem in each step's cone, in dependency order.
        var cone: [EvalError?] = []
        cone.reserveCapacity(steps.count)
        for step in steps {
            var problem = step.problem
            for name in step.reads where problem == nil {
                if let p = self.producer[name] { problem = cone[p] } else if let dtype = uncomputable[name] { problem = .unsupportedType(name, dtype) }
            }
            cone.append(problem)
        }
        coneProblems = cone
        let plan = Self.plan(graph.outputs.map(\.name), steps: steps, producer: self.producer)
        fullPlan = plan
        // What running the subgraph reads from enclosing scopes: its needed nodes' reads and its outputs.
        freeNames = every.filter { name in plan.readers[name] != nil || graph.outputs.contains { $0.name == name } }.sorted()
    }

    /// Why `name` cannot be computed, if it cannot.
    func problem(of name: String) -> EvalError? {
        if let p = producer[name] { return coneProblems[p] }
        if let dtype = uncomputable[name] { return .unsupportedType(name, dtype) }
        return nil
    }

    /// The first output that cannot be computed, and why.
    var outputProblem: EvalError? { outputs.lazy.compactMap { self.problem(of: $0.name) }.first }

    /// Whether `name` is a value of this graph: an input, a constant or a node output.
    func defines(_ name: String) -> Bool {
        producer[name] != nil || constants[name] != nil || uncomputable[name] != nil || inputs.contains { $0.name == name }
    }

    /// The plan computing `names`, which must all be computable.
    func plan(_ names: [String]) -> Plan { Self.plan(names, steps: steps, producer: producer) }

    private static func plan(_ names: [String], steps: [Step], producer: [String: Int]) -> Plan {
        var needed = [Bool](repeating: false, count: steps.count)
        var stack = names.compactMap { producer[$0] }
        while let s = stack.popLast() {
            guard !needed[s] else { continue }
            needed[s] = true
            for name in steps[s].reads { if let p = producer[name], !needed[p] { stack.append(p) } }
        }
        let run = steps.indices.filter { needed[$0] }
        var readers: [String: Int] = [:]
        for s in run { for name in steps[s].reads { readers[name, default: 0] += 1 } }
        return Plan(outputs: names, steps: run, readers: readers)
    }

    /// Runs `plan` with `feeds` (graph inputs, by name) and `captured` (values of enclosing scopes,
    /// by name) and returns the plan's outputs in order. Values are freed after their last reader.
    func run(_ plan: Plan, feeds: [String: Value], captured: [String: Value]) throws -> [Value] {
        var values = feeds
        func lookup(_ name: String) throws -> Value {
            if let v = values[name] ?? constants[name] ?? captured[name] { return v }
            if let dtype = uncomputable[name] { throw EvalError.unsupportedType(name, dtype) }
            if inputs.contains(where: { $0.name == name }) { throw EvalError.invalid("no value given for graph input `\(name)`") }
            throw EvalError.invalid("`\(name)` has no value")
        }
        var remaining = plan.readers
        let keep = Set(plan.outputs)
        for s in plan.steps {
            let step = steps[s]
            let node = step.node
            do {
                var inputs: [Value?] = []
                inputs.reserveCapacity(node.inputs.count)
                for name in node.inputs {
                    if name.isEmpty {
                        inputs.append(nil)
                    } else if step.subgraphs.isEmpty, remaining[name] == 1, !keep.contains(name), node.inputs.lazy.filter({ $0 == name }).count == 1,
                        let value = values.removeValue(forKey: name)
                    {
                        // The last read: the node is handed the value itself, and may reuse its memory.
                        inputs.append(value)
                    } else {
                        inputs.append(try lookup(name))
                    }
                }
                let started = StepProfile.enabled ? StepProfile.now() : 0
                let results = try execute(step, &inputs, lookup: lookup)
                if StepProfile.enabled { StepProfile.record(step, nanoseconds: StepProfile.now() - started) }
                for (k, name) in node.outputs.enumerated() where !name.isEmpty {
                    guard k < results.count else {
                        throw EvalError.invalid("output \(k) (`\(name)`) is not produced by this operator (it gives \(results.count))")
                    }
                    values[name] = results[k]
                }
            } catch let error as EvalError {
                throw error.in(node)
            }
            for name in step.reads {
                remaining[name, default: 1] -= 1
                if remaining[name] == 0, !keep.contains(name) { values[name] = nil }
            }
        }
        return try plan.outputs.map(lookup)
    }

    /// One node's results.
    private func execute(_ step: Step, _ inputs: inout [Value?], lookup: (String) throws -> Value) throws -> [Value] {
        let operators = Operators(node: step.node, opset: opset)
        if let kernel = step.kernel { return try kernel.run(&inputs, operators) }
        switch step.node.opType {
        case "If", "Loop", "Scan":
            var captured: [String: Value] = [:]
            for sub in step.subgraphs.values { for name in sub.freeNames where captured[name] == nil { captured[name] = try lookup(name) } }
            let flow = ControlFlow(node: step.node, opset: opset, subgraphs: step.subgraphs, captured: captured, maximumLoopIterations: maximumLoopIterations)
            switch step.node.opType {
            case "If": return try flow.runIf(inputs)
            case "Loop": return try flow.runLoop(inputs)
            default: return try flow.runScan(inputs)
            }
        case "ConstantOfShape": return [try operators.constantOfShape(inputs, value: step.tensors["value"])]
        case _ where step.node.domain == "ai.onnx.ml" && ONNXEvaluator.supportedMLModelOperators.contains(step.node.opType):
            return try operators.mlModel(inputs, tensors: step.tensors)
        case _ where step.node.domain == "com.microsoft": return try operators.microsoftOperator(inputs)
        default: return try operators.run(inputs)
        }
    }

    /// The prepared computation of `node`, if it has one: a Conv of constant weights (with what the
    /// build step fused into it), element-wise arithmetic and activations, Softmax in place.
    private static func kernel(for node: Node, opset: Int, constants: [String: Value], fused: GraphBuild.FusedConv?) -> (any PreparedKernel)? {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return nil }
        switch node.opType {
        case "Conv":
            if let fused {
                return try? ConvKernel(
                    node: node, opset: opset, weights: fused.weights, weightShape: fused.weightShape, bias: fused.bias, epilogue: fused.epilogue)
            }
            guard node.inputs.count >= 2, node.inputs.count <= 3, node.outputs.count == 1, let w = constants[node.inputs[1]], w.isFloat else { return nil }
            var bias: [Float]?
            if node.inputs.count == 3, !node.inputs[2].isEmpty {
                guard let b = constants[node.inputs[2]], b.isFloat else { return nil }
                bias = b.floats
            }
            return try? ConvKernel(node: node, opset: opset, weights: w.floats, weightShape: w.shape, bias: bias)
        case "Add", "Sub", "Mul", "Div": return ArithmeticKernel(node)
        case "Resize": return NearestUpsampleKernel(node, Operators(node: node, opset: opset))
        case "BatchNormalization": return BatchNormKernel(node, opset: opset, constants: constants)
        case "Softmax": return SoftmaxKernel()
        default: return ActivationKernel(node, Operators(node: node, opset: opset))
        }
    }

    /// See `ONNXEvaluator.mixesFirstAxis`.
    var mixesFirstAxis: Bool {
        steps.contains { step in
            switch step.node.opType {
            case "Loop", "Scan", "If", "NonZero": return true
            case "LSTM", "GRU", "RNN": return Operators(node: step.node, opset: opset).int("layout", 0) == 0
            default: return false
            }
        }
    }

    /// The name a graph reads an initializer under: its tensor name without the graph-path prefix
    /// the importer gives tensors of subgraphs.
    static func localName(of tensor: Tensor) -> String {
        switch tensor.origin {
        case .initializer(let graph), .sparseInitializer(let graph):
            let prefix = graph.description
            return tensor.name.hasPrefix(prefix) ? String(tensor.name.dropFirst(prefix.count)) : tensor.name
        default: return tensor.name
        }
    }

    static func label(_ node: Node, _ index: Int) -> String { node.name.isEmpty ? "\(node.opType)#\(index)" : node.name }

    /// `in subgraph P: ` for a subgraph, nothing for the main graph.
    static func `where`(_ path: GraphPath) -> String { path == .main ? "" : "in subgraph `\(path.description.dropLast())`: " }
}

extension String {
    func droppingPrefix(_ prefix: String) -> String { hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self }
}

/// Time per kind of step, printed to standard error at exit when the environment sets
/// `PITH_EVAL_PROFILE=1`: where a run's time goes, operator by operator (a fused Conv counts as
/// `Conv` plus its epilogue; depthwise and 1×1 convolutions apart). `PITH_EVAL_PROFILE=shapes`
/// also splits convolutions by weight shape and stride; `PITH_EVAL_PROFILE=cpu` splits them the same
/// way but counts the CPU time of the whole process (every thread) instead of the wall time, which
/// other processes on a shared machine disturb less.
enum StepProfile {
    static let mode = ProcessInfo.processInfo.environment["PITH_EVAL_PROFILE"]
    static let enabled = mode == "1" || mode == "shapes" || mode == "cpu"

    /// Nanoseconds on the clock the mode counts: wall time, or the process's CPU time.
    static func now() -> UInt64 {
        guard mode == "cpu" else { return DispatchTime.now().uptimeNanoseconds }
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var totals: [String: (count: Int, nanoseconds: UInt64)] = [:]
    nonisolated(unsafe) private static var registered = false

    static func record(_ step: GraphProgram.Step, nanoseconds: UInt64) {
        var label = step.node.opType
        if let conv = step.kernel as? ConvKernel {
            let w = conv.weightShape
            label = w[1] == 1 && conv.group == w[0] ? "Conv (depthwise)" : w.dropFirst(2).allSatisfy({ $0 == 1 }) ? "Conv (1×1)" : "Conv"
            if !conv.epilogue.isEmpty { label += " + epilogue" }
            if mode == "shapes" || mode == "cpu" {
                let strides: [Int64]
                if case .ints(let s) = step.node.attribute("strides") { strides = s } else { strides = [] }
                label += " W \(w.map(String.init).joined(separator: "×"))" + (strides.contains { $0 != 1 } ? " stride \(strides)" : "")
            }
        }
        lock.lock()
        defer { lock.unlock() }
        totals[label, default: (0, 0)].count += 1
        totals[label, default: (0, 0)].nanoseconds += nanoseconds
        if !registered {
            registered = true
            atexit {
                let all = StepProfile.totals.sorted { $0.value.nanoseconds > $1.value.nanoseconds }
                let sum = all.reduce(0) { $0 + $1.value.nanoseconds }
                var text = "step \(StepProfile.mode == "cpu" ? "CPU time (every thread)" : "time") by operator (PITH_EVAL_PROFILE):\n"
                for (label, entry) in all {
                    text += String(
                        format: "%9.2f ms %5.1f%% %6d  %@\n", Double(entry.nanoseconds) / 1e6, 100 * Double(entry.nanoseconds) / Double(max(sum, 1)),
                        entry.count, label)
                }
                FileHandle.standardError.write(Data(text.utf8))
            }
        }
    }
}
