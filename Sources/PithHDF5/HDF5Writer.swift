public import PithIR
#if canImport(Glibc)
import Glibc
#endif

/// Writes models back as HDF5 in the layout they were read from (Keras 2 / Keras 3 legacy `.h5`,
/// Keras 3 `.weights.h5`, plain HDF5), from the tensors' origins and the model's metadata.
///
/// Two ways. With the source's skeleton (`write(skeleton:…)`, what `pith restore` uses for
/// containers that hold one), the whole file comes back: every group, dataset, link and attribute
/// with its exact type and in its order, optimizer state included. Without (`write(_:to:)`, older
/// containers, `restore --factored`), the layout is rebuilt from the tensors' origins: Keras files
/// get their root attributes back (`keras_version`, `backend`, `model_config`,
/// `training_config`: every property the reader kept), `layer_names` and each layer's
/// `weight_names` as byte-string arrays as Keras writes them, and every weight at its original path;
/// layers without weights are not written (Keras loads weights by `weight_names`), and optimizer
/// state, when the model holds it, only as its datasets.
///
/// Tensors are streamed. The file is laid out first, from each tensor's name, type and shape and
/// its `Placement`: every dataset is created with its storage allocated (contiguous, never filled),
/// and the attributes are written. Once libhdf5 has closed the file, each tensor's bytes are asked
/// of the `TensorSource` once, in order, and written straight into its dataset's storage, a piece
/// at a time as the source hands them out (a container's float-split tensors: 16,384 symbols per
/// Huffman stream at a time; raw ones: the mapped bytes; other encodings: the tensor), so no copy of
/// the model is ever held.
public enum HDF5Writer {
    /// Where a tensor goes, known before its data: its origin (the Keras layer, weight name and
    /// dataset path, or a dataset path; the tensor's name for any other) and the name of the layer
    /// that uses it (a Keras 3 `vars` group's `name`).
    public struct Placement: Sendable, Hashable {
        public var origin: TensorOrigin
        public var layer: String?

        public init(origin: TensorOrigin, layer: String?) {
            self.origin = origin
            self.layer = layer
        }
    }

    /// Writes `model`. Compressed floating-point tensors are densified one at a time; other
    /// compressed tensors and strings are refused.
    public static func write(_ model: Model, to path: String) throws {
        for tensor in model.tensors {
            if case .strings = tensor.storage { throw unwritable(tensor.name, path: path) }
            if tensor.storage.isCompressed, !tensor.dtype.isFloatingPoint { throw unwritable(tensor.name, path: path) }
        }
        try write(
            format: model.format, metadata: model.metadata, configuration: model.configuration,
            placements: model.tensors.map { Placement(origin: $0.origin, layer: $0.consumer?.name) },
            source: TensorArray(model.tensors), to: path)
    }

    private static func unwritable(_ name: String, path: String) -> HDF5Error {
        HDF5Error(.unsupported, file: path, "tensor `\(name)`: densify compressed tensors before writing HDF5")
    }

    /// Writes the tensors of `source`, tensor `i` where `placements[i]` says, as an HDF5 file of
    /// `format`, with `metadata`'s properties and the Keras `configuration` (`model_config`) as
    /// root attributes. Asks `source` for each tensor's bytes once (`denseBytes`), in order, on the
    /// calling thread. `placements` must have one entry per tensor of `source`.
    public static func write(
        format: SourceFormat, metadata: ModelMetadata, configuration: String?,
        placements: [Placement], source: some TensorSource, to path: String
    ) throws {
        precondition(placements.count == source.tensorCount, "HDF5Writer.write: \(placements.count) placements for \(source.tensorCount) tensors")
        h5Quiet()
        let regions = try layOut(
            format: format, metadata: metadata, configuration: configuration,
            placements: placements, source: source, to: path)
        try writeTensors(regions, source: source, to: path)
    }

    /// Writes the whole file `skeleton` describes (from `HDF5Reader.readWithSkeleton`: every group,
    /// dataset, link and attribute of the source, with their exact types and in their order), each
    /// dataset the skeleton marks as a tensor filled with the tensor of `source` whose placement has
    /// its path. Tensor datasets are written contiguous, in the tensor's dtype, little-endian.
    /// `container` names the file the skeleton came from in errors. `placements` must have one entry
    /// per tensor of `source`.
    public static func write(
        skeleton: [UInt8], container: String, placements: [Placement], source: some TensorSource, to path: String
    ) throws {
        precondition(placements.count == source.tensorCount, "HDF5Writer.write: \(placements.count) placements for \(source.tensorCount) tensors")
        h5Quiet()
        let tree = try HDF5Tree(decoding: skeleton, file: container)
        var tensorAt: [String: Int] = [:]
        for (index, placement) in placements.enumerated() {
            let datasetPath: String
            switch placement.origin {
            case .kerasWeight(_, _, let path), .dataset(let path): datasetPath = path
            default: datasetPath = source.header(index).name
            }
            guard tensorAt.updateValue(index, forKey: datasetPath) == nil else {
                throw HDF5Error(.malformed, file: container, "two tensors go to the dataset `\(datasetPath)`")
            }
        }
        let writer = Writer(path: path, file: try HDF5Handle.createFile(path, order: tree.root.order, earliestFormat: tree.earliestFormat))
        var layout = SkeletonLayout(writer: writer, container: container, tensorAt: tensorAt, infos: (0..<source.tensorCount).map { source.header($0) })
        try layout.attributes(tree.root.attributes, on: writer.file.openObject("/"), label: "/")
        for child in tree.root.children { try layout.node(child, parent: "") }
        if let missing = layout.tensorAt.keys.sorted().first {
            throw HDF5Error(.malformed, file: container, "tensor `\(source.header(tensorAt[missing]!).name)`: the skeleton has no dataset `\(missing)` for it")
        }
        // The source is asked for its tensors in its own order, whatever order the file lists them in.
        let regions = layout.regions.sorted { $0.tensor < $1.tensor }
        try writer.file.closeFile()
        try writeTensors(regions, source: source, to: path)
    }

    /// Writes each tensor's bytes at its region of the file `path` (laid out and closed).
    private static func writeTensors(_ regions: [(tensor: Int, offset: Int, bytes: Int)], source: some TensorSource, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw HDF5Error(.io, file: path, "cannot open the file to write the tensors (\(FileIO.describe(errorNumber: errno)))")
        }
        defer { close(descriptor) }
        var worker = source.makeWorker()
        for region in regions {
            let name = source.header(region.tensor).name
            var written = 0
            try source.denseBytes(region.tensor, worker: &worker) { offset, piece in
                guard offset >= 0, offset <= region.bytes, piece.count <= region.bytes - offset else {
                    throw HDF5Error(
                        .unsupported, file: path, "tensor `\(name)`: the source gave bytes \(offset)..<\(offset &+ piece.count) of a tensor of \(region.bytes)")
                }
                do { try FileIO.write(descriptor, piece, at: region.offset + offset) } catch {
                    throw HDF5Error(.io, file: path, "tensor `\(name)`: cannot write its bytes (\(error))")
                }
                written += piece.count
            }
            guard written == region.bytes else {
                throw HDF5Error(.unsupported, file: path, "tensor `\(name)`: the source gave \(written) of its \(region.bytes) bytes")
            }
        }
    }

    /// Creates the file with every dataset (storage allocated, not written) and attribute, and
    /// closes it. Returns where each tensor's bytes go, for the tensors that have any.
    private static func layOut(
        format: SourceFormat, metadata: ModelMetadata, configuration: String?,
        placements: [Placement], source: some TensorSource, to path: String
    )
        throws -> [(tensor: Int, offset: Int, bytes: Int)]
    {
        let writer = Writer(path: path, file: try HDF5Handle.createFile(path))
        let keras = format == .keras2 || format == .keras3Legacy
        if keras || format == .keras3Weights {
            for (key, value) in metadata.properties { try writer.stringAttribute(key, value, on: "/") }
            if let configuration { try writer.stringAttribute("model_config", configuration, on: "/") }
        }
        var layers: [String] = []
        var weightNames: [String: [String]] = [:]
        var layerGroup: [String: String] = [:]
        var regions: [(tensor: Int, offset: Int, bytes: Int)] = []
        for (index, placement) in placements.enumerated() {
            let info = source.header(index)
            let datasetPath: String
            switch placement.origin {
            case .kerasWeight(let layer, let weight, let path):
                datasetPath = path
                if layer.isEmpty {
                    // A weight of no layer (optimizer state): its dataset only.
                } else if keras {
                    if weightNames[layer] == nil { layers.append(layer) }
                    weightNames[layer, default: []].append(weight)
                    layerGroup[layer] = String(path.dropLast(weight.count + 1))
                } else if format == .keras3Weights, let name = placement.layer, !name.isEmpty {
                    let vars = String(path.dropLast(weight.count + 1))
                    try writer.ensureGroup(vars)
                    try writer.stringAttribute("name", name, on: vars, variableLength: true)
                }
            case .dataset(let path): datasetPath = path
            default: datasetPath = info.name
            }
            if let offset = try writer.dataset(datasetPath, info: info).offset {
                regions.append((index, offset, info.bytes))
            }
        }
        if keras {
            let weightsGroup = format == .keras2 && layerGroup.values.allSatisfy({ !$0.hasPrefix("model_weights/") }) ? "/" : "model_weights"
            try writer.ensureGroup(weightsGroup)
            try writer.stringsAttribute("layer_names", layers, on: weightsGroup)
            for (key, value) in metadata.properties where key == "keras_version" || key == "backend" {
                try writer.stringAttribute(key, value, on: weightsGroup)
            }
            for layer in layers {
                let group = layerGroup[layer] ?? layer
                try writer.ensureGroup(group)
                try writer.stringsAttribute("weight_names", weightNames[layer] ?? [], on: group)
            }
        }
        try writer.file.closeFile()
        return regions
    }
}

/// Creates the objects of an `HDF5Tree` in order, recording which dataset each tensor went to.
private struct SkeletonLayout {
    let writer: Writer
    let container: String
    /// Dataset path → tensor index, for the tensors not yet placed.
    var tensorAt: [String: Int]
    let infos: [TensorInfo]
    /// Where each tensor placed goes in the file, in file order (tensors with bytes only).
    var regions: [(tensor: Int, offset: Int, bytes: Int)] = []

    init(writer: Writer, container: String, tensorAt: [String: Int], infos: [TensorInfo]) {
        self.writer = writer
        self.container = container
        self.tensorAt = tensorAt
        self.infos = infos
    }

    func elements(_ space: HDF5Tree.Space, _ name: String) throws -> Int {
        guard let count = HDF5Handle.elementCount(space) else {
            throw HDF5Error(.malformed, file: container, "`\(name)`: the stored dataspace is too large to address")
        }
        return count
    }

    func attributes(_ attributes: [HDF5Tree.Attribute], on object: HDF5Handle, label: String) throws {
        for attribute in attributes {
            let name = label + "@" + attribute.name
            let type = try HDF5Handle.buildType(attribute.type, file: container, object: name)
            let space = try HDF5Handle.space(attribute.space, file: writer.path, object: name)
            let handle = try object.createAttribute(attribute.name, type: type, space: space)
            try handle.write(attribute.value, type: type, elements: try elements(attribute.space, name))
        }
    }

    mutating func node(_ node: HDF5Tree.Node, parent: String) throws {
        let path = parent.isEmpty ? node.name : parent + "/" + node.name
        switch node.kind {
        case .group:
            let group = try writer.file.createGroup(path, order: node.order)
            try attributes(node.attributes, on: group, label: path)
            for child in node.children { try self.node(child, parent: path) }
        case .dataset:
            let dataset: HDF5Handle
            if let tensorPath = node.tensorPath {
                guard let index = tensorAt.removeValue(forKey: tensorPath) else {
                    throw HDF5Error(
                        .malformed, file: container,
                        "dataset `\(path)`: the skeleton gives it tensor `\(tensorPath)`, which the container does not hold (or gives twice)")
                }
                // The source's own type when it describes the tensor's bytes as they are (h5py's
                // bool enum, its float16), else the standard little-endian type of the dtype.
                let exact = try HDF5Handle.buildType(node.type, file: container, object: path)
                let (handle, offset) = try writer.dataset(
                    path, info: infos[index], order: node.order,
                    type: HDF5File.elementType(exact).0 == infos[index].dtype && exact.isLittleEndian ? exact : nil)
                dataset = handle
                if let offset { regions.append((index, offset, infos[index].bytes)) }
            } else {
                let type = try HDF5Handle.buildType(node.type, file: container, object: path)
                let space = try HDF5Handle.space(node.space, file: writer.path, object: path)
                dataset = try writer.file.createDataset(path, type: type, space: space, order: node.order, written: false)
                if let value = node.value { try dataset.write(value, type: type, elements: try elements(node.space, path), dataset: true) }
            }
            try attributes(node.attributes, on: dataset, label: path)
        case .hardLink:
            try writer.file.createHardLink(path, to: node.target)
        case .softLink:
            try writer.file.createSoftLink(path, to: node.target)
        }
    }
}

private struct Writer {
    let path: String
    let file: HDF5Handle

    /// Creates the group `name` and each missing group above it, one at a time: groups HDF5 would
    /// make on the way itself (intermediate groups) would record their creation times, and a
    /// restore must give the same bytes each time.
    func ensureGroup(_ name: String) throws {
        guard name != "/", !name.isEmpty, !file.linkExists(name) else { return }
        var prefix = name.hasPrefix("/") ? "/" : ""
        for part in name.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix == "/" ? "" : "/") + part
            if !file.linkExists(prefix) { _ = try file.createGroup(prefix) }
        }
    }

    /// A string attribute: fixed-length bytes (as Keras 2 writes them) or variable-length UTF-8.
    func stringAttribute(_ name: String, _ value: String, on objectName: String, variableLength: Bool = false) throws {
        let target = try file.openObject(objectName)
        let label = objectName + "@" + name
        if target.hasAttribute(name) { return }  // written once (a layer's `name`, the root's version)
        let type = try HDF5Handle.copyType(.cString, file: path, object: label)
        let bytes = Array(value.utf8)
        if variableLength {
            try type.setVariableLength()
            try type.setUTF8()
        } else {
            try type.setSize(Swift.max(1, bytes.count))
        }
        let space = try HDF5Handle.scalarSpace(file: path, object: label)
        let attribute = try target.createAttribute(name, type: type, space: space)
        if variableLength {
            try value.withCString { pointer in
                let pointers: [UnsafePointer<CChar>?] = [pointer]
                try pointers.withUnsafeBytes { try attribute.writeAttribute(type: type, from: $0.baseAddress!) }
            }
        } else {
            let padded = bytes.isEmpty ? [UInt8(0)] : bytes
            try padded.withUnsafeBytes { try attribute.writeAttribute(type: type, from: $0.baseAddress!) }
        }
    }

    /// An array of fixed-length byte strings, as Keras writes `layer_names` and `weight_names`;
    /// an empty list as an empty float64 array, as h5py writes `np.array([])`.
    func stringsAttribute(_ name: String, _ values: [String], on objectName: String) throws {
        let target = try file.openObject(objectName)
        let label = objectName + "@" + name
        let space = try HDF5Handle.simpleSpace([values.count], file: path, object: label)
        if values.isEmpty {
            _ = try target.createAttribute(name, type: HDF5Handle.copyType(.float64, file: path, object: label), space: space)
            return
        }
        let width = Swift.max(1, values.map(\.utf8.count).max() ?? 1)
        let type = try HDF5Handle.copyType(.cString, file: path, object: label)
        try type.setSize(width)
        try type.setNullPadded()
        var buffer = [UInt8](repeating: 0, count: width * values.count)
        for (i, value) in values.enumerated() { for (j, byte) in value.utf8.enumerated() { buffer[i * width + j] = byte } }
        let attribute = try target.createAttribute(name, type: type, space: space)
        try buffer.withUnsafeBytes { try attribute.writeAttribute(type: type, from: $0.baseAddress!) }
    }

    /// The HDF5 file type of a dtype, created where HDF5 has no predefined one (float16, bfloat16, bool).
    func fileType(_ dtype: DType, name: String) throws -> HDF5Handle {
        func copy(_ type: HDF5PredefinedType) throws -> HDF5Handle { try HDF5Handle.copyType(type, file: path, object: name) }
        switch dtype {
        case .float32: return try copy(.float32)
        case .float64: return try copy(.float64)
        case .float16, .bfloat16:
            let type = try copy(.float32)
            let (exponentPosition, exponentBits, mantissaBits, bias) = dtype == .float16 ? (10, 5, 10, 15) : (7, 8, 7, 127)
            try type.setFloatFields(
                signPosition: 15, exponentPosition: exponentPosition, exponentBits: exponentBits,
                mantissaPosition: 0, mantissaBits: mantissaBits)
            try type.setSize(2)
            try type.setExponentBias(bias)
            return type
        case .int8: return try copy(.int8)
        case .int16: return try copy(.int16)
        case .int32: return try copy(.int32)
        case .int64: return try copy(.int64)
        case .uint8: return try copy(.uint8)
        case .uint16: return try copy(.uint16)
        case .uint32: return try copy(.uint32)
        case .uint64: return try copy(.uint64)
        case .bool:
            // h5py's bool: an enum {FALSE = 0, TRUE = 1} over int8.
            let type = try HDF5Handle.createEnumeration(over: .nativeInt8, file: path, object: name)
            try type.insertEnumerationMember("FALSE", value: 0)
            try type.insertEnumerationMember("TRUE", value: 1)
            return type
        default:
            throw HDF5Error(.unsupported, file: path, "tensor `\(name)`: \(dtype.rawValue) has no HDF5 type Pith writes")
        }
    }

    /// Creates the dataset `name` for a tensor described by `info`, its storage allocated; returns
    /// where that storage starts in the file, or nil when the tensor has no bytes.
    func dataset(
        _ name: String, info: TensorInfo, order: HDF5CreationOrder = HDF5CreationOrder(), type exact: HDF5Handle? = nil
    ) throws -> (handle: HDF5Handle, offset: Int?) {
        let type = try exact ?? fileType(info.dtype, name: name)
        guard let count = Shape.elementCount(info.shape), info.dtype.storageBytes(count: count) != nil else {
            throw HDF5Error(.unsupported, file: path, "tensor `\(name)`: shape \(Shape.describe(info.shape)) is too large to address")
        }
        let space =
            try info.shape.isEmpty
            ? HDF5Handle.scalarSpace(file: path, object: name)
            : HDF5Handle.simpleSpace(info.shape, file: path, object: name)
        if let slash = name.lastIndex(of: "/"), slash != name.startIndex { try ensureGroup(String(name[..<slash])) }
        let dataset = try file.createDataset(name, type: type, space: space, order: order)
        return (dataset, info.bytes > 0 ? try dataset.dataOffset() : nil)
    }
}
