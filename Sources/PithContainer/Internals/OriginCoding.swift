import PithIR

/// Tensor origins as short strings in the manifest's `origin` (Keras and HDF5 sources; ONNX tensors
/// are placed by their order in the skeleton). The writer encodes, the reader decodes.
enum OriginCoding {
    static func encode(_ origin: TensorOrigin) -> String {
        switch origin {
        case .initializer(let graph): return "initializer:" + graph.description
        case .sparseInitializer(let graph): return "sparse-initializer:" + graph.description
        case .nodeAttribute(let graph, let node, let attribute, let index):
            return "attribute:\(graph.description)\u{1F}\(node)\u{1F}\(attribute)\u{1F}\(index)"
        case .kerasWeight(let layer, let weight, let path): return "keras:\(layer)\u{1F}\(weight)\u{1F}\(path)"
        case .dataset(let path): return "dataset:" + path
        }
    }

    /// The origin, as far as a string can say; unknown forms read as a dataset named like the tensor.
    static func decode(_ text: String, name: String) -> TensorOrigin {
        let parts = text.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        if text.hasPrefix("keras:"), parts.count == 3 {
            return .kerasWeight(layer: String(parts[0].dropFirst(6)), weight: parts[1], path: parts[2])
        }
        if text.hasPrefix("dataset:") { return .dataset(path: String(text.dropFirst(8))) }
        if text == "initializer:" { return .initializer(graph: .main) }
        return .dataset(path: name)
    }
}
