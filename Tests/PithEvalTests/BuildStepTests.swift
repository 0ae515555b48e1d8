import PithIR
import Testing

@testable import PithEval

/// The build step (`GraphBuild`) and the kernels it prepares: rewritten graphs compute what the
/// graph as written computes, and the convolution loops agree with a direct sum.
@Suite struct BuildStepTests {
    /// A small seeded generator (SplitMix64) for inputs and weights in [-1, 1).
    struct Numbers {
        var state: UInt64
        mutating func next() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 24) * 2 - 1
        }
        mutating func values(_ count: Int) -> [Float] { (0..<count).map { _ in next() } }
    }

    /// Conv by its definition: a sum over channels of the group and kernel taps, zero padding.
    static func directConv(
        _ x: [Float], _ xs: [Int], _ w: [Float], _ ws: [Int], bias: [Float], group: Int, strides: [Int], dilations: [Int], pads: [Int]
    ) -> ([Float], [Int]) {
        let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]), (m, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3])
        let oh = (h + pads[0] + pads[2] - ((kh - 1) * dilations[0] + 1)) / strides[0] + 1
        let ow = (wd + pads[1] + pads[3] - ((kw - 1) * dilations[1] + 1)) / strides[1] + 1
        var out = [Float](repeating: 0, count: n * m * oh * ow)
        let mg = m / group
        for b in 0..<n {
            for f in 0..<m {
                let g = f / mg
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var sum = Double(bias[f])
                        for ci in 0..<cg {
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    let iy = oy * strides[0] - pads[0] + ky * dilations[0], ix = ox * strides[1] - pads[1] + kx * dilations[1]
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    sum += Double(x[((b * c + g * cg + ci) * h + iy) * wd + ix]) * Double(w[((f * cg + ci) * kh + ky) * kw + kx])
                                }
                            }
                        }
                        out[((b * m + f) * oh + oy) * ow + ox] = Float(sum)
                    }
                }
            }
        }
        return (out, [n, m, oh, ow])
    }

    static func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    @Test(arguments: [
        // (channels, group, kernel, stride, dilation, pads, height, width)
        (6, 6, 3, 1, 1, 1, 9, 37), (6, 6, 3, 2, 1, 1, 11, 45), (4, 4, 5, 1, 1, 2, 7, 50), (4, 4, 5, 2, 1, 2, 8, 67), (3, 3, 3, 3, 2, 2, 10, 41),
        (4, 4, 3, 1, 2, 0, 6, 5), (4, 4, 5, 2, 1, 3, 3, 2), (5, 1, 3, 2, 1, 1, 9, 19), (4, 2, 3, 1, 1, 0, 6, 7), (3, 1, 1, 1, 1, 0, 5, 6),
        (7, 1, 1, 1, 1, 0, 1, 1), (8, 8, 5, 1, 1, 2, 12, 80), (4, 4, 3, 1, 1, 1, 5, 16), (4, 4, 3, 2, 1, 1, 6, 33),
    ])
    func convolutionLoopsAgreeWithTheDirectSum(_ shape: (Int, Int, Int, Int, Int, Int, Int, Int)) throws {
        let (channels, group, k, stride, dilation, pad, h, w) = shape
        var numbers = Numbers(state: UInt64(channels * 1000 + k * 100 + h + w))
        let filters = channels, xs = [2, channels, h, w], ws = [filters, channels / group, k, k]
        let x = numbers.values(xs.reduce(1, *)), weights = numbers.values(ws.reduce(1, *)), bias = numbers.values(filters)
        let conv = node(
            "Conv", ["x", "w", "b"], ["y"],
            [
                intAttr("group", group), intsAttr("strides", [stride, stride]), intsAttr("dilations", [dilation, dilation]),
                intsAttr("pads", [pad, pad, pad, pad]),
            ])
        let kernel = try ConvKernel(node: conv, opset: 17, weights: weights, weightShape: ws, bias: bias)
        let have = try kernel.run(Value(floats: x, shape: xs))
        let (want, shape) = Self.directConv(
            x, xs, weights, ws, bias: bias, group: group, strides: [stride, stride], dilations: [dilation, dilation], pads: [pad, pad, pad, pad])
        #expect(have.shape == shape)
        #expect(Self.close(have.floats, want))
    }

    /// Conv → BatchNormalization → Mul, Add (an affine block) → the decomposed HardSwish → Mul, Add →
    /// Conv → Relu: every node but the two Convs is fused, and the outputs match the graph as written.
    @Test func fusedConvolutionsComputeWhatTheGraphSays() throws {
        var numbers = Numbers(state: 7)
        let c = 4
        var tensors: [Tensor] = []
        func constant(_ name: String, _ values: [Float], _ shape: [Int]) -> String {
            tensors.append(floatTensor(name, values, shape: shape))
            return name
        }
        let w1 = constant("w1", numbers.values(c * 3 * 9), [c, 3, 3, 3]), b1 = constant("b1", numbers.values(c), [c])
        let gamma = constant("gamma", numbers.values(c), [c]), beta = constant("beta", numbers.values(c), [c])
        let mean = constant("mean", numbers.values(c), [c]), variance = constant("var", numbers.values(c).map { abs($0) + 0.5 }, [c])
        let scale = constant("scale", [0.9], []), shift = constant("shift", [0.25], []), three = constant("three", [3], [])
        let zero = constant("zero", [0], []), six = constant("six", [6], []), perChannel = constant("pc", numbers.values(c), [c, 1, 1])
        let w2 = constant("w2", numbers.values(c * c), [c, c, 1, 1])
        let nodes = [
            node("Conv", ["x", w1, b1], ["c1"], [intsAttr("pads", [1, 1, 1, 1]), intsAttr("strides", [2, 2])]),
            node("BatchNormalization", ["c1", gamma, beta, mean, variance], ["bn"]),
            node("Mul", [scale, "bn"], ["m1"]), node("Add", ["m1", shift], ["a1"]),
            node("Add", ["a1", three], ["t1"]), node("Clip", ["t1", zero, six], ["t2"]), node("Mul", ["a1", "t2"], ["t3"]), node("Div", ["t3", six], ["hs"]),
            node("Mul", ["hs", perChannel], ["m2"]), node("Sub", ["m2", shift], ["a2"]),
            node("Conv", ["a2", w2], ["c2"]), node("Relu", ["c2"], ["y"]),
        ]
        let model = graphModel(
            nodes, inputs: ["x"], outputs: ["y"], tensors: tensors, initializers: Array(tensors.indices), opset: 17)
        let evaluator = try ONNXEvaluator(model: model)
        #expect(evaluator.program.steps.map(\.node.opType) == ["Conv", "Conv"])
        let x = Value(floats: numbers.values(2 * 3 * 11 * 13), shape: [2, 3, 11, 13])
        let fused = try evaluator.run(["x": x])[0]
        // Asking for an intermediate value runs the graph as written.
        let written = try evaluator.run(["x": x], outputs: ["y", "hs"])
        #expect(written.names == ["y", "hs"])
        #expect(fused.shape == written.values[0].shape)
        #expect(Self.close(fused.floats, written.values[0].floats))
        let reference = try GraphProgram(model.graph!, model: model, opset: 17)
        #expect(reference.steps.count == nodes.count)
        // The first Conv's weights, changed by the folds, are held once: under a new name, not beside
        // the original constant; asked for, the original comes from the graph as written.
        #expect(evaluator.program.constants[w1] == nil)
        #expect(evaluator.program.steps[0].node.inputs[1] != w1)
        let original = try evaluator.run(["x": x], outputs: [w1])
        #expect(original.values[0].floats == tensors[0].floatValues())
    }

    /// A value read by two nodes, or a graph output, is never fused away.
    @Test func sharedValuesAndOutputsStay() throws {
        let tensors = [floatTensor("w", [1, 2, 3, 4], shape: [2, 2, 1, 1])]
        let nodes = [node("Conv", ["x", "w"], ["c"]), node("Relu", ["c"], ["r"]), node("Sigmoid", ["c"], ["s"]), node("Add", ["r", "s"], ["y"])]
        let model = graphModel(nodes, inputs: ["x"], outputs: ["y", "r"], tensors: tensors, initializers: [0])
        let evaluator = try ONNXEvaluator(model: model)
        #expect(evaluator.program.steps.count == 4)
        let out = try evaluator.run(["x": Value(floats: [1, -2, 3, -4, 5, -6, 7, -8], shape: [1, 2, 2, 2])])
        let c: [Float] = [11, -14, 17, -20, 23, -30, 37, -44]
        #expect(out[1].floats == c.map { max($0, 0) })
    }

    /// Constant subgraphs are computed when the graph is built.
    @Test func constantSubgraphsAreFolded() throws {
        let tensors = [intTensor("shape", [2, 3], shape: [2]), floatTensor("k", [2], shape: [])]
        let nodes = [
            node("Cast", ["shape"], ["shapeFloat"], [intAttr("to", 1)]), node("Mul", ["shapeFloat", "k"], ["doubled"]), node("Add", ["x", "doubled"], ["y"]),
        ]
        let model = graphModel(nodes, inputs: ["x"], outputs: ["y"], tensors: tensors, initializers: [0, 1])
        let evaluator = try ONNXEvaluator(model: model)
        #expect(evaluator.program.steps.map(\.node.opType) == ["Add"])
        let out = try evaluator.run(["x": Value(floats: [1, 1], shape: [2])])[0]
        #expect(out.floats == [5, 7])
    }

    /// The element-wise kernels' broadcasts: a channel vector, a per-plane value, a bias along the
    /// last axis, and a full-shape right operand of a non-commutative operation.
    @Test func elementwiseBroadcastsAgreeWithIndexArithmetic() throws {
        var numbers = Numbers(state: 3)
        let a = Value(floats: numbers.values(2 * 3 * 4 * 5), shape: [2, 3, 4, 5])
        for (shape, first) in [([1, 3, 1, 1], true), ([2, 3, 1, 1], false), ([5], true), ([4, 5], false), ([1], false), ([2, 3, 4, 5], true)] {
            let b = Value(floats: numbers.values(shape.reduce(1, *)), shape: shape)
            for op in ["Add", "Sub", "Mul", "Div"] {
                let inputs = first ? [a, b] : [b, a]
                let kernelNode = node(op, ["p", "q"], ["r"])
                var handed: [Value?] = inputs
                let have = try ArithmeticKernel(kernelNode)!.run(&handed, Operators(node: kernelNode, opset: 17))[0]
                let want = try Operators(node: kernelNode, opset: 17).run(inputs)[0]
                #expect(have.shape == want.shape)
                #expect(Self.close(have.floats, want.floats, tolerance: 1e-6), "\(op) \(shape) first \(first)")
            }
        }
    }

    /// Large tensors are split into pieces over the cores: long runs cut, short runs grouped.
    @Test func largeElementwiseOperationsSplitCorrectly() throws {
        var numbers = Numbers(state: 11)
        for (aShape, bShape) in [
            ([2, 8, 128, 128], [1, 8, 1, 1]), ([2, 8, 128, 128], [128]), ([2, 8, 128, 128], [2, 8, 128, 128]), ([2, 262_144], [2, 1]),
        ] {
            let a = Value(floats: numbers.values(aShape.reduce(1, *)), shape: aShape), b = Value(floats: numbers.values(bShape.reduce(1, *)), shape: bShape)
            for op in ["Sub", "Div"] {
                let kernelNode = node(op, ["p", "q"], ["r"])
                for inputs in [[a, b], [b, a]] {
                    var handed: [Value?] = inputs
                    let have = try ArithmeticKernel(kernelNode)!.run(&handed, Operators(node: kernelNode, opset: 17))[0]
                    let want = try Operators(node: kernelNode, opset: 17).run(inputs)[0]
                    #expect(have.shape == want.shape && have.floats == want.floats, "\(op) \(aShape) \(bShape)")
                }
            }
        }
        let relu = node("Relu", ["p"], ["r"]), x = Value(floats: numbers.values(300_001), shape: [300_001])
        var handed: [Value?] = [x]
        let have = try ActivationKernel(relu, Operators(node: relu, opset: 17))!.run(&handed, Operators(node: relu, opset: 17))[0]
        #expect(have.floats == x.floats.map { max($0, 0) })
    }

    /// A BatchNormalization with no Conv before it runs as one scale and shift per channel.
    @Test func batchNormalizationAloneMatchesItsDefinition() throws {
        var numbers = Numbers(state: 5)
        let c = 3
        let tensors = [
            floatTensor("g", numbers.values(c), shape: [c]), floatTensor("b", numbers.values(c), shape: [c]), floatTensor("m", numbers.values(c), shape: [c]),
            floatTensor("v", numbers.values(c).map { abs($0) + 0.1 }, shape: [c]),
        ]
        let nodes = [node("Relu", ["x"], ["r"]), node("BatchNormalization", ["r", "g", "b", "m", "v"], ["y"])]
        let model = graphModel(nodes, inputs: ["x"], outputs: ["y"], tensors: tensors, initializers: [0, 1, 2, 3])
        let evaluator = try ONNXEvaluator(model: model)
        #expect(evaluator.program.steps.last?.kernel is BatchNormKernel)
        let x = Value(floats: numbers.values(2 * c * 5), shape: [2, c, 5])
        let have = try evaluator.run(["x": x])[0]
        let relu = Value(floats: x.floats.map { max($0, 0) }, shape: x.shape)
        let want = try Operators(node: nodes[1], opset: 17).run([relu] + tensors.map { try Value($0) })[0]
        #expect(Self.close(have.floats, want.floats, tolerance: 1e-6))
    }

    /// Gemm → Relu → Clip: the activations run inside the Gemm's step.
    @Test func gemmActivationsAreFused() throws {
        var numbers = Numbers(state: 9)
        let tensors = [floatTensor("w", numbers.values(6 * 4), shape: [6, 4]), floatTensor("b", numbers.values(4), shape: [4])]
        let nodes = [
            node("Gemm", ["x", "w", "b"], ["g"]), node("Relu", ["g"], ["r"]),
            node("Clip", ["r"], ["y"], [Attribute(name: "min", value: .float(0)), Attribute(name: "max", value: .float(0.5))]),
        ]
        let model = graphModel(nodes, inputs: ["x"], outputs: ["y"], tensors: tensors, initializers: [0, 1], opset: 10)
        let evaluator = try ONNXEvaluator(model: model)
        #expect(evaluator.program.steps.map(\.node.opType) == ["Gemm"])
        let x = Value(floats: numbers.values(3 * 6), shape: [3, 6])
        let have = try evaluator.run(["x": x])[0]
        let g = try Operators(node: nodes[0], opset: 10).run([x] + tensors.map { try Value($0) })[0]
        #expect(Self.close(have.floats, g.floats.map { min(max($0, 0), 0.5) }, tolerance: 1e-6))
    }
}
