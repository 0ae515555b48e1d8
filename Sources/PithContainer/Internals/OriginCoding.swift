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

    /// Checks that every tensor of a Keras or HDF5 container says where it goes, as its format
    /// writes it (`keras:` weights for Keras, `dataset:` paths for plain HDF5), with a path of
    /// non-empty components other than `.` and `..`, and that no two tensors go to the same place or
    /// one inside the other. ONNX containers place tensors by the skeleton's order instead.
    static func validate(_ tensors: [Manifest.TensorEntry], format: SourceFormat, file: String) throws {
        guard format != .onnx else { return }
        func fail(_ entry: Manifest.TensorEntry, _ problem: String) -> ContainerError {
            ContainerError(.malformed, file: file, "tensor `\(entry.name)`: \(problem)")
        }
        var datasets: Set<String> = [], groups: Set<String> = []
        for entry in tensors {
            guard let text = entry.origin else { throw fail(entry, "no origin: a \(format.rawValue) container says where each tensor goes") }
            let path: String
            switch decode(text, name: entry.name) {
            case .kerasWeight(let layer, let weight, let datasetPath) where format != .hdf5 && text.hasPrefix("keras:"):
                guard !weight.isEmpty, layer.isEmpty || isPlainPath(layer) else {
                    throw fail(entry, "origin `\(text)` names an empty weight or a layer that is not a plain HDF5 path")
                }
                path = datasetPath
            case .dataset(let datasetPath) where format == .hdf5 && text.hasPrefix("dataset:"):
                path = datasetPath
            default:
                throw fail(
                    entry, "origin `\(text)` is not a \(format == .hdf5 ? "`dataset:` path" : "`keras:` weight") as a \(format.rawValue) container writes it")
            }
            guard isPlainPath(path) else {
                throw fail(entry, "origin path `\(path)` is not a plain HDF5 path (non-empty components other than `.` and `..`)")
            }
            let components = path.split(separator: "/")
            let parents = (1..<components.count).map { components[0..<$0].joined(separator: "/") }
            guard !datasets.contains(path), !groups.contains(path), !parents.contains(where: { datasets.contains($0) }) else {
                throw fail(entry, "origin path `\(path)` is another tensor's, or inside or around another tensor's")
            }
            datasets.insert(path)
            groups.formUnion(parents)
        }
    }

    /// A relative HDF5 path of non-empty components, none `.` or `..`, without NUL.
    static func isPlainPath(_ path: String) -> Bool {
        !path.isEmpty && !path.contains("\0")
            && path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }
}
