internal import CHDF5
import PithIR

/// What a dataset holds, read from its header without touching its data.
struct H5DatasetInfo {
    var dtype: DType?
    var shape: [Int]
    /// Why `dtype` is nil: a description of the element type found.
    var unsupportedType: String
}

extension H5File {
    /// Logical size may exceed stored size by at most this factor (gzip's
    /// ceiling is about 1032:1), so a small file cannot demand a huge allocation.
    static let maximumExpansion = 1100
    /// Datasets up to this size need no stored bytes to justify them (fill values).
    static let freeAllowance = 1 << 20

    private func elementType(_ type: hid_t) -> (DType?, String) {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            var signPosition = 0, exponentPosition = 0, exponentSize = 0, mantissaPosition = 0, mantissaSize = 0
            _ = H5Tget_fields(type, &signPosition, &exponentPosition, &exponentSize, &mantissaPosition, &mantissaSize)
            let layout = (size, exponentSize, mantissaSize)
            switch layout {
            case (2, 5, 10): return (.float16, "")
            case (2, 8, 7): return (.bfloat16, "")
            case (4, 8, 23): return (.float32, "")
            case (8, 11, 52): return (.float64, "")
            default: return (nil, "\(size * 8)-bit float with \(exponentSize) exponent and \(mantissaSize) mantissa bits")
            }
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            switch (size, signed) {
            case (1, true): return (.int8, "")
            case (1, false): return (.uint8, "")
            case (2, true): return (.int16, "")
            case (2, false): return (.uint16, "")
            case (4, true): return (.int32, "")
            case (4, false): return (.uint32, "")
            case (8, true): return (.int64, "")
            case (8, false): return (.uint64, "")
            default: return (nil, "\(size * 8)-bit integer")
            }
        case H5T_ENUM:
            // h5py stores numpy bool as an enum {FALSE = 0, TRUE = 1} over int8.
            if size == 1, H5Tget_nmembers(type) == 2 { return (.bool, "") }
            return (nil, "enum")
        case H5T_STRING: return (nil, "string")
        case H5T_COMPOUND: return (nil, "compound")
        case H5T_REFERENCE: return (nil, "reference")
        case H5T_ARRAY: return (nil, "array")
        case H5T_VLEN: return (nil, "variable-length")
        case H5T_OPAQUE: return (nil, "opaque")
        case H5T_BITFIELD: return (nil, "bitfield")
        default: return (nil, "unknown type class")
        }
    }

    /// Type and shape of the dataset `name` below `location`.
    func datasetInfo(_ name: String, in location: hid_t) throws -> H5DatasetInfo {
        let dataset = try H5Handle(H5Dopen2(location, name, chdf5_p_default()), .dataset, call: "H5Dopen2", file: path, object: name)
        return try info(of: dataset, name: name)
    }

    private func info(of dataset: H5Handle, name: String) throws -> H5DatasetInfo {
        let type = try H5Handle(H5Dget_type(dataset.id), .datatype, call: "H5Dget_type", file: path, object: name)
        let space = try H5Handle(H5Dget_space(dataset.id), .dataspace, call: "H5Dget_space", file: path, object: name)
        let rank = Int(try h5Check(H5Sget_simple_extent_ndims(space.id), "H5Sget_simple_extent_ndims", file: path, object: name))
        guard rank <= 32 else { throw HDF5Error(.malformed, file: path, "dataset `\(name)`: rank \(rank) exceeds HDF5's limit of 32") }
        var dimensions = [hsize_t](repeating: 0, count: rank)
        if rank > 0 {
            try h5Check(H5Sget_simple_extent_dims(space.id, &dimensions, nil), "H5Sget_simple_extent_dims", file: path, object: name)
        }
        let shape = try dimensions.map { dimension -> Int in
            guard dimension <= UInt64(Int.max) else { throw HDF5Error(.malformed, file: path, "dataset `\(name)`: dimension \(dimension) is too large") }
            return Int(dimension)
        }
        let (dtype, description) = elementType(type.id)
        return H5DatasetInfo(dtype: dtype, shape: shape, unsupportedType: description)
    }

    /// Reads the numeric dataset `name` below `location` into a little-endian buffer.
    /// Refuses, before allocating, a dataset whose size its stored bytes cannot justify.
    func readDataset(_ name: String, in location: hid_t) throws -> (dtype: DType, shape: [Int], buffer: TensorBuffer) {
        let dataset = try H5Handle(H5Dopen2(location, name, chdf5_p_default()), .dataset, call: "H5Dopen2", file: path, object: name)
        let info = try info(of: dataset, name: name)
        guard let dtype = info.dtype else {
            throw HDF5Error(.unsupported, file: path, "dataset `\(name)`: element type is \(info.unsupportedType), not a number type Pith reads")
        }
        guard let count = Shape.elementCount(info.shape), let byteCount = dtype.storageBytes(count: count) else {
            throw HDF5Error(.malformed, file: path, "dataset `\(name)`: shape \(Shape.describe(info.shape)) is too large to address")
        }
        let stored = Int(H5Dget_storage_size(dataset.id))
        let (limit, overflow) = stored.multipliedReportingOverflow(by: Self.maximumExpansion)
        guard byteCount <= Self.freeAllowance || (!overflow && byteCount <= limit) || overflow else {
            throw HDF5Error(.malformed, file: path, "dataset `\(name)`: shape \(Shape.describe(info.shape)) of \(dtype.rawValue) needs \(byteCount) bytes, but the file stores only \(stored) for it")
        }
        let fileType = try H5Handle(H5Dget_type(dataset.id), .datatype, call: "H5Dget_type", file: path, object: name)
        let memoryType = try H5Handle(H5Tcopy(fileType.id), .datatype, call: "H5Tcopy", file: path, object: name)
        if dtype != .bool {
            try h5Check(H5Tset_order(memoryType.id, H5T_ORDER_LE), "H5Tset_order", file: path, object: name)
        }
        let buffer = try TensorBuffer(count: byteCount) { out in
            guard count > 0 else { return }
            try h5Check(
                H5Dread(dataset.id, memoryType.id, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), out.baseAddress),
                "H5Dread", file: path, object: name)
        }
        return (dtype, info.shape, buffer)
    }
}
