import PithIR

/// What a dataset holds, read from its header without touching its data.
struct HDF5DatasetInfo {
    var dtype: DType?
    var shape: [Int]
    /// Why `dtype` is nil: a description of the element type found.
    var unsupportedType: String
}

extension HDF5File {
    /// Logical size may exceed stored size by at most this factor (gzip's
    /// ceiling is about 1032:1), so a small file cannot demand a huge allocation.
    static let maximumExpansion = 1100
    /// Datasets up to this size need no stored bytes to justify them (fill values).
    static let freeAllowance = 1 << 20

    /// The dtype of an HDF5 element type, or nil with a description of the type found.
    static func elementType(_ type: HDF5Handle) -> (DType?, String) {
        let size = type.typeSize
        switch type.typeClass {
        case .float:
            let (exponentSize, mantissaSize) = type.floatFieldWidths
            let layout = (size, exponentSize, mantissaSize)
            switch layout {
            case (2, 5, 10): return (.float16, "")
            case (2, 8, 7): return (.bfloat16, "")
            case (4, 8, 23): return (.float32, "")
            case (8, 11, 52): return (.float64, "")
            default: return (nil, "\(size * 8)-bit float with \(exponentSize) exponent and \(mantissaSize) mantissa bits")
            }
        case .integer:
            let signed = type.isSigned
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
        case .enumeration:
            // h5py stores numpy bool as an enum {FALSE = 0, TRUE = 1} over int8.
            if size == 1, type.enumerationMemberCount == 2 { return (.bool, "") }
            return (nil, "enum")
        case .string: return (nil, "string")
        case .compound: return (nil, "compound")
        case .reference: return (nil, "reference")
        case .array: return (nil, "array")
        case .variableLength: return (nil, "variable-length")
        case .opaque: return (nil, "opaque")
        case .bitfield: return (nil, "bitfield")
        default: return (nil, "unknown type class")
        }
    }

    /// Type and shape of the dataset `name` below `location`.
    func datasetInfo(_ name: String, in location: HDF5ObjectID) throws -> HDF5DatasetInfo {
        try info(of: openDataset(name, in: location), name: name)
    }

    private func info(of dataset: HDF5Handle, name: String) throws -> HDF5DatasetInfo {
        let type = try dataset.datasetType()
        let space = try dataset.datasetSpace()
        let rank = try space.rank()
        guard rank <= 32 else { throw HDF5Error(.malformed, file: path, "dataset `\(name)`: rank \(rank) exceeds HDF5's limit of 32") }
        let shape = try space.dimensions(rank: rank).map { dimension -> Int in
            guard let size = Int(exactly: dimension) else { throw HDF5Error(.malformed, file: path, "dataset `\(name)`: dimension \(dimension) is too large") }
            return size
        }
        let (dtype, description) = Self.elementType(type)
        return HDF5DatasetInfo(dtype: dtype, shape: shape, unsupportedType: description)
    }

    /// Reads the numeric dataset `name` below `location` into a little-endian buffer.
    /// Refuses, before allocating, a dataset whose size its stored bytes cannot justify.
    func readDataset(_ name: String, in location: HDF5ObjectID) throws -> (dtype: DType, shape: [Int], buffer: TensorBuffer) {
        let dataset = try openDataset(name, in: location)
        let info = try info(of: dataset, name: name)
        guard let dtype = info.dtype else {
            throw HDF5Error(.unsupported, file: path, "dataset `\(name)`: element type is \(info.unsupportedType), not a number type Pith reads")
        }
        guard let count = Shape.elementCount(info.shape), let byteCount = dtype.storageBytes(count: count) else {
            throw HDF5Error(.malformed, file: path, "dataset `\(name)`: shape \(Shape.describe(info.shape)) is too large to address")
        }
        let stored = try dataset.storageSize()
        let (limit, overflow) = stored.multipliedReportingOverflow(by: Self.maximumExpansion)
        guard byteCount <= Self.freeAllowance || (!overflow && byteCount <= limit) || overflow else {
            throw HDF5Error(
                .malformed, file: path,
                "dataset `\(name)`: shape \(Shape.describe(info.shape)) of \(dtype.rawValue) needs \(byteCount) bytes, but the file stores only \(stored) for it"
            )
        }
        // The probe (`HDF5Probe`) leaves out contiguous and compact data, which libhdf5 copies from
        // one place of the file without walking anything the file says.
        if probing, try !dataset.isChunked() { return (dtype, info.shape, TensorBuffer(bytes: [])) }
        let memoryType = try dataset.datasetType().copyType()
        if dtype != .bool {
            try memoryType.setLittleEndian()
        }
        let buffer = try TensorBuffer(count: byteCount) { out in
            guard count > 0, let base = out.baseAddress else { return }
            try dataset.readDataset(memoryType: memoryType, into: base)
        }
        return (dtype, info.shape, buffer)
    }
}
