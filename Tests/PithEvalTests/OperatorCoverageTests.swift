import Foundation
import PithIR
import Testing
@testable import PithEval

/// The operators of issue 12's last part whose semantics are easy to get subtly wrong. Expected
/// values were recorded from onnxruntime 1.32 (`InferenceSession` on a one-node model of the same
/// operator, attributes and inputs); a test says where onnx 1.23's reference evaluator differs.
@Suite struct OperatorCoverageTests {
    func int(_ name: String, _ value: Int64) -> Attribute { Attribute(name: name, value: .int(value)) }
    func text(_ name: String, _ value: String) -> Attribute { Attribute(name: name, value: .string(Array(value.utf8))) }

    /// Whether `got` matches `want` element by element within 1e-5 + 1e-5·|want|.
    func close(_ got: [Float], _ want: [Float]) -> Bool {
        got.count == want.count && zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 + 1e-5 * abs($1) }
    }

    // x [2, 3, 2] (N, C, d1), weights per class; onnxruntime:
    // NegativeLogLikelihoodLoss(x, [[2, 1], [0, 1]], w, ignore_index=1, reduction=…).
    let scores = Value(floats: [1, -2, 0.5, 3, -1.5, 0.25, 2, 0, -0.5, 1, 4, -3], shape: [2, 3, 2])
    let weights = Value(floats: [0.5, 2, 4], shape: [3])

    @Test func negativeLogLikelihoodSkipsIgnoredTargetsInTheMeanAndTheWeights() throws {
        let target = Value(ints: [2, 1, 0, 1], shape: [2, 2])
        func loss(_ reduction: String, weighted: Bool = true) throws -> Value {
            try runNode(
                "NegativeLogLikelihoodLoss", weighted ? [scores, target, weights] : [scores, target],
                attributes: [text("reduction", reduction), int("ignore_index", 1)], opset: 13)[0]
        }
        let none = try loss("none")
        #expect(none.shape == [2, 2] && none.floats == [6, 0, -1, 0])
        #expect(try loss("sum").floats == [5])
        // Σ loss / Σ weight of the targets kept: 5 / (4 + 0.5).
        let mean = try loss("mean")
        #expect(mean.shape == [] && close(mean.floats, [1.1111111640930176]))
        // Without weights, the mean is over the targets kept (2 of 4): (1.5 − 2) / 2.
        #expect(try loss("mean", weighted: false).floats == [-0.25])
        // A target outside the classes that is not the ignore_index is refused, naming it.
        #expect(throws: EvalError.self) {
            try runNode("NegativeLogLikelihoodLoss", [scores, Value(ints: [3, 0, 0, 0], shape: [2, 2])], opset: 13)
        }
    }

    @Test func softmaxCrossEntropyGivesTheLogProbabilities() throws {
        let target = Value(ints: [2, -1, 0, 1], shape: [2, 2])
        let out = try runNode(
            "SoftmaxCrossEntropyLoss", [scores, target, weights], attributes: [text("reduction", "mean"), int("ignore_index", -1)], outputs: 2, opset: 13)
        #expect(close(out[0].floats, [2.125706911087036]))
        #expect(out[1].shape == [2, 3, 2])
        #expect(
            close(
                out[1].floats,
                [
                    -0.5239090919494629, -5.0682806968688965, -1.023909091949463, -0.06828073412179947, -3.023909091949463, -2.8182806968688965,
                    -2.1366653442382812, -1.3265626430511475, -4.636665344238281, -0.32656264305114746, -0.1366652548313141, -4.326562881469727,
                ]))
    }

    @Test func nonMaxSuppressionTakesEqualScoresInBoxOrder() throws {
        // [x centre, y centre, width, height]: boxes 0, 1 and 3 overlap, as do 2 and 4.
        let centred = Value(
            floats: [0.5, 0.5, 1, 1, 0.6, 0.5, 1, 1, 2.5, 2.5, 1, 1, 0.5, 0.6, 1, 1, 2.5, 2.6, 1, 1, 5, 5, 2, 2], shape: [1, 6, 4])
        let scores = Value(floats: [0.9, 0.9, 0.8, 0.95, 0.8, 0.3], shape: [1, 1, 6])
        let limits = [Value(ints: [10], shape: [1]), Value(floats: [0.5], shape: [1]), Value(floats: [0], shape: [1])]
        let kept = try runNode("NonMaxSuppression", [centred, scores] + limits, attributes: [int("center_point_box", 1)], opset: 11)[0]
        #expect(kept.shape == [3, 3] && kept.ints == [0, 0, 3, 0, 0, 2, 0, 0, 5])
        // Corners in either order; all scores of class 0 equal: box order decides; at most 3 per class.
        let corners = Value(floats: [0, 0, 1, 1, 1, 1, 0, 0, 0, 0.1, 1, 1.1, 0, 2, 1, 3], shape: [1, 4, 4])
        let twoClasses = Value(floats: [0.5, 0.5, 0.5, 0.5, 0.1, 0.4, 0.4, 0.2], shape: [1, 2, 4])
        let selected = try runNode(
            "NonMaxSuppression", [corners, twoClasses, Value(ints: [3], shape: [1]), Value(floats: [0.5], shape: [1])], opset: 11)[0]
        #expect(selected.ints == [0, 0, 0, 0, 0, 3, 0, 1, 1, 0, 1, 3])
    }

    @Test func gridSampleBicubicBorderClampsTheTapsNotThePosition() throws {
        // X = (0…11)^1.5 as [1, 1, 3, 4]; positions outside on both axes, inside, and beyond one edge.
        let x = Value(floats: (0..<12).map { Float(pow(Double($0), 1.5)) }, shape: [1, 1, 3, 4])
        let grid = Value(floats: [-1.2, -1.1, 1.1, 0, 0.4, 1.3, -0.3, -0.6], shape: [1, 1, 4, 2])
        let border = [text("mode", "bicubic"), text("padding_mode", "border")]
        let edges = try runNode("GridSample", [x, grid], attributes: border + [int("align_corners", 0)], opset: 16)[0]
        #expect(edges.shape == [1, 1, 1, 4])
        #expect(close(edges.floats, [-0.4836219549179077, 18.70091438293457, 33.519290924072266, 1.512967586517334]))
        let corners = try runNode("GridSample", [x, grid], attributes: border + [int("align_corners", 1)], opset: 16)[0]
        #expect(close(corners.floats, [-0.5816463828086853, 18.831016540527344, 34.18499755859375, 3.9599199295043945]))
        // onnx's reference clamps the position first (0, 18.520258, 33.488407, …): the values differ
        // wherever a position lies outside, which is why the first one here is not X[0, 0] = 0.
        #expect(edges.floats[0] != 0)
        // Opset 20 names the same mode "cubic" and refuses the old name.
        let renamed = try runNode("GridSample", [x, grid], attributes: [text("mode", "cubic"), text("padding_mode", "border")], opset: 20)[0]
        #expect(renamed.floats == edges.floats)
        #expect(throws: EvalError.self) { try runNode("GridSample", [x, grid], attributes: border, opset: 20) }
    }

    @Test func uniqueSortedAndInOrderOfFirstOccurrence() throws {
        let x = Value(floats: [2, 1, 2, 0, 5, 0, 2, 1, 2, 0, 5, 0, 1, 1, 1], shape: [5, 3])
        let sorted = try runNode("Unique", [x], outputs: 4, opset: 11)
        #expect(sorted[0].floats == [0, 1, 2, 5] && sorted[1].ints == [3, 1, 0, 4])
        #expect(sorted[2].ints == [2, 1, 2, 0, 3, 0, 2, 1, 2, 0, 3, 0, 1, 1, 1] && sorted[3].ints == [4, 5, 4, 2])
        let inOrder = try runNode("Unique", [x], attributes: [int("sorted", 0)], outputs: 4, opset: 11)
        #expect(inOrder[0].floats == [2, 1, 0, 5] && inOrder[1].ints == [0, 1, 3, 4])
        #expect(inOrder[2].ints == [0, 1, 0, 2, 3, 2, 0, 1, 0, 2, 3, 2, 1, 1, 1] && inOrder[3].ints == [4, 5, 4, 2])
        // Rows along axis 0, compared element by element.
        let rows = try runNode("Unique", [x], attributes: [int("axis", 0)], outputs: 4, opset: 11)
        #expect(rows[0].shape == [3, 3] && rows[0].floats == [0, 5, 0, 1, 1, 1, 2, 1, 2])
        #expect(rows[1].ints == [1, 4, 0] && rows[2].ints == [2, 0, 2, 0, 1] && rows[3].ints == [2, 1, 2])
        let rowsInOrder = try runNode("Unique", [x], attributes: [int("axis", 0), int("sorted", 0)], outputs: 4, opset: 11)
        #expect(rowsInOrder[0].floats == [2, 1, 2, 0, 5, 0, 1, 1, 1] && rowsInOrder[1].ints == [0, 1, 4])
        #expect(rowsInOrder[2].ints == [0, 1, 0, 1, 2] && rowsInOrder[3].ints == [2, 2, 1])
    }

    @Test func stftOnesidedKeepsHalfTheBins() throws {
        let signal = Value(floats: (0..<12).map { Float(sin(Double($0) * 0.7) + 0.1 * Double($0)) }, shape: [1, 12, 1])
        let window = Value(floats: [0, 0.5, 1, 0.5, 0, 0.25], shape: [6])
        // Frames of the window's 6 samples, 3 apart: (12 − 6) / 3 + 1 = 3 frames of 6 / 2 + 1 = 4 bins.
        let onesided = try runNode("STFT", [signal, Value(ints: [3], shape: []), window], opset: 17)[0]
        #expect(onesided.shape == [1, 3, 4, 2])
        let expected: [Float] = [
            2.1764674186706543, 0, -0.9696239829063416, -1.3165779113769531, -0.21582621335983276, 0.736680269241333, 0.19443216919898987, 0,
            0.42310631275177, 0, 0.26601797342300415, -0.41095292568206787, -0.4152349829673767, -0.15250159800052643, -0.12467271089553833, 0,
            1.0079561471939087, 0, -0.35236573219299316, 0.42828017473220825, 0.18363302946090698, 0.7205343246459961, -0.6704892516136169, 0,
        ]
        #expect(close(onesided.floats, expected))
        // Every bin of 5-sample frames without a window (5 is not a power of two: Bluestein's algorithm).
        let node = Node(name: "stft", opType: "STFT", inputs: ["signal", "step", "", "length"], outputs: ["y"], attributes: [int("onesided", 0)])
        let feeds = ["signal": signal, "step": Value(ints: [4], shape: []), "length": Value(ints: [5], shape: [])]
        let full = try runGraph([node], feeds: feeds, outputs: ["y"], opset: 17)[0]
        #expect(full.shape == [1, 2, 5, 2])
        #expect(
            close(
                full.floats,
                [
                    3.8278653621673584, 0, -1.4430058002471924, -0.021849453449249268, -0.47092708945274353, 0.015727192163467407,
                    -0.47092753648757935, -0.015726596117019653, -1.443005084991455, 0.02185046672821045, 0.49890995025634766, 0,
                    1.2814587354660034, 0.012167632579803467, 0.30655696988105774, 0.021816223859786987, 0.306556761264801, -0.02181623876094818,
                    1.2814584970474243, -0.012168467044830322,
                ]))
    }

    @Test func dftOfEveryLengthMatchesTheDefinition() throws {
        // The transform of a seeded signal by the O(n²) definition in Double, for powers of two and not.
        for n in [1, 2, 7, 16, 31, 100] {
            let re = seeded(n, seed: UInt64(n)), im = seeded(n, seed: UInt64(n + 1000))
            let x = Value(floats: zip(re, im).flatMap { [$0, $1] }, shape: [1, n, 2])
            for inverse in [false, true] {
                let y = try runNode("DFT", [x], attributes: [int("axis", 1), int("inverse", inverse ? 1 : 0)], opset: 17)[0]
                let sign = inverse ? 1.0 : -1.0, scale = inverse ? 1 / Double(n) : 1
                var want: [Float] = []
                for k in 0..<n {
                    var sumRe = 0.0, sumIm = 0.0
                    for j in 0..<n {
                        let angle = sign * 2 * Double.pi * Double(j * k % n) / Double(n)
                        sumRe += Double(re[j]) * cos(angle) - Double(im[j]) * sin(angle)
                        sumIm += Double(re[j]) * sin(angle) + Double(im[j]) * cos(angle)
                    }
                    want += [Float(sumRe * scale), Float(sumIm * scale)]
                }
                #expect(zip(y.floats, want).allSatisfy { abs($0 - $1) <= 1e-5 * Float(n) }, "n \(n) inverse \(inverse)")
            }
        }
    }

    @Test func qLinearMatMulRoundsHalfToEvenAndSaturates() throws {
        // acc = (a − 2)(b − 1) = 3, 5, 100, 253; × 0.25 · 1 / 0.5 = 1.5, 2.5, 50, 126.5; rounded half
        // to even 2, 2, 50, 126; + 200, saturated to uint8.
        let a = Value(ints: [5, 7, 102, 255], shape: [4, 1], dtype: .uint8), b = Value(ints: [2], shape: [1, 1], dtype: .uint8)
        let y = try runNode(
            "QLinearMatMul",
            [
                a, Value(floats: [0.25], shape: []), Value(ints: [2], shape: [], dtype: .uint8), b, Value(floats: [1], shape: []),
                Value(ints: [1], shape: [], dtype: .uint8), Value(floats: [0.5], shape: []), Value(ints: [200], shape: [], dtype: .uint8),
            ], opset: 10)[0]
        #expect(y.dtype == .uint8 && y.shape == [4, 1] && y.ints == [202, 202, 250, 255])
    }

    @Test func dataDependentSizesAreRefusedBeforeAllocating() throws {
        let expectInvalid = { (op: String, inputs: [Value], attributes: [Attribute], opset: Int64) in
            do {
                _ = try runNode(op, inputs, attributes: attributes, opset: opset)
                Issue.record("\(op) ran")
            } catch let error as EvalError {
                #expect(error.kind == .invalid, "\(op): \(error.message)")
            } catch {
                Issue.record("\(op): \(error)")
            }
        }
        expectInvalid("HannWindow", [Value(ints: [1 << 40], shape: [])], [], 17)
        expectInvalid("DFT", [Value(floats: [1, 2], shape: [1, 2, 1]), Value(ints: [1 << 40], shape: [])], [int("axis", 1)], 17)
        expectInvalid(
            "MaxUnpool",
            [Value(floats: [1], shape: [1, 1, 1, 1]), Value(ints: [0], shape: [1, 1, 1, 1]), Value(ints: [1, 1, 1 << 20, 1 << 20], shape: [4])],
            [Attribute(name: "kernel_shape", value: .ints([2, 2]))], 11)
        expectInvalid(
            "RoiAlign",
            [
                Value(floats: [Float](repeating: 1, count: 4), shape: [1, 1, 2, 2]), Value(floats: [0, 0, 1e9, 1e9], shape: [1, 4]),
                Value(ints: [0], shape: [1]),
            ],
            [], 16)
        expectInvalid(
            "MelWeightMatrix",
            [
                Value(ints: [1 << 30], shape: []), Value(ints: [1 << 30], shape: []), Value(ints: [100], shape: []), Value(floats: [0], shape: []),
                Value(floats: [10], shape: []),
            ], [], 17)
    }
}
