import PithIR
import Testing
@testable import PithEval

/// If, Loop and Scan: outer-scope reads, loop-carried values, scan outputs, conditions and trip
/// counts, the iteration limit, and initializers and constants held inside subgraphs. Expected
/// values are computed by hand in the comments.
@Suite struct ControlFlowTests {
    let bool = { (b: Bool) in Value(ints: [b ? 1 : 0], shape: [], dtype: .bool) }
    let int = { (i: Int64) in Value(ints: [i], shape: [], dtype: .int64) }

    /// Loop body: s_out = s_in + step (step from the main graph), scanned = s_out · i, and the
    /// condition mean(s_out) < limit (limit from the main graph).
    func loopModel(trip: Bool, condition: Bool) -> Model {
        let body = subgraph(
            [
                node("Add", ["s_in", "step"], ["s_out"]),
                node("Cast", ["i"], ["fi"], [intAttr("to", 1)]),
                node("Mul", ["s_out", "fi"], ["scanned"]),
                node("ReduceMean", ["s_out"], ["mean"], [intAttr("keepdims", 0)]),
                node("Less", ["mean", "limit"], ["c_out"]),
            ], inputs: ["i", "c_in", "s_in"], outputs: ["c_out", "s_out", "scanned"])
        let nodes = [
            node("Mul", ["x", "x"], ["step"]),
            node("Loop", [trip ? "M" : "", condition ? "cond" : "", "sum0"], ["sum", "scans"], name: "loop", [Attribute(name: "body", value: .graph(body))]),
        ]
        return graphModel(nodes, inputs: ["x", "M", "cond", "sum0", "limit"], outputs: ["sum", "scans"])
    }

    func feeds(trip: Int64) -> [String: Value] {
        [
            "x": Value(floats: [1, 2], shape: [2]), "M": int(trip), "cond": bool(true), "sum0": Value(floats: [0, 0], shape: [2]),
            "limit": Value(floats: [5], shape: []),
        ]
    }

    @Test func loopCarriesValuesReadsOuterScopeAndStacksScanOutputs() throws {
        // step = [1, 4]. i = 0: s = [1, 4], mean 2.5; i = 1: s = [2, 8], mean 5, the condition fails.
        let out = try ONNXEvaluator(model: loopModel(trip: true, condition: true)).run(feeds(trip: 10))
        #expect(out[0].floats == [2, 8])
        #expect(out[1].shape == [2, 2] && out[1].floats == [0, 0, 2, 8])
        // Without a condition input the body's condition is ignored: the trip count alone decides.
        let counted = try ONNXEvaluator(model: loopModel(trip: true, condition: false)).run(feeds(trip: 3))
        #expect(counted[0].floats == [3, 12])
        #expect(counted[1].shape == [3, 2] && counted[1].floats == [0, 0, 2, 8, 6, 24])
        // No iterations: the initial values, and empty scan outputs.
        let none = try ONNXEvaluator(model: loopModel(trip: true, condition: true)).run(feeds(trip: 0))
        #expect(none[0].floats == [0, 0] && none[1].count == 0 && none[1].shape.first == 0)
    }

    @Test func loopsAreBoundedByTheIterationLimit() throws {
        let evaluator = try ONNXEvaluator(model: loopModel(trip: false, condition: true), maximumLoopIterations: 40)
        var endless = feeds(trip: 0)
        endless["limit"] = Value(floats: [.infinity], shape: [])
        #expect { _ = try evaluator.run(endless) } throws: { error in
            (error as? EvalError)?.kind == .unsupported && "\(error)".contains("after 40 iterations")
        }
        // A trip count beyond the limit with no condition to stop it is refused before it starts.
        let counted = try ONNXEvaluator(model: loopModel(trip: true, condition: false), maximumLoopIterations: 40)
        #expect { _ = try counted.run(feeds(trip: 1 << 40)) } throws: { "\($0)".contains("trip count of 1099511627776") }
        // Neither a trip count nor a condition: never ends, refused.
        let neither = try ONNXEvaluator(model: loopModel(trip: false, condition: false))
        #expect { _ = try neither.run(feeds(trip: 1)) } throws: { "\($0)".contains("never ends") }
    }

    @Test func ifBranchesReadTheirOwnInitializersAndConstants() throws {
        // then: x + then_w (an initializer of the branch, named with its graph path); else: x · else_c (a Constant).
        let thenPath = GraphPath.main.appending(.init(node: "gate", attribute: "then_branch"))
        let tensors = [
            floatTensor("gate/then_branch/then_w", [10, 20, 30], shape: [3], origin: .initializer(graph: thenPath)),
            floatTensor("gate/else_branch/else_c", [2, 3, 4], shape: [3], origin: .nodeAttribute(graph: .main, node: "c", attribute: "value", index: 0)),
        ]
        let thenBranch = subgraph([node("Add", ["x", "then_w"], ["t"])], outputs: ["t"], initializers: [0])
        let elseBranch = subgraph(
            [
                Node(name: "c", opType: "Constant", inputs: [], outputs: ["else_c"], attributes: [Attribute(name: "value", value: .tensor(1))]),
                node("Mul", ["x", "else_c"], ["e"]),
            ], outputs: ["e"])
        let model = graphModel(
            [
                node(
                    "If", ["cond"], ["y"], name: "gate",
                    [
                        Attribute(name: "then_branch", value: .graph(thenBranch)),
                        Attribute(name: "else_branch", value: .graph(elseBranch)),
                    ])
            ],
            inputs: ["cond", "x"], outputs: ["y"], tensors: tensors)
        let evaluator = try ONNXEvaluator(model: model)
        let x = Value(floats: [1, 2, 3], shape: [3])
        #expect(try evaluator.run(["cond": bool(true), "x": x])[0].floats == [11, 22, 33])
        #expect(try evaluator.run(["cond": bool(false), "x": x])[0].floats == [2, 6, 12])
        #expect { _ = try evaluator.run(["cond": Value(ints: [1, 0], shape: [2], dtype: .bool), "x": x]) } throws: { "\($0)".contains("one boolean") }
    }

    @Test func anIfInsideALoopReadsBothEnclosingScopes() throws {
        // bias = relu(b) = [2]; i = 0 (i < 1): acc = 0 + 2; i = 1: acc = 2 − 2; i = 2: acc = 0 − 2.
        let tensors = [intTensor("one", [1], shape: [], origin: .nodeAttribute(graph: .main, node: "one", attribute: "value", index: 0))]
        let thenBranch = subgraph([node("Add", ["acc_in", "bias"], ["t"])], outputs: ["t"])
        let elseBranch = subgraph([node("Sub", ["acc_in", "bias"], ["e"])], outputs: ["e"])
        let body = subgraph(
            [
                Node(name: "one", opType: "Constant", inputs: [], outputs: ["one"], attributes: [Attribute(name: "value", value: .tensor(0))]),
                node("Less", ["i", "one"], ["first"]),
                node(
                    "If", ["first"], ["acc_out"],
                    [Attribute(name: "then_branch", value: .graph(thenBranch)), Attribute(name: "else_branch", value: .graph(elseBranch))]),
                node("Identity", ["c_in"], ["c_out"]),
                node("Identity", ["acc_out"], ["seen"]),
            ], inputs: ["i", "c_in", "acc_in"], outputs: ["c_out", "acc_out", "seen"])
        let model = graphModel(
            [node("Relu", ["b"], ["bias"]), node("Loop", ["M", "", "acc0"], ["acc", "trace"], [Attribute(name: "body", value: .graph(body))])],
            inputs: ["b", "M", "acc0"], outputs: ["acc", "trace"], tensors: tensors)
        let out = try ONNXEvaluator(model: model).run(["b": Value(floats: [2], shape: [1]), "M": int(3), "acc0": Value(floats: [0], shape: [1])])
        #expect(out[0].floats == [-2])
        #expect(out[1].shape == [3, 1] && out[1].floats == [2, 0, -2])
    }

    @Test func scanFollowsAxesAndDirections() throws {
        // xs [[1, 2, 3], [10, 20, 30]] scanned along axis 1 in reverse: slices [3, 30], [2, 20], [1, 10];
        // running sums [3, 30], [5, 50], [6, 60], stacked on axis 1.
        func run(outputDirection: Int) throws -> [Value] {
            let body = subgraph(
                [node("Add", ["s_in", "x_in"], ["s_out"]), node("Mul", ["s_out", "one"], ["y"])],
                inputs: ["s_in", "x_in"], outputs: ["s_out", "y"])
            let scan = node(
                "Scan", ["s0", "xs"], ["s", "ys"],
                [
                    Attribute(name: "body", value: .graph(body)), intAttr("num_scan_inputs", 1), intsAttr("scan_input_axes", [1]),
                    intsAttr("scan_input_directions", [1]), intsAttr("scan_output_axes", [-1]), intsAttr("scan_output_directions", [outputDirection]),
                ])
            let model = graphModel([scan], inputs: ["s0", "xs", "one"], outputs: ["s", "ys"], opset: 16)
            return try ONNXEvaluator(model: model).run([
                "s0": Value(floats: [0, 0], shape: [2]), "xs": Value(floats: [1, 2, 3, 10, 20, 30], shape: [2, 3]), "one": Value(floats: [1], shape: []),
            ])
        }
        let forward = try run(outputDirection: 0)
        #expect(forward[0].floats == [6, 60])
        #expect(forward[1].shape == [2, 3] && forward[1].floats == [3, 5, 6, 30, 50, 60])
        #expect(try run(outputDirection: 1)[1].floats == [6, 5, 3, 60, 50, 30])
    }

    @Test func scan8RunsEachBatchEntry() throws {
        // Opset 8: batch axis first, sequence axis 1. Running sums per batch entry.
        let body = subgraph(
            [node("Add", ["s_in", "x_in"], ["s_out"]), node("Identity", ["s_out"], ["y"])], inputs: ["s_in", "x_in"], outputs: ["s_out", "y"])
        let scan = node("Scan", ["", "s0", "xs"], ["s", "ys"], [Attribute(name: "body", value: .graph(body)), intAttr("num_scan_inputs", 1)])
        let model = graphModel([scan], inputs: ["s0", "xs"], outputs: ["s", "ys"], opset: 8)
        let out = try ONNXEvaluator(model: model).run([
            "s0": Value(floats: [0, 100], shape: [2, 1]), "xs": Value(floats: [1, 2, 3, 4, 5, 6], shape: [2, 3, 1]),
        ])
        #expect(out[0].floats == [6, 115])
        #expect(out[1].shape == [2, 3, 1] && out[1].floats == [1, 3, 6, 104, 109, 115])
    }
}

/// What a graph must be to be evaluated at all, and which outputs a run computes.
@Suite struct GraphStructureTests {
    func refusal(_ model: Model, _ phrases: String...) {
        #expect { _ = try ONNXEvaluator(model: model) } throws: { error in
            (error as? EvalError)?.kind == .invalid && phrases.allSatisfy { "\(error)".contains($0) }
        }
    }

    @Test func malformedGraphsAreRefusedBeforeRunning() {
        refusal(
            graphModel([node("Add", ["x", "b"], ["a"], name: "first"), node("Relu", ["a"], ["b"], name: "second")], inputs: ["x"], outputs: ["b"]),
            "cycle", "`first`", "`second`")
        refusal(graphModel([node("Relu", ["a"], ["a"], name: "self")], inputs: [], outputs: ["a"]), "cycle", "`self`")
        refusal(graphModel([node("Add", ["x", "nowhere"], ["y"], name: "adder")], inputs: ["x"], outputs: ["y"]), "`adder`", "`nowhere`")
        refusal(
            graphModel([node("Relu", ["x"], ["y"], name: "one"), node("Neg", ["x"], ["y"], name: "two")], inputs: ["x"], outputs: ["y"]),
            "`y`", "two nodes")
        refusal(graphModel([node("Relu", ["x"], ["y"])], inputs: ["x"], outputs: ["z"]), "graph output `z`")
        // A subgraph reading a name no enclosing graph defines.
        let branch = subgraph([node("Neg", ["ghost"], ["t"])], outputs: ["t"])
        refusal(
            graphModel(
                [
                    node(
                        "If", ["c"], ["y"], name: "gate",
                        [Attribute(name: "then_branch", value: .graph(branch)), Attribute(name: "else_branch", value: .graph(branch))])
                ],
                inputs: ["c"], outputs: ["y"]), "`ghost`", "`gate`")
    }

    @Test func nodesOutOfOrderAreRunInDependencyOrder() throws {
        let model = graphModel([node("Neg", ["a"], ["y"]), node("Relu", ["x"], ["a"])], inputs: ["x"], outputs: ["y"])
        #expect(try ONNXEvaluator(model: model).run(["x": Value(floats: [-1, 2], shape: [2])])[0].floats == [0, -2])
    }

    /// x → relu → a → neg → c (an output); x → com.example.Frobnicate → b (an output); x → Reshape to
    /// an impossible shape → d (an output when asked).
    func model(outputs: [String]) -> Model {
        var frobnicate = node("Frobnicate", ["x"], ["b"], name: "frob")
        frobnicate.domain = "com.example"
        return graphModel(
            [node("Relu", ["x"], ["a"]), frobnicate, node("Neg", ["a"], ["c"]), node("Reshape", ["x", "bad"], ["d"])],
            inputs: ["x", "bad"], outputs: outputs)
    }

    @Test func outputsNeedingAMissingOperatorAreSkippedAndNamed() throws {
        let evaluator = try ONNXEvaluator(model: model(outputs: ["c", "b"]))
        let x = Value(floats: [-1, 2], shape: [2])
        let result = try evaluator.run(["x": x], outputs: nil)
        #expect(result.names == ["c"] && result["c"]?.floats == [0, -2])
        #expect(result.skipped.map(\.name) == ["b"])
        #expect(
            result.skipped.first.map { $0.reason.kind == .unsupported && "\($0.reason)".contains("`com.example.Frobnicate`") && "\($0.reason)".contains("`b`") }
                == true)
        // Asked for by name, it is an error; so is every output at once.
        #expect { _ = try evaluator.run(["x": x], outputs: ["b"]) } throws: { ($0 as? EvalError)?.kind == .unsupported }
        #expect { _ = try evaluator.run(["x": x]) } throws: { "\($0)".contains("Frobnicate") }
        // Any value of the graph may be asked for; only what it needs runs, and only its inputs are read
        // (`d` would fail, `bad` is not fed).
        #expect(try evaluator.run(["x": x], outputs: ["a"])["a"]?.floats == [0, 2])
        #expect { _ = try evaluator.run(["x": x], outputs: ["nope"]) } throws: { ($0 as? EvalError)?.kind == .invalid && "\($0)".contains("`nope`") }
        let withD = try ONNXEvaluator(model: model(outputs: ["c", "d"]))
        #expect(try withD.run(["x": x], outputs: ["c"]).values[0].floats == [0, -2])
        #expect { _ = try withD.run(["x": x, "bad": Value(ints: [3], shape: [1])], outputs: nil) } throws: { "\($0)".contains("Reshape") }
        // Nothing computable: the reason is thrown.
        #expect { _ = try ONNXEvaluator(model: model(outputs: ["b"])).run(["x": x], outputs: nil) } throws: { ($0 as? EvalError)?.kind == .unsupported }
        // An unsupported node nothing needs does not stop the default run.
        #expect(try ONNXEvaluator(model: model(outputs: ["c"])).run(["x": x])[0].floats == [0, -2])
    }

    /// A dead node inside a branch that reads an outer value needing a missing operator does not
    /// make the If uncomputable, and that value is not computed.
    @Test func deadNodesInsideSubgraphsNeedNothing() throws {
        var frobnicate = node("Frobnicate", ["x"], ["f"])
        frobnicate.domain = "com.example"
        let branch = subgraph([node("Neg", ["x"], ["t"]), node("Relu", ["f"], ["dead"])], outputs: ["t"])
        let model = graphModel(
            [
                frobnicate,
                node("If", ["c"], ["y"], [Attribute(name: "then_branch", value: .graph(branch)), Attribute(name: "else_branch", value: .graph(branch))]),
            ],
            inputs: ["c", "x"], outputs: ["y"])
        let out = try ONNXEvaluator(model: model).run(["c": Value(ints: [1], shape: [], dtype: .bool), "x": Value(floats: [2], shape: [1])])
        #expect(out[0].floats == [-2])
        // Reading a name nothing defines is still refused, needed or not.
        let ghostly = subgraph([node("Neg", ["x"], ["t"]), node("Relu", ["ghost"], ["dead"])], outputs: ["t"])
        #expect {
            _ = try ONNXEvaluator(
                model: graphModel(
                    [
                        node(
                            "If", ["c"], ["y"],
                            [Attribute(name: "then_branch", value: .graph(ghostly)), Attribute(name: "else_branch", value: .graph(ghostly))])
                    ],
                    inputs: ["c", "x"], outputs: ["y"]))
        } throws: { "\($0)".contains("`ghost`") }
    }

    /// Splitting inputs into batches along axis 0 is only for graphs that treat axis 0 as samples.
    @Test func timeMajorAndIteratingGraphsRunInOnePiece() throws {
        func batched(_ nodes: [Node]) throws -> Bool {
            var model = graphModel(nodes, inputs: ["x"], outputs: ["y"])
            model.graph!.inputs = [ValueInfo(name: "x", dtype: .float32, shape: [.symbolic("n"), .fixed(2), .fixed(3)])]
            return try Evaluator(model: model).isBatched
        }
        #expect(try batched([node("Relu", ["x"], ["y"])]))
        #expect(try !batched([node("NonZero", ["x"], ["y"])]))
        let w = "w", r = "r"
        #expect(try !batched([node("RNN", ["x", w, r], ["y"], [intAttr("hidden_size", 1)]), node("Relu", ["x"], [w]), node("Relu", ["x"], [r])]))
    }

    @Test func aMissingOperatorInsideABodyIsNamedWithTheLoop() throws {
        var frobnicate = node("Frobnicate", ["s_in"], ["s_out"])
        frobnicate.domain = "com.example"
        let body = subgraph([frobnicate, node("Identity", ["c_in"], ["c_out"])], inputs: ["i", "c_in", "s_in"], outputs: ["c_out", "s_out"])
        let model = graphModel(
            [node("Loop", ["M", "", "s0"], ["s"], name: "loop", [Attribute(name: "body", value: .graph(body))]), node("Neg", ["s0"], ["n"])],
            inputs: ["M", "s0"], outputs: ["s", "n"])
        let result = try Evaluator(model: model).run([Value(ints: [2], shape: []), Value(floats: [1], shape: [1])], outputs: nil)
        #expect(result.names == ["n"] && result.values[0].floats == [-1])
        #expect(result.skipped.first.map { "\($0.reason)".contains("Loop node `loop` (body)") && "\($0.reason)".contains("com.example.Frobnicate") } == true)
    }
}
