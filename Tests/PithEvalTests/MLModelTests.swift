import Foundation
import PithIR
import Testing
@testable import PithEval

/// The `ai.onnx.ml` model operators on small hand-built models, against the values onnxruntime
/// 1.32 computes for the same models and inputs (recorded here).
@Suite struct MLModelTests {
    static let x = Value(floats: [1, 0, 0, 1, 2, 2, -1, 0.5], shape: [4, 2])
    static let withNaN = Value(floats: [1, 0, 0, 1, 2, 1, .nan, .nan, 0.5, -1], shape: [5, 2])

    func f(_ name: String, _ v: [Float]) -> Attribute { Attribute(name: name, value: .floats(v)) }
    func i(_ name: String, _ v: [Int64]) -> Attribute { Attribute(name: name, value: .ints(v)) }
    func i(_ name: String, _ v: Int64) -> Attribute { Attribute(name: name, value: .int(v)) }
    func s(_ name: String, _ v: String) -> Attribute { Attribute(name: name, value: .string(Array(v.utf8))) }
    func s(_ name: String, _ v: [String]) -> Attribute { Attribute(name: name, value: .strings(v.map { Array($0.utf8) })) }

    /// Runs one `ai.onnx.ml` node on `x`.
    func run(_ op: String, _ attributes: [Attribute], _ x: Value, outputs: Int = 2, tensors: [Tensor] = []) throws -> [Value] {
        let names = (0..<outputs).map { "o\($0)" }
        let node = Node(name: op, opType: op, domain: "ai.onnx.ml", inputs: ["x"], outputs: names, attributes: attributes)
        let model = graphModel([node], inputs: ["x"], outputs: names, tensors: tensors)
        return try ONNXEvaluator(model: model).run(["x": x])
    }

    func close(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { ($0.isNaN && $1.isNaN) || abs($0 - $1) <= 1e-5 + 1e-4 * abs($1) }
    }

    // MARK: Linear

    @Test func linearClassifierBinaryAddsTheSecondClass() throws {
        let base = [f("coefficients", [1, -2]), f("intercepts", [0.5]), i("classlabels_ints", [3, 7])]
        let logistic = try run("LinearClassifier", base + [s("post_transform", "LOGISTIC")], Self.x)
        #expect(logistic[0].ints == [7, 3, 3, 3])
        #expect(close(logistic[1].floats, [0.18242556, 0.81757444, 0.81757444, 0.18242556, 0.81757444, 0.18242556, 0.81757444, 0.18242556]))
        let none = try run("LinearClassifier", base, Self.x)
        #expect(none[1].shape == [4, 2] && none[1].floats == [-0.5, 1.5, 2.5, -1.5, 2.5, -1.5, 2.5, -1.5])
        let strings = try run("LinearClassifier", [f("coefficients", [1, -2]), f("intercepts", [0.5]), s("classlabels_strings", ["no", "yes"])], Self.x)
        #expect(strings[0].strings == ["yes", "no", "no", "no"])
    }

    @Test func linearClassifierTransforms() throws {
        let softmax = try run(
            "LinearClassifier",
            [
                f("coefficients", [1, -2, 0.5, 0.5, -1, 1]), f("intercepts", [0.1, 0.2, 0.3]), s("classlabels_strings", ["a", "b", "c"]),
                s("post_transform", "SOFTMAX"),
            ],
            Self.x)
        #expect(softmax[0].strings == ["a", "c", "b", "c"])
        #expect(
            close(
                softmax[1].floats,
                [
                    0.54477537, 0.36517385, 0.09005077, 0.025643485, 0.3452571, 0.6290994, 0.014211551, 0.85752904, 0.12825942, 0.020917390, 0.13303080,
                    0.8460518,
                ]))
        let zero = try run(
            "LinearClassifier",
            [f("coefficients", [1, 0, 0, 1, 0, 0]), f("intercepts", [0, 0, 0]), i("classlabels_ints", [1, 2, 3]), s("post_transform", "SOFTMAX_ZERO")], Self.x)
        #expect(zero[0].ints == [1, 2, 1, 2])
        #expect(close(zero[1].floats, [1, 0, 0, 0, 1, 0, 0.5, 0.5, 0, 0.18242551, 0.81757444, 0]))
        let half = Value(floats: Self.x.floats.map { $0 * 0.5 }, shape: [4, 2])
        let probit = try run("LinearRegressor", [f("coefficients", [0.1, 0.2]), f("intercepts", [0.3]), s("post_transform", "PROBIT")], half, outputs: 1)
        #expect(close(probit[0].floats, [-0.38534024, -0.2533535, 0.2533535, -0.5244459]))
    }

    @Test func linearRegressorHasOneColumnPerTarget() throws {
        let y = try run("LinearRegressor", [f("coefficients", [1, -2, 0.5, 0.5]), f("intercepts", [0.1, 0.2]), i("targets", 2)], Self.x, outputs: 1)[0]
        #expect(y.shape == [4, 2] && close(y.floats, [1.1, 0.7, -1.9, 0.7, -1.9, 2.2, -1.9, -0.05]))
    }

    // MARK: Trees

    /// Tree 0: x0 ≤ 0.5 ? leaf 1 : (x1 ≠ 1, NaN true ? leaf 3 : leaf 4); tree 1: x1 > 0 ? leaf 1 : leaf 2.
    var trees: [Attribute] {
        [
            i("nodes_treeids", [0, 0, 0, 0, 0, 1, 1, 1]), i("nodes_nodeids", [0, 1, 2, 3, 4, 0, 1, 2]), i("nodes_featureids", [0, 0, 1, 0, 0, 1, 0, 0]),
            s("nodes_modes", ["BRANCH_LEQ", "LEAF", "BRANCH_NEQ", "LEAF", "LEAF", "BRANCH_GT", "LEAF", "LEAF"]), f("nodes_values", [0.5, 0, 1, 0, 0, 0, 0, 0]),
            i("nodes_truenodeids", [1, 0, 3, 0, 0, 1, 0, 0]), i("nodes_falsenodeids", [2, 0, 4, 0, 0, 2, 0, 0]),
            i("nodes_missing_value_tracks_true", [0, 0, 1, 0, 0, 0, 0, 0]),
        ]
    }

    @Test func treeEnsembleRegressorAggregates() throws {
        let targets = [
            i("target_treeids", [0, 0, 0, 0, 1, 1, 1]), i("target_nodeids", [1, 3, 4, 4, 1, 2, 2]), i("target_ids", [0, 0, 0, 1, 0, 0, 1]),
            f("target_weights", [1, 2, 3, 4, 10, 20, 30]), i("n_targets", 2), f("base_values", [0.5, -0.5]),
        ]
        // A target no reached leaf weighs is 0 (without its base value), as in onnxruntime.
        let expected: [String: [Float]] = [
            "SUM": [22.5, 29.5, 11.5, 0, 13.5, 3.5, 22.5, 29.5, 21.5, 29.5],
            "AVERAGE": [11.5, 14.5, 6, 0, 7, 1.5, 11.5, 14.5, 11, 14.5],
            "MIN": [2.5, 29.5, 1.5, 0, 3.5, 3.5, 2.5, 29.5, 1.5, 29.5],
            "MAX": [20.5, 29.5, 10.5, 0, 10.5, 3.5, 20.5, 29.5, 20.5, 29.5],
        ]
        for (aggregate, want) in expected {
            let y = try run("TreeEnsembleRegressor", trees + targets + [s("aggregate_function", aggregate)], Self.withNaN, outputs: 1)[0]
            #expect(y.shape == [5, 2] && y.floats == want, "\(aggregate)")
        }
    }

    @Test func treeEnsembleReadsTensorAttributesAndEveryMode() throws {
        var attributes = trees.filter { $0.name != "nodes_values" && $0.name != "nodes_modes" }
        attributes += [
            s("nodes_modes", ["BRANCH_EQ", "LEAF", "BRANCH_GTE", "LEAF", "LEAF", "BRANCH_LT", "LEAF", "LEAF"]),
            Attribute(name: "nodes_values_as_tensor", value: .tensor(0)), Attribute(name: "target_weights_as_tensor", value: .tensor(1)),
            i("target_treeids", [0, 0, 0, 1, 1]), i("target_nodeids", [1, 3, 4, 1, 2]), i("target_ids", [0, 0, 0, 0, 0]), i("n_targets", 1),
        ]
        let tensors = [floatTensor("v", [0.5, 0, 1, 0, 0, 0, 0, 0], shape: [8]), floatTensor("w", [1, 2, 3, 10, 20], shape: [5])]
        let y = try run("TreeEnsembleRegressor", attributes, Self.withNaN, outputs: 1, tensors: tensors)[0]
        #expect(y.floats == [23, 22, 22, 22, 11])
    }

    /// x0 < 0.5 ? leaf 1 : (x1 ≥ 1 ? leaf 3 : leaf 4).
    var tree: [Attribute] {
        [
            i("nodes_treeids", [0, 0, 0, 0, 0]), i("nodes_nodeids", [0, 1, 2, 3, 4]), i("nodes_featureids", [0, 0, 1, 0, 0]),
            s("nodes_modes", ["BRANCH_LT", "LEAF", "BRANCH_GTE", "LEAF", "LEAF"]), f("nodes_values", [0.5, 0, 1, 0, 0]),
            i("nodes_truenodeids", [1, 0, 3, 0, 0]), i("nodes_falsenodeids", [2, 0, 4, 0, 0]),
        ]
    }

    @Test func treeEnsembleClassifierBinaryCases() throws {
        let leaves = [i("class_treeids", [0, 0, 0]), i("class_nodeids", [1, 3, 4]), i("class_ids", [0, 0, 0]), i("classlabels_int64s", [4, 9])]
        let positive = try run("TreeEnsembleClassifier", tree + leaves + [f("class_weights", [0.2, 0.7, 0.9])], Self.withNaN)
        #expect(positive[0].ints == [9, 4, 9, 9, 9])
        #expect(close(positive[1].floats, [0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.1, 0.9, 0.1, 0.9]))
        // The label comes from the raw score (> 0.5), not from the transformed scores.
        let logistic = try run("TreeEnsembleClassifier", tree + leaves + [f("class_weights", [0.2, 0.7, 0.9]), s("post_transform", "LOGISTIC")], Self.withNaN)
        #expect(logistic[0].ints == [9, 4, 9, 9, 9])
        #expect(
            close(logistic[1].floats, [0.28905052, 0.7109495, 0.45016605, 0.54983395, 0.33181226, 0.6681877, 0.28905052, 0.7109495, 0.28905052, 0.7109495]))
        let second = [i("class_treeids", [0, 0, 0]), i("class_nodeids", [1, 3, 4]), i("class_ids", [1, 1, 1]), i("classlabels_int64s", [4, 9])]
        let onSecond = try run("TreeEnsembleClassifier", tree + second + [f("class_weights", [0.2, 0.7, 0.9])], Self.withNaN)
        #expect(onSecond[0].ints == [9, 4, 9, 9, 9])
        #expect(close(onSecond[1].floats, [0, 0.9, 0, 0.2, 0, 0.7, 0, 0.9, 0, 0.9]))
        let based = try run("TreeEnsembleClassifier", tree + leaves + [f("class_weights", [0.2, 0.7, 0.9]), f("base_values", [0.3])], Self.withNaN)
        #expect(based[0].ints == [9, 4, 9, 9, 9])
        #expect(close(based[1].floats, [-0.2, 1.2, 0.5, 0.5, 0, 1, -0.2, 1.2, -0.2, 1.2]))
        let mixed = try run("TreeEnsembleClassifier", tree + leaves + [f("class_weights", [0.2, -0.7, 0.9])], Self.withNaN)
        #expect(mixed[0].ints == [9, 9, 4, 9, 9])
        #expect(close(mixed[1].floats, [-0.9, 0.9, -0.2, 0.2, 0.7, -0.7, -0.9, 0.9, -0.9, 0.9]))
    }

    @Test func treeEnsembleClassifierMulticlass() throws {
        let y = try run(
            "TreeEnsembleClassifier",
            tree + [
                i("class_treeids", [0, 0, 0, 0, 0]), i("class_nodeids", [1, 3, 4, 4, 1]), i("class_ids", [0, 1, 2, 1, 2]),
                f("class_weights", [0.2, 0.7, 0.9, 0.3, 0.1]),
                s("classlabels_strings", ["x", "y", "z"]), f("base_values", [0.1, 0, -0.1]), s("post_transform", "SOFTMAX"),
            ], Self.withNaN)
        #expect(y[0].strings == ["z", "x", "y", "z", "z"])
        #expect(
            close(
                Array(y[1].floats.prefix(9)), [0.23611885, 0.2883962, 0.47548494, 0.40295988, 0.29852003, 0.29852003, 0.27466118, 0.5004653, 0.22487354]))
    }

    @Test func treeEnsembleRefusesBadAttributes() throws {
        func refusal(_ attributes: [Attribute]) -> String? {
            do {
                _ = try run("TreeEnsembleRegressor", attributes + [i("n_targets", 1)], Self.x, outputs: 1)
                return nil
            } catch let error as EvalError {
                return error.kind == .invalid ? error.message : "unsupported: \(error.message)"
            } catch { return "\(error)" }
        }
        let weights = [i("target_treeids", [0]), i("target_nodeids", [1]), i("target_ids", [0]), f("target_weights", [1])]
        func two(_ t: [Int64], _ f: [Int64]) -> [Attribute] {
            [
                i("nodes_treeids", [0, 0]), i("nodes_nodeids", [0, 1]), i("nodes_featureids", [0, 0]), s("nodes_modes", ["BRANCH_LEQ", "BRANCH_LEQ"]),
                self.f("nodes_values", [0, 0]), i("nodes_truenodeids", t), i("nodes_falsenodeids", f),
            ]
        }
        #expect(refusal(two([1, 0], [1, 1]) + weights)?.contains("cycle") == true)
        #expect(refusal(two([1, 5], [1, 1]) + weights)?.contains("true branch 5, which is not a node") == true)
        #expect(
            refusal(tree.filter { $0.name != "nodes_values" } + [f("nodes_values", [1, 2])] + weights)?.contains("nodes_values holds 2 values for 5 nodes")
                == true)
        let badWeight = [i("target_treeids", [0]), i("target_nodeids", [7]), i("target_ids", [0]), f("target_weights", [1])]
        #expect(refusal(tree + badWeight)?.contains("node 7 of tree 0, which does not exist") == true)
        let badTarget = [i("target_treeids", [0]), i("target_nodeids", [1]), i("target_ids", [3]), f("target_weights", [1])]
        #expect(refusal(tree + badTarget)?.contains("target 3, outside 0..<1") == true)
        #expect(refusal(tree + weights + [s("aggregate_function", "MEDIAN")])?.contains("aggregate_function `MEDIAN`") == true)
        // A feature beyond the input's width is refused when the rows are known.
        let wide = tree.filter { $0.name != "nodes_featureids" } + [i("nodes_featureids", [0, 0, 5, 0, 0])]
        #expect(refusal(wide + weights)?.contains("feature 5") == true)
    }

    // MARK: Support vector machines

    var svc: [Attribute] {
        [
            i("vectors_per_class", [1, 2, 1]), f("support_vectors", [0, 0, 1, 1, 2, 0, -1, 1]), f("coefficients", [0.5, -0.3, 0.2, -0.4, 0.1, 0.6, -0.2, 0.3]),
            f("rho", [0.1, -0.2, 0.3]), s("kernel_type", "RBF"), f("kernel_params", [0.5, 0, 3]), i("classlabels_ints", [0, 1, 2]),
        ]
    }

    @Test func svmClassifierOneVersusOne() throws {
        let y = try run("SVMClassifier", svc, Self.x)
        #expect(y[0].ints == [0, 0, 0, 0] && y[1].shape == [4, 3])
        #expect(
            close(
                y[1].floats,
                [
                    0.34261227, -0.17218094, 0.5672378, 0.23772313, -0.3819592, 0.8294606, 0.025861036, -0.20086361, 0.49568203, 0.33376157, -0.4994726,
                    0.63444817,
                ]))
        let p = try run("SVMClassifier", svc + [f("prob_a", [-1, -2, -0.5]), f("prob_b", [0.1, 0, -0.1])], Self.x)
        #expect(p[0].ints == [0, 0, 0, 0])
        #expect(
            close(
                p[1].floats,
                [0.32468486, 0.34911022, 0.32620487, 0.27421558, 0.38672045, 0.33906403, 0.28625703, 0.38441885, 0.3293241, 0.25618675, 0.37230596, 0.3715073]))
    }

    @Test func svmClassifierBinary() throws {
        let base = [
            i("vectors_per_class", [2, 1]), f("support_vectors", [0, 0, 1, 1, 2, 0]), f("coefficients", [0.5, -0.3, 0.2]), f("rho", [0.1]),
            f("kernel_params", [0.5, 1, 2]), i("classlabels_ints", [5, 6]),
        ]
        let poly = try run("SVMClassifier", base + [s("kernel_type", "POLY")], Self.x)
        #expect(poly[0].ints == [5, 5, 6, 5])
        #expect(close(poly[1].floats, [-0.725, 0.725, -0.125, 0.125, 0.3, -0.3, -0.43125, 0.43125]))
        let sigmoid = try run("SVMClassifier", base + [s("kernel_type", "SIGMOID"), f("prob_a", [-1.5]), f("prob_b", [0.2])], Self.x)
        #expect(sigmoid[0].ints == [5, 5, 5, 5])
        #expect(close(sigmoid[1].floats, [0.59885544, 0.40114456, 0.58444095, 0.41555908, 0.5914943, 0.4085057, 0.5584937, 0.4415063]))
    }

    @Test func svmRegressor() throws {
        let poly = try run(
            "SVMRegressor",
            [
                i("n_supports", 2), f("support_vectors", [0, 1, 1, -1]), f("coefficients", [0.5, -0.25]), f("rho", [0.3]), s("kernel_type", "POLY"),
                f("kernel_params", [0.5, 1, 3]),
            ],
            Self.x, outputs: 1)[0]
        #expect(poly.shape == [4, 1] && close(poly.floats, [-0.04374999, 1.95625, 4.05, 1.2726562]))
        let linear = try run(
            "SVMRegressor", [i("n_supports", 0), f("coefficients", [0.5, -0.25]), f("rho", [0.3]), s("kernel_type", "LINEAR")], Self.x, outputs: 1)[0]
        #expect(close(linear.floats, [0.8, 0.05, 0.8, -0.325]))
        #expect(throws: EvalError.self) { try run("SVMRegressor", [i("n_supports", 2), f("coefficients", [1]), f("rho", [0])], Self.x, outputs: 1) }
    }

    // MARK: Preprocessing

    @Test func binarizerAndImputer() throws {
        #expect(try run("Binarizer", [Attribute(name: "threshold", value: .float(0.5))], Self.x, outputs: 1)[0].floats == [1, 0, 0, 1, 1, 1, 0, 0])
        let y = try run(
            "Imputer", [f("imputed_value_floats", [7, 8]), Attribute(name: "replaced_value_float", value: .float(.nan))], Self.withNaN, outputs: 1)[0]
        #expect(y.floats == [1, 0, 0, 1, 2, 1, 7, 8, 0.5, -1])
    }

    @Test func labelEncoderMapsEveryKeyType() throws {
        let a = try run(
            "LabelEncoder", [s("keys_strings", ["a", "b"]), i("values_int64s", [1, 2]), i("default_int64", -5)], Value(strings: ["b", "a", "q"], shape: [3]),
            outputs: 1)[0]
        #expect(a.ints == [2, 1, -5])
        let b = try run("LabelEncoder", [i("keys_int64s", [1, 2]), s("values_strings", ["one", "two"])], Value(ints: [2, 3, 1], shape: [3]), outputs: 1)[0]
        #expect(b.strings == ["two", "_Unused", "one"])
        let c = try run("LabelEncoder", [f("keys_floats", [0.5, 1.5]), f("values_floats", [5, 15])], Value(floats: [1.5, 0.5, 2], shape: [3]), outputs: 1)[0]
        #expect(c.floats == [15, 5, 0] && c.floats[2].sign == .minus)
        #expect(throws: EvalError.self) {
            try run("LabelEncoder", [i("keys_int64s", [1, 2]), s("values_strings", ["one"])], Value(ints: [1], shape: [1]), outputs: 1)
        }
    }

    @Test func oneHotEncoder() throws {
        let a = try run("OneHotEncoder", [i("cats_int64s", [3, 1, 4])], Value(ints: [1, 4, 5, 3], shape: [2, 2]), outputs: 1)[0]
        #expect(a.shape == [2, 2, 3] && a.floats == [0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0])
        let b = try run("OneHotEncoder", [s("cats_strings", ["r", "g"])], Value(strings: ["g", "b", "r"], shape: [3]), outputs: 1)[0]
        #expect(b.floats == [0, 1, 0, 0, 1, 0])
        #expect(throws: EvalError.self) {
            try run("OneHotEncoder", [s("cats_strings", ["r", "g"]), i("zeros", 0)], Value(strings: ["b"], shape: [1]), outputs: 1)
        }
    }

    @Test func mapOperatorsAreRefusedByName() throws {
        for op in ["CastMap", "DictVectorizer", "ZipMap"] {
            do {
                _ = try run(op, [], Self.x, outputs: 1)
                Issue.record("\(op) accepted")
            } catch let error as EvalError {
                #expect(error.kind == .unsupported && error.message.contains("ai.onnx.ml.\(op)") && error.message.contains("map"), "\(error.message)")
            }
        }
    }
}
