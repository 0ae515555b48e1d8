import Foundation
public import PithIR

/// Runs Keras models from their configuration (`model_config`, Sequential or Functional, nested
/// models included) with the weights of the file, channels-last as Keras computes them.
///
/// Layers: see `KerasEvaluator.supportedLayers`; activations: `supportedActivations`. Convolutions
/// and pooling reuse the ONNX operators (on channels-first copies of the data).
public struct KerasEvaluator: Sendable {
    public static let supportedLayers: [String] = [
        "Activation", "Add", "AveragePooling2D", "BatchNormalization", "Concatenate", "Conv2D", "Dense",
        "DepthwiseConv2D", "Dropout", "Flatten", "Functional", "GlobalAveragePooling2D", "InputLayer",
        "MaxPooling2D", "Model", "ReLU", "Reshape", "SeparableConv2D", "Sequential", "Softmax",
    ]
    public static let supportedActivations: [String] = [
        "elu", "hard_sigmoid", "linear", "relu", "relu6", "selu", "sigmoid", "silu", "softmax", "softplus", "swish", "tanh",
    ]

    let root: Layer
    /// Each weighted layer's weights by variable name, keyed by its path (model, outer models,
    /// layer) joined with `/`: decoded once, not on every batch.
    let layerWeights: [String: [String: Value]]
    /// Keras 3 files (different hard_sigmoid, weight names without `:0`).
    let keras3: Bool

    public let inputShapes: [[Int?]]

    public init(model: Model) throws {
        guard let text = model.configuration, let data = text.data(using: .utf8),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw EvalError.invalid("the file has no Keras model configuration (`model_config`) to evaluate; weights-only files cannot be run")
        }
        root = try Layer(json)
        var weights: [String: [String: Value]] = [:]
        func collect(_ layer: Layer, scope: [String]) {
            let path = scope + [layer.name]
            if layer.isModel {
                for child in layer.layers { collect(child, scope: path) }
            } else {
                weights[path.joined(separator: "/")] = Self.weights(path, in: model.tensors)
            }
        }
        collect(root, scope: [])
        layerWeights = weights
        keras3 = model.format == .keras3Legacy || model.format == .keras3Weights
        inputShapes = root.inputShapes
        try root.validate()
    }

    /// Runs the model on `inputs` (one per model input, in order) and returns its outputs.
    public func run(_ inputs: [Value]) throws -> [Value] {
        try root.call(inputs, scope: [], evaluator: self)
    }

    /// The weights of the layer at `path` (the model, outer model names, then the layer name), by
    /// variable name.
    static func weights(_ path: [String], in tensors: [Tensor]) -> [String: Value] {
        guard let top = path.dropFirst().first else { return [:] }
        let prefix = "model_weights/\(top)/"
        var result: [String: Value] = [:]
        let leaf = path.last!
        for tensor in tensors where tensor.name.hasPrefix(prefix) {
            let name = tensor.name
            let components = name.split(separator: "/").map(String.init)
            // Nested layers: the leaf's name must appear below the top-level group.
            if path.count > 2, !components.dropFirst(2).dropLast().contains(leaf) { continue }
            var variable = components.last ?? ""
            if let colon = variable.firstIndex(of: ":") { variable = String(variable[..<colon]) }
            if result[variable] == nil, let value = try? Value(tensor) { result[variable] = value }
        }
        return result
    }
}

/// One layer of the configuration, with its connections when it sits in a Functional model.
final class Layer: @unchecked Sendable {
    let className: String
    let name: String
    let config: [String: Any]
    /// Functional: for each call, the (layer, node, tensor) it reads.
    let inbound: [(String, Int, Int)]
    /// Nested models.
    let layers: [Layer]
    let inputLayers: [(String, Int, Int)]
    let outputLayers: [(String, Int, Int)]

    init(_ json: [String: Any]) throws {
        className = json["class_name"] as? String ?? ""
        config = json["config"] as? [String: Any] ?? [:]
        name = (json["name"] as? String) ?? (config["name"] as? String) ?? className
        inbound = Layer.parseInbound(json["inbound_nodes"])
        if ["Sequential", "Functional", "Model"].contains(className) {
            layers = try (config["layers"] as? [[String: Any]] ?? []).map(Layer.init)
        } else {
            layers = []
        }
        inputLayers = Layer.parseReferences(config["input_layers"])
        outputLayers = Layer.parseReferences(config["output_layers"])
    }

    /// `[[["name", 0, 0, {}], …]]` (Keras 2) or `[{"args": [...], "kwargs": {}}]` (Keras 3).
    static func parseInbound(_ value: Any?) -> [(String, Int, Int)] {
        guard let nodes = value as? [Any], let first = nodes.first else { return [] }
        var result: [(String, Int, Int)] = []
        func history(_ any: Any) {
            if let dict = any as? [String: Any] {
                if let config = dict["config"] as? [String: Any], let h = config["keras_history"] as? [Any], h.count >= 3, let n = h[0] as? String {
                    result.append((n, h[1] as? Int ?? 0, h[2] as? Int ?? 0))
                }
            } else if let list = any as? [Any] {
                if list.count >= 3, let n = list[0] as? String, let node = list[1] as? Int, let t = list[2] as? Int {
                    result.append((n, node, t))
                } else {
                    list.forEach(history)
                }
            }
        }
        if let call = first as? [String: Any] { (call["args"] as? [Any] ?? []).forEach(history) } else { history(first) }
        return result
    }

    static func parseReferences(_ value: Any?) -> [(String, Int, Int)] {
        guard let list = value as? [Any] else { return [] }
        if list.count == 3, let n = list[0] as? String { return [(n, list[1] as? Int ?? 0, list[2] as? Int ?? 0)] }
        return list.compactMap { item in
            guard let l = item as? [Any], l.count >= 3, let n = l[0] as? String else { return nil }
            return (n, l[1] as? Int ?? 0, l[2] as? Int ?? 0)
        }
    }

    var isModel: Bool { !layers.isEmpty || ["Sequential", "Functional", "Model"].contains(className) }

    var inputShapes: [[Int?]] {
        if isModel {
            if className == "Sequential" { return layers.first.map { $0.declaredShape.map { [$0] } ?? $0.inputShapes } ?? [] }
            return inputLayers.compactMap { ref in layers.first { $0.name == ref.0 }?.declaredShape }
        }
        return declaredShape.map { [$0] } ?? []
    }

    /// `batch_input_shape` / `batch_shape` of an input layer (or a first layer that declares one).
    var declaredShape: [Int?]? {
        guard let shape = (config["batch_input_shape"] ?? config["batch_shape"]) as? [Any] else { return nil }
        return shape.map { $0 as? Int }
    }

    func validate() throws {
        guard KerasEvaluator.supportedLayers.contains(className) else { throw EvalError.unsupported("Keras layer `\(className)` (`\(name)`)") }
        if let activation = activationName, !KerasEvaluator.supportedActivations.contains(activation) {
            throw EvalError.unsupported("activation `\(activation)` of layer `\(name)`")
        }
        if let format = config["data_format"] as? String, format != "channels_last" { throw EvalError.unsupported("data_format \(format) of layer `\(name)`") }
        for layer in layers { try layer.validate() }
    }

    var activationName: String? {
        if let a = config["activation"] as? String { return a }
        if let a = config["activation"] as? [String: Any] { return (a["config"] as? [String: Any])?["name"] as? String ?? a["class_name"] as? String }
        return nil
    }

    func ints(_ key: String, _ fallback: [Int]) -> [Int] {
        (config[key] as? [Any])?.compactMap { $0 as? Int } ?? (config[key] as? Int).map { [$0, $0] } ?? fallback
    }

    // MARK: Running

    func call(_ inputs: [Value], scope: [String], evaluator: KerasEvaluator) throws -> [Value] {
        let path = scope + [name]
        do {
            if className == "Sequential" {
                var x = inputs
                for layer in layers { x = try layer.call(x, scope: path, evaluator: evaluator) }
                return x
            }
            if className == "Functional" || className == "Model" {
                var produced: [String: [Value]] = [:]
                for (ref, value) in zip(inputLayers, inputs) { produced[ref.0] = [value] }
                guard inputLayers.count == inputs.count else {
                    throw EvalError.invalid("model `\(name)` takes \(inputLayers.count) inputs, \(inputs.count) given")
                }
                for layer in layers where produced[layer.name] == nil {
                    let arguments = try layer.inbound.map { ref -> Value in
                        guard let values = produced[ref.0], ref.2 < values.count else {
                            throw EvalError.invalid("layer `\(layer.name)` reads `\(ref.0)` before it is computed")
                        }
                        return values[ref.2]
                    }
                    produced[layer.name] = try layer.call(arguments, scope: path, evaluator: evaluator)
                }
                return try outputLayers.map { ref in
                    guard let values = produced[ref.0], ref.2 < values.count else { throw EvalError.invalid("output layer `\(ref.0)` was never computed") }
                    return values[ref.2]
                }
            }
            return [try apply(inputs, weights: evaluator.layerWeights[path.joined(separator: "/")] ?? [:], keras3: evaluator.keras3)]
        } catch let error as EvalError {
            if error.kind == .invalid, !error.message.hasPrefix("layer `") { throw EvalError.invalid("layer `\(name)` (\(className)): \(error.message)") }
            throw error
        }
    }

    func weight(_ weights: [String: Value], _ key: String) throws -> Value {
        guard let w = weights[key] else {
            throw EvalError.invalid("weight `\(key)` not found in the file (found: \(weights.keys.sorted().joined(separator: ", ")))")
        }
        return w
    }

    func apply(_ inputs: [Value], weights: [String: Value], keras3: Bool) throws -> Value {
        guard let x = inputs.first else { throw EvalError.invalid("no input") }
        let op = KerasOps(keras3: keras3)
        switch className {
        case "InputLayer", "Dropout": return x
        case "Dense":
            var y = try op.matMul(x, try weight(weights, "kernel"))
            if let bias = weights["bias"] { y = try op.add(y, bias) }
            return try op.activate(y, activationName ?? "linear")
        case "Conv2D", "DepthwiseConv2D", "SeparableConv2D":
            let strides = ints("strides", [1, 1]), dilations = ints("dilation_rate", [1, 1])
            let padding = config["padding"] as? String ?? "valid"
            var y: Value
            if className == "Conv2D" {
                y = try op.conv2D(
                    x, kernel: try weight(weights, "kernel"), strides: strides, dilations: dilations, padding: padding, groups: config["groups"] as? Int ?? 1)
            } else {
                y = try op.depthwise(x, kernel: try weight(weights, "depthwise_kernel"), strides: strides, dilations: dilations, padding: padding)
                if className == "SeparableConv2D" {
                    y = try op.conv2D(y, kernel: try weight(weights, "pointwise_kernel"), strides: [1, 1], dilations: [1, 1], padding: "valid", groups: 1)
                }
            }
            if let bias = weights["bias"] { y = try op.add(y, bias) }
            return try op.activate(y, activationName ?? "linear")
        case "BatchNormalization":
            let epsilon = Float(config["epsilon"] as? Double ?? 1e-3)
            let axisValue = (config["axis"] as? [Int])?.first ?? (config["axis"] as? Int) ?? -1
            let axis = axisValue < 0 ? axisValue + x.rank : axisValue
            guard axis == x.rank - 1 else { throw EvalError.unsupported("BatchNormalization over axis \(axisValue) (the last axis is)") }
            return try op.batchNorm(
                x, gamma: weights["gamma"], beta: weights["beta"], mean: try weight(weights, "moving_mean"), variance: try weight(weights, "moving_variance"),
                epsilon: epsilon)
        case "Activation": return try op.activate(x, activationName ?? "linear")
        case "ReLU":
            let maxValue = (config["max_value"] as? Double).map(Float.init)
            return try op.activate(x, maxValue == 6 ? "relu6" : "relu")
        case "Softmax": return try op.activate(x, "softmax")
        case "MaxPooling2D", "AveragePooling2D":
            let size = ints("pool_size", [2, 2])
            return try op.pool(
                x, size: size, strides: (config["strides"] as? [Int]) ?? size, padding: config["padding"] as? String ?? "valid",
                max: className == "MaxPooling2D")
        case "GlobalAveragePooling2D":
            guard x.rank == 4 else { throw EvalError.invalid("input \(x.shape) is not [N, H, W, C]") }
            let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            var out = [Float](repeating: 0, count: n * c)
            for b in 0..<n { for p in 0..<(h * w) { for k in 0..<c { out[b * c + k] += x.floats[(b * h * w + p) * c + k] } } }
            let keep = config["keepdims"] as? Bool ?? false
            return Value(floats: out.map { $0 / Float(h * w) }, shape: keep ? [n, 1, 1, c] : [n, c], dtype: x.dtype)
        case "Flatten": return x.reshaped([x.shape[0], x.count / max(x.shape[0], 1)])
        case "Reshape":
            var target = (config["target_shape"] as? [Int]) ?? []
            if let unknown = target.firstIndex(of: -1) { target[unknown] = x.count / max(x.shape[0], 1) / max(1, -target.reduce(1, *)) }
            guard x.shape[0] * target.reduce(1, *) == x.count else { throw EvalError.invalid("cannot reshape \(x.shape) to \(target)") }
            return x.reshaped([x.shape[0]] + target)
        case "Add": return try inputs.dropFirst().reduce(x) { try op.add($0, $1) }
        case "Concatenate":
            let axis = config["axis"] as? Int ?? -1
            return try op.concat(inputs, axis: axis)
        default: throw EvalError.unsupported("Keras layer `\(className)` (`\(name)`)")
        }
    }
}

/// Channels-last computations built on the ONNX operators.
struct KerasOps {
    let keras3: Bool

    func run(_ op: String, _ inputs: [Value?], _ attributes: [Attribute] = []) throws -> Value {
        let node = Node(name: op, opType: op, inputs: inputs.map { _ in "x" }, outputs: ["y"], attributes: attributes)
        return try Operators(node: node, opset: 17).run(inputs)[0]
    }

    func matMul(_ x: Value, _ w: Value) throws -> Value { try run("MatMul", [x, w]) }
    func add(_ x: Value, _ y: Value) throws -> Value { try run("Add", [x, y]) }

    func concat(_ inputs: [Value], axis: Int) throws -> Value {
        try run("Concat", inputs, [Attribute(name: "axis", value: .int(Int64(axis)))])
    }

    func toChannelsFirst(_ x: Value) throws -> Value { try run("Transpose", [x], [Attribute(name: "perm", value: .ints([0, 3, 1, 2]))]) }
    func toChannelsLast(_ x: Value) throws -> Value { try run("Transpose", [x], [Attribute(name: "perm", value: .ints([0, 2, 3, 1]))]) }

    func windowAttributes(strides: [Int], padding: String) -> [Attribute] {
        [
            Attribute(name: "strides", value: .ints(strides.map(Int64.init))),
            Attribute(name: "auto_pad", value: .string(Array((padding == "same" ? "SAME_UPPER" : "VALID").utf8))),
        ]
    }

    /// Keras kernel [kh, kw, in/groups, out] as ONNX W [out, in/groups, kh, kw].
    func conv2D(_ x: Value, kernel: Value, strides: [Int], dilations: [Int], padding: String, groups: Int) throws -> Value {
        guard x.rank == 4, kernel.rank == 4 else { throw EvalError.invalid("input \(x.shape) and kernel \(kernel.shape) must be 4-D") }
        let w = try run("Transpose", [kernel], [Attribute(name: "perm", value: .ints([3, 2, 0, 1]))])
        var attributes = windowAttributes(strides: strides, padding: padding)
        attributes += [Attribute(name: "dilations", value: .ints(dilations.map(Int64.init))), Attribute(name: "group", value: .int(Int64(groups)))]
        return try toChannelsLast(try run("Conv", [try toChannelsFirst(x), w], attributes))
    }

    /// Depthwise kernel [kh, kw, in, multiplier] as ONNX W [in·multiplier, 1, kh, kw], group = in.
    func depthwise(_ x: Value, kernel: Value, strides: [Int], dilations: [Int], padding: String) throws -> Value {
        guard x.rank == 4, kernel.rank == 4 else { throw EvalError.invalid("input \(x.shape) and kernel \(kernel.shape) must be 4-D") }
        let (kh, kw, channels, multiplier) = (kernel.shape[0], kernel.shape[1], kernel.shape[2], kernel.shape[3])
        let w = try run("Transpose", [kernel], [Attribute(name: "perm", value: .ints([2, 3, 0, 1]))]).reshaped([channels * multiplier, 1, kh, kw])
        var attributes = windowAttributes(strides: strides, padding: padding)
        attributes += [Attribute(name: "dilations", value: .ints(dilations.map(Int64.init))), Attribute(name: "group", value: .int(Int64(channels)))]
        return try toChannelsLast(try run("Conv", [try toChannelsFirst(x), w], attributes))
    }

    func pool(_ x: Value, size: [Int], strides: [Int], padding: String, max: Bool) throws -> Value {
        guard x.rank == 4 else { throw EvalError.invalid("input \(x.shape) is not [N, H, W, C]") }
        var attributes = windowAttributes(strides: strides, padding: padding)
        attributes.append(Attribute(name: "kernel_shape", value: .ints(size.map(Int64.init))))
        return try toChannelsLast(try run(max ? "MaxPool" : "AveragePool", [try toChannelsFirst(x)], attributes))
    }

    func batchNorm(_ x: Value, gamma: Value?, beta: Value?, mean: Value, variance: Value, epsilon: Float) throws -> Value {
        let c = x.shape.last ?? 0
        let g = gamma?.asFloats ?? [Float](repeating: 1, count: c), b = beta?.asFloats ?? [Float](repeating: 0, count: c)
        let m = mean.asFloats, v = variance.asFloats
        guard g.count == c, b.count == c, m.count == c, v.count == c else { throw EvalError.invalid("batch normalization weights do not have \(c) channels") }
        let k = (0..<c).map { g[$0] / (v[$0] + epsilon).squareRoot() }
        var out = x
        for i in 0..<x.count { let ch = i % c; out.floats[i] = (x.floats[i] - m[ch]) * k[ch] + b[ch] }
        return out
    }

    func activate(_ x: Value, _ name: String) throws -> Value {
        var out = x
        switch name {
        case "linear": return x
        case "relu": out.floats = x.floats.map { Swift.max($0, 0) }
        case "relu6": out.floats = x.floats.map { Swift.min(Swift.max($0, 0), 6) }
        case "sigmoid": out.floats = x.floats.map { 1 / (1 + exp(-$0)) }
        case "tanh": out.floats = x.floats.map { tanh($0) }
        case "softmax": return try run("Softmax", [x], [Attribute(name: "axis", value: .int(-1))])
        case "swish", "silu": out.floats = x.floats.map { $0 / (1 + exp(-$0)) }
        case "elu": out.floats = x.floats.map { $0 > 0 ? $0 : exp($0) - 1 }
        case "selu": out.floats = x.floats.map { 1.050_700_987_355_480_5 * ($0 > 0 ? $0 : 1.673_263_242_354_377_3 * (exp($0) - 1)) }
        case "softplus": out.floats = x.floats.map { log1p(exp(-abs($0))) + Swift.max($0, 0) }
        case "hard_sigmoid":
            // Keras 2: clip(0.2x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6.
            out.floats = keras3 ? x.floats.map { Swift.min(Swift.max($0 + 3, 0), 6) / 6 } : x.floats.map { Swift.min(Swift.max(0.2 * $0 + 0.5, 0), 1) }
        default: throw EvalError.unsupported("activation `\(name)`")
        }
        return out
    }
}
