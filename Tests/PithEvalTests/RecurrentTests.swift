import Foundation
import PithIR
import PithTestSupport
import Testing
@testable import PithEval

/// LSTM, GRU and RNN against onnxruntime's outputs recorded by
/// `Fixtures/generate/make_recurrent_outputs.py`, and against a hand computation.
@Suite struct RecurrentTests {
    struct Case: Decodable {
        struct Tensor: Decodable {
            var name: String
            var dtype: String
            var shape: [Int]
            var data: [Double]
        }

        struct Output: Decodable {
            var shape: [Int]
            var data: [Double]
        }

        struct AttributeValue: Decodable {
            var int: Int64?
            var float: Float?
            var string: String?
            var floats: [Float]?
            var strings: [String]?
        }

        var name: String
        var op: String
        var opset: Int64
        var attributes: [String: AttributeValue]
        var inputs: [Tensor?]
        var outputs: [Output]
    }

    static func cases() throws -> [Case] {
        struct File: Decodable { var cases: [Case] }
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("reference/recurrent-cases.json")))
        return try JSONDecoder().decode(File.self, from: data).cases
    }

    @Test func outputsMatchOnnxruntime() throws {
        let cases = try Self.cases()
        #expect(cases.count >= 8)
        for c in cases {
            let attributes = c.attributes.keys.sorted().map { key -> Attribute in
                let v = c.attributes[key]!
                if let i = v.int { return Attribute(name: key, value: .int(i)) }
                if let f = v.float { return Attribute(name: key, value: .float(f)) }
                if let s = v.string { return Attribute(name: key, value: .string(Array(s.utf8))) }
                if let s = v.strings { return Attribute(name: key, value: .strings(s.map { Array($0.utf8) })) }
                return Attribute(name: key, value: .floats(v.floats ?? []))
            }
            let inputs: [Value?] = c.inputs.map { t in
                t.map { t in
                    t.dtype == "int32"
                        ? Value(ints: t.data.map { Int64($0) }, shape: t.shape, dtype: .int32) : Value(floats: t.data.map { Float($0) }, shape: t.shape)
                }
            }
            let outputs = try runGraph(
                [
                    Node(
                        name: c.name, opType: c.op, inputs: c.inputs.map { $0?.name ?? "" },
                        outputs: c.outputs.indices.map { "y\($0)" }, attributes: attributes)
                ],
                feeds: Dictionary(uniqueKeysWithValues: zip(c.inputs, inputs).compactMap { t, v in t.map { ($0.name, v!) } }),
                outputs: c.outputs.indices.map { "y\($0)" }, opset: c.opset)
            for (k, (have, want)) in zip(outputs, c.outputs).enumerated() {
                #expect(have.shape == want.shape, "\(c.name) output \(k)")
                let worst = zip(have.floats, want.data).map { abs(Double($0) - $1) - 1e-4 * abs($1) }.max() ?? 0
                #expect(worst <= 1e-5, "\(c.name) output \(k): off by \(worst)")
            }
        }
    }

    /// A one-unit RNN by hand: h₁ = relu(x₁·2 + 0.5·h₀ + 1), h₂ = relu(x₂·2 + 0.5·h₁ + 1); the second
    /// batch entry has length 1, so its Y is zero at step 2 and Y_h is h₁.
    @Test func rnnByHand() throws {
        let x = Value(floats: [1, -1, 2, 5], shape: [2, 2, 1])  // [seq, batch, input]
        let w = Value(floats: [2], shape: [1, 1, 1]), r = Value(floats: [0.5], shape: [1, 1, 1])
        let b = Value(floats: [0.75, 0.25], shape: [1, 2])
        let lengths = Value(ints: [2, 1], shape: [2], dtype: .int32), h0 = Value(floats: [0, 4], shape: [1, 2, 1])
        let out = try runNode(
            "RNN", [x, w, r, b, lengths, h0],
            attributes: [
                Attribute(name: "hidden_size", value: .int(1)), Attribute(name: "activations", value: .strings([Array("Relu".utf8)])),
            ], outputs: 2)
        // Entry 0: h₁ = relu(2 + 0 + 1) = 3, h₂ = relu(4 + 1.5 + 1) = 6.5. Entry 1: h₁ = relu(-2 + 2 + 1) = 1.
        #expect(out[0].shape == [2, 1, 2, 1])
        #expect(out[0].floats == [3, 1, 6.5, 0])
        #expect(out[1].floats == [6.5, 1])
    }

    @Test func malformedLayersAreNamed() throws {
        let x = Value(floats: seeded(2 * 1 * 3, seed: 1), shape: [2, 1, 3])
        let w = Value(floats: seeded(4 * 2 * 3, seed: 2), shape: [1, 8, 3]), r = Value(floats: seeded(4 * 2 * 2, seed: 3), shape: [1, 8, 2])
        let cases: [(String, [Value], [Attribute], String, EvalError.Kind)] = [
            ("LSTM", [x, w, r], [Attribute(name: "hidden_size", value: .int(3))], "W has shape", .invalid),
            ("LSTM", [x.reshaped([6]), w, r], [], "rank 3", .invalid),
            ("LSTM", [x, w, r], [Attribute(name: "direction", value: .string(Array("bidirectional".utf8)))], "W has shape", .invalid),
            (
                "LSTM", [x, w, r], [Attribute(name: "activations", value: .strings(["Sigmoid", "Swish", "Tanh"].map { Array($0.utf8) }))], "`Swish`",
                .unsupported
            ),
            (
                "LSTM", [x, w, r], [Attribute(name: "activations", value: .strings(["Sigmoid", "Affine", "Tanh"].map { Array($0.utf8) }))], "activation_alpha",
                .unsupported
            ),
            ("GRU", [x, w, r], [], "W has shape", .invalid),
        ]
        for (op, inputs, attributes, phrase, kind) in cases {
            #expect("\(op) \(phrase)") {
                _ = try runNode(op, inputs, attributes: attributes, outputs: 3)
            } throws: { error in
                (error as? EvalError)?.kind == kind && "\(error)".contains(phrase)
            }
        }
        // A sequence length beyond the sequence (B omitted).
        let node = Node(name: "lstm", opType: "LSTM", inputs: ["x", "w", "r", "", "lens"], outputs: ["y"])
        #expect {
            _ = try runGraph([node], feeds: ["x": x, "w": w, "r": r, "lens": Value(ints: [3], shape: [1], dtype: .int32)], outputs: ["y"])
        } throws: { "\($0)".contains("sequence_lens [3]") }
    }
}
