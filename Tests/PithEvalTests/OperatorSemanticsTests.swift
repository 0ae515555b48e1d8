import Foundation
import PithIR
import Testing
@testable import PithEval

/// The operators whose semantics are easy to get subtly wrong, against values computed by onnx's
/// reference evaluator (onnx 1.23, `onnx.reference.ReferenceEvaluator`) on the same inputs.
@Suite struct OperatorSemanticsTests {
    func attribute(_ name: String, _ value: Int64) -> Attribute { Attribute(name: name, value: .int(value)) }

    @Test func roundIsHalfToEven() throws {
        let x: [Float] = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4999, 0.50000006]
        let y = try runNode("Round", [Value(floats: x, shape: [8])])[0]
        #expect(y.floats == [-2, -2, -0, 0, 2, 2, 2, 1])
        #expect(y.floats[2].sign == .minus)
    }

    @Test func modFollowsTheDivisorUnlessFmod() throws {
        let a = Value(ints: [-7, 7, -7, 7, -4], shape: [5]), b = Value(ints: [3, -3, -3, 3, 2], shape: [5])
        #expect(try runNode("Mod", [a, b], opset: 13)[0].ints == [2, -2, -1, 1, 0])
        #expect(try runNode("Mod", [a, b], attributes: [attribute("fmod", 1)], opset: 13)[0].ints == [-1, 1, -1, 1, 0])
        let x = Value(floats: [-7.5, 7.5, -7.5, 7.5], shape: [4]), y = Value(floats: [2, -2, -2, 2], shape: [4])
        #expect(try runNode("Mod", [x, y], attributes: [attribute("fmod", 1)], opset: 13)[0].floats == [-1.5, 1.5, -1.5, 1.5])
        #expect(try runNode("Mod", [x, y], opset: 13)[0].floats == [0.5, -0.5, -1.5, 1.5])
        // Integer remainder by zero is 0 (numpy), never a trap; nor is Int64.min by −1.
        let z = try runNode("Mod", [Value(ints: [5, .min], shape: [2]), Value(ints: [0, -1], shape: [2])], opset: 13)[0]
        #expect(z.ints == [0, 0])
    }

    @Test func topKBreaksTiesByLowerIndex() throws {
        let x = Value(floats: [3, 1, 3, 2, 1, 3], shape: [1, 6]), k = Value(ints: [4], shape: [1])
        let largest = try runNode("TopK", [x, k], outputs: 2, opset: 11)
        #expect(largest[0].floats == [3, 3, 3, 2] && largest[1].ints == [0, 2, 5, 3])
        let smallest = try runNode("TopK", [x, k], attributes: [attribute("largest", 0)], outputs: 2, opset: 11)
        #expect(smallest[0].floats == [1, 1, 2, 3] && smallest[1].ints == [1, 4, 3, 0])
        #expect(largest[1].shape == [1, 4])
    }

    @Test func topKRefusesAKLargerThanTheAxis() throws {
        let x = Value(floats: [1, 2, 3], shape: [3])
        #expect(throws: EvalError.self) { try runNode("TopK", [x, Value(ints: [4], shape: [1])], outputs: 2, opset: 11) }
    }

    @Test func einsumTakesDiagonals() throws {
        let a = Value(floats: (0..<9).map(Float.init), shape: [3, 3])
        let equation = { (text: String) in Attribute(name: "equation", value: .string(Array(text.utf8))) }
        #expect(try runNode("Einsum", [a], attributes: [equation("ii->i")], opset: 12)[0].floats == [0, 4, 8])
        let trace = try runNode("Einsum", [a], attributes: [equation("ii")], opset: 12)[0]
        #expect(trace.floats == [12] && trace.shape == [])
        let b = Value(floats: (0..<18).map(Float.init), shape: [2, 3, 3])
        let batch = try runNode("Einsum", [b], attributes: [equation("...ii->...i")], opset: 12)[0]
        #expect(batch.floats == [0, 4, 8, 9, 13, 17] && batch.shape == [2, 3])
        let c = Value(floats: (0..<12).map(Float.init), shape: [2, 3, 2])
        let mixed = try runNode("Einsum", [b, c], attributes: [equation("bii,bik->bk")], opset: 12)[0]
        #expect(mixed.floats == [40, 52, 328, 367] && mixed.shape == [2, 2])
    }

    @Test func blockedInt4QuantizationRoundTrips() throws {
        // x [2, 5] int4 with blocks of 3 along axis 1: scales and zero points [2, 2].
        let x = Value(ints: [-8, -3, 0, 5, 7, 1, 2, 3, -1, -2], shape: [2, 5], dtype: .int4)
        let scale = Value(floats: [0.5, 2, 1, 0.25], shape: [2, 2])
        let zero = Value(ints: [1, -2, 0, 3], shape: [2, 2], dtype: .int4)
        let blocks = [attribute("axis", 1), attribute("block_size", 3)]
        let y = try runNode("DequantizeLinear", [x, scale, zero], attributes: blocks, opset: 21)[0]
        #expect(y.floats == [-4.5, -2, -0.5, 14, 18, 1, 2, 3, -1, -1.25])
        // Quantizing saturates to [−8, 7] and rounds half to even.
        let f = Value(floats: [-9, -2.5, 0.75, 1.5, 20, 3.3, 1, 2, 3, 4, 5, 6], shape: [2, 6])
        let q = try runNode("QuantizeLinear", [f, scale, zero], attributes: blocks, opset: 21)[0]
        #expect(q.dtype == .int4 && q.ints == [-8, -4, 3, -1, 7, 0, 1, 2, 3, 7, 7, 7])
    }

    @Test func blockedScalesMustTileTheAxis() throws {
        let x = Value(ints: [Int64](repeating: 0, count: 12), shape: [2, 6], dtype: .int8)
        let scale = Value(floats: [Float](repeating: 1, count: 6), shape: [2, 3])
        #expect(throws: EvalError.self) {
            try runNode("DequantizeLinear", [x, scale], attributes: [attribute("axis", 1), attribute("block_size", 4)], opset: 21)
        }
    }

    @Test func sizesReadFromDataAreCheckedBeforeAllocating() throws {
        let values = Value(floats: [0, 1], shape: [2])
        do {
            _ = try runNode("OneHot", [Value(ints: [1], shape: [1]), Value(ints: [1 << 40], shape: []), values], opset: 11)
            Issue.record("OneHot with depth 2⁴⁰ ran")
        } catch let error as EvalError {
            #expect(error.kind == .invalid && error.message.contains("depth"))
        }
    }

    @Test func reductionsReadAxesFromTheInputFromOpset18() throws {
        let x = Value(floats: [1, -2, 3, -4, 5, -6], shape: [2, 3])
        let axes = Value(ints: [1], shape: [1])
        #expect(try runNode("ReduceL1", [x, axes], opset: 18)[0].floats == [6, 15])
        #expect(try runNode("ReduceMax", [x, axes], attributes: [attribute("keepdims", 0)], opset: 18)[0].shape == [2])
        // No axes with noop_with_empty_axes: nothing reduced, but the element-wise part applies.
        let noop = try runNode("ReduceSumSquare", [x], attributes: [attribute("noop_with_empty_axes", 1)], opset: 18)[0]
        #expect(noop.floats == [1, 4, 9, 16, 25, 36] && noop.shape == [2, 3])
        #expect(try runNode("ReduceSum", [x], attributes: [attribute("keepdims", 0)], opset: 13)[0].floats == [-3])
    }

    @Test func zipMapIsRefusedNamingWhy() throws {
        let node = Node(name: "z", opType: "ZipMap", domain: "ai.onnx.ml", inputs: ["x"], outputs: ["y"])
        let graph = Graph(nodes: [node], inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "y")])
        do {
            // Refused when an output needs it (here the only one), not when the graph is prepared.
            _ = try ONNXEvaluator(model: Model(format: .onnx, metadata: ModelMetadata(), tensors: [], graph: graph)).plan()
            Issue.record("ZipMap accepted")
        } catch let error as EvalError {
            #expect(error.kind == .unsupported && error.message.contains("sequence of maps"))
        }
    }
}
