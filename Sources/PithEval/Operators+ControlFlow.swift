import PithIR

/// If, Loop and Scan: the operators that run subgraphs. A subgraph sees the values of every
/// enclosing graph (`captured`, gathered by the node from its scope); Loop and Scan carry values
/// from one iteration to the next and stack per-iteration values into scan outputs.
struct ControlFlow {
    let node: Node
    let opset: Int
    /// The node's subgraphs by attribute name.
    let subgraphs: [String: GraphProgram]
    /// The enclosing scopes' values the subgraphs read, by name.
    let captured: [String: Value]
    /// Most iterations one Loop runs.
    var maximumLoopIterations = Self.maximumLoopIterations

    /// Most iterations one Loop runs unless the evaluator is made with another limit. A Loop whose
    /// trip count is larger, with no condition input that could end it sooner, is refused before it
    /// starts; one whose condition still holds after this many iterations is stopped with an error.
    /// Either way, never a hang.
    static let maximumLoopIterations = 1 << 20

    var operators: Operators { Operators(node: node, opset: opset) }

    func subgraph(_ name: String) throws -> GraphProgram {
        guard let graph = subgraphs[name] else { throw EvalError.invalid("the `\(name)` subgraph attribute is missing") }
        return graph
    }

    /// Whether a one-element condition holds.
    func holds(_ value: Value, _ what: String) throws -> Bool {
        guard value.count == 1, !value.isString else { throw EvalError.invalid("\(what) must hold one boolean, it has shape \(value.shape)") }
        return value.isFloat ? value.floats[0] != 0 : value.ints[0] != 0
    }

    /// Runs `graph` once on `inputs`, fed to its inputs in order.
    func call(_ graph: GraphProgram, _ inputs: [Value]) throws -> [Value] {
        var feeds: [String: Value] = [:]
        for (info, value) in zip(graph.inputs, inputs) where !info.name.isEmpty { feeds[info.name] = value }
        return try graph.run(graph.fullPlan, feeds: feeds, captured: captured)
    }

    // MARK: If

    /// If(cond): the outputs of `then_branch` when cond holds, else of `else_branch`.
    func runIf(_ inputs: [Value?]) throws -> [Value] {
        let condition = try holds(try operators.required(inputs, 0), "the condition")
        let branch = try subgraph(condition ? "then_branch" : "else_branch")
        let results = try call(branch, [])
        guard results.count >= node.outputs.count else {
            throw EvalError.invalid("the \(condition ? "then" : "else") branch has \(results.count) outputs, the node \(node.outputs.count)")
        }
        return results
    }

    // MARK: Loop

    /// Loop(M, cond, v_initial…): runs `body` (iteration number, condition, N loop-carried values →
    /// condition, N values, K scan outputs) while i < M (when M is given) and the condition holds
    /// (when cond is given; the body's condition output is then the next one). Returns the final N
    /// values, then the K scan outputs, each the per-iteration values stacked on a new first axis.
    func runLoop(_ inputs: [Value?]) throws -> [Value] {
        let body = try subgraph("body")
        let tripCount: Int64? = try inputs.first.flatMap { $0 }.map { m in
            guard m.count == 1, !m.isFloat, !m.isString else { throw EvalError.invalid("the trip count M must be one integer, it has shape \(m.shape)") }
            return m.ints[0]
        }
        let conditional = inputs.count > 1 && inputs[1] != nil
        var condition = try conditional ? holds(inputs[1]!, "the condition") : true
        var carried = try inputs.dropFirst(2).enumerated().map { k, v in
            guard let v else { throw EvalError.unsupported("an omitted loop-carried value (input \(k + 2))") }
            return v
        }
        let n = carried.count
        guard body.inputs.count == n + 2 else {
            throw EvalError.invalid(
                "the body takes \(body.inputs.count) inputs; with \(n) loop-carried values it must take \(n + 2) (iteration number, condition, values)")
        }
        guard body.outputs.count >= n + 1 else {
            throw EvalError.invalid(
                "the body has \(body.outputs.count) outputs; with \(n) loop-carried values it needs at least \(n + 1) (condition, values, scan outputs)")
        }
        let k = body.outputs.count - 1 - n
        let limit = maximumLoopIterations
        if tripCount == nil, !conditional {
            throw EvalError.unsupported("a Loop with neither a trip count nor a condition input (it never ends)")
        }
        if let m = tripCount, m > Int64(limit), !conditional {
            throw EvalError.unsupported("a trip count of \(m) iterations, beyond the evaluator's limit of \(limit)")
        }
        var scans = ScanAccumulator(count: k, names: body.outputs.dropFirst(1 + n).map(\.name))
        var iteration: Int64 = 0
        while condition, tripCount.map({ iteration < $0 }) ?? true {
            guard iteration < Int64(limit) else {
                throw EvalError.unsupported("a Loop still running after \(limit) iterations, the evaluator's limit")
            }
            let results = try call(
                body, [Value(ints: [iteration], shape: [], dtype: .int64), Value(ints: [condition ? 1 : 0], shape: [], dtype: .bool)] + carried)
            // Without a condition input the body's condition output is ignored (the spec's for loop).
            if conditional { condition = try holds(results[0], "the body's condition output `\(body.outputs[0].name)`") }
            carried = Array(results[1..<1 + n])
            try scans.append(Array(results[(1 + n)...]))
            iteration += 1
        }
        return carried + (try scans.stacked(declared: Array(body.outputs.dropFirst(1 + n))))
    }

    // MARK: Scan

    /// Scan (opset 9 on): `body` (N states, M scan slices → N states, K scan slices) runs once per
    /// slice of the scan inputs along `scan_input_axes`, in `scan_input_directions`; returns the
    /// final states, then the K scan outputs stacked along `scan_output_axes` (reversed where
    /// `scan_output_directions` is 1). Opset 8's Scan has a batch axis first and is run per batch entry.
    func runScan(_ inputs: [Value?]) throws -> [Value] {
        let body = try subgraph("body")
        let ops = operators
        if opset < 9 { return try scan8(inputs, body: body) }
        let m = ops.int("num_scan_inputs", 0)
        let values = try inputs.indices.map { try ops.required(inputs, $0) }
        let (n, k) = try Self.scanCounts(inputs: values.count, scanInputs: m, body: body)
        let inputAxes = try attribute("scan_input_axes", count: m), inputDirections = try attribute("scan_input_directions", count: m)
        let outputAxes = try attribute("scan_output_axes", count: k), outputDirections = try attribute("scan_output_directions", count: k)
        let scanInputs = Array(values[n...])
        let axes = try zip(scanInputs, inputAxes).map { v, a in
            guard v.rank >= 1 else { throw EvalError.invalid("scan input of shape \(v.shape) has no axis to scan") }
            return try normalizedAxis(a, rank: v.rank, op: "Scan")
        }
        let length = scanInputs[0].shape[axes[0]]
        for (v, a) in zip(scanInputs, axes) where v.shape[a] != length {
            throw EvalError.invalid("scan inputs have different lengths: \(length) and \(v.shape[a]) (shape \(v.shape), axis \(a))")
        }
        let (states, collected) = try iterate(
            body, states: Array(values[..<n]), scans: scanInputs, axes: axes, directions: inputDirections, length: length, outputs: k)
        var outputs = states
        let declared = Array(body.outputs.dropFirst(n))
        for j in 0..<k {
            var stacked = try collected.stacked(declared: declared, reversed: outputDirections[j] != 0, only: j)
            let axis = try normalizedAxis(outputAxes[j], rank: stacked.rank, op: "Scan")
            if axis != 0 {
                var perm = Array(1..<stacked.rank)
                perm.insert(0, at: axis)
                stacked = try ops.transposed(stacked, perm)
            }
            outputs.append(stacked)
        }
        return outputs
    }

    /// An attribute of `count` integers, zeros when absent.
    func attribute(_ name: String, count: Int) throws -> [Int] {
        guard let values = operators.ints(name) else { return [Int](repeating: 0, count: count) }
        guard values.count == count else { throw EvalError.invalid("\(name) \(values) must have \(count) values") }
        return values
    }

    /// Runs `body` over `length` slices of `scans`; the final states and the collected scan slices.
    func iterate(
        _ body: GraphProgram, states initial: [Value], scans: [Value], axes: [Int], directions: [Int], length: Int, outputs k: Int
    ) throws -> ([Value], ScanAccumulator) {
        var states = initial
        let n = states.count
        var collected = ScanAccumulator(count: k, names: body.outputs.dropFirst(n).map(\.name))
        for t in 0..<length {
            let slices = zip(scans, zip(axes, directions)).map { v, ad in v.slice(at: ad.1 != 0 ? length - 1 - t : t, along: ad.0) }
            let results = try call(body, states + slices)
            states = Array(results[..<n])
            try collected.append(Array(results[n...]))
        }
        return (states, collected)
    }

    /// Scan-8: inputs (sequence_lens, states…, scan inputs…), each state and scan input with a
    /// batch axis first and scan inputs scanned along axis 1, in `directions`.
    func scan8(_ inputs: [Value?], body: GraphProgram) throws -> [Value] {
        let ops = operators
        let m = ops.int("num_scan_inputs", 0)
        let values = try (1..<max(inputs.count, 1)).map { try ops.required(inputs, $0) }
        let (n, k) = try Self.scanCounts(inputs: values.count, scanInputs: m, body: body)
        let directions = try attribute("directions", count: m)
        guard let batch = values.first?.shape.first, values.allSatisfy({ $0.rank >= 1 && $0.shape[0] == batch }) else {
            throw EvalError.invalid("every input needs the same batch size on axis 0: \(values.map(\.shape))")
        }
        let scanInputs = Array(values[n...])
        guard scanInputs.allSatisfy({ $0.rank >= 2 }), let length = scanInputs.first?.shape[1], scanInputs.allSatisfy({ $0.shape[1] == length }) else {
            throw EvalError.invalid("scan inputs need a sequence axis 1 of one length: \(scanInputs.map(\.shape))")
        }
        if let lens = inputs.first.flatMap({ $0 }), lens.asInts.contains(where: { $0 != Int64(length) }) {
            throw EvalError.unsupported("Scan-8 with sequence_lens \(lens.asInts) shorter than the sequence length \(length)")
        }
        var finalStates: [[Value]] = [], scanOutputs: [[Value]] = []
        let declared = Array(body.outputs.dropFirst(n))
        for b in 0..<batch {
            let row = values.map { $0.slice(at: b, along: 0) }
            let (states, collected) = try iterate(
                body, states: Array(row[..<n]), scans: Array(row[n...]), axes: [Int](repeating: 0, count: m),
                directions: directions, length: length, outputs: k)
            finalStates.append(states)
            scanOutputs.append(try (0..<k).map { try collected.stacked(declared: declared, reversed: false, only: $0) })
        }
        return try (0..<n).map { j in try Value.stack(finalStates.map { $0[j] }) } + (0..<k).map { j in try Value.stack(scanOutputs.map { $0[j] }) }
    }
}

/// The per-iteration values of a Loop's or Scan's scan outputs, checked as they come: one shape
/// and type per output, and at most `maximumElements` elements held in all.
struct ScanAccumulator {
    var parts: [[Value]]
    let names: [String]
    var elements = 0

    init(count: Int, names: [String]) {
        parts = [[Value]](repeating: [], count: count)
        self.names = names
    }

    mutating func append(_ values: [Value]) throws {
        for (j, v) in values.prefix(parts.count).enumerated() {
            if let first = parts[j].first, first.shape != v.shape || first.isFloat != v.isFloat || first.isString != v.isString {
                throw EvalError.invalid(
                    "scan output `\(names[j])` is \(first.dtype.rawValue) \(first.shape) in the first iteration and \(v.dtype.rawValue) \(v.shape) in iteration \(parts[j].count)"
                )
            }
            let (total, overflow) = elements.addingReportingOverflow(v.count)
            guard !overflow, total <= maximumElements else {
                throw EvalError.invalid("scan outputs would hold more than \(maximumElements) elements after \(parts[j].count + 1) iterations")
            }
            elements = total
            parts[j].append(v)
        }
    }

    /// Output `j` stacked on a new first axis (in reverse iteration order if `reversed`); with no
    /// iterations, an empty tensor of the declared type and, when fully known, shape.
    func stacked(declared: [ValueInfo], reversed: Bool = false, only j: Int) throws -> Value {
        guard !parts[j].isEmpty else {
            var shape = [0]
            if let dims = declared[j].shape {
                let fixed = dims.compactMap { d -> Int? in if case .fixed(let v) = d { return v } else { return nil } }
                if fixed.count == dims.count { shape += fixed }
            }
            return Value.empty(shape: shape, dtype: declared[j].dtype ?? .float32)
        }
        return try Value.stack(reversed ? parts[j].reversed() : parts[j])
    }

    func stacked(declared: [ValueInfo]) throws -> [Value] {
        try parts.indices.map { try stacked(declared: declared, only: $0) }
    }
}

extension Value {
    /// The slice at `index` along `axis`, without that axis.
    func slice(at index: Int, along axis: Int) -> Value {
        let outer = shape[..<axis].reduce(1, *), n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        var indices: [Int] = []
        indices.reserveCapacity(outer * inner)
        for o in 0..<outer { indices.append(contentsOf: (o * n + index) * inner..<(o * n + index + 1) * inner) }
        var sliced = shape
        sliced.remove(at: axis)
        return gathered(indices, shape: sliced)
    }

    /// `parts`, all of one shape and kind, stacked on a new first axis.
    static func stack(_ parts: [Value]) throws -> Value {
        guard let first = parts.first else { throw EvalError.invalid("nothing to stack") }
        for p in parts where p.shape != first.shape {
            throw EvalError.invalid("values of shapes \(first.shape) and \(p.shape) cannot be stacked")
        }
        return joinRows(parts.map { $0.reshaped([1] + $0.shape) })
    }

    /// An empty value of `shape` (which has a zero) and `dtype`.
    static func empty(shape: [Int], dtype: DType) -> Value {
        if dtype == .string { return Value(strings: [], shape: shape) }
        if dtype.isFloatingPoint { return Value(floats: [], shape: shape, dtype: dtype) }
        return Value(ints: [], shape: shape, dtype: dtype)
    }
}

extension ControlFlow {
    /// A Scan's state count `n` (inputs that are not scanned) and scan-output count `k`, checked against
    /// its body: `inputs` values of which `scanInputs` are scanned, a body that takes every one and gives
    /// the `n` final states first.
    static func scanCounts(inputs: Int, scanInputs m: Int, body: GraphProgram) throws -> (n: Int, k: Int) {
        guard m >= 1, m <= inputs else { throw EvalError.invalid("num_scan_inputs \(m) must be between 1 and the number of inputs, \(inputs)") }
        let n = inputs - m
        guard body.inputs.count == n + m, body.outputs.count >= n else {
            throw EvalError.invalid(
                "the body takes \(body.inputs.count) inputs and gives \(body.outputs.count) outputs; with \(n) states and \(m) scan inputs it must take \(n + m) and give at least \(n)"
            )
        }
        return (n, body.outputs.count - n)
    }
}
