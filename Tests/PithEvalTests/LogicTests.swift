import PithIR
import Testing
@testable import PithEval

/// Comparisons, logic, Where, and the operators that build tensors from shapes.
@Suite struct LogicTests {
    let bools = { (values: [Int64], shape: [Int]) in Value(ints: values, shape: shape, dtype: .bool) }

    @Test func comparisonsBroadcastAndGiveBooleans() throws {
        let a = Value(floats: [1, 2, 3, .nan], shape: [2, 2]), b = Value(floats: [2, .nan], shape: [2])
        let cases: [(String, [Int64])] = [
            ("Equal", [0, 0, 0, 0]), ("Less", [1, 0, 0, 0]), ("Greater", [0, 0, 1, 0]),
            ("LessOrEqual", [1, 0, 0, 0]), ("GreaterOrEqual", [0, 0, 1, 0]),
        ]
        for (op, want) in cases {
            let out = try runNode(op, [a, b])[0]
            #expect(out.dtype == .bool && out.shape == [2, 2] && out.ints == want, "\(op)")
        }
        let i = Value(ints: [Int64.max, -5], shape: [2]), j = Value(ints: [Int64.max - 1], shape: [1])
        #expect(try runNode("Greater", [i, j])[0].ints == [1, 0])
        #expect(try runNode("Equal", [Value(strings: ["a", "b"], shape: [2]), Value(strings: ["b"], shape: [])])[0].ints == [0, 1])
        #expect(throws: EvalError.self) { try runNode("Less", [a, Value(floats: [1, 2, 3], shape: [3])]) }
    }

    @Test func logicAndWhere() throws {
        let a = bools([1, 0, 1, 0], [2, 2]), b = bools([1, 0], [2])
        #expect(try runNode("And", [a, b])[0].ints == [1, 0, 1, 0])
        #expect(try runNode("Or", [a, b])[0].ints == [1, 0, 1, 0])
        #expect(try runNode("Xor", [a, bools([1], [1])])[0].ints == [0, 1, 0, 1])
        #expect(try runNode("Not", [a])[0].ints == [0, 1, 0, 1])
        // Where broadcasts all three: condition [2, 1], X [3], Y scalar.
        let out = try runNode("Where", [bools([1, 0], [2, 1]), Value(floats: [1, 2, 3], shape: [3]), Value(floats: [-1], shape: [])])[0]
        #expect(out.shape == [2, 3] && out.floats == [1, 2, 3, -1, -1, -1])
        let strings = try runNode("Where", [bools([0, 1], [2]), Value(strings: ["a", "b"], shape: [2]), Value(strings: ["z"], shape: [1])])[0]
        #expect(strings.strings == ["z", "b"])
    }

    @Test func splitForms() throws {
        let x = Value(floats: (0..<10).map(Float.init), shape: [2, 5])
        // Opset 18, num_outputs 3 on a length of 5: parts of 2, 2, 1.
        let parts = try runGraph(
            [node("Split", ["x"], ["a", "b", "c"], [intAttr("axis", 1), intAttr("num_outputs", 3)])], feeds: ["x": x], outputs: ["a", "b", "c"], opset: 18)
        #expect(parts.map(\.shape) == [[2, 2], [2, 2], [2, 1]])
        #expect(parts[2].floats == [4, 9])
        // The split input (opset 13) and attribute (opset 11), with an empty part.
        let tensors = [intTensor("sizes", [0, 1, 4], shape: [3])]
        let input = try runGraph(
            [node("Split", ["x", "sizes"], ["a", "b", "c"], [intAttr("axis", -1)])], feeds: ["x": x], outputs: ["a", "b", "c"],
            tensors: tensors, initializers: [0], opset: 13)
        #expect(input.map(\.shape) == [[2, 0], [2, 1], [2, 4]] && input[1].floats == [0, 5])
        let attribute = try runGraph([node("Split", ["x"], ["a", "b"], [intsAttr("split", [1, 1])])], feeds: ["x": x], outputs: ["a", "b"], opset: 11)
        #expect(attribute[1].floats == [5, 6, 7, 8, 9])
        #expect {
            _ = try runGraph(
                [node("Split", ["x"], ["a", "b"], [intsAttr("split", [1, 3]), intAttr("axis", 1)])], feeds: ["x": x], outputs: ["a", "b"], opset: 11)
        } throws: { "\($0)".contains("does not add up") }
    }

    @Test func tensorsFromShapes() throws {
        let shape = Value(ints: [2, 3], shape: [2])
        let zeros = try runNode("ConstantOfShape", [shape])[0]
        #expect(zeros.dtype == .float32 && zeros.shape == [2, 3] && zeros.floats == [Float](repeating: 0, count: 6))
        let seven = try runGraph(
            [node("ConstantOfShape", ["s"], ["y"], [Attribute(name: "value", value: .tensor(0))])], feeds: ["s": shape], outputs: ["y"],
            tensors: [intTensor("value", [7], shape: [1], origin: .nodeAttribute(graph: .main, node: "", attribute: "value", index: 0))])[0]
        #expect(seven.dtype == .int64 && seven.ints == [Int64](repeating: 7, count: 6))
        #expect(try runNode("ConstantOfShape", [Value(ints: [], shape: [0])])[0].shape == [])
        // Range: exact integer counts, including a negative delta; floats.
        let r = try runNode(
            "Range", [Value(ints: [10], shape: [], dtype: .int32), Value(ints: [-3], shape: [], dtype: .int32), Value(ints: [-4], shape: [], dtype: .int32)])[0]
        #expect(r.dtype == .int32 && r.ints == [10, 6, 2, -2])
        #expect(
            try runNode("Range", [Value(floats: [0.5], shape: []), Value(floats: [2], shape: []), Value(floats: [0.5], shape: [])])[0].floats == [0.5, 1, 1.5])
        #expect(try runNode("Range", [Value(ints: [5], shape: []), Value(ints: [0], shape: []), Value(ints: [1], shape: [])])[0].count == 0)
        // Expand in both directions, Tile, Size, NonZero.
        let expanded = try runNode("Expand", [Value(floats: [1, 2, 3], shape: [3, 1]), Value(ints: [2, 1, 2], shape: [3])])[0]
        #expect(expanded.shape == [2, 3, 2] && expanded.floats == [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3])
        let tiled = try runNode("Tile", [Value(floats: [1, 2, 3, 4], shape: [2, 2]), Value(ints: [2, 3], shape: [2])])[0]
        #expect(tiled.shape == [4, 6] && tiled.floats[0..<6] == [1, 2, 1, 2, 1, 2] && tiled.floats[12..<18] == [1, 2, 1, 2, 1, 2])
        #expect(try runNode("Size", [tiled])[0].ints == [24])
        let nonzero = try runNode("NonZero", [Value(floats: [0, 1, 2, 0, 0, 3], shape: [2, 3])])[0]
        #expect(nonzero.shape == [2, 3] && nonzero.ints == [0, 0, 1, 1, 2, 2])
    }

    /// Sizes that come from values are checked before anything is allocated.
    @Test func hugeShapesAreRefused() throws {
        let huge = Value(ints: [1 << 20, 1 << 20, 1 << 20], shape: [3])
        let one = Value(floats: [1], shape: [1, 1, 1])
        let cases: [(String, [Value], String)] = [
            ("ConstantOfShape", [huge], "larger than"),
            ("ConstantOfShape", [Value(ints: [-1], shape: [1])], "not a size"),
            ("Expand", [one, huge], "larger than"),
            ("Tile", [one, huge], "larger than"),
            ("Tile", [one, Value(ints: [Int64.max, Int64.max, 1], shape: [3])], "not a size"),
            ("Range", [Value(ints: [Int64.min], shape: []), Value(ints: [Int64.max], shape: []), Value(ints: [1], shape: [])], "larger than"),
            ("Range", [Value(floats: [0], shape: []), Value(floats: [1e30], shape: []), Value(floats: [1], shape: [])], "larger than"),
            ("Range", [Value(ints: [0], shape: []), Value(ints: [1], shape: []), Value(ints: [0], shape: [])], "delta is 0"),
        ]
        for (op, inputs, phrase) in cases {
            #expect("\(op) \(phrase)") { _ = try runNode(op, inputs) } throws: { error in
                (error as? EvalError)?.kind == .invalid && "\(error)".contains(phrase)
            }
        }
    }
}
