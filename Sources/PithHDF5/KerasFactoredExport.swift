import Foundation
public import PithIR

/// Keras models with low-rank Dense kernels written as two Dense layers: `L` with kernel
/// `A·B` (in × r · r × out) becomes `L_factor_a` (r units, kernel A, no bias, linear) followed by
/// `L` (kernel B, its own bias and activation), in the configuration and in the weights, so that
/// Keras loads and runs the smaller model. Top-level layers of Sequential and Functional models
/// are split; other factored tensors are left for the caller to write dense, with the reason.
public enum KerasFactoredExport {
    public static func split(
        _ model: Model, file: String
    ) throws
        -> (model: Model, rewritten: [(tensor: String, nodes: [String])], densified: [(tensor: String, reason: String)])
    {
        var rewritten: [(String, [String])] = [], densified: [(String, String)] = []
        let factoredIDs = model.tensors.indices.filter { if case .factored = model.tensors[$0].storage { return true } else { return false } }
        guard !factoredIDs.isEmpty else { return (model, [], []) }
        guard let text = model.configuration, let data = text.data(using: .utf8),
            var root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else {
            return (model, [], factoredIDs.map { (model.tensors[$0].name, "the file has no model configuration to add layers to") })
        }
        var result = model
        var config = root["config"] as? [String: Any] ?? [:]
        var layers = (config["layers"] as? [[String: Any]]) ?? (root["config"] as? [[String: Any]]) ?? []
        let listIsConfig = config["layers"] == nil && root["config"] is [Any]
        let isSequential = (root["class_name"] as? String) == "Sequential"
        var names = Set(layers.compactMap { ($0["config"] as? [String: Any])?["name"] as? String })
        var insertions: [(before: Int, layer: String, tensor: Tensor)] = []
        for id in factoredIDs {
            let tensor = model.tensors[id]
            guard case .factored(let storage) = tensor.storage, case .lowRank(let rank) = storage.method,
                case .kerasWeight(let layer, let weight, let path) = tensor.origin, tensor.dtype == .float32
            else {
                densified.append((tensor.name, "only low-rank float32 Dense kernels are split into layers"))
                continue
            }
            guard let index = layers.firstIndex(where: { ($0["config"] as? [String: Any])?["name"] as? String == layer }),
                layers[index]["class_name"] as? String == "Dense", weight.split(separator: "/").last?.hasPrefix("kernel") == true,
                tensor.shape.count == 2
            else {
                densified.append((tensor.name, "`\(layer)` is not a top-level Dense layer with this kernel"))
                continue
            }
            var newName = "\(layer)_factor_a"
            while names.contains(newName) { newName += "_" }
            names.insert(newName)
            // The first layer: A (in × r), linear, no bias; it takes over the layer's input.
            var original = layers[index]
            var first = original
            var firstConfig = original["config"] as? [String: Any] ?? [:]
            firstConfig["name"] = newName
            firstConfig["units"] = rank
            firstConfig["activation"] = "linear"
            firstConfig["use_bias"] = false
            first["config"] = firstConfig
            if first["name"] != nil { first["name"] = newName }
            var secondConfig = original["config"] as? [String: Any] ?? [:]
            for key in ["batch_input_shape", "batch_shape", "input_dim"] where secondConfig[key] != nil { secondConfig.removeValue(forKey: key) }
            original["config"] = secondConfig
            if var build = original["build_config"] as? [String: Any], var shape = build["input_shape"] as? [Any], !shape.isEmpty {
                first["build_config"] = build
                shape[shape.count - 1] = rank
                build["input_shape"] = shape
                original["build_config"] = build
            }
            if !isSequential, let inbound = original["inbound_nodes"] as? [Any] {
                original["inbound_nodes"] = rewire(inbound, to: newName, width: rank)
            }
            layers[index] = original
            layers.insert(first, at: index)
            // Weights: A under the new layer's name, B in place of the kernel.
            let renamed = { (text: String) in
                text.split(separator: "/", omittingEmptySubsequences: false).map { $0 == layer ? newName : String($0) }.joined(separator: "/")
            }
            let a = Tensor(
                name: renamed(tensor.name), dtype: .float32, shape: [storage.rows, rank],
                storage: .dense(TensorBuffer(values: storage.factors[0])),
                origin: .kerasWeight(layer: newName, weight: renamed(weight), path: renamed(path)),
                consumer: Consumer(op: "Dense", name: newName))
            result.tensors[id].shape = [rank, storage.columns]
            result.tensors[id].storage = .dense(TensorBuffer(values: storage.factors[1]))
            insertions.append((id, layer, a))
            rewritten.append((tensor.name, [newName, layer]))
        }
        // New kernels go before their layer's first weight, so `layer_names` lists them in model order.
        for (before, layer, tensor) in insertions.sorted(by: { $0.before > $1.before }) {
            let first = result.tensors.firstIndex { if case .kerasWeight(let l, _, _) = $0.origin { return l == layer } else { return false } } ?? before
            result.tensors.insert(tensor, at: first)
        }
        if listIsConfig { root["config"] = layers } else { config["layers"] = layers; root["config"] = config }
        let encoded = try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .withoutEscapingSlashes])
        result.configuration = String(decoding: encoded, as: UTF8.self)
        return (result, rewritten, densified)
    }

    /// A layer's inbound nodes, pointed at `layer` instead: Keras 2 lists `[name, node, tensor,
    /// kwargs]`; Keras 3 lists call arguments holding `keras_history`.
    static func rewire(_ inbound: [Any], to layer: String, width: Int) -> [Any] {
        guard let first = inbound.first else { return inbound }
        if var call = first as? [String: Any] {
            let tensor: [String: Any] = [
                "class_name": "__keras_tensor__",
                "config": ["shape": [NSNull(), width], "dtype": "float32", "keras_history": [layer, 0, 0]],
            ]
            call["args"] = [tensor]
            return [call]
        }
        return [[[layer, 0, 0, [String: Any]()]]]
    }
}
