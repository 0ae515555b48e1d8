import Testing
import PithIR
@testable import PithInspect

/// 4-bit codes packed two per byte (`restore --compact` below opset 21) count as 4 bits per weight.
@Suite struct PackedCodesTests {
    func initializer(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: [UInt8], graph: GraphPath = .main) -> Tensor {
        Tensor(name: graph.description + name, dtype: dtype, shape: shape, storage: .dense(TensorBuffer(bytes: bytes)), origin: .initializer(graph: graph))
    }

    func int64s(_ name: String, _ values: [Int64]) -> Tensor {
        initializer(name, .int64, [values.count], values.withUnsafeBytes { Array($0) })
    }

    /// `w` (`count` codes in `(count + 1) / 2` bytes) → Cast → Gather from `pairs` → Reshape
    /// (→ Slice → Reshape when `count` is odd), with the Slice's bounds as inputs or, when
    /// `sliceAttributes`, attributes.
    func model(count: Int, sliceAttributes: Bool = false, castTo: Int64 = 6) -> Model {
        let bytes = (count + 1) / 2
        var tensors = [
            initializer("pairs", .float32, [256, 2], [UInt8](repeating: 0, count: 2048)),
            initializer("w_quantized", .uint8, [bytes], [UInt8](repeating: 0x21, count: bytes)),
            int64s("padded", [Int64(2 * bytes)]), int64s("starts", [0]), int64s("ends", [Int64(count)]), int64s("shape", [Int64(count)]),
        ]
        var nodes = [
            Node(name: "cast", opType: "Cast", inputs: ["w_quantized"], outputs: ["w_index"], attributes: [Attribute(name: "to", value: .int(castTo))]),
            Node(name: "gather", opType: "Gather", inputs: ["pairs", "w_index"], outputs: ["w_pairs"]),
        ]
        if count % 2 == 0 {
            nodes.append(Node(name: "reshape", opType: "Reshape", inputs: ["w_pairs", "shape"], outputs: ["w"]))
        } else {
            nodes.append(Node(name: "flat", opType: "Reshape", inputs: ["w_pairs", "padded"], outputs: ["w_flat"]))
            nodes.append(
                sliceAttributes
                    ? Node(
                        name: "slice", opType: "Slice", inputs: ["w_flat"], outputs: ["w"],
                        attributes: [Attribute(name: "starts", value: .ints([0])), Attribute(name: "ends", value: .ints([Int64(count)]))])
                    : Node(name: "slice", opType: "Slice", inputs: ["w_flat", "starts", "ends"], outputs: ["w"]))
        }
        tensors.append(initializer("x", .float32, [1], [0, 0, 0, 0]))
        nodes.append(Node(name: "mul", opType: "Mul", inputs: ["w", "x"], outputs: ["y"]))
        return Model(format: .onnx, tensors: tensors, graph: Graph(nodes: nodes, initializers: Array(tensors.indices)))
    }

    func bits(_ model: Model, _ name: String) throws -> Double {
        try #require(Inspector.inspect(model, file: "m.onnx").tensors.first { $0.name == name }).bitsPerWeight
    }

    @Test func packedCodesCountTheWeightsTheyDecodeTo() throws {
        #expect(try bits(model(count: 1000), "w_quantized") == 4)
        // 501 codes in 251 bytes: the Slice's end says how many weights there are.
        #expect(try bits(model(count: 501), "w_quantized") == 251.0 * 8 / 501)
        #expect(try bits(model(count: 501, sliceAttributes: true), "w_quantized") == 251.0 * 8 / 501)
        #expect(try bits(model(count: 1000), "pairs") == 32)
        // Not read by a Cast to int32 / int64 whose output indexes a 256 × 2 table: one byte each.
        #expect(try bits(model(count: 1000, castTo: 1), "w_quantized") == 8)
    }

    @Test func tablesOfAnEnclosingGraphAreFound() throws {
        let branch = GraphPath.main.appending(.init(node: "if", attribute: "then_branch"))
        let tensors = [
            initializer("pairs", .float32, [256, 2], [UInt8](repeating: 0, count: 2048)),
            initializer("w_quantized", .uint8, [8], [UInt8](repeating: 0, count: 8), graph: branch),
            int64s("shape", [4, 4]),
        ]
        let body = Graph(
            nodes: [
                Node(name: "cast", opType: "Cast", inputs: ["w_quantized"], outputs: ["i"], attributes: [Attribute(name: "to", value: .int(7))]),
                Node(name: "gather", opType: "Gather", inputs: ["pairs", "i"], outputs: ["p"]),
                Node(name: "reshape", opType: "Reshape", inputs: ["p", "shape"], outputs: ["w"]),
            ], initializers: [1])
        let main = Graph(
            nodes: [Node(name: "if", opType: "If", inputs: ["c"], outputs: ["y"], attributes: [Attribute(name: "then_branch", value: .graph(body))])],
            initializers: [0, 2])
        let model = Model(format: .onnx, tensors: tensors, graph: main)
        #expect(PackedCodes.weights(in: model) == [1: 16])
    }
}
