import Foundation
import PithIR

/// The `ai.onnx.ml` model operators scikit-learn exports use: LinearClassifier, LinearRegressor,
/// TreeEnsembleClassifier, TreeEnsembleRegressor, SVMClassifier, SVMRegressor, and the
/// preprocessing operators Binarizer, Imputer, LabelEncoder and OneHotEncoder. Semantics are the
/// ONNX-ML specification's, with onnxruntime's choices where the specification is silent (binary
/// classifiers, post transforms of a single score). Every model's attributes are checked before it
/// runs (`mlModelProblem`): lengths that disagree, node ids that do not exist and trees with cycles
/// are refused by name.
extension ONNXEvaluator {
    /// The `ai.onnx.ml` model operators (added to `supportedMLOperators`).
    static let supportedMLModelOperators: [String] = [
        "LinearClassifier", "LinearRegressor", "TreeEnsembleClassifier", "TreeEnsembleRegressor", "SVMClassifier", "SVMRegressor",
        "Binarizer", "Imputer", "LabelEncoder", "OneHotEncoder",
    ]

    /// Why an `ai.onnx.ml` operator that works on maps is refused.
    static func mapRefusal(_ opType: String) -> String {
        switch opType {
        case "ZipMap": return ": it produces a sequence of maps, and the evaluator computes tensors only"
        case "CastMap", "DictVectorizer": return ": it reads a map, and the evaluator computes tensors only"
        default: return ""
        }
    }
}

/// How scores are transformed after a model computes them.
enum PostTransform: String {
    case none = "NONE", softmax = "SOFTMAX", logistic = "LOGISTIC", softmaxZero = "SOFTMAX_ZERO", probit = "PROBIT"

    static func logistic(_ v: Float) -> Float {
        let e = 1 / (1 + exp(-abs(v)))
        return v < 0 ? 1 - e : e
    }

    /// The inverse error function as onnxruntime approximates it.
    static func probit(_ v: Float) -> Float {
        let x = 2 * v - 1
        let sign: Float = x < 0 ? -1 : 1
        let y = (1 - x) * (1 + x)
        if y == 0 { return sign * .infinity }
        let l = log(y)
        let a = 2 / (Float.pi * 0.147) + 0.5 * l, b = 1 / 0.147 * l
        return 1.41421356 * sign * (-a + (a * a - b).squareRoot()).squareRoot()
    }

    /// Transforms one row of scores in place. A row of one score is changed by PROBIT only, as in
    /// onnxruntime.
    func apply(_ row: inout ArraySlice<Float>) {
        if row.count == 1 {
            if self == .probit { row[row.startIndex] = Self.probit(row[row.startIndex]) }
            return
        }
        switch self {
        case .none: break
        case .logistic: for i in row.indices { row[i] = Self.logistic(row[i]) }
        case .probit: for i in row.indices { row[i] = Self.probit(row[i]) }
        case .softmax:
            let m = row.max() ?? 0
            var sum: Float = 0
            for i in row.indices {
                row[i] = exp(row[i] - m)
                sum += row[i]
            }
            for i in row.indices { row[i] /= sum }
        case .softmaxZero:
            let m = row.max() ?? 0, scale = exp(-m)
            var sum: Float = 0
            for i in row.indices {
                if abs(row[i]) > 0.0000001 {
                    row[i] = exp(row[i] - m)
                    sum += row[i]
                } else {
                    row[i] *= scale
                }
            }
            for i in row.indices { row[i] = sum == 0 ? 0.5 : row[i] / sum }
        }
    }

    /// Transforms each row of `width` scores.
    func apply(_ scores: inout [Float], width: Int) {
        guard self != .none || width == 1, width > 0 else { return }
        for r in 0..<(scores.count / width) { apply(&scores[(r * width)..<((r + 1) * width)]) }
    }
}

/// A tree ensemble's nodes, checked and indexed for walking.
struct TreeEnsembleModel {
    enum Mode: UInt8 { case leq, lt, gte, gt, eq, neq, leaf }
    var modes: [Mode] = [], features: [Int] = [], thresholds: [Float] = [], trueNext: [Int] = [], falseNext: [Int] = []
    var missingTracksTrue: [Bool] = []
    var roots: [Int] = []  // one per tree, in increasing tree id
    var leafWeights: [[(target: Int, weight: Float)]] = []
    var targetCount = 0
    var baseValues: [Float] = []
    var maximumFeature = -1
    /// Whether every weight is ≥ 0 (onnxruntime's binary classifier decides its label by it).
    var weightsArePositive = true
    /// Whether every leaf weight goes to one class (a binary classifier's single score).
    var singleClass = false

    /// For each tree, the leaf each row of `x` reaches, summed with `combine`.
    func walk(_ x: [Float], rows: Int, width: Int, visit: (_ row: Int, _ leaf: Int) -> Void) throws {
        guard maximumFeature < width else {
            throw EvalError.invalid("the trees read feature \(maximumFeature), and the input has \(width) features per row")
        }
        let limit = modes.count
        for r in 0..<rows {
            let base = r * width
            for root in roots {
                var i = root, steps = 0
                while modes[i] != .leaf {
                    steps += 1
                    guard steps <= limit else { throw EvalError.invalid("a tree walk took more than \(limit) steps") }
                    let v = x[base + features[i]], t = thresholds[i]
                    let goTrue: Bool
                    if v.isNaN {
                        goTrue = missingTracksTrue[i]
                    } else {
                        switch modes[i] {
                        case .leq: goTrue = v <= t
                        case .lt: goTrue = v < t
                        case .gte: goTrue = v >= t
                        case .gt: goTrue = v > t
                        case .eq: goTrue = v == t
                        case .neq: goTrue = v != t
                        case .leaf: goTrue = false
                        }
                    }
                    i = goTrue ? trueNext[i] : falseNext[i]
                }
                visit(r, i)
            }
        }
    }
}

extension Operators {
    // MARK: Attributes of the ML operators

    func mlStrings(_ name: String) -> [String]? {
        if case .strings(let v) = node.attribute(name) { return v.map { String(decoding: $0, as: UTF8.self) } }
        return nil
    }

    func mlInts(_ name: String) -> [Int64]? {
        if case .ints(let v) = node.attribute(name) { return v }
        return nil
    }

    /// A float list attribute or its `_as_tensor` form (refused when that tensor could not be read).
    func mlFloats(_ name: String, _ tensors: [String: Value]) throws -> [Float]? {
        if let v = floats(name) { return v }
        if let t = tensors[name + "_as_tensor"] { return t.asFloats }
        if case .tensor = node.attribute(name + "_as_tensor") {
            throw EvalError.unsupported("\(name)_as_tensor: the tensor cannot be read as float32 values")
        }
        return nil
    }

    func postTransform() throws -> PostTransform {
        let name = string("post_transform", "NONE")
        guard let t = PostTransform(rawValue: name) else {
            throw EvalError.invalid("post_transform `\(name)` (NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO or PROBIT)")
        }
        return t
    }

    /// The numeric input as [rows, width] floats (a 1-D input is one row).
    func mlRows(_ inputs: [Value?]) throws -> (x: [Float], rows: Int, width: Int) {
        let x = try required(inputs, 0)
        guard !x.isString, x.rank == 1 || x.rank == 2 else {
            throw EvalError.invalid("\(node.opType) takes a numeric input of shape [C] or [N, C], not \(x.dtype.rawValue) \(x.shape)")
        }
        let width = x.shape[x.rank - 1], rows = x.rank == 1 ? 1 : x.shape[0]
        return (x.asFloats, rows, width)
    }

    /// The class labels of a classifier: (ints, strings); exactly one is given.
    func classLabels(_ intsName: String) throws -> (ints: [Int64]?, strings: [String]?) {
        let ints = mlInts(intsName), strings = mlStrings("classlabels_strings")
        if let ints, !ints.isEmpty, let strings, !strings.isEmpty {
            throw EvalError.invalid("both \(intsName) and classlabels_strings are given")
        }
        if let strings, !strings.isEmpty { return (nil, strings) }
        return (ints ?? [], nil)
    }

    func labelValue(_ indices: [Int], _ labels: (ints: [Int64]?, strings: [String]?)) -> Value {
        if let strings = labels.strings { return Value(strings: indices.map { strings[$0] }, shape: [indices.count]) }
        let ints = labels.ints ?? []
        return Value(ints: indices.map { $0 < ints.count ? ints[$0] : Int64($0) }, shape: [indices.count])
    }

    // MARK: Checking and dispatch

    /// What is wrong with an ML model node's attributes, found before anything runs.
    func mlModelProblem(_ tensors: [String: Value]) -> EvalError? {
        do {
            switch node.opType {
            case "LinearClassifier": _ = try linearClassifierShape()
            case "LinearRegressor": _ = try linearRegressorShape()
            case "TreeEnsembleClassifier", "TreeEnsembleRegressor": _ = try treeEnsemble(tensors)
            case "SVMClassifier", "SVMRegressor": try svmCheck()
            case "LabelEncoder": _ = try labelEncoderTable(tensors)
            case "OneHotEncoder": _ = try oneHotCategories()
            case "Imputer": _ = try imputerValues()
            default: break
            }
            return nil
        } catch let error as EvalError {
            return EvalError(error.kind, "\(node.opType) node `\(node.name)`: \(error.message)")
        } catch {
            return .invalid("\(node.opType) node `\(node.name)`: \(error)")
        }
    }

    /// Runs an ML model operator; `tensors` holds its tensor attributes (the `_as_tensor` forms).
    func mlModel(_ inputs: [Value?], tensors: [String: Value]) throws -> [Value] {
        switch node.opType {
        case "LinearClassifier": return try linearClassifier(inputs)
        case "LinearRegressor": return [try linearRegressor(inputs)]
        case "TreeEnsembleClassifier": return try treeEnsembleClassifier(inputs, tensors)
        case "TreeEnsembleRegressor": return [try treeEnsembleRegressor(inputs, tensors)]
        case "SVMClassifier": return try svmClassifier(inputs)
        case "SVMRegressor": return [try svmRegressor(inputs)]
        case "Binarizer": return [try binarizer(inputs)]
        case "Imputer": return [try imputer(inputs)]
        case "LabelEncoder": return [try labelEncoder(inputs, tensors)]
        case "OneHotEncoder": return [try oneHotEncoder(inputs)]
        default: throw EvalError.unsupported("operator `ai.onnx.ml.\(node.opType)`")
        }
    }

    // MARK: Linear models

    /// (coefficients, intercepts, targets) of a linear model, the lengths checked.
    func linearShape(targets: Int) throws -> (coefficients: [Float], intercepts: [Float], targets: Int) {
        guard let coefficients = floats("coefficients"), !coefficients.isEmpty else { throw EvalError.invalid("coefficients are missing") }
        let intercepts = floats("intercepts") ?? []
        guard targets > 0, coefficients.count % targets == 0 else {
            throw EvalError.invalid("\(coefficients.count) coefficients do not divide into \(targets) targets")
        }
        guard intercepts.isEmpty || intercepts.count == targets else {
            throw EvalError.invalid("\(intercepts.count) intercepts for \(targets) targets")
        }
        return (coefficients, intercepts, targets)
    }

    func linearClassifierShape() throws -> (coefficients: [Float], intercepts: [Float], targets: Int) {
        let labels = try classLabels("classlabels_ints")
        let labelCount = labels.strings?.count ?? labels.ints?.count ?? 0
        let intercepts = floats("intercepts") ?? []
        let targets = !intercepts.isEmpty ? intercepts.count : labelCount == 2 && (floats("coefficients")?.count ?? 0) > 0 ? 1 : labelCount
        let shape = try linearShape(targets: targets)
        guard shape.targets == 1 || labelCount == shape.targets else {
            throw EvalError.invalid("\(shape.targets) classes of coefficients and \(labelCount) class labels")
        }
        _ = try postTransform()
        return shape
    }

    func linearRegressorShape() throws -> (coefficients: [Float], intercepts: [Float], targets: Int) {
        _ = try postTransform()
        return try linearShape(targets: int("targets", 1))
    }

    /// X · Wᵀ + b for [rows, width] X and [targets, width] W (the first targets × width coefficients).
    func linearScores(_ inputs: [Value?], _ model: (coefficients: [Float], intercepts: [Float], targets: Int)) throws -> (scores: [Float], rows: Int) {
        let (x, rows, width) = try mlRows(inputs)
        let t = model.targets
        // More coefficients than targets × features are read as onnxruntime reads them: the first
        // targets × features, row by row (its sample logreg_iris.onnx has 4 features' coefficients
        // for an input of 2). Fewer are refused.
        guard model.coefficients.count >= t * width else {
            throw EvalError.invalid("\(model.coefficients.count) coefficients for \(t) targets of \(width) features")
        }
        var scores = [Float](repeating: 0, count: rows * t)
        for r in 0..<rows {
            for k in 0..<t {
                var s: Float = model.intercepts.isEmpty ? 0 : model.intercepts[k]
                for c in 0..<width { s += x[r * width + c] * model.coefficients[k * width + c] }
                scores[r * t + k] = s
            }
        }
        return (scores, rows)
    }

    /// LinearClassifier: labels from the raw scores (argmax; one score is positive above 0, as in
    /// onnxruntime), scores transformed; one score with two labels gives two columns [1 − s, s].
    func linearClassifier(_ inputs: [Value?]) throws -> [Value] {
        let model = try linearClassifierShape(), transform = try postTransform()
        let labels = try classLabels("classlabels_ints")
        let labelCount = labels.strings?.count ?? labels.ints?.count ?? 0
        var (scores, rows) = try linearScores(inputs, model)
        let t = model.targets
        var picks: [Int] = []
        var labelOut: Value
        if t == 1 {
            let positive = scores.map { $0 > 0 }
            if labelCount == 2 {
                labelOut = labelValue(positive.map { $0 ? 1 : 0 }, labels)
            } else if labels.strings != nil {
                labelOut = Value(strings: positive.map { $0 ? "1" : "0" }, shape: [rows])
            } else {
                labelOut = Value(ints: positive.map { $0 ? 1 : 0 }, shape: [rows])
            }
        } else {
            for r in 0..<rows {
                var best = 0
                for k in 1..<t where scores[r * t + k] > scores[r * t + best] { best = k }
                picks.append(best)
            }
            labelOut = labelValue(picks, labels)
        }
        if t == 1 && labelCount == 2 {
            var two = [Float](repeating: 0, count: rows * 2)
            for r in 0..<rows {
                var s = scores[r]
                switch transform {
                case .logistic: s = PostTransform.logistic(s)
                case .probit: s = PostTransform.probit(s)
                default: break
                }
                two[2 * r] = transform == .probit ? -s : 1 - s
                two[2 * r + 1] = s
            }
            return [labelOut, Value(floats: two, shape: [rows, 2])]
        }
        transform.apply(&scores, width: t)
        return [labelOut, Value(floats: scores, shape: [rows, t])]
    }

    /// LinearRegressor: X · Wᵀ + b, [N, targets].
    func linearRegressor(_ inputs: [Value?]) throws -> Value {
        let model = try linearRegressorShape()
        var (scores, rows) = try linearScores(inputs, model)
        try postTransform().apply(&scores, width: model.targets)
        return Value(floats: scores, shape: [rows, model.targets])
    }

    // MARK: Tree ensembles

    /// The checked, indexed trees of a TreeEnsembleClassifier or TreeEnsembleRegressor.
    func treeEnsemble(_ tensors: [String: Value]) throws -> TreeEnsembleModel {
        let classifier = node.opType == "TreeEnsembleClassifier"
        let prefix = classifier ? "class" : "target"
        let treeIDs = mlInts("nodes_treeids") ?? [], nodeIDs = mlInts("nodes_nodeids") ?? []
        let n = nodeIDs.count
        guard n > 0 else { throw EvalError.invalid("the ensemble has no nodes") }
        let featureIDs = mlInts("nodes_featureids") ?? [], modeNames = mlStrings("nodes_modes") ?? []
        let trueIDs = mlInts("nodes_truenodeids") ?? [], falseIDs = mlInts("nodes_falsenodeids") ?? []
        let values = try mlFloats("nodes_values", tensors) ?? [], tracks = mlInts("nodes_missing_value_tracks_true") ?? []
        let hitRates = try mlFloats("nodes_hitrates", tensors) ?? []
        for (name, count) in [
            ("nodes_treeids", treeIDs.count), ("nodes_featureids", featureIDs.count), ("nodes_modes", modeNames.count),
            ("nodes_truenodeids", trueIDs.count), ("nodes_falsenodeids", falseIDs.count),
        ] where count != n {
            throw EvalError.invalid("\(name) holds \(count) values for \(n) nodes (nodes_nodeids)")
        }
        for (name, count) in [("nodes_values", values.count), ("nodes_missing_value_tracks_true", tracks.count), ("nodes_hitrates", hitRates.count)]
        where count != 0 && count != n {
            throw EvalError.invalid("\(name) holds \(count) values for \(n) nodes (nodes_nodeids)")
        }
        var model = TreeEnsembleModel()
        var index: [Int64: [Int64: Int]] = [:]  // tree → node id → index
        var rootOf: [Int64: Int] = [:]
        for i in 0..<n {
            guard index[treeIDs[i], default: [:]].updateValue(i, forKey: nodeIDs[i]) == nil else {
                throw EvalError.invalid("tree \(treeIDs[i]) has two nodes with id \(nodeIDs[i])")
            }
            if rootOf[treeIDs[i]] == nil { rootOf[treeIDs[i]] = i }
        }
        let modeTable: [String: TreeEnsembleModel.Mode] = [
            "BRANCH_LEQ": .leq, "BRANCH_LT": .lt, "BRANCH_GTE": .gte, "BRANCH_GT": .gt, "BRANCH_EQ": .eq, "BRANCH_NEQ": .neq, "LEAF": .leaf,
        ]
        model.modes.reserveCapacity(n)
        for i in 0..<n {
            guard let mode = modeTable[modeNames[i]] else {
                throw EvalError.invalid("node \(nodeIDs[i]) of tree \(treeIDs[i]) has mode `\(modeNames[i])`")
            }
            model.modes.append(mode)
            model.thresholds.append(values.isEmpty ? 0 : values[i])
            model.missingTracksTrue.append(tracks.isEmpty ? false : tracks[i] != 0)
            if mode == .leaf {
                model.features.append(0)
                model.trueNext.append(i)
                model.falseNext.append(i)
                continue
            }
            guard featureIDs[i] >= 0, featureIDs[i] < Int64(Int32.max) else {
                throw EvalError.invalid("node \(nodeIDs[i]) of tree \(treeIDs[i]) reads feature \(featureIDs[i])")
            }
            model.features.append(Int(featureIDs[i]))
            model.maximumFeature = Swift.max(model.maximumFeature, Int(featureIDs[i]))
            for (name, ids, list) in [("true", trueIDs, \TreeEnsembleModel.trueNext), ("false", falseIDs, \TreeEnsembleModel.falseNext)] {
                guard let next = index[treeIDs[i]]?[ids[i]] else {
                    throw EvalError.invalid("node \(nodeIDs[i]) of tree \(treeIDs[i]) has \(name) branch \(ids[i]), which is not a node of the tree")
                }
                model[keyPath: list].append(next)
            }
        }
        // Cycles: an iterative depth-first walk from each root.
        var state = [UInt8](repeating: 0, count: n)  // 0 new, 1 on the path, 2 done
        for tree in rootOf.keys.sorted() {
            let root = rootOf[tree]!
            model.roots.append(root)
            guard state[root] == 0 else { continue }
            var stack: [(node: Int, next: Int)] = [(root, 0)]
            state[root] = 1
            while let top = stack.last {
                let children = model.modes[top.node] == .leaf ? [] : [model.trueNext[top.node], model.falseNext[top.node]]
                if top.next < children.count {
                    stack[stack.count - 1].next += 1
                    let child = children[top.next]
                    if state[child] == 1 { throw EvalError.invalid("tree \(tree) has a cycle through node \(nodeIDs[child])") }
                    if state[child] == 0 {
                        state[child] = 1
                        stack.append((child, 0))
                    }
                } else {
                    state[top.node] = 2
                    stack.removeLast()
                }
            }
        }
        // Leaf weights.
        let wTrees = mlInts("\(prefix)_treeids") ?? [], wNodes = mlInts("\(prefix)_nodeids") ?? [], wIDs = mlInts("\(prefix)_ids") ?? []
        let weights = try mlFloats("\(prefix)_weights", tensors) ?? []
        for (name, count) in [("\(prefix)_treeids", wTrees.count), ("\(prefix)_ids", wIDs.count), ("\(prefix)_weights", weights.count)]
        where count != wNodes.count {
            throw EvalError.invalid("\(name) holds \(count) values for \(wNodes.count) \(prefix)_nodeids")
        }
        if classifier {
            let labels = try classLabels("classlabels_int64s")
            model.targetCount = labels.strings?.count ?? labels.ints?.count ?? 0
            guard model.targetCount > 0 else { throw EvalError.invalid("no class labels (classlabels_int64s or classlabels_strings)") }
            model.singleClass = Set(wIDs).count == 1
            if model.targetCount == 1 && !model.singleClass { throw EvalError.invalid("one class label for weights of several classes") }
        } else {
            model.targetCount = int("n_targets", 1)
            guard model.targetCount > 0 else { throw EvalError.invalid("n_targets is \(model.targetCount)") }
            let aggregate = string("aggregate_function", "SUM")
            guard ["SUM", "AVERAGE", "MIN", "MAX"].contains(aggregate) else {
                throw EvalError.invalid("aggregate_function `\(aggregate)` (SUM, AVERAGE, MIN or MAX)")
            }
        }
        model.leafWeights = Array(repeating: [], count: n)
        for k in wNodes.indices {
            guard let i = index[wTrees[k]]?[wNodes[k]] else {
                throw EvalError.invalid("weight \(k) is for node \(wNodes[k]) of tree \(wTrees[k]), which does not exist")
            }
            guard wIDs[k] >= 0, wIDs[k] < Int64(model.targetCount) else {
                throw EvalError.invalid("weight \(k) is for \(prefix) \(wIDs[k]), outside 0..<\(model.targetCount)")
            }
            model.leafWeights[i].append((Int(wIDs[k]), weights[k]))
            if weights[k] < 0 { model.weightsArePositive = false }
        }
        model.baseValues = try mlFloats("base_values", tensors) ?? []
        let expected = classifier && model.singleClass && model.targetCount <= 2 ? [1, 2] : [model.targetCount]
        guard model.baseValues.isEmpty || expected.contains(model.baseValues.count) else {
            throw EvalError.invalid("base_values holds \(model.baseValues.count) values for \(model.targetCount) \(prefix == "class" ? "classes" : "targets")")
        }
        _ = try postTransform()
        return model
    }

    /// TreeEnsembleRegressor: the leaves' weights of every tree aggregated (SUM, AVERAGE, MIN or
    /// MAX) plus base_values, [N, n_targets]; a target no reached leaf gives a weight to is 0,
    /// without its base value, as in onnxruntime.
    func treeEnsembleRegressor(_ inputs: [Value?], _ tensors: [String: Value]) throws -> Value {
        let model = try treeEnsemble(tensors), (x, rows, width) = try mlRows(inputs)
        let t = model.targetCount, aggregate = string("aggregate_function", "SUM")
        var sums = [Double](repeating: 0, count: rows * t)
        var seen = [Bool](repeating: false, count: rows * t)
        try model.walk(x, rows: rows, width: width) { r, leaf in
            for (target, weight) in model.leafWeights[leaf] {
                let k = r * t + target, w = Double(weight)
                switch aggregate {
                case "MIN": sums[k] = seen[k] ? Swift.min(sums[k], w) : w
                case "MAX": sums[k] = seen[k] ? Swift.max(sums[k], w) : w
                default: sums[k] += w
                }
                seen[k] = true
            }
        }
        let trees = Double(model.roots.count)
        var out = [Float](repeating: 0, count: rows * t)
        for k in out.indices where seen[k] {
            var v = aggregate == "AVERAGE" ? sums[k] / trees : sums[k]
            if !model.baseValues.isEmpty { v += Double(model.baseValues[k % t]) }
            out[k] = Float(v)
        }
        try postTransform().apply(&out, width: t)
        return Value(floats: out, shape: [rows, t])
    }

    /// TreeEnsembleClassifier: base_values plus the sum of the leaves' class weights, transformed;
    /// the label is the best class. When every weight goes to one class (binary), its score s
    /// gives two columns as in onnxruntime: [1 − s, s] when every weight is ≥ 0 (transformed
    /// [−s, s] with LOGISTIC, SOFTMAX, SOFTMAX_ZERO), else [−s, s] (when the weights are the second
    /// class's, the first column is its base value); the label is the second class when s > 0.5
    /// (weights ≥ 0) or s > 0 (mixed weights), whatever the transform.
    func treeEnsembleClassifier(_ inputs: [Value?], _ tensors: [String: Value]) throws -> [Value] {
        let model = try treeEnsemble(tensors), (x, rows, width) = try mlRows(inputs)
        let transform = try postTransform(), labels = try classLabels("classlabels_int64s")
        let c = model.targetCount
        var sums = [Double](repeating: 0, count: rows * c)
        try model.walk(x, rows: rows, width: width) { r, leaf in
            for (target, weight) in model.leafWeights[leaf] { sums[r * c + target] += Double(weight) }
        }
        let columns = Swift.max(c, model.singleClass ? 2 : c)
        var binaryPositive: [Bool] = []  // a binary classifier's label, from its raw score
        var scores = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            if model.singleClass {
                let target = model.leafWeights.lazy.flatMap { $0 }.first?.target ?? 0
                let s = Float(sums[r * c + target] + Double(model.baseValues.isEmpty ? 0 : model.baseValues[Swift.min(target, model.baseValues.count - 1)]))
                scores[r * columns + 1] = s
                if target == 1 {
                    // Every weight on the second class: the first keeps its base value (onnxruntime).
                    scores[r * columns] = model.baseValues.count == 2 ? model.baseValues[0] : 0
                } else {
                    scores[r * columns] = model.weightsArePositive && (transform == .none || transform == .probit) ? 1 - s : -s
                }
                binaryPositive.append(s > (model.weightsArePositive ? 0.5 : 0))
            } else {
                for k in 0..<c { scores[r * columns + k] = Float(sums[r * c + k] + Double(model.baseValues.isEmpty ? 0 : model.baseValues[k])) }
            }
        }
        transform.apply(&scores, width: columns)
        var picks: [Int] = []
        for r in 0..<rows {
            var best = 0
            for k in 1..<columns where scores[r * columns + k] > scores[r * columns + best] { best = k }
            if model.singleClass { best = binaryPositive[r] ? 1 : 0 }
            picks.append(c == 1 ? (best == 1 ? 0 : -1) : best)
        }
        let label: Value
        if c == 1 {
            // One label: that label when the positive column wins, else 0 (or "").
            if let strings = labels.strings {
                label = Value(strings: picks.map { $0 == 0 ? strings[0] : "" }, shape: [rows])
            } else {
                label = Value(ints: picks.map { $0 == 0 ? labels.ints![0] : 0 }, shape: [rows])
            }
        } else {
            label = labelValue(picks, labels)
        }
        return [label, Value(floats: scores, shape: [rows, columns])]
    }

    // MARK: Support vector machines

    struct SVMKernel {
        var kind: String, gamma: Float, coef0: Float, degree: Int

        func callAsFunction(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
            var s: Float = 0
            if kind == "RBF" {
                for (p, q) in zip(a, b) { s += (p - q) * (p - q) }
                return exp(-gamma * s)
            }
            for (p, q) in zip(a, b) { s += p * q }
            switch kind {
            case "POLY":
                let base = s * gamma + coef0
                return degree >= 0 && degree <= 16 ? (0..<degree).reduce(Float(1)) { r, _ in r * base } : pow(base, Float(degree))
            case "SIGMOID": return tanh(s * gamma + coef0)
            default: return s
            }
        }
    }

    func svmKernel() throws -> SVMKernel {
        let kind = string("kernel_type", "LINEAR"), params = floats("kernel_params") ?? []
        guard ["LINEAR", "POLY", "RBF", "SIGMOID"].contains(kind) else { throw EvalError.invalid("kernel_type `\(kind)` (LINEAR, POLY, RBF or SIGMOID)") }
        guard params.isEmpty || params.count == 3 else { throw EvalError.invalid("kernel_params holds \(params.count) values: gamma, coef0, degree") }
        let degree = params.count > 2 ? params[2] : 0
        guard degree.isFinite, abs(degree) <= 1024 else { throw EvalError.invalid("kernel degree \(degree)") }
        return SVMKernel(kind: kind, gamma: params.first ?? 0, coef0: params.count > 1 ? params[1] : 0, degree: Int(degree))
    }

    func svmCheck() throws {
        _ = try svmKernel()
        _ = try postTransform()
        if node.opType == "SVMClassifier" { _ = try svmClassifierShape() } else { _ = try svmRegressorShape() }
    }

    /// (vectors per class, support vectors, coefficients, rho, class count) of an SVMClassifier.
    func svmClassifierShape() throws -> (perClass: [Int], vectors: [Float], coefficients: [Float], rho: [Float], classes: Int) {
        let labels = try classLabels("classlabels_ints")
        let classes = Swift.max(labels.strings?.count ?? labels.ints?.count ?? 0, 1)
        let perClass = (mlInts("vectors_per_class") ?? []).map { Int($0) }
        let vectors = floats("support_vectors") ?? [], coefficients = floats("coefficients") ?? [], rho = floats("rho") ?? []
        guard perClass.allSatisfy({ $0 >= 0 && $0 <= vectors.count }) else {
            throw EvalError.invalid("vectors_per_class \(perClass) for \(vectors.count) support_vectors values")
        }
        let count = perClass.reduce(0, +)
        if count > 0 {
            guard perClass.count == classes else { throw EvalError.invalid("vectors_per_class has \(perClass.count) classes, the labels \(classes)") }
            guard vectors.count % count == 0 else { throw EvalError.invalid("\(vectors.count) support_vectors values for \(count) vectors") }
            guard coefficients.count == count * Swift.max(classes - 1, 1) else {
                throw EvalError.invalid("\(coefficients.count) coefficients for \(count) vectors of \(classes) classes (\(count * Swift.max(classes - 1, 1)))")
            }
            let pairs = classes * (classes - 1) / 2
            guard rho.count == Swift.max(pairs, 1) else { throw EvalError.invalid("rho holds \(rho.count) values for \(pairs) class pairs") }
            let probA = floats("prob_a") ?? [], probB = floats("prob_b") ?? []
            guard probA.count == probB.count, probA.isEmpty || probA.count == pairs else {
                throw EvalError.invalid("prob_a and prob_b hold \(probA.count) and \(probB.count) values for \(pairs) class pairs")
            }
        } else {
            guard !coefficients.isEmpty, coefficients.count % classes == 0 else {
                throw EvalError.invalid("\(coefficients.count) coefficients for \(classes) classes")
            }
            guard rho.count >= 1 else { throw EvalError.invalid("rho is missing") }
        }
        return (perClass, vectors, coefficients, rho, classes)
    }

    /// SVMClassifier as onnxruntime computes it: one-vs-one decision values and votes (SVC), or one
    /// linear score per class (no support vectors); with prob_a / prob_b, pairwise Platt
    /// probabilities coupled into class probabilities.
    func svmClassifier(_ inputs: [Value?]) throws -> [Value] {
        let m = try svmClassifierShape(), kernel = try svmKernel(), transform = try postTransform()
        let labels = try classLabels("classlabels_ints")
        let (x, rows, width) = try mlRows(inputs)
        let classes = m.classes, count = m.perClass.reduce(0, +)
        let probA = floats("prob_a") ?? [], probB = floats("prob_b") ?? []
        var labelIndex: [Int] = [], rowScores: [[Float]] = []
        if count > 0 {
            guard m.vectors.count == count * width else {
                throw EvalError.invalid("support vectors of \(m.vectors.count / count) features for an input of \(width)")
            }
            var starts: [Int] = [], s = 0
            for c in m.perClass {
                starts.append(s)
                s += c
            }
            for r in 0..<rows {
                let row = x[(r * width)..<((r + 1) * width)]
                let k = (0..<count).map { kernel(row, m.vectors[($0 * width)..<(($0 + 1) * width)]) }
                var votes = [Int](repeating: 0, count: classes), decisions: [Float] = []
                var e = 0
                for i in 0..<classes {
                    for j in (i + 1)..<Swift.max(classes, i + 1) {
                        var d = m.rho[e]
                        for v in 0..<m.perClass[i] { d += m.coefficients[(j - 1) * count + starts[i] + v] * k[starts[i] + v] }
                        for v in 0..<m.perClass[j] { d += m.coefficients[i * count + starts[j] + v] * k[starts[j] + v] }
                        decisions.append(d)
                        if d > 0 { votes[i] += 1 } else { votes[j] += 1 }
                        e += 1
                    }
                }
                if classes == 1 || decisions.count == 1 && classes <= 2 {
                    // Binary: one decision value.
                    let d = decisions.first ?? m.rho[0]
                    if !probA.isEmpty {
                        let p = sigmoidProbability(d, probA[0], probB[0])
                        let q = Swift.min(Swift.max(p, 1e-7), 1 - 1e-7)
                        let probs = coupleProbabilities([[0, q], [1 - q, 0]])
                        labelIndex.append(d > 0 ? 0 : 1)  // by the vote, as onnx's reference
                        rowScores.append(probs)
                    } else {
                        labelIndex.append(d > 0 ? 0 : 1)
                        var two: ArraySlice<Float> = [-d, d][...]
                        if transform != .none { transform.apply(&two) }
                        rowScores.append(Array(two))
                    }
                    continue
                }
                if !probA.isEmpty {
                    var pairwise = [[Float]](repeating: [Float](repeating: 0, count: classes), count: classes)
                    var e = 0
                    for i in 0..<classes {
                        for j in (i + 1)..<classes {
                            let p = sigmoidProbability(decisions[e], probA[e], probB[e])
                            let q = Swift.min(Swift.max(p, 1e-7), 1 - 1e-7)
                            pairwise[i][j] = q
                            pairwise[j][i] = 1 - q
                            e += 1
                        }
                    }
                    var probs = coupleProbabilities(pairwise)
                    var best = 0
                    for c in 1..<classes where votes[c] > votes[best] { best = c }
                    labelIndex.append(best)
                    var slice = probs[...]
                    transform.apply(&slice)
                    probs = Array(slice)
                    rowScores.append(probs)
                } else {
                    var best = 0
                    for c in 1..<classes where votes[c] > votes[best] { best = c }
                    labelIndex.append(best)
                    var slice = decisions[...]
                    transform.apply(&slice)
                    rowScores.append(Array(slice))
                }
            }
        } else {
            let perClassWidth = m.coefficients.count / classes
            guard perClassWidth == width else { throw EvalError.invalid("coefficients of \(perClassWidth) features for an input of \(width)") }
            for r in 0..<rows {
                let row = x[(r * width)..<((r + 1) * width)]
                var scores = (0..<classes).map { c in m.rho[0] + kernel(row, m.coefficients[(c * width)..<((c + 1) * width)]) }
                var best = 0
                for c in 1..<Swift.max(classes, 1) where scores[c] > scores[best] { best = c }
                if classes == 1 {
                    labelIndex.append(scores[0] > 0 ? 1 : 0)
                    var two: ArraySlice<Float> = [-scores[0], scores[0]][...]
                    transform.apply(&two)
                    rowScores.append(Array(two))
                    continue
                }
                labelIndex.append(best)
                var slice = scores[...]
                transform.apply(&slice)
                scores = Array(slice)
                rowScores.append(scores)
            }
        }
        let columns = rowScores.first?.count ?? (count > 0 && probA.isEmpty ? Swift.max(classes * (classes - 1) / 2, 2) : classes)
        let label: Value
        if labels.strings == nil && (labels.ints ?? []).isEmpty {
            label = Value(ints: labelIndex.map { Int64($0) }, shape: [rows])
        } else {
            label = labelValue(labelIndex, labels)
        }
        return [label, Value(floats: rowScores.flatMap { $0 }, shape: [rows, columns])]
    }

    func sigmoidProbability(_ score: Float, _ a: Float, _ b: Float) -> Float {
        1 - PostTransform.logistic(score * a + b)
    }

    /// Class probabilities from pairwise ones (Wu, Lin and Weng's second method, as libsvm).
    func coupleProbabilities(_ r: [[Float]]) -> [Float] {
        let k = r.count
        var q = [[Float]](repeating: [Float](repeating: 0, count: k), count: k)
        var p = [Float](repeating: 1 / Float(k), count: k), qp = [Float](repeating: 0, count: k)
        for t in 0..<k {
            for j in 0..<t {
                q[t][t] += r[j][t] * r[j][t]
                q[t][j] = q[j][t]
            }
            for j in (t + 1)..<Swift.max(k, t + 1) {
                q[t][t] += r[j][t] * r[j][t]
                q[t][j] = -r[j][t] * r[t][j]
            }
        }
        let eps = 0.005 / Float(k)
        for _ in 0..<Swift.max(100, k) {
            var pqp: Float = 0
            for t in 0..<k {
                qp[t] = 0
                for j in 0..<k { qp[t] += q[t][j] * p[j] }
                pqp += p[t] * qp[t]
            }
            var maxError: Float = 0
            for t in 0..<k { maxError = Swift.max(maxError, abs(qp[t] - pqp)) }
            if maxError < eps { break }
            for t in 0..<k {
                let diff = (-qp[t] + pqp) / q[t][t]
                p[t] += diff
                pqp = (pqp + diff * (diff * q[t][t] + 2 * qp[t])) / (1 + diff) / (1 + diff)
                for j in 0..<k {
                    qp[j] = (qp[j] + diff * q[t][j]) / (1 + diff)
                    p[j] /= 1 + diff
                }
            }
        }
        return p
    }

    func svmRegressorShape() throws -> (vectors: [Float], coefficients: [Float], rho: Float, supports: Int) {
        let supports = int("n_supports", 0), vectors = floats("support_vectors") ?? [], coefficients = floats("coefficients") ?? []
        guard let rho = floats("rho")?.first else { throw EvalError.invalid("rho is missing") }
        guard supports >= 0 else { throw EvalError.invalid("n_supports is \(supports)") }
        if supports > 0 {
            guard coefficients.count == supports else { throw EvalError.invalid("\(coefficients.count) coefficients for \(supports) support vectors") }
            guard vectors.count % supports == 0 else { throw EvalError.invalid("\(vectors.count) support_vectors values for \(supports) vectors") }
        } else {
            guard !coefficients.isEmpty else { throw EvalError.invalid("coefficients are missing") }
        }
        return (vectors, coefficients, rho, supports)
    }

    /// SVMRegressor: Σ coefficient · kernel(x, vector) + rho (or a linear x · coefficients + rho
    /// without support vectors); ±1 for a one-class model. [N, 1].
    func svmRegressor(_ inputs: [Value?]) throws -> Value {
        let m = try svmRegressorShape(), kernel = try svmKernel()
        let (x, rows, width) = try mlRows(inputs)
        let oneClass = int("one_class", 0) != 0
        if m.supports > 0 {
            guard m.vectors.count == m.supports * width else {
                throw EvalError.invalid("support vectors of \(m.vectors.count / m.supports) features for an input of \(width)")
            }
        } else {
            guard m.coefficients.count == width else { throw EvalError.invalid("\(m.coefficients.count) coefficients for an input of \(width)") }
        }
        var out = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)]
            var s: Float = 0
            if m.supports > 0 {
                for v in 0..<m.supports { s += m.coefficients[v] * kernel(row, m.vectors[(v * width)..<((v + 1) * width)]) }
            } else {
                let linear = SVMKernel(kind: "LINEAR", gamma: 0, coef0: 0, degree: 0)
                s = linear(row, m.coefficients[...])
            }
            s += m.rho
            out[r] = oneClass ? (s > 0 ? 1 : -1) : s
        }
        try postTransform().apply(&out, width: 1)
        return Value(floats: out, shape: [rows, 1])
    }

    // MARK: Preprocessing

    /// Binarizer: 1 where x > threshold, else 0, in x's type.
    func binarizer(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        guard !x.isString else { throw EvalError.invalid("Binarizer of strings") }
        let threshold = float("threshold", 0)
        if x.isFloat { return Value(floats: x.floats.map { $0 > threshold ? 1 : 0 }, shape: x.shape, dtype: x.dtype) }
        return Value(ints: x.ints.map { Float($0) > threshold ? 1 : 0 }, shape: x.shape, dtype: x.dtype)
    }

    func imputerValues() throws -> (floats: [Float]?, ints: [Int64]?) {
        let f = floats("imputed_value_floats") ?? [], i = mlInts("imputed_value_int64s") ?? []
        guard f.isEmpty != i.isEmpty else { throw EvalError.invalid("exactly one of imputed_value_floats and imputed_value_int64s is needed") }
        return f.isEmpty ? (nil, i) : (f, nil)
    }

    /// Imputer: elements equal to the replaced value (NaN matches NaN) set to the imputed value of
    /// their column (one value, or one per element of the last axis).
    func imputer(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0), values = try imputerValues()
        guard !x.isString else { throw EvalError.invalid("Imputer of strings") }
        let width = x.rank == 0 ? 1 : x.shape[x.rank - 1]
        let n = values.floats?.count ?? values.ints!.count
        guard n == 1 || n == width else { throw EvalError.invalid("\(n) imputed values for rows of \(width): one value or \(width)") }
        if !x.isFloat && values.floats != nil { throw EvalError.invalid("imputed_value_floats for a \(x.dtype.rawValue) input") }
        var out = x
        if x.isFloat {
            let replace = float("replaced_value_float", 0), fill = values.floats ?? values.ints!.map { Float($0) }
            for k in out.floats.indices where out.floats[k] == replace || (replace.isNaN && out.floats[k].isNaN) {
                out.floats[k] = fill[n == 1 ? 0 : k % width]
            }
        } else {
            let replace = Int64(int("replaced_value_int64", 0)), fill = values.ints!
            for k in out.ints.indices where out.ints[k] == replace { out.ints[k] = fill[n == 1 ? 0 : k % width] }
        }
        return out
    }

    enum LabelKey: Hashable {
        case int(Int64), string(String), float(UInt32)

        init(float v: Float) { self = .float(v.isNaN ? Float.nan.bitPattern : (v == 0 ? 0 : v.bitPattern)) }
    }

    /// The key → value table of a LabelEncoder, its output type and default value.
    func labelEncoderTable(_ tensors: [String: Value]) throws -> (table: [LabelKey: Value], keyKind: DType, valueKind: DType, fallback: Value) {
        var keys: [LabelKey] = [], keyKind = DType.int64
        if let v = mlInts("keys_int64s") {
            keys = v.map { .int($0) }
        } else if let v = mlStrings("keys_strings") {
            keys = v.map { .string($0) }
            keyKind = .string
        } else if let v = floats("keys_floats") {
            keys = v.map { LabelKey(float: $0) }
            keyKind = .float32
        } else if let t = tensors["keys_tensor"] {
            keyKind = t.isString ? .string : t.isFloat ? .float32 : .int64
            keys = t.isString ? t.strings.map { .string($0) } : t.isFloat ? t.floats.map { LabelKey(float: $0) } : t.ints.map { .int($0) }
        } else {
            throw EvalError.invalid("no keys (keys_int64s, keys_strings, keys_floats or keys_tensor)")
        }
        var values: [Value] = [], valueKind = DType.int64, fallback: Value
        if let v = mlInts("values_int64s") {
            values = v.map { Value(ints: [$0], shape: []) }
            fallback = Value(ints: [Int64(int("default_int64", -1))], shape: [])
        } else if let v = mlStrings("values_strings") {
            values = v.map { Value(strings: [$0], shape: []) }
            valueKind = .string
            fallback = Value(strings: [string("default_string", "_Unused")], shape: [])
        } else if let v = floats("values_floats") {
            values = v.map { Value(floats: [$0], shape: []) }
            valueKind = .float32
            fallback = Value(floats: [float("default_float", -0.0)], shape: [])
        } else if let t = tensors["values_tensor"] {
            valueKind = t.isString ? .string : t.isFloat ? .float32 : .int64
            values = (0..<t.count).map { i in
                t.isString
                    ? Value(strings: [t.strings[i]], shape: []) : t.isFloat ? Value(floats: [t.floats[i]], shape: []) : Value(ints: [t.ints[i]], shape: [])
            }
            if let d = tensors["default_tensor"], d.count >= 1 {
                fallback =
                    d.isString
                    ? Value(strings: [d.strings[0]], shape: []) : d.isFloat ? Value(floats: [d.floats[0]], shape: []) : Value(ints: [d.ints[0]], shape: [])
            } else {
                fallback =
                    valueKind == .string
                    ? Value(strings: ["_Unused"], shape: []) : valueKind == .float32 ? Value(floats: [-0.0], shape: []) : Value(ints: [-1], shape: [])
            }
        } else {
            throw EvalError.invalid("no values (values_int64s, values_strings, values_floats or values_tensor)")
        }
        guard keys.count == values.count else { throw EvalError.invalid("\(keys.count) keys and \(values.count) values") }
        var table: [LabelKey: Value] = [:]
        for (k, v) in zip(keys, values) where table[k] == nil { table[k] = v }
        return (table, keyKind, valueKind, fallback)
    }

    /// LabelEncoder: each element mapped through the keys to the values (the default when absent).
    func labelEncoder(_ inputs: [Value?], _ tensors: [String: Value]) throws -> Value {
        let x = try required(inputs, 0), (table, keyKind, valueKind, fallback) = try labelEncoderTable(tensors)
        let keys: [LabelKey]
        switch keyKind {
        case .string:
            guard x.isString else { throw EvalError.invalid("string keys for a \(x.dtype.rawValue) input") }
            keys = x.strings.map { .string($0) }
        case .float32:
            guard x.isFloat else { throw EvalError.invalid("float keys for a \(x.dtype.rawValue) input") }
            keys = x.floats.map { LabelKey(float: $0) }
        default:
            guard !x.isString, !x.isFloat else { throw EvalError.invalid("integer keys for a \(x.dtype.rawValue) input") }
            keys = x.ints.map { .int($0) }
        }
        let found = keys.map { table[$0] ?? fallback }
        switch valueKind {
        case .string: return Value(strings: found.map { $0.strings[0] }, shape: x.shape)
        case .float32: return Value(floats: found.map { $0.floats[0] }, shape: x.shape)
        default: return Value(ints: found.map { $0.ints[0] }, shape: x.shape)
        }
    }

    func oneHotCategories() throws -> [LabelKey: Int] {
        var table: [LabelKey: Int] = [:]
        if let v = mlInts("cats_int64s"), !v.isEmpty {
            for (i, c) in v.enumerated() where table[.int(c)] == nil { table[.int(c)] = i }
            table[.float(UInt32.max)] = v.count  // the count, under a key no input makes
        } else if let v = mlStrings("cats_strings"), !v.isEmpty {
            for (i, c) in v.enumerated() where table[.string(c)] == nil { table[.string(c)] = i }
            table[.float(UInt32.max)] = v.count
        } else {
            throw EvalError.invalid("no categories (cats_int64s or cats_strings)")
        }
        return table
    }

    /// OneHotEncoder: a last axis of one 1.0 per category; an unknown value gives zeros, or is
    /// refused when `zeros` is 0.
    func oneHotEncoder(_ inputs: [Value?]) throws -> Value {
        let x = try required(inputs, 0)
        var table = try oneHotCategories()
        let n = table.removeValue(forKey: .float(UInt32.max))!
        let strings = mlStrings("cats_strings").map { !$0.isEmpty } ?? false
        guard strings == x.isString else { throw EvalError.invalid("\(strings ? "string" : "integer") categories for a \(x.dtype.rawValue) input") }
        let zeros = int("zeros", 1) != 0
        let shape = x.shape + [n]
        try checkSize(shape, op: "OneHotEncoder")
        var out = [Float](repeating: 0, count: x.count * n)
        for i in 0..<x.count {
            let key: LabelKey = x.isString ? .string(x.strings[i]) : .int(x.isFloat ? Int64(exactly: x.floats[i].rounded(.towardZero)) ?? Int64.min : x.ints[i])
            if let k = table[key] {
                out[i * n + k] = 1
            } else if !zeros {
                throw EvalError.invalid("value \(x.isString ? x.strings[i] : x.isFloat ? "\(x.floats[i])" : "\(x.ints[i])") is not a category, and zeros is 0")
            }
        }
        return Value(floats: out, shape: shape)
    }
}
