import Foundation
import PithIR
import Testing
@testable import PithEval

/// Builds a one-node graph model and runs it.
func runNode(_ op: String, _ inputs: [Value], attributes: [Attribute] = [], outputs: Int = 1, opset: Int64 = 17) throws -> [Value] {
    let names = inputs.indices.map { "in\($0)" }
    let node = Node(name: "n", opType: op, inputs: names, outputs: (0..<outputs).map { "out\($0)" }, attributes: attributes)
    let graph = Graph(nodes: [node], inputs: names.map { ValueInfo(name: $0) }, outputs: (0..<outputs).map { ValueInfo(name: "out\($0)") })
    var metadata = ModelMetadata()
    metadata.opsets = [.init(domain: "", version: opset)]
    let evaluator = try ONNXEvaluator(model: Model(format: .onnx, metadata: metadata, tensors: [], graph: graph))
    return try evaluator.run(Dictionary(uniqueKeysWithValues: zip(names, inputs)))
}

/// Seeded values in [-1, 1).
func seeded(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }
}

@Suite struct ConvolutionTests {
    /// Direct convolution by the definition, for comparison.
    func naive(x: [Float], xShape: [Int], w: [Float], wShape: [Int], stride: [Int], pads: [Int], dilation: [Int], group: Int) -> ([Float], [Int]) {
        let (n, c, h, wd) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let (m, cg, kh, kw) = (wShape[0], wShape[1], wShape[2], wShape[3])
        let oh = (h + pads[0] + pads[2] - ((kh - 1) * dilation[0] + 1)) / stride[0] + 1
        let ow = (wd + pads[1] + pads[3] - ((kw - 1) * dilation[1] + 1)) / stride[1] + 1
        var out = [Float](repeating: 0, count: n * m * oh * ow)
        let mg = m / group
        for b in 0..<n {
            for f in 0..<m {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var sum: Float = 0
                        let g = f / mg
                        for k in 0..<cg {
                            for a in 0..<kh {
                                for bb in 0..<kw {
                                    let y = i * stride[0] - pads[0] + a * dilation[0], xx = j * stride[1] - pads[1] + bb * dilation[1]
                                    guard y >= 0, y < h, xx >= 0, xx < wd else { continue }
                                    sum += x[((b * c + g * cg + k) * h + y) * wd + xx] * w[((f * cg + k) * kh + a) * kw + bb]
                                }
                            }
                        }
                        out[((b * m + f) * oh + i) * ow + j] = sum
                    }
                }
            }
        }
        return (out, [n, m, oh, ow])
    }

    @Test(arguments: [
        (stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1], group: 1),
        (stride: [2, 1], pads: [1, 0, 2, 1], dilation: [1, 1], group: 1),
        (stride: [1, 2], pads: [1, 1, 1, 1], dilation: [2, 1], group: 2),
        (stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], group: 4),
    ])
    func convMatchesTheDefinition(case c: (stride: [Int], pads: [Int], dilation: [Int], group: Int)) throws {
        let xShape = [2, 4, 7, 6], wShape = [8, 4 / c.group, 3, 2]
        let x = seeded(xShape.reduce(1, *), seed: 1), w = seeded(wShape.reduce(1, *), seed: 2)
        let (want, shape) = naive(x: x, xShape: xShape, w: w, wShape: wShape, stride: c.stride, pads: c.pads, dilation: c.dilation, group: c.group)
        let attributes = [
            Attribute(name: "strides", value: .ints(c.stride.map(Int64.init))), Attribute(name: "pads", value: .ints(c.pads.map(Int64.init))),
            Attribute(name: "dilations", value: .ints(c.dilation.map(Int64.init))), Attribute(name: "group", value: .int(Int64(c.group))),
        ]
        let have = try runNode("Conv", [Value(floats: x, shape: xShape), Value(floats: w, shape: wShape)], attributes: attributes)[0]
        #expect(have.shape == shape)
        #expect(zip(have.floats, want).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
    }

    /// ConvTranspose is the adjoint of Conv: ⟨conv(x), y⟩ = ⟨x, convT(y)⟩ with the same weights.
    @Test func convTransposeIsTheAdjointOfConv() throws {
        let xShape = [1, 3, 9, 8], wShape = [4, 3, 3, 3]
        let attributes = [Attribute(name: "strides", value: .ints([2, 2])), Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]
        let x = seeded(xShape.reduce(1, *), seed: 3), w = seeded(wShape.reduce(1, *), seed: 4)
        let conv = try runNode("Conv", [Value(floats: x, shape: xShape), Value(floats: w, shape: wShape)], attributes: attributes)[0]
        let y = seeded(conv.count, seed: 5)
        // ConvTranspose's weight is [C_in of the transpose = M, C_out / group, k, k]: the same tensor.
        let transposed = try runNode(
            "ConvTranspose", [Value(floats: y, shape: conv.shape), Value(floats: w, shape: wShape)],
            attributes: attributes + [Attribute(name: "output_shape", value: .ints([9, 8]))])[0]
        #expect(transposed.shape == xShape)
        let left = zip(conv.floats, y).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        let right = zip(x, transposed.floats).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        #expect(abs(left - right) < 1e-3)
    }

    @Test func maxPoolWithIndicesAndCeilMode() throws {
        let x = Value(floats: (0..<25).map { Float(($0 * 7) % 25) }, shape: [1, 1, 5, 5])
        let out = try runNode(
            "MaxPool", [x],
            attributes: [
                Attribute(name: "kernel_shape", value: .ints([2, 2])), Attribute(name: "strides", value: .ints([2, 2])),
                Attribute(name: "ceil_mode", value: .int(1)),
            ], outputs: 2)
        #expect(out[0].shape == [1, 1, 3, 3])
        for (value, index) in zip(out[0].floats, out[1].ints) { #expect(x.floats[Int(index)] == value) }
        // The last window of each row holds the last column only.
        #expect(out[0].floats[2] == max(x.floats[4], x.floats[9]))
    }
}

@Suite struct ElementwiseTests {
    @Test func broadcastingFollowsNumpy() throws {
        let a = Value(floats: [1, 2, 3, 4, 5, 6], shape: [2, 1, 3]), b = Value(floats: [10, 20], shape: [2, 1])
        let out = try runNode("Add", [a, b])[0]
        #expect(out.shape == [2, 2, 3])
        #expect(out.floats == [11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26])
        #expect(throws: EvalError.self) { try runNode("Add", [a, Value(floats: [1, 2], shape: [2])]) }
    }

    @Test func integerArithmeticWrapsLikeTheType() throws {
        let a = Value(ints: [250, 3], shape: [2], dtype: .uint8), b = Value(ints: [10, 2], shape: [2], dtype: .uint8)
        #expect(try runNode("Add", [a, b])[0].ints == [4, 5])
        #expect(try runNode("Div", [a, b])[0].ints == [25, 1])
    }

    @Test func softmaxRowsSumToOneAndOpsetChangesTheAxis() throws {
        let x = Value(floats: seeded(24, seed: 9), shape: [2, 3, 4])
        let new = try runNode("Softmax", [x])[0]  // opset 13+: along the last axis
        for row in 0..<6 { #expect(abs(new.floats[row * 4..<row * 4 + 4].reduce(0, +) - 1) < 1e-6) }
        let old = try runNode("Softmax", [x], opset: 11)[0]  // opset < 13: flattened from axis 1
        for batch in 0..<2 { #expect(abs(old.floats[batch * 12..<batch * 12 + 12].reduce(0, +) - 1) < 1e-6) }
    }

    @Test func anOperatorOutsideTheSetIsNamed() throws {
        #expect {
            _ = try runNode("Bernoulli", [Value(floats: [1], shape: [1])])
        } throws: { error in
            "\(error)".contains("`Bernoulli`")
        }
    }
}

@Suite struct DataFileTests {
    @Test func npzWrittenByPithReadsBack() throws {
        let values = [("a", Value(floats: [1.5, -2, 3], shape: [3])), ("b", Value(ints: [7, 8, 9, 10], shape: [2, 2]))]
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pith-\(UUID()).npz")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(DataFiles.npz(values.map { (name: $0.0, value: $0.1) })).write(to: url)
        let back = try DataFiles.read(url.path)
        #expect(back.map(\.name) == ["a", "b"])
        #expect(back[0].value.floats == [1.5, -2, 3] && back[1].value.shape == [2, 2] && back[1].value.ints == [7, 8, 9, 10])
    }

    @Test func idxIsBigEndianAndChecked() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pith-\(UUID()).idx")
        defer { try? FileManager.default.removeItem(at: url) }
        // int16, rank 1, 2 elements: 0x0102 and 0xFFFE (-2).
        try Data([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]).write(to: url)
        #expect(try DataFiles.read(url.path)[0].value.ints == [258, -2])
        // The header claims more elements than the file holds.
        try Data([0, 0, 0x08, 1, 0x7F, 0, 0, 0, 1, 2]).write(to: url)
        #expect { _ = try DataFiles.read(url.path) } throws: { "\($0)".contains("remain") }
    }

    /// A Fortran-ordered array (numpy saves a transposed view that way) reads as the same array.
    @Test func fortranOrderedNpyReadsAsTheArray() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pith-\(UUID()).npy")
        defer { try? FileManager.default.removeItem(at: url) }
        // a = [[[0, 1, 2], [3, 4, 5]]] has shape (1, 2, 3); stored column-major, element a[i][j][k] is at
        // i + 1·j + 2·k: 0, 3, 1, 4, 2, 5.
        let header = "{'descr': '<i2', 'fortran_order': True, 'shape': (1, 2, 3), }"
        let stored: [Int16] = [0, 3, 1, 4, 2, 5]
        let bytes = stored.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        try Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8) + bytes).write(to: url)
        let value = try DataFiles.read(url.path)[0].value
        #expect(value.shape == [1, 2, 3])
        #expect(value.ints == [0, 1, 2, 3, 4, 5])
    }

    @Test func npyHeaderMistakesAreNamed() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pith-\(UUID()).npy")
        defer { try? FileManager.default.removeItem(at: url) }
        let header = "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }"
        try Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8) + [0, 0, 0, 0, 0, 0, 0, 0]).write(to: url)
        #expect { _ = try DataFiles.read(url.path) } throws: { "\($0)".contains("`>f4`") }
    }
}

@Suite struct MalformedModelTests {
    /// Attributes and inputs that contradict themselves are errors that name the problem, never a
    /// crash or a huge allocation.
    @Test func badAttributesAreErrors() throws {
        let x = Value(floats: seeded(2 * 3 * 8 * 8, seed: 1), shape: [2, 3, 8, 8])
        let w = Value(floats: seeded(4 * 3 * 3 * 3, seed: 2), shape: [4, 3, 3, 3])
        let cases: [(String, [Value], [Attribute], String)] = [
            ("Conv", [x, w], [Attribute(name: "strides", value: .ints([0, 1]))], "strides"),
            ("Conv", [x, w], [Attribute(name: "strides", value: .ints([1]))], "strides"),
            ("Conv", [x, w], [Attribute(name: "pads", value: .ints([1 << 20, 1 << 20, 1 << 20, 1 << 20]))], "larger than"),
            ("Conv", [x, w], [Attribute(name: "pads", value: .ints([-5, 0, 0, 0]))], "pads"),
            ("MaxPool", [x], [Attribute(name: "kernel_shape", value: .ints([0, 2]))], "kernel_shape"),
            (
                "ConvTranspose", [x, Value(floats: seeded(3 * 2 * 3 * 3, seed: 3), shape: [3, 2, 3, 3])], [Attribute(name: "output_shape", value: .ints([5]))],
                "output_shape"
            ),
            ("MatMul", [Value(floats: [1], shape: []), Value(floats: [2], shape: [])], [], "rank"),
            ("Softmax", [Value(floats: [1], shape: [])], [], "rank"),
            ("Resize", [x, Value(floats: [], shape: [0]), Value(floats: [1, 1, 1e5, 1e5], shape: [4])], [], "larger than"),
        ]
        for (op, inputs, attributes, phrase) in cases {
            #expect("\(op) \(attributes.map(\.name))") {
                _ = try runNode(op, inputs, attributes: attributes)
            } throws: { error in
                (error as? EvalError)?.kind == .invalid && "\(error)".contains(phrase)
            }
        }
    }
}
