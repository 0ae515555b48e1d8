import Foundation
public import PithIR

/// Reads Keras HDF5 files, and any other HDF5 file, into the IR.
///
/// Layouts, recognised by structure (never by guessing paths):
/// - Keras 2 full model (`model.save("x.h5")`): root attributes `model_config`,
///   `keras_version`; group `model_weights` with attribute `layer_names`; each
///   layer group lists its datasets in `weight_names` (`dense/kernel:0`).
///   `save_weights` files have the same layout at the root.
/// - Keras 3 legacy `.h5`: the same attributes, weight names without `:0`
///   and nested one level deeper (`model_weights/fc1/<model>/fc1/kernel`).
/// - Keras 3 `.weights.h5`: `layers/<name>/vars/0`, `/1`, … in order; the
///   `vars` group may carry the layer's `name`.
/// - Anything else: every numeric dataset is a tensor, named by its path.
///
/// Keras 3 weights files are recognised by their `vars` groups, with or without a top-level
/// `layers` group (a subclassed model keeps its layers at the root).
///
/// Optimizer state (`optimizer_weights`, Keras 3 `optimizer`) is loaded as tensors whose origin has
/// no layer: their role is `optimizer` (`Model.tensorRoles()`), so no pass selects them and reports
/// count them apart from the model's weights.
public enum HDF5Reader {
    /// Whether `read` first reads the file in a child process (`HDF5Probe`), so that a damaged file
    /// on which libhdf5 crashes is refused instead of ending the process. Off by default: a
    /// process must be single-threaded when it forks (another thread inside libhdf5 or the Swift
    /// runtime would leave the child a lock it never gets). The `pith` command turns it on at start.
    nonisolated(unsafe) public static var isolatesCrashes = false

    public static func read(contentsOf path: String) throws -> Model {
        try read(path, withSkeleton: false).model
    }

    /// Reads the model at `path` and the skeleton of the whole file: every group, dataset, link and
    /// attribute with its exact type, in the source's order, without the tensors' data (see
    /// `HDF5Tree`), for `HDF5Writer.write(skeleton:…)`. The skeleton is nil when the file holds
    /// something Pith cannot write back exactly (references, variable-length data other than
    /// strings, opaque or bitfield types, external links, named datatypes); `gap` then says what,
    /// naming the object.
    public static func readWithSkeleton(contentsOf path: String) throws -> (model: Model, skeleton: [UInt8]?, gap: String?) {
        try read(path, withSkeleton: true)
    }

    /// With `isolatesCrashes`, the child process does all of the reading the parent then does
    /// (the walk of every object and attribute for the skeleton too), but contiguous tensor data.
    private static func read(_ path: String, withSkeleton: Bool) throws -> (model: Model, skeleton: [UInt8]?, gap: String?) {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw HDF5Error(.io, file: path, "cannot read the file")
        }
        // Collections libhdf5 would loop on or read past are refused before libhdf5 sees the file.
        let fileBytes: Int
        do {
            let mapped = try MappedFile(path, populate: false)
            fileBytes = mapped.bytes.count
            try GlobalHeapCheck.check(mapped.bytes, file: path)
        } catch let error as MappedFile.OpenError {
            throw HDF5Error(error.exitKind == .data ? .malformed : .io, file: path, error.reason)
        }
        if isolatesCrashes {
            try HDF5Probe.run(path, fileBytes: fileBytes) {
                let file = try HDF5File(path: path, probing: true)
                var reader = KerasReader(file: file)
                let model = try reader.read()
                if withSkeleton { _ = try skeleton(of: file, model: model) }
            }
        }
        let file = try HDF5File(path: path)
        var reader = KerasReader(file: file)
        let model = try reader.read()
        guard withSkeleton else { return (model, nil, nil) }
        let (tree, gap) = try skeleton(of: file, model: model)
        return (model, tree, gap)
    }

    private static func skeleton(of file: HDF5File, model: Model) throws -> (skeleton: [UInt8]?, gap: String?) {
        var walk = TreeWalk(file: file)
        for path in model.tensors.compactMap(\.origin.datasetPath) {
            if let object = file.object(path, in: file.root) { walk.tensorAt[object.address] = path }
        }
        do {
            return (try walk.tree().encoded(), nil)
        } catch let error as HDF5Error where error.kind == .unsupported {
            return (nil, error.message)
        }
    }
}

extension TensorOrigin {
    /// The dataset path of a Keras weight or HDF5 dataset.
    var datasetPath: String? {
        switch self {
        case .kerasWeight(_, _, let path), .dataset(let path): return path
        default: return nil
        }
    }
}

/// One walk of the whole file into an `HDF5Tree`, depth first in each group's listing order
/// (creation order where tracked, else name order); an object met again through another hard link
/// becomes a link to the path it was first met at.
private struct TreeWalk {
    let file: HDF5File
    /// The dataset path of each tensor, by the address of its dataset.
    var tensorAt: [UInt64: String] = [:]
    var firstPath: [UInt64: String] = [:]

    init(file: HDF5File) { self.file = file }

    mutating func tree() throws -> HDF5Tree {
        if let root = file.object("/", in: file.root) { firstPath[root.address] = "" }
        let root = try file.openGroup("/", in: file.root)
        return HDF5Tree(root: try group(root.id, path: "", name: ""), earliestFormat: try file.usesEarliestFormat())
    }

    private mutating func group(_ id: HDF5ObjectID, path: String, name: String) throws -> HDF5Tree.Node {
        let label = path.isEmpty ? "/" : path
        var node = HDF5Tree.Node(kind: .group, name: name)
        node.order = try file.creationOrder(of: id, isGroup: true, name: label)
        node.attributes = try file.exactAttributes(
            of: id, creationOrder: HDF5CreationOrder.listsInCreationOrder(node.order.attributes), name: label)
        for (child, kind) in try file.links(of: id, creationOrder: HDF5CreationOrder.listsInCreationOrder(node.order.links), name: label) {
            let childPath = path.isEmpty ? child : path + "/" + child
            switch kind {
            case .soft:
                var link = HDF5Tree.Node(kind: .softLink, name: child)
                link.target = try file.softLinkTarget(child, in: id, label: childPath)
                node.children.append(link)
            case .other:
                throw HDF5Error(.unsupported, file: file.path, "link `\(childPath)` is an external or user-defined link, which Pith does not write back")
            case .hard:
                guard let object = file.object(child, in: id) else {
                    throw HDF5Error(.malformed, file: file.path, "link `\(childPath)`: the object it names cannot be read")
                }
                if let first = firstPath[object.address] {
                    var link = HDF5Tree.Node(kind: .hardLink, name: child)
                    link.target = "/" + first
                    node.children.append(link)
                    continue
                }
                firstPath[object.address] = childPath
                switch object.kind {
                case .group:
                    let handle = try file.openGroup(child, in: id)
                    node.children.append(try group(handle.id, path: childPath, name: child))
                case .dataset:
                    let handle = try file.openDataset(child, in: id)
                    var dataset = HDF5Tree.Node(kind: .dataset, name: child)
                    dataset.order = try file.creationOrder(of: handle.id, isGroup: false, name: childPath)
                    dataset.attributes = try file.exactAttributes(
                        of: handle.id, creationOrder: HDF5CreationOrder.listsInCreationOrder(dataset.order.attributes), name: childPath)
                    dataset.tensorPath = tensorAt[object.address]
                    let exact = try file.exactDataset(child, in: id, label: childPath, withData: dataset.tensorPath == nil)
                    (dataset.type, dataset.space, dataset.value) = exact
                    node.children.append(dataset)
                case .other:
                    throw HDF5Error(.unsupported, file: file.path, "`\(childPath)` is a named datatype, which Pith does not write back")
                }
            }
        }
        return node
    }
}

private struct KerasReader {
    let file: HDF5File
    var tensors: [Tensor] = []
    var optimizerState: [TensorInfo] = []
    /// Addresses of the objects already walked: each object is read once, as h5py's
    /// `visititems` does, whatever hard links lead to it (and cycles end).
    var visited: Set<UInt64> = []

    /// Marks the object at `path` visited; false if it was already.
    mutating func firstVisit(_ path: String) -> Bool {
        guard let address = file.object(path, in: file.root)?.address else { return false }
        return visited.insert(address).inserted
    }

    init(file: HDF5File) { self.file = file }

    var path: String { file.path }

    mutating func read() throws -> Model {
        let root = file.root
        var metadata = ModelMetadata()
        let config = try file.stringAttribute("model_config", on: root, objectName: "/")
        for key in ["keras_version", "backend", "training_config"] {
            if let value = try file.stringAttribute(key, on: root, objectName: "/") {
                metadata.properties.append((key: key, value: value))
            }
        }
        var format: SourceFormat

        let weightsGroupName: String?
        if file.exists("model_weights", in: root), file.kind(of: "model_weights", in: root) == .group {
            weightsGroupName = "model_weights"
        } else if file.hasAttribute("layer_names", on: root) || file.hasAttribute("layer_names0", on: root) {
            weightsGroupName = ""
        } else {
            weightsGroupName = nil
        }

        if let weightsGroupName {
            let group = weightsGroupName.isEmpty ? nil : try file.openGroup(weightsGroupName, in: root)
            let groupID = group?.id ?? root
            let label = weightsGroupName.isEmpty ? "/" : weightsGroupName
            var version = metadata.properties.first { $0.key == "keras_version" }?.value
            if version == nil, let inner = try file.stringAttribute("keras_version", on: groupID, objectName: label) {
                version = inner
                metadata.properties.append((key: "keras_version", value: inner))
            }
            let layerNames = try file.stringsAttribute("layer_names", on: groupID, objectName: label) ?? []
            var sawColonSuffix = false
            let classes = Self.layerClasses(config)
            for layer in layerNames {
                guard file.exists(layer, in: groupID), file.kind(of: layer, in: groupID) == .group else {
                    throw HDF5Error(
                        .malformed, file: path,
                        "layer `\(layer)` is listed in `\(label)@layer_names` but there is no group `\(Self.join(weightsGroupName, layer))`")
                }
                let layerGroup = try file.openGroup(layer, in: groupID)
                let layerPath = Self.join(weightsGroupName, layer)
                let weightNames = try file.stringsAttribute("weight_names", on: layerGroup.id, objectName: layerPath) ?? []
                for weight in weightNames {
                    if weight.hasSuffix(":0") { sawColonSuffix = true }
                    let datasetPath = Self.join(layerPath, weight)
                    guard file.exists(weight, in: layerGroup.id), file.kind(of: weight, in: layerGroup.id) == .dataset else {
                        throw HDF5Error(
                            .malformed, file: path,
                            "layer `\(layer)`: weight `\(weight)` is listed in `weight_names` but dataset `\(datasetPath)` does not exist")
                    }
                    let (dtype, shape, buffer) = try file.readDataset(weight, in: layerGroup.id)
                    tensors.append(
                        Tensor(
                            name: datasetPath, dtype: dtype, shape: shape, storage: .dense(buffer),
                            origin: .kerasWeight(layer: layer, weight: weight, path: datasetPath),
                            consumer: Consumer(op: classes[layer] ?? "", name: layer)))
                }
            }
            if let version {
                format = version.hasPrefix("3") ? .keras3Legacy : .keras2
            } else {
                format = sawColonSuffix ? .keras2 : .keras3Legacy
            }
            if file.exists("optimizer_weights", in: root), file.kind(of: "optimizer_weights", in: root) == .group {
                try readOptimizer(under: "optimizer_weights")
            }
        } else if try (file.exists("layers", in: root) && file.kind(of: "layers", in: root) == .group) || hasKeras3Vars() {
            format = .keras3Weights
            if file.exists("layers", in: root), file.kind(of: "layers", in: root) == .group {
                try readKeras3Layers(at: "layers", strip: "layers/")
            }
            if file.exists("vars", in: root), file.kind(of: "vars", in: root) == .group {
                try readVars(at: "vars", layer: "")
            }
            // A subclassed model's layers and other tracked objects sit at the root beside `vars`.
            for child in try file.children(of: root, name: "/") where !["layers", "vars", "optimizer"].contains(child) {
                guard file.kind(of: child, in: root) == .group, firstVisit(child) else { continue }
                if file.exists(child + "/vars", in: root), file.kind(of: child + "/vars", in: root) == .group {
                    try readVars(at: child + "/vars", layer: child)
                }
                try readKeras3Layers(at: child, strip: "")
            }
            if file.exists("optimizer", in: root), file.kind(of: "optimizer", in: root) == .group {
                try readOptimizer(under: "optimizer")
            }
        } else {
            format = .hdf5
            try readAllDatasets(under: "")
        }
        metadata.producerName = format == .hdf5 ? "" : "keras"
        metadata.producerVersion = metadata.properties.first { $0.key == "keras_version" }?.value ?? ""
        return Model(format: format, metadata: metadata, tensors: tensors, configuration: config, optimizerState: optimizerState)
    }

    /// Keras 3 `.weights.h5`: every group with a `vars` child is a layer, named by its path less
    /// `strip`; nested models recurse.
    private mutating func readKeras3Layers(at groupPath: String, strip: String) throws {
        let group = try file.openGroup(groupPath, in: file.root)
        for child in try file.children(of: group.id, name: groupPath) {
            let childPath = groupPath + "/" + child
            guard file.kind(of: childPath, in: file.root) == .group, firstVisit(childPath) else { continue }
            if file.exists(childPath + "/vars", in: file.root), file.kind(of: childPath + "/vars", in: file.root) == .group {
                try readVars(at: childPath + "/vars", layer: String(childPath.dropFirst(strip.count)))
            }
            try readKeras3Layers(at: childPath, strip: strip)
        }
    }

    /// Whether the file has the structure of a Keras 3 `.weights.h5` without a top-level `layers`
    /// group (a subclassed model): at least one group named `vars`, every `vars` group holding only
    /// datasets named `0`, `1`, …, and every dataset of the file inside a `vars` group.
    private func hasKeras3Vars() throws -> Bool {
        var seen: Set<UInt64> = []
        var sawVars = false
        func walk(_ path: String, isVars: Bool) throws -> Bool {
            let group = path.isEmpty ? nil : try file.openGroup(path, in: file.root)
            let id = group?.id ?? file.root
            for child in try file.children(of: id, name: path.isEmpty ? "/" : path) {
                let childPath = Self.join(path, child)
                guard let object = file.object(child, in: id) else { return false }
                switch object.kind {
                case .dataset:
                    guard isVars, !child.isEmpty, child.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
                case .group:
                    guard !isVars else { return false }
                    guard seen.insert(object.address).inserted else { continue }
                    if child == "vars" { sawVars = true }
                    guard try walk(childPath, isVars: child == "vars") else { return false }
                case .other: return false
                }
            }
            return true
        }
        return try walk("", isVars: false) && sawVars
    }

    /// Optimizer state (Keras 2 `optimizer_weights`, Keras 3 `optimizer`): every numeric dataset
    /// below `groupPath`, depth first in name order (a `vars` group's in numeric order), loaded as
    /// a tensor whose origin has no layer (`TensorRole.Kind.optimizer`: kept exactly, never selected
    /// by a pass).
    private mutating func readOptimizer(under groupPath: String) throws {
        let group = try file.openGroup(groupPath, in: file.root)
        var children = try file.children(of: group.id, name: groupPath)
        if groupPath.hasSuffix("/vars") { children.sort { (Int($0) ?? Int.max, $0) < (Int($1) ?? Int.max, $1) } }
        for child in children {
            let childPath = groupPath + "/" + child
            guard firstVisit(childPath) else { continue }
            switch file.kind(of: child, in: group.id) {
            case .group: try readOptimizer(under: childPath)
            case .dataset:
                guard try file.datasetInfo(child, in: group.id).dtype != nil else { continue }
                let (dtype, shape, buffer) = try file.readDataset(child, in: group.id)
                tensors.append(
                    Tensor(
                        name: childPath, dtype: dtype, shape: shape, storage: .dense(buffer), origin: .kerasWeight(layer: "", weight: child, path: childPath)))
            case .other: continue
            }
        }
    }

    /// The datasets `0`, `1`, … of a Keras 3 `vars` group, in numeric order.
    private mutating func readVars(at varsPath: String, layer: String) throws {
        let group = try file.openGroup(varsPath, in: file.root)
        let name = try file.stringAttribute("name", on: group.id, objectName: varsPath) ?? layer
        let children = try file.children(of: group.id, name: varsPath)
        let ordered = children.sorted { (Int($0) ?? Int.max, $0) < (Int($1) ?? Int.max, $1) }
        for child in ordered where file.kind(of: child, in: group.id) == .dataset {
            let datasetPath = varsPath + "/" + child
            let (dtype, shape, buffer) = try file.readDataset(child, in: group.id)
            tensors.append(
                Tensor(
                    name: datasetPath, dtype: dtype, shape: shape, storage: .dense(buffer),
                    origin: .kerasWeight(layer: layer, weight: child, path: datasetPath),
                    consumer: name.isEmpty ? nil : Consumer(op: "", name: name)))
        }
    }

    /// Plain HDF5: every numeric dataset, depth first in name order.
    private mutating func readAllDatasets(under groupPath: String) throws {
        let group = groupPath.isEmpty ? nil : try file.openGroup(groupPath, in: file.root)
        let id = group?.id ?? file.root
        for child in try file.children(of: id, name: groupPath.isEmpty ? "/" : groupPath) {
            let childPath = Self.join(groupPath, child)
            guard firstVisit(childPath) else { continue }
            switch file.kind(of: child, in: id) {
            case .group: try readAllDatasets(under: childPath)
            case .dataset:
                guard try file.datasetInfo(child, in: id).dtype != nil else { continue }
                let (dtype, shape, buffer) = try file.readDataset(child, in: id)
                tensors.append(Tensor(name: childPath, dtype: dtype, shape: shape, storage: .dense(buffer), origin: .dataset(path: childPath)))
            case .other: continue
            }
        }
    }

    private static func join(_ parent: String, _ child: String) -> String {
        parent.isEmpty ? child : parent + "/" + child
    }

    /// Layer name → class name, from every `{"class_name": …, "config": {"name": …}}` in the model config.
    static func layerClasses(_ config: String?) -> [String: String] {
        guard let config, let data = config.data(using: .utf8),
            let json = try? JSONSerialization.jsonObject(with: data)
        else { return [:] }
        var classes: [String: String] = [:]
        func walk(_ value: Any) {
            if let object = value as? [String: Any] {
                if let className = object["class_name"] as? String,
                    let inner = object["config"] as? [String: Any], let name = inner["name"] as? String,
                    classes[name] == nil
                {
                    classes[name] = className
                }
                for (_, child) in object { walk(child) }
            } else if let array = value as? [Any] {
                for child in array { walk(child) }
            }
        }
        walk(json)
        return classes
    }
}
