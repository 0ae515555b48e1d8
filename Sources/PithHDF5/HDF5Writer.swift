public import PithIR

/// Writes models back as HDF5 in the layout they were read from (Keras 2 / Keras 3 legacy `.h5`,
/// Keras 3 `.weights.h5`, plain HDF5), from the tensors' origins and the model's metadata.
///
/// Keras files get their root attributes back (`keras_version`, `backend`, `model_config`,
/// `training_config`: every property the reader kept), `layer_names` and each layer's
/// `weight_names` as byte-string arrays as Keras writes them, and every weight at its original path.
/// Layers without weights and optimizer state are not written (Keras loads weights by
/// `weight_names`; optimizer state was never loaded).
///
/// Tensors are streamed: each is asked of its `TensorSource` once, in order, written into its
/// dataset and released before the next, so the most ever held is one tensor (the largest) and
/// HDF5's own bounded buffers, never the model. The attributes that list layers and weights are
/// written last, from the origins collected on the way.
public enum HDF5Writer {
    /// Writes `model`; compressed floating-point tensors are densified one at a time.
    public static func write(_ model: Model, to path: String) throws {
        try write(format: model.format, metadata: model.metadata, configuration: model.configuration,
                  source: TensorArray(model.tensors), to: path)
    }

    /// Writes the tensors of `source` (each with its Keras or dataset origin) as an HDF5 file of
    /// `format`, with `metadata`'s properties and the Keras `configuration` (`model_config`) as
    /// root attributes. Asks `source` for each tensor once, in order, on the calling thread.
    public static func write(format: SourceFormat, metadata: ModelMetadata, configuration: String?,
                             source: some TensorSource, to path: String) throws {
        h5Quiet()
        let writer = Writer(path: path, file: try HDF5Handle.createFile(path))
        let keras = format == .keras2 || format == .keras3Legacy
        if keras || format == .keras3Weights {
            for (key, value) in metadata.properties { try writer.stringAttribute(key, value, on: "/") }
            if let configuration { try writer.stringAttribute("model_config", configuration, on: "/") }
        }
        var layers: [String] = []
        var weightNames: [String: [String]] = [:]
        var layerGroup: [String: String] = [:]
        var worker = source.makeWorker()
        for index in 0..<source.tensorCount {
            let tensor = try source.denseTensor(index, worker: &worker)
            guard case .dense(let buffer) = tensor.storage else {
                throw HDF5Error(.unsupported, file: path, "tensor `\(tensor.name)`: densify compressed tensors before writing HDF5")
            }
            let datasetPath: String
            switch tensor.origin {
            case .kerasWeight(let layer, let weight, let path):
                datasetPath = path
                if keras {
                    if weightNames[layer] == nil { layers.append(layer) }
                    weightNames[layer, default: []].append(weight)
                    layerGroup[layer] = String(path.dropLast(weight.count + 1))
                } else if format == .keras3Weights, let name = tensor.consumer?.name, !name.isEmpty {
                    let vars = String(path.dropLast(weight.count + 1))
                    try writer.ensureGroup(vars)
                    try writer.stringAttribute("name", name, on: vars, variableLength: true)
                }
            case .dataset(let path): datasetPath = path
            default: datasetPath = tensor.name
            }
            try writer.dataset(datasetPath, tensor: tensor, buffer: buffer)
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
    }
}

private struct Writer {
    let path: String
    let file: HDF5Handle

    func ensureGroup(_ name: String) throws {
        guard name != "/", !name.isEmpty, !file.linkExists(name) else { return }
        _ = try file.createGroup(name)
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
            try type.setFloatFields(signPosition: 15, exponentPosition: exponentPosition, exponentBits: exponentBits,
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

    func dataset(_ name: String, tensor: Tensor, buffer: TensorBuffer) throws {
        let type = try fileType(tensor.dtype, name: name)
        let space = try tensor.shape.isEmpty
            ? HDF5Handle.scalarSpace(file: path, object: name)
            : HDF5Handle.simpleSpace(tensor.shape, file: path, object: name)
        let dataset = try file.createDataset(name, type: type, space: space)
        guard buffer.count > 0 else { return }
        try buffer.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            try dataset.writeDataset(memoryType: type, from: base)
        }
    }
}
