public import PithIR
internal import CHDF5

/// Writes models back as HDF5 in the layout they were read from (Keras 2 / Keras 3 legacy `.h5`,
/// Keras 3 `.weights.h5`, plain HDF5), from the tensors' origins and the model's metadata.
///
/// Keras files get their root attributes back (`keras_version`, `backend`, `model_config`,
/// `training_config`: every property the reader kept), `layer_names` and each layer's
/// `weight_names` as byte-string arrays as Keras writes them, and every weight at its original path.
/// Layers without weights and optimizer state are not written (Keras loads weights by
/// `weight_names`; optimizer state was never loaded). Tensors must be dense.
public enum HDF5Writer {
    public static func write(_ model: Model, to path: String) throws {
        h5Quiet()
        let access = try H5Handle(H5Pcreate(chdf5_p_file_access()), .propertyList, call: "H5Pcreate", file: path, object: "/")
        // Dense attribute storage (HDF5 1.8 format) lifts the 64 KiB limit on attributes such as model_config.
        try h5Check(H5Pset_libver_bounds(access.id, H5F_LIBVER_V18, H5F_LIBVER_V110), "H5Pset_libver_bounds", file: path, object: "/")
        let file = try H5Handle(H5Fcreate(path, chdf5_f_acc_trunc(), chdf5_p_default(), access.id), .file, call: "H5Fcreate", file: path, object: "/")
        let writer = Writer(path: path, file: file)
        let keras = [SourceFormat.keras2, .keras3Legacy].contains(model.format)
        if keras || model.format == .keras3Weights {
            for (key, value) in model.metadata.properties { try writer.stringAttribute(key, value, on: "/") }
            if let configuration = model.configuration { try writer.stringAttribute("model_config", configuration, on: "/") }
        }
        var layers: [String] = []
        var weightNames: [String: [String]] = [:]
        var layerGroup: [String: String] = [:]
        for tensor in model.tensors {
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
                } else if model.format == .keras3Weights, let name = tensor.consumer?.name, !name.isEmpty {
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
            let weightsGroup = model.format == .keras2 && layerGroup.values.allSatisfy({ !$0.hasPrefix("model_weights/") }) ? "/" : "model_weights"
            try writer.ensureGroup(weightsGroup)
            try writer.stringsAttribute("layer_names", layers, on: weightsGroup)
            for (key, value) in model.metadata.properties where key == "keras_version" || key == "backend" {
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
    let file: H5Handle

    func linkCreation() throws -> H5Handle {
        let list = try H5Handle(H5Pcreate(chdf5_p_link_create()), .propertyList, call: "H5Pcreate", file: path, object: "/")
        try h5Check(H5Pset_create_intermediate_group(list.id, 1), "H5Pset_create_intermediate_group", file: path, object: "/")
        return list
    }

    func ensureGroup(_ name: String) throws {
        guard name != "/", !name.isEmpty else { return }
        if H5Lexists(file.id, name, chdf5_p_default()) > 0 { return }
        _ = H5Eclear2(chdf5_e_default())
        let lcpl = try linkCreation()
        _ = try H5Handle(H5Gcreate2(file.id, name, lcpl.id, chdf5_p_default(), chdf5_p_default()), .group, call: "H5Gcreate2", file: path, object: name)
    }

    func object(_ name: String) throws -> H5Handle {
        if name == "/" || name.isEmpty { return try H5Handle(H5Gopen2(file.id, "/", chdf5_p_default()), .group, call: "H5Gopen2", file: path, object: "/") }
        return try H5Handle(H5Oopen(file.id, name, chdf5_p_default()), .object, call: "H5Oopen", file: path, object: name)
    }

    /// A string attribute: fixed-length bytes (as Keras 2 writes them) or variable-length UTF-8.
    func stringAttribute(_ name: String, _ value: String, on objectName: String, variableLength: Bool = false) throws {
        let target = try object(objectName)
        let label = objectName + "@" + name
        if H5Aexists(target.id, name) > 0 { return }  // written once (a layer's `name`, the root's version)
        _ = H5Eclear2(chdf5_e_default())
        let type = try H5Handle(H5Tcopy(chdf5_t_c_s1()), .datatype, call: "H5Tcopy", file: path, object: label)
        let bytes = Array(value.utf8)
        if variableLength {
            try h5Check(H5Tset_size(type.id, chdf5_t_variable()), "H5Tset_size", file: path, object: label)
            try h5Check(H5Tset_cset(type.id, H5T_CSET_UTF8), "H5Tset_cset", file: path, object: label)
        } else {
            try h5Check(H5Tset_size(type.id, Swift.max(1, bytes.count)), "H5Tset_size", file: path, object: label)
        }
        let space = try H5Handle(H5Screate(H5S_SCALAR), .dataspace, call: "H5Screate", file: path, object: label)
        let attribute = try H5Handle(H5Acreate2(target.id, name, type.id, space.id, chdf5_p_default(), chdf5_p_default()), .attribute, call: "H5Acreate2", file: path, object: label)
        if variableLength {
            try value.withCString { pointer in
                var pointers: [UnsafePointer<CChar>?] = [pointer]
                try h5Check(H5Awrite(attribute.id, type.id, &pointers), "H5Awrite", file: path, object: label)
            }
        } else {
            let padded = bytes.isEmpty ? [UInt8(0)] : bytes
            try h5Check(H5Awrite(attribute.id, type.id, padded), "H5Awrite", file: path, object: label)
        }
    }

    /// An array of fixed-length byte strings, as Keras writes `layer_names` and `weight_names`;
    /// an empty list as an empty float64 array, as h5py writes `np.array([])`.
    func stringsAttribute(_ name: String, _ values: [String], on objectName: String) throws {
        let target = try object(objectName)
        let label = objectName + "@" + name
        var dims: [hsize_t] = [hsize_t(values.count)]
        let space = try H5Handle(H5Screate_simple(1, &dims, nil), .dataspace, call: "H5Screate_simple", file: path, object: label)
        if values.isEmpty {
            let attribute = try H5Handle(H5Acreate2(target.id, name, chdf5_t_ieee_f64le(), space.id, chdf5_p_default(), chdf5_p_default()), .attribute, call: "H5Acreate2", file: path, object: label)
            _ = attribute
            return
        }
        let width = Swift.max(1, values.map(\.utf8.count).max() ?? 1)
        let type = try H5Handle(H5Tcopy(chdf5_t_c_s1()), .datatype, call: "H5Tcopy", file: path, object: label)
        try h5Check(H5Tset_size(type.id, width), "H5Tset_size", file: path, object: label)
        try h5Check(H5Tset_strpad(type.id, H5T_STR_NULLPAD), "H5Tset_strpad", file: path, object: label)
        var buffer = [UInt8](repeating: 0, count: width * values.count)
        for (i, value) in values.enumerated() { for (j, byte) in value.utf8.enumerated() { buffer[i * width + j] = byte } }
        let attribute = try H5Handle(H5Acreate2(target.id, name, type.id, space.id, chdf5_p_default(), chdf5_p_default()), .attribute, call: "H5Acreate2", file: path, object: label)
        try h5Check(H5Awrite(attribute.id, type.id, buffer), "H5Awrite", file: path, object: label)
    }

    /// The HDF5 file type of a dtype, created where HDF5 has no predefined one (float16, bfloat16, bool).
    func fileType(_ dtype: DType, name: String) throws -> H5Handle {
        func copy(_ id: hid_t) throws -> H5Handle { try H5Handle(H5Tcopy(id), .datatype, call: "H5Tcopy", file: path, object: name) }
        switch dtype {
        case .float32: return try copy(chdf5_t_ieee_f32le())
        case .float64: return try copy(chdf5_t_ieee_f64le())
        case .float16, .bfloat16:
            let type = try copy(chdf5_t_ieee_f32le())
            let (exponentPosition, exponentBits, mantissaBits, bias) = dtype == .float16 ? (10, 5, 10, 15) : (7, 8, 7, 127)
            try h5Check(H5Tset_fields(type.id, 15, exponentPosition, exponentBits, 0, mantissaBits), "H5Tset_fields", file: path, object: name)
            try h5Check(H5Tset_size(type.id, 2), "H5Tset_size", file: path, object: name)
            try h5Check(H5Tset_ebias(type.id, bias), "H5Tset_ebias", file: path, object: name)
            return type
        case .int8: return try copy(chdf5_t_std_i8le())
        case .int16: return try copy(chdf5_t_std_i16le())
        case .int32: return try copy(chdf5_t_std_i32le())
        case .int64: return try copy(chdf5_t_std_i64le())
        case .uint8: return try copy(chdf5_t_std_u8le())
        case .uint16: return try copy(chdf5_t_std_u16le())
        case .uint32: return try copy(chdf5_t_std_u32le())
        case .uint64: return try copy(chdf5_t_std_u64le())
        case .bool:
            // h5py's bool: an enum {FALSE = 0, TRUE = 1} over int8.
            let type = try H5Handle(H5Tenum_create(chdf5_t_native_int8()), .datatype, call: "H5Tenum_create", file: path, object: name)
            var no: Int8 = 0, yes: Int8 = 1
            try h5Check(H5Tenum_insert(type.id, "FALSE", &no), "H5Tenum_insert", file: path, object: name)
            try h5Check(H5Tenum_insert(type.id, "TRUE", &yes), "H5Tenum_insert", file: path, object: name)
            return type
        default:
            throw HDF5Error(.unsupported, file: path, "tensor `\(name)`: \(dtype.rawValue) has no HDF5 type Pith writes")
        }
    }

    func dataset(_ name: String, tensor: Tensor, buffer: TensorBuffer) throws {
        let type = try fileType(tensor.dtype, name: name)
        var dims = tensor.shape.map { hsize_t($0) }
        let space = try tensor.shape.isEmpty
            ? H5Handle(H5Screate(H5S_SCALAR), .dataspace, call: "H5Screate", file: path, object: name)
            : H5Handle(H5Screate_simple(Int32(dims.count), &dims, nil), .dataspace, call: "H5Screate_simple", file: path, object: name)
        let lcpl = try linkCreation()
        let dataset = try H5Handle(H5Dcreate2(file.id, name, type.id, space.id, lcpl.id, chdf5_p_default(), chdf5_p_default()), .dataset, call: "H5Dcreate2", file: path, object: name)
        guard buffer.count > 0 else { return }
        _ = try buffer.withUnsafeBytes { bytes in
            try h5Check(H5Dwrite(dataset.id, type.id, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), bytes.baseAddress), "H5Dwrite", file: path, object: name)
        }
    }
}
