import Foundation
import PithIR
import Testing

@testable import PithEval

/// com.microsoft.DynamicQuantizeLSTM by hand and with malformed inputs (against onnxruntime:
/// Tests/interop/test_contrib_ops.py).
@Suite struct MicrosoftContribTests {
    static let names = ["x", "w", "r", "", "", "", "", "", "ws", "wz", "rs", "rz"]

    /// One node on `feeds` (by the names above; a name left out is an absent input).
    func run(_ feeds: [String: Value], attributes: [Attribute] = [Attribute(name: "hidden_size", value: .int(1))]) throws -> [Value] {
        let node = Node(
            name: "lstm", opType: "DynamicQuantizeLSTM", domain: "com.microsoft", inputs: Self.names.map { feeds[$0] == nil ? "" : $0 },
            outputs: ["y", "yh", "yc"], attributes: attributes)
        return try runGraph([node], feeds: feeds, outputs: ["y", "yh", "yc"])
    }

    /// One unit, one step, from zero states. W is [directions, input, 4·hidden]: its columns i, o, f,
    /// c are 10, 20, −30, 40 at scale 0.1. X = 2 quantizes to 255 on the range [0, 2] (scale 2/255),
    /// so gate k's pre-activation is 255 · w_k · (2/255 · 0.1) ≈ w_k / 5; the zero hidden state adds
    /// nothing whatever R holds.
    static let feeds: [String: Value] = [
        "x": Value(floats: [2], shape: [1, 1, 1]),
        "w": Value(ints: [10, 20, -30, 40], shape: [1, 1, 4], dtype: .int8),
        "r": Value(ints: [7, -7, 7, -7], shape: [1, 1, 4], dtype: .int8),
        "ws": Value(floats: [0.1], shape: [1]), "wz": Value(ints: [0], shape: [1], dtype: .int8),
        "rs": Value(floats: [0.5], shape: [1]), "rz": Value(ints: [0], shape: [1], dtype: .int8),
    ]

    @Test func oneUnitByHand() throws {
        let out = try run(Self.feeds)
        func sigmoid(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
        let c = sigmoid(2) * Foundation.tanh(8), h = sigmoid(4) * Foundation.tanh(c)
        #expect(out.map(\.shape) == [[1, 1, 1, 1], [1, 1, 1], [1, 1, 1]])
        #expect(abs(Double(out[2].floats[0]) - c) < 1e-5, "Y_c \(out[2].floats) ≠ \(c)")
        #expect(abs(Double(out[1].floats[0]) - h) < 1e-5, "Y_h \(out[1].floats) ≠ \(h)")
        #expect(out[0].floats == out[1].floats)
    }

    @Test func malformedLayersAreNamed() throws {
        var lstmLayout = Self.feeds
        lstmLayout["w"] = Value(ints: [10, 20, -30, 40], shape: [1, 4, 1], dtype: .int8)
        var noScale = Self.feeds
        noScale["rs"] = nil
        var perColumn = Self.feeds
        perColumn["ws"] = Value(floats: [0.1, 0.1], shape: [1, 2])
        var wrongZero = Self.feeds
        wrongZero["rz"] = Value(ints: [0], shape: [1], dtype: .uint8)
        var floatWeights = Self.feeds
        floatWeights["w"] = Value(floats: [1, 2, -3, 4], shape: [1, 1, 4])
        var unequalZeros = Self.feeds
        unequalZeros["wz"] = Value(ints: [0, 1, 0, 0], shape: [1, 4], dtype: .int8)
        let cases: [(String, [String: Value], String, EvalError.Kind)] = [
            ("LSTM's W layout", lstmLayout, "W has shape [1, 4, 1]", .invalid),
            ("a missing scale", noScale, "needs R_scale (input 10)", .invalid),
            ("a scale of the wrong shape", perColumn, "W_scale has shape [1, 2]", .invalid),
            ("a zero point of another type", wrongZero, "R_zero_point has type uint8", .invalid),
            ("float weights", floatWeights, "W of type float32", .unsupported),
            ("zero points per column", unequalZeros, "different zero points within direction 0", .unsupported),
        ]
        for (what, feeds, phrase, kind) in cases {
            #expect("\(what)") {
                _ = try run(feeds)
            } throws: { error in
                (error as? EvalError)?.kind == kind && "\(error)".contains(phrase)
            }
        }
    }
}
