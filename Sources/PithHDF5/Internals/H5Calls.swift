internal import CHDF5
import PithIR
#if canImport(Glibc)
import Glibc
#endif

/// Every libhdf5 call of Pith goes through this file, the only one in PithHDF5 that imports CHDF5:
/// thin wrappers that turn negative return codes into `HDF5Error`s carrying the library's own
/// error stack (`h5Check`), sizes and counts converted to `Int` without trapping (`h5Int`), C
/// constants behind Swift names, and handles that close themselves and know what they name.

// MARK: - Errors

/// Silences HDF5's automatic error printing on the calling thread. HDF5 keeps
/// its error state per thread, so every entry point calls this first.
func h5Quiet() {
    _ = H5Eset_auto2(chdf5_e_default(), nil, nil)
}

/// The messages on the calling thread's HDF5 error stack, innermost last, then clears it.
func h5ErrorStack() -> String {
    final class Collector { var lines: [String] = [] }
    let collector = Collector()
    let context = Unmanaged.passUnretained(collector).toOpaque()
    _ = H5Ewalk2(
        chdf5_e_default(), H5E_WALK_DOWNWARD,
        { _, error, data in
            guard let error, let data else { return 0 }
            let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
            if let description = error.pointee.desc {
                let text = String(cString: description)
                if !text.isEmpty, collector.lines.last != text { collector.lines.append(text) }
            }
            return 0
        }, context)
    _ = H5Eclear2(chdf5_e_default())
    return collector.lines.joined(separator: ": ")
}

/// Clears the calling thread's HDF5 error stack after a failure that is an answer, not an error
/// (a link or attribute that does not exist).
private func h5ClearErrors() {
    _ = H5Eclear2(chdf5_e_default())
}

/// Throws when `status` is negative, naming the call and the object.
@discardableResult
func h5Check<T: BinaryInteger>(_ status: T, _ call: String, file: String, object: String) throws -> T {
    if status < 0 {
        let stack = h5ErrorStack()
        throw HDF5Error(.malformed, file: file, "`\(object)`: \(call) failed" + (stack.isEmpty ? "" : " (\(stack))"))
    }
    return status
}

/// A size or count `call` returned, as an `Int`; throws, naming the call, when it does not fit
/// (a damaged file can make the library report anything) instead of trapping.
func h5Int<T: BinaryInteger>(_ value: T, _ call: String, file: String, object: String) throws -> Int {
    guard let result = Int(exactly: value) else {
        throw HDF5Error(.malformed, file: file, "`\(object)`: \(call) reports \(value), more than Pith can address")
    }
    return result
}

// MARK: - Handles

/// An HDF5 identifier (of a file, group, dataset, …) as the rest of PithHDF5 names it.
typealias HDF5ObjectID = hid_t

/// An open HDF5 identifier that closes itself, with the file and the object (`group/dataset`,
/// `object@attribute`) it belongs to, which its errors name.
final class HDF5Handle {
    enum Kind { case file, group, dataset, attribute, datatype, dataspace, propertyList, object }
    let id: hid_t
    let kind: Kind
    let file: String
    let object: String
    /// False once `close()` has closed it.
    private var isOpen = true

    /// Wraps `id`, throwing if `call`, which produced it, failed.
    init(_ id: hid_t, _ kind: Kind, call: String, file: String, object: String) throws {
        try h5Check(id, call, file: file, object: object)
        self.id = id
        self.kind = kind
        self.file = file
        self.object = object
    }

    deinit {
        guard isOpen else { return }
        switch kind {
        case .file: _ = H5Fclose(id)
        case .group: _ = H5Gclose(id)
        case .dataset: _ = H5Dclose(id)
        case .attribute: _ = H5Aclose(id)
        case .datatype: _ = H5Tclose(id)
        case .dataspace: _ = H5Sclose(id)
        case .propertyList: _ = H5Pclose(id)
        case .object: _ = H5Oclose(id)
        }
    }

    /// Closes this file now, which writes whatever libhdf5 still holds of it: a failure is an
    /// error here, where `deinit` could only drop it. Every other handle in the file must be closed.
    func closeFile() throws {
        precondition(kind == .file && isOpen, "HDF5Handle.closeFile: not an open file")
        isOpen = false
        try check(H5Fclose(id), "H5Fclose")
    }

    /// Throws when `status`, returned by `call` on this object, is negative.
    fileprivate func check<T: BinaryInteger>(_ status: T, _ call: String) throws {
        try h5Check(status, call, file: file, object: object)
    }
}

// MARK: - Files, groups and links

extension HDF5Handle {
    /// Creates the file at `path`, replacing any file there, in the HDF5 1.8 format or later:
    /// its dense attribute storage lifts the 64 KiB limit on attributes such as `model_config`.
    /// No object records its creation and modification times, so that one container always
    /// restores to the same bytes.
    /// `order` gives the root group's creation-order flags (as `creationOrder(of:)` reads them);
    /// `earliestFormat` writes every object in the oldest format that can hold it, as h5py does by
    /// default (a file of superblock version 0 or 1, see `HDF5File.usesEarliestFormat`).
    static func createFile(_ path: String, order: HDF5CreationOrder = HDF5CreationOrder(), earliestFormat: Bool = false) throws -> HDF5Handle {
        let access = try HDF5Handle(H5Pcreate(chdf5_p_file_access()), .propertyList, call: "H5Pcreate", file: path, object: "/")
        try access.check(
            H5Pset_libver_bounds(access.id, earliestFormat ? H5F_LIBVER_EARLIEST : H5F_LIBVER_V18, H5F_LIBVER_V110), "H5Pset_libver_bounds")
        let creation = try HDF5Handle(H5Pcreate(chdf5_p_file_create()), .propertyList, call: "H5Pcreate", file: path, object: "/")
        try creation.check(H5Pset_obj_track_times(creation.id, false), "H5Pset_obj_track_times")
        try creation.setCreationOrder(order, links: true)
        return try HDF5Handle(H5Fcreate(path, chdf5_f_acc_trunc(), creation.id, access.id), .file, call: "H5Fcreate", file: path, object: "/")
    }

    /// Whether the link `name` exists below this file or group (false when a group on the way is
    /// missing too).
    func linkExists(_ name: String) -> Bool {
        let result = H5Lexists(id, name, chdf5_p_default())
        if result < 0 { h5ClearErrors() }
        return result > 0
    }

    /// A link-creation property list that creates missing intermediate groups.
    private func creatingIntermediateGroups() throws -> HDF5Handle {
        let list = try HDF5Handle(H5Pcreate(chdf5_p_link_create()), .propertyList, call: "H5Pcreate", file: file, object: object)
        try list.check(H5Pset_create_intermediate_group(list.id, 1), "H5Pset_create_intermediate_group")
        return list
    }

    /// Creates the group `name` below this file or group, with any missing groups on the way.
    /// `order` gives its creation-order flags (tracked / indexed links and attributes).
    func createGroup(_ name: String, order: HDF5CreationOrder = HDF5CreationOrder()) throws -> HDF5Handle {
        let links = try creatingIntermediateGroups()
        let creation = try HDF5Handle(H5Pcreate(chdf5_p_group_create()), .propertyList, call: "H5Pcreate", file: file, object: name)
        try creation.check(H5Pset_obj_track_times(creation.id, false), "H5Pset_obj_track_times")
        try creation.setCreationOrder(order, links: true)
        return try HDF5Handle(H5Gcreate2(id, name, links.id, creation.id, chdf5_p_default()), .group, call: "H5Gcreate2", file: file, object: name)
    }

    /// Opens the group or dataset `name` below this file or group; `/` (or nothing) is the root group.
    func openObject(_ name: String) throws -> HDF5Handle {
        if name == "/" || name.isEmpty {
            return try HDF5Handle(H5Gopen2(id, "/", chdf5_p_default()), .group, call: "H5Gopen2", file: file, object: "/")
        }
        return try HDF5Handle(H5Oopen(id, name, chdf5_p_default()), .object, call: "H5Oopen", file: file, object: name)
    }
}

// MARK: - Datatypes

/// The predefined HDF5 datatypes Pith copies. File types are little-endian, as h5py writes them.
enum HDF5PredefinedType {
    /// A one-byte C string. The corresponding C constant is `H5T_C_S1`.
    case cString
    /// The corresponding C constant is `H5T_IEEE_F32LE`.
    case float32
    /// The corresponding C constant is `H5T_IEEE_F64LE`.
    case float64
    /// The corresponding C constant is `H5T_STD_I8LE`.
    case int8
    /// The corresponding C constant is `H5T_STD_I16LE`.
    case int16
    /// The corresponding C constant is `H5T_STD_I32LE`.
    case int32
    /// The corresponding C constant is `H5T_STD_I64LE`.
    case int64
    /// The corresponding C constant is `H5T_STD_U8LE`.
    case uint8
    /// The corresponding C constant is `H5T_STD_U16LE`.
    case uint16
    /// The corresponding C constant is `H5T_STD_U32LE`.
    case uint32
    /// The corresponding C constant is `H5T_STD_U64LE`.
    case uint64
    /// The machine's `int8_t` (h5py's base type for bool enums). The corresponding C constant is `H5T_NATIVE_INT8`.
    case nativeInt8

    fileprivate var id: hid_t {
        switch self {
        case .cString: return chdf5_t_c_s1()
        case .float32: return chdf5_t_ieee_f32le()
        case .float64: return chdf5_t_ieee_f64le()
        case .int8: return chdf5_t_std_i8le()
        case .int16: return chdf5_t_std_i16le()
        case .int32: return chdf5_t_std_i32le()
        case .int64: return chdf5_t_std_i64le()
        case .uint8: return chdf5_t_std_u8le()
        case .uint16: return chdf5_t_std_u16le()
        case .uint32: return chdf5_t_std_u32le()
        case .uint64: return chdf5_t_std_u64le()
        case .nativeInt8: return chdf5_t_native_int8()
        }
    }
}

/// The class of an HDF5 datatype.
struct HDF5TypeClass: RawRepresentable, Hashable {
    var rawValue: Int32

    /// The corresponding C constant is `H5T_INTEGER`.
    static let integer = HDF5TypeClass(rawValue: H5T_INTEGER.rawValue)
    /// The corresponding C constant is `H5T_FLOAT`.
    static let float = HDF5TypeClass(rawValue: H5T_FLOAT.rawValue)
    /// The corresponding C constant is `H5T_STRING`.
    static let string = HDF5TypeClass(rawValue: H5T_STRING.rawValue)
    /// The corresponding C constant is `H5T_BITFIELD`.
    static let bitfield = HDF5TypeClass(rawValue: H5T_BITFIELD.rawValue)
    /// The corresponding C constant is `H5T_OPAQUE`.
    static let opaque = HDF5TypeClass(rawValue: H5T_OPAQUE.rawValue)
    /// The corresponding C constant is `H5T_COMPOUND`.
    static let compound = HDF5TypeClass(rawValue: H5T_COMPOUND.rawValue)
    /// The corresponding C constant is `H5T_REFERENCE`.
    static let reference = HDF5TypeClass(rawValue: H5T_REFERENCE.rawValue)
    /// The corresponding C constant is `H5T_ENUM`.
    static let enumeration = HDF5TypeClass(rawValue: H5T_ENUM.rawValue)
    /// The corresponding C constant is `H5T_VLEN`.
    static let variableLength = HDF5TypeClass(rawValue: H5T_VLEN.rawValue)
    /// The corresponding C constant is `H5T_ARRAY`.
    static let array = HDF5TypeClass(rawValue: H5T_ARRAY.rawValue)
}

extension HDF5Handle {
    /// A modifiable copy of a predefined datatype, for `object` in `file`.
    static func copyType(_ type: HDF5PredefinedType, file: String, object: String) throws -> HDF5Handle {
        try HDF5Handle(H5Tcopy(type.id), .datatype, call: "H5Tcopy", file: file, object: object)
    }

    /// A modifiable copy of this datatype.
    func copyType() throws -> HDF5Handle {
        try HDF5Handle(H5Tcopy(id), .datatype, call: "H5Tcopy", file: file, object: object)
    }

    /// An empty enumeration datatype over the integer type `base`, for `object` in `file`.
    static func createEnumeration(over base: HDF5PredefinedType, file: String, object: String) throws -> HDF5Handle {
        try HDF5Handle(H5Tenum_create(base.id), .datatype, call: "H5Tenum_create", file: file, object: object)
    }

    /// Adds the member `name` = `value` to this enumeration over int8.
    func insertEnumerationMember(_ name: String, value: Int8) throws {
        var value = value
        try check(H5Tenum_insert(id, name, &value), "H5Tenum_insert")
    }

    /// Sets the size of this datatype in bytes.
    func setSize(_ bytes: Int) throws {
        try check(H5Tset_size(id, bytes), "H5Tset_size")
    }

    /// Makes this string datatype variable-length. The corresponding C constant is `H5T_VARIABLE`.
    func setVariableLength() throws {
        try check(H5Tset_size(id, chdf5_t_variable()), "H5Tset_size")
    }

    /// Marks this string datatype UTF-8. The corresponding C constant is `H5T_CSET_UTF8`.
    func setUTF8() throws {
        try check(H5Tset_cset(id, H5T_CSET_UTF8), "H5Tset_cset")
    }

    /// Pads this fixed-length string datatype with NULs, as numpy's `S` strings are. The
    /// corresponding C constant is `H5T_STR_NULLPAD`.
    func setNullPadded() throws {
        try check(H5Tset_strpad(id, H5T_STR_NULLPAD), "H5Tset_strpad")
    }

    /// Makes this datatype little-endian. The corresponding C constant is `H5T_ORDER_LE`.
    func setLittleEndian() throws {
        try check(H5Tset_order(id, H5T_ORDER_LE), "H5Tset_order")
    }

    /// Places the sign, exponent and mantissa of this floating-point datatype (bit positions).
    func setFloatFields(signPosition: Int, exponentPosition: Int, exponentBits: Int, mantissaPosition: Int, mantissaBits: Int) throws {
        try check(H5Tset_fields(id, signPosition, exponentPosition, exponentBits, mantissaPosition, mantissaBits), "H5Tset_fields")
    }

    /// Sets the exponent bias of this floating-point datatype.
    func setExponentBias(_ bias: Int) throws {
        try check(H5Tset_ebias(id, bias), "H5Tset_ebias")
    }

    /// The class of this datatype.
    var typeClass: HDF5TypeClass { HDF5TypeClass(rawValue: H5Tget_class(id).rawValue) }

    /// The size of this datatype in bytes; 0 when the library cannot tell.
    var typeSize: Int { H5Tget_size(id) }

    /// The exponent and mantissa widths in bits of this floating-point datatype; 0 when the
    /// library cannot tell.
    var floatFieldWidths: (exponentBits: Int, mantissaBits: Int) {
        var signPosition = 0, exponentPosition = 0, exponentBits = 0, mantissaPosition = 0, mantissaBits = 0
        if H5Tget_fields(id, &signPosition, &exponentPosition, &exponentBits, &mantissaPosition, &mantissaBits) < 0 {
            h5ClearErrors()
            return (0, 0)
        }
        return (exponentBits, mantissaBits)
    }

    /// Whether this datatype's elements are little-endian (or have no byte order: one byte).
    /// The corresponding C constants are `H5T_ORDER_LE` and `H5T_ORDER_NONE`.
    var isLittleEndian: Bool {
        let order = H5Tget_order(id)
        if order.rawValue < 0 { h5ClearErrors() }
        return order == H5T_ORDER_LE || order == H5T_ORDER_NONE || (order.rawValue >= 0 && typeSize == 1)
    }

    /// Whether this integer datatype is two's-complement signed. The corresponding C constant is `H5T_SGN_2`.
    var isSigned: Bool { H5Tget_sign(id) == H5T_SGN_2 }

    /// The number of members of this enumeration datatype; negative when the library cannot tell.
    var enumerationMemberCount: Int { Int(H5Tget_nmembers(id)) }
}

// MARK: - Dataspaces

extension HDF5Handle {
    /// A dataspace of one element, for `object` in `file`. The corresponding C constant is `H5S_SCALAR`.
    static func scalarSpace(file: String, object: String) throws -> HDF5Handle {
        try HDF5Handle(H5Screate(H5S_SCALAR), .dataspace, call: "H5Screate", file: file, object: object)
    }

    /// A fixed-size dataspace of `dimensions` (each at least 0), for `object` in `file`.
    static func simpleSpace(_ dimensions: [Int], file: String, object: String) throws -> HDF5Handle {
        var sizes = try dimensions.map { dimension -> hsize_t in
            guard let size = hsize_t(exactly: dimension) else {
                throw HDF5Error(.unsupported, file: file, "`\(object)`: dimension \(dimension) cannot be an HDF5 dimension")
            }
            return size
        }
        guard let rank = Int32(exactly: sizes.count) else {
            throw HDF5Error(.unsupported, file: file, "`\(object)`: rank \(sizes.count) cannot be an HDF5 rank")
        }
        return try HDF5Handle(H5Screate_simple(rank, &sizes, nil), .dataspace, call: "H5Screate_simple", file: file, object: object)
    }

    /// The rank of this dataspace (0 for a scalar).
    func rank() throws -> Int {
        let rank = H5Sget_simple_extent_ndims(id)
        try check(rank, "H5Sget_simple_extent_ndims")
        return Int(rank)
    }

    /// The current dimensions of this dataspace, of rank `rank` (from `rank()`), as HDF5 stores
    /// them: the caller converts them to `Int` with its own message.
    func dimensions(rank: Int) throws -> [UInt64] {
        var dimensions = [hsize_t](repeating: 0, count: rank)
        if rank > 0 {
            try check(H5Sget_simple_extent_dims(id, &dimensions, nil), "H5Sget_simple_extent_dims")
        }
        return dimensions.map { UInt64($0) }
    }

    /// The number of elements of this dataspace.
    func elementCount() throws -> Int {
        let count = H5Sget_simple_extent_npoints(id)
        try check(count, "H5Sget_simple_extent_npoints")
        return try h5Int(count, "H5Sget_simple_extent_npoints", file: file, object: object)
    }
}

// MARK: - Attributes

extension HDF5Handle {
    /// Whether this object has the attribute `name` (false when the library cannot tell).
    func hasAttribute(_ name: String) -> Bool {
        let result = H5Aexists(id, name)
        if result < 0 { h5ClearErrors() }
        return result > 0
    }

    /// Creates the attribute `name` on this object; its errors name `object@name`.
    func createAttribute(_ name: String, type: HDF5Handle, space: HDF5Handle) throws -> HDF5Handle {
        try HDF5Handle(
            H5Acreate2(id, name, type.id, space.id, chdf5_p_default(), chdf5_p_default()),
            .attribute, call: "H5Acreate2", file: file, object: object + "@" + name)
    }

    /// Writes this attribute's value from `bytes`, laid out as `type` says.
    func writeAttribute(type: HDF5Handle, from bytes: UnsafeRawPointer) throws {
        try check(H5Awrite(id, type.id, bytes), "H5Awrite")
    }
}

// MARK: - Datasets

extension HDF5Handle {
    /// Creates the dataset `name` below this file or group, with any missing groups on the way:
    /// contiguous, its storage allocated in the file at once and never filled (the caller writes
    /// every byte of it, at `dataOffset()`). The corresponding C constants are
    /// `H5D_ALLOC_TIME_EARLY` and `H5D_FILL_TIME_NEVER`.
    /// With `written` false (a dataset libhdf5 writes itself, `write(_:type:dataset:)`), the
    /// storage is left to libhdf5's defaults, which variable-length types need.
    func createDataset(
        _ name: String, type: HDF5Handle, space: HDF5Handle, order: HDF5CreationOrder = HDF5CreationOrder(), written: Bool = true
    ) throws -> HDF5Handle {
        let links = try creatingIntermediateGroups()
        let creation = try HDF5Handle(H5Pcreate(chdf5_p_dataset_create()), .propertyList, call: "H5Pcreate", file: file, object: name)
        try creation.setCreationOrder(order, links: false)
        if written {
            try creation.check(H5Pset_alloc_time(creation.id, H5D_ALLOC_TIME_EARLY), "H5Pset_alloc_time")
            try creation.check(H5Pset_fill_time(creation.id, H5D_FILL_TIME_NEVER), "H5Pset_fill_time")
        }
        try creation.check(H5Pset_obj_track_times(creation.id, false), "H5Pset_obj_track_times")
        return try HDF5Handle(
            H5Dcreate2(id, name, type.id, space.id, links.id, creation.id, chdf5_p_default()),
            .dataset, call: "H5Dcreate2", file: file, object: name)
    }

    /// Where this contiguous dataset's bytes start in the file (a byte offset: Pith writes no user
    /// block). Throws when it has no storage there (nothing allocated, or chunked).
    func dataOffset() throws -> Int {
        let address = H5Dget_offset(id)
        guard address != chdf5_haddr_undef() else {
            let stack = h5ErrorStack()
            throw HDF5Error(.malformed, file: file, "`\(object)`: H5Dget_offset found no contiguous storage" + (stack.isEmpty ? "" : " (\(stack))"))
        }
        return try h5Int(address, "H5Dget_offset", file: file, object: object)
    }

    /// Reads this whole dataset into `bytes`, laid out as `memoryType` says.
    func readDataset(memoryType: HDF5Handle, into bytes: UnsafeMutableRawPointer) throws {
        try check(H5Dread(id, memoryType.id, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), bytes), "H5Dread")
    }

    /// This dataset's datatype in the file.
    func datasetType() throws -> HDF5Handle {
        try HDF5Handle(H5Dget_type(id), .datatype, call: "H5Dget_type", file: file, object: object)
    }

    /// This dataset's dataspace.
    func datasetSpace() throws -> HDF5Handle {
        try HDF5Handle(H5Dget_space(id), .dataspace, call: "H5Dget_space", file: file, object: object)
    }

    /// The bytes the file stores for this dataset (0 when none are allocated, or on error).
    func storageSize() throws -> Int {
        try h5Int(H5Dget_storage_size(id), "H5Dget_storage_size", file: file, object: object)
    }

    /// Whether this dataset is stored in chunks (which libhdf5 finds through a B-tree and may filter),
    /// rather than in one contiguous block or inside its object header.
    func isChunked() throws -> Bool {
        let plist = try HDF5Handle(H5Dget_create_plist(id), .propertyList, call: "H5Dget_create_plist", file: file, object: object)
        let layout = H5Pget_layout(plist.id)
        try check(layout.rawValue, "H5Pget_layout")
        return layout == H5D_CHUNKED
    }
}

// MARK: - Reading files

/// The kind of object a link points to.
enum HDF5ObjectKind { case group, dataset, other }

/// A file opened read-only, with the operations the Keras reader needs.
struct HDF5File {
    /// Most bytes a string attribute may take in memory (fixed-length bytes, or one pointer per
    /// string): Keras' largest, `model_config`, is a few megabytes.
    static let maximumAttributeBytes = 1 << 30

    let path: String
    let handle: HDF5Handle

    /// True in the child process of `HDF5Probe`, which reads chunked datasets only.
    let probing: Bool
    /// The file's size: an attribute's elements are stored in the file, so it bounds their count.
    let fileBytes: Int

    init(path: String, probing: Bool = false) throws {
        var status = stat()
        guard stat(path, &status) == 0 else { throw HDF5Error(.io, file: path, "cannot read the file's status") }
        fileBytes = Int(status.st_size)
        h5Quiet()
        let id = H5Fopen(path, chdf5_f_acc_rdonly(), chdf5_p_default())
        if id < 0 {
            let stack = h5ErrorStack()
            throw HDF5Error(.malformed, file: path, "not a readable HDF5 file" + (stack.isEmpty ? "" : " (\(stack))"))
        }
        self.path = path
        self.probing = probing
        handle = try HDF5Handle(id, .file, call: "H5Fopen", file: path, object: "/")
    }

    var root: HDF5ObjectID { handle.id }

    /// Whether a link `name` exists below `location` (every path component is checked).
    func exists(_ name: String, in location: HDF5ObjectID) -> Bool {
        var prefix = ""
        for component in name.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + component
            if H5Lexists(location, prefix, chdf5_p_default()) <= 0 {
                h5ClearErrors()
                return false
            }
        }
        return true
    }

    func kind(of name: String, in location: HDF5ObjectID) -> HDF5ObjectKind {
        object(name, in: location)?.kind ?? .other
    }

    /// The kind of object `name` names and its address in the file, which identifies it
    /// whatever path leads to it (hard links can make a group reachable twice, or form a cycle).
    func object(_ name: String, in location: HDF5ObjectID) -> (kind: HDF5ObjectKind, address: UInt64)? {
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(location, name, &info, UInt32(H5O_INFO_BASIC), chdf5_p_default()) >= 0 else {
            h5ClearErrors()
            return nil
        }
        switch info.type {
        case H5O_TYPE_GROUP: return (.group, UInt64(info.addr))
        case H5O_TYPE_DATASET: return (.dataset, UInt64(info.addr))
        default: return (.other, UInt64(info.addr))
        }
    }

    func openGroup(_ name: String, in location: HDF5ObjectID) throws -> HDF5Handle {
        try HDF5Handle(H5Gopen2(location, name, chdf5_p_default()), .group, call: "H5Gopen2", file: path, object: name)
    }

    func openDataset(_ name: String, in location: HDF5ObjectID) throws -> HDF5Handle {
        try HDF5Handle(H5Dopen2(location, name, chdf5_p_default()), .dataset, call: "H5Dopen2", file: path, object: name)
    }

    /// Names of the hard links in a group, in name order.
    func children(of group: HDF5ObjectID, name: String) throws -> [String] {
        final class Collector { var names: [String] = [] }
        let collector = Collector()
        var index: hsize_t = 0
        let status = H5Literate(
            group, H5_INDEX_NAME, H5_ITER_INC, &index,
            { _, linkName, info, data in
                guard let linkName, let info, let data else { return 0 }
                if info.pointee.type == H5L_TYPE_HARD {
                    Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: linkName))
                }
                return 0
            }, Unmanaged.passUnretained(collector).toOpaque())
        try h5Check(status, "H5Literate", file: path, object: name)
        return collector.names
    }

    /// Names of the attributes of an object, in name order (in creation order when `creationOrder`).
    func attributeNames(of object: HDF5ObjectID, name: String, creationOrder: Bool = false) throws -> [String] {
        final class Collector { var names: [String] = [] }
        let collector = Collector()
        var index: hsize_t = 0
        let status = H5Aiterate2(
            object, creationOrder ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME, H5_ITER_INC, &index,
            { _, attributeName, _, data in
                guard let attributeName, let data else { return 0 }
                Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: attributeName))
                return 0
            }, Unmanaged.passUnretained(collector).toOpaque())
        try h5Check(status, "H5Aiterate2", file: path, object: name)
        return collector.names
    }

    func hasAttribute(_ attribute: String, on object: HDF5ObjectID) -> Bool {
        let result = H5Aexists(object, attribute)
        if result < 0 { h5ClearErrors() }
        return result > 0
    }

    /// A string-list attribute as Keras writes them: variable- or fixed-length
    /// strings, scalar or array; an empty numeric array reads as no strings;
    /// attributes too large for one object header split into `name0`, `name1`, ….
    /// Nil when neither `name` nor `name0` exists.
    func stringsAttribute(_ attribute: String, on object: HDF5ObjectID, objectName: String) throws -> [String]? {
        if hasAttribute(attribute, on: object) {
            return try readStrings(attribute, on: object, objectName: objectName)
        }
        guard hasAttribute(attribute + "0", on: object) else { return nil }
        var result: [String] = []
        var chunk = 0
        while hasAttribute("\(attribute)\(chunk)", on: object) {
            result += try readStrings("\(attribute)\(chunk)", on: object, objectName: objectName)
            chunk += 1
        }
        return result
    }

    /// A string attribute joined into one string (for JSON configs and version strings).
    func stringAttribute(_ attribute: String, on object: HDF5ObjectID, objectName: String) throws -> String? {
        try stringsAttribute(attribute, on: object, objectName: objectName)?.joined()
    }

    private func readStrings(_ attribute: String, on object: HDF5ObjectID, objectName: String) throws -> [String] {
        let label = objectName + "@" + attribute
        let handle = try HDF5Handle(H5Aopen(object, attribute, chdf5_p_default()), .attribute, call: "H5Aopen", file: path, object: label)
        let type = try HDF5Handle(H5Aget_type(handle.id), .datatype, call: "H5Aget_type", file: path, object: label)
        let space = try HDF5Handle(H5Aget_space(handle.id), .dataspace, call: "H5Aget_space", file: path, object: label)
        let count = try space.elementCount()
        if count == 0 { return [] }
        guard type.typeClass == .string else {
            throw HDF5Error(.malformed, file: path, "attribute `\(label)`: expected strings, found a non-string type")
        }
        if H5Tis_variable_str(type.id) > 0 {
            // Each element is a 16-byte global-heap reference in the file: the file bounds the count
            // (a damaged dataspace can claim billions, each of which libhdf5 would allocate).
            guard count <= fileBytes / 16 else {
                throw HDF5Error(.malformed, file: path, "attribute `\(label)`: \(count) strings do not fit in the \(fileBytes)-byte file")
            }
            let memory = try HDF5Handle.copyType(.cString, file: path, object: label)
            try memory.setVariableLength()
            try h5Check(H5Tset_cset(memory.id, H5Tget_cset(type.id)), "H5Tset_cset", file: path, object: label)
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            _ = try pointers.withUnsafeMutableBufferPointer { buffer in
                try h5Check(H5Aread(handle.id, memory.id, buffer.baseAddress), "H5Aread", file: path, object: label)
            }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            pointers.withUnsafeMutableBufferPointer { buffer in
                _ = H5Dvlen_reclaim(memory.id, space.id, chdf5_p_default(), buffer.baseAddress)
            }
            return strings
        }
        let size = type.typeSize
        guard size > 0, size <= 1 << 26 else {
            throw HDF5Error(.malformed, file: path, "attribute `\(label)`: string size \(size) is not plausible")
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, byteCount <= Self.maximumAttributeBytes, byteCount <= fileBytes else {
            throw HDF5Error(.malformed, file: path, "attribute `\(label)`: \(count) strings of \(size) bytes is not plausible")
        }
        var bytes = [UInt8](repeating: 0, count: byteCount)
        _ = try bytes.withUnsafeMutableBytes { buffer in
            try h5Check(H5Aread(handle.id, type.id, buffer.baseAddress), "H5Aread", file: path, object: label)
        }
        return (0..<count).map { index in
            let slice = bytes[index * size..<(index + 1) * size]
            let end = slice.firstIndex(of: 0) ?? slice.endIndex
            return String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
        }
    }
}

// MARK: - Exact structure (the whole-file tree of `HDF5Tree`)

/// Whether a group tracks (and indexes) the creation order of its links, and an object that of its
/// attributes: HDF5's `H5P_CRT_ORDER_TRACKED` (1) and `H5P_CRT_ORDER_INDEXED` (2) flags, as stored.
struct HDF5CreationOrder: Hashable {
    var links: UInt32 = 0
    var attributes: UInt32 = 0

    /// Whether links (or attributes) can be listed in creation order (tracked and indexed).
    static func listsInCreationOrder(_ flags: UInt32) -> Bool { flags & 3 == 3 }
}

/// The kind of a link in a group.
enum HDF5LinkKind { case hard, soft, other }

extension HDF5Handle {
    /// Sets `order` on this group, dataset or file creation property list (`links` only for groups
    /// and files). The corresponding C functions are `H5Pset_link_creation_order` and
    /// `H5Pset_attr_creation_order`.
    fileprivate func setCreationOrder(_ order: HDF5CreationOrder, links: Bool) throws {
        if links, order.links != 0 { try check(H5Pset_link_creation_order(id, UInt32(order.links)), "H5Pset_link_creation_order") }
        if order.attributes != 0 { try check(H5Pset_attr_creation_order(id, UInt32(order.attributes)), "H5Pset_attr_creation_order") }
    }

    /// The datatype `description` describes, built with libhdf5's calls (each of which checks its
    /// arguments), for `object` in `file`. The corresponding C functions are `H5Tset_size`,
    /// `H5Tset_order`, `H5Tset_precision`, `H5Tset_offset`, `H5Tset_pad`, `H5Tset_sign`,
    /// `H5Tset_fields`, `H5Tset_ebias`, `H5Tset_norm`, `H5Tset_inpad`, `H5Tset_cset`, `H5Tset_strpad`,
    /// `H5Tenum_create`, `H5Tenum_insert`, `H5Tcreate`, `H5Tinsert` and `H5Tarray_create2`.
    static func buildType(_ description: HDF5Tree.ElementType, file: String, object: String) throws -> HDF5Handle {
        func order(_ code: UInt8) throws -> H5T_order_t {
            switch code {
            case 0: return H5T_ORDER_LE
            case 1: return H5T_ORDER_BE
            default: throw HDF5Error(.malformed, file: file, "`\(object)`: byte order \(code) is not one Pith writes")
            }
        }
        func pads(_ bytes: [UInt8], _ count: Int) throws -> [H5T_pad_t] {
            guard bytes.count == count, bytes.allSatisfy({ $0 <= 2 }) else {
                throw HDF5Error(.malformed, file: file, "`\(object)`: the stored padding is not valid")
            }
            return bytes.map { H5T_pad_t(rawValue: Int32($0)) }
        }
        switch description {
        case .integer(let size, let byteOrder, let signed, let precision, let offset, let pad):
            let type = try HDF5Handle(H5Tcopy(chdf5_t_std_i64le()), .datatype, call: "H5Tcopy", file: file, object: object)
            let padding = try pads(pad, 2)
            try type.check(H5Tset_offset(type.id, 0), "H5Tset_offset")
            try type.check(H5Tset_size(type.id, size), "H5Tset_size")
            try type.check(H5Tset_precision(type.id, precision), "H5Tset_precision")
            try type.check(H5Tset_offset(type.id, offset), "H5Tset_offset")
            try type.check(H5Tset_pad(type.id, padding[0], padding[1]), "H5Tset_pad")
            try type.check(H5Tset_sign(type.id, signed ? H5T_SGN_2 : H5T_SGN_NONE), "H5Tset_sign")
            if size > 1 { try type.check(H5Tset_order(type.id, try order(byteOrder)), "H5Tset_order") }
            return type
        case .float(let size, let byteOrder, let precision, let offset, let pad, let norm, let bias, let fields):
            guard fields.count == 5, norm <= 2 else { throw HDF5Error(.malformed, file: file, "`\(object)`: the stored float fields are not valid") }
            let padding = try pads(pad, 3)
            let type = try HDF5Handle(H5Tcopy(chdf5_t_ieee_f64le()), .datatype, call: "H5Tcopy", file: file, object: object)
            try type.check(H5Tset_fields(type.id, fields[0], fields[1], fields[2], fields[3], fields[4]), "H5Tset_fields")
            try type.check(H5Tset_size(type.id, size), "H5Tset_size")
            try type.check(H5Tset_offset(type.id, 0), "H5Tset_offset")
            try type.check(H5Tset_precision(type.id, precision), "H5Tset_precision")
            try type.check(H5Tset_offset(type.id, offset), "H5Tset_offset")
            try type.check(H5Tset_fields(type.id, fields[0], fields[1], fields[2], fields[3], fields[4]), "H5Tset_fields")
            try type.check(H5Tset_ebias(type.id, bias), "H5Tset_ebias")
            try type.check(H5Tset_norm(type.id, H5T_norm_t(rawValue: Int32(norm))), "H5Tset_norm")
            try type.check(H5Tset_pad(type.id, padding[0], padding[1]), "H5Tset_pad")
            try type.check(H5Tset_inpad(type.id, padding[2]), "H5Tset_inpad")
            if size > 1 { try type.check(H5Tset_order(type.id, try order(byteOrder)), "H5Tset_order") }
            return type
        case .string(let size, let cset, let pad):
            guard cset <= 1, pad <= 2 else { throw HDF5Error(.malformed, file: file, "`\(object)`: the stored string type is not valid") }
            let type = try copyType(.cString, file: file, object: object)
            if let size { try type.setSize(size) } else { try type.setVariableLength() }
            try type.check(H5Tset_cset(type.id, H5T_cset_t(rawValue: Int32(cset))), "H5Tset_cset")
            try type.check(H5Tset_strpad(type.id, H5T_str_t(rawValue: Int32(pad))), "H5Tset_strpad")
            return type
        case .enumeration(let baseDescription, let members):
            guard case .integer = baseDescription else { throw HDF5Error(.malformed, file: file, "`\(object)`: an enumeration over a non-integer type") }
            let base = try buildType(baseDescription, file: file, object: object)
            let type = try HDF5Handle(H5Tenum_create(base.id), .datatype, call: "H5Tenum_create", file: file, object: object)
            for member in members {
                // libhdf5 reads as many bytes as the base type has.
                guard member.value.count == base.typeSize else {
                    throw HDF5Error(
                        .malformed, file: file,
                        "`\(object)`: enumeration member `\(member.name)` has \(member.value.count) bytes for a \(base.typeSize)-byte type")
                }
                try member.value.withUnsafeBytes { try type.check(H5Tenum_insert(type.id, member.name, $0.baseAddress), "H5Tenum_insert") }
            }
            return type
        case .compound(let size, let members):
            guard size > 0 else { throw HDF5Error(.malformed, file: file, "`\(object)`: a compound type of size 0") }
            let type = try HDF5Handle(H5Tcreate(H5T_COMPOUND, size), .datatype, call: "H5Tcreate", file: file, object: object)
            for member in members {
                guard let memberType = member.type else { throw HDF5Error(.malformed, file: file, "`\(object)`: compound member without a type") }
                let built = try buildType(memberType, file: file, object: object)
                try type.check(H5Tinsert(type.id, member.name, member.offset, built.id), "H5Tinsert")
            }
            return type
        case .array(let dimensions, let baseDescription):
            guard !dimensions.isEmpty, dimensions.count <= 32, Shape.elementCount(dimensions) != nil else {
                throw HDF5Error(.malformed, file: file, "`\(object)`: the stored array dimensions are not valid")
            }
            let base = try buildType(baseDescription, file: file, object: object)
            var sizes = dimensions.map { hsize_t($0) }
            return try HDF5Handle(H5Tarray_create2(base.id, UInt32(dimensions.count), &sizes), .datatype, call: "H5Tarray_create2", file: file, object: object)
        }
    }

    /// A dataspace with no elements (h5py's `Empty`). The corresponding C constant is `H5S_NULL`.
    static func nullSpace(file: String, object: String) throws -> HDF5Handle {
        try HDF5Handle(H5Screate(H5S_NULL), .dataspace, call: "H5Screate", file: file, object: object)
    }

    /// The number of elements of `space`, nil when it overflows.
    static func elementCount(_ space: HDF5Tree.Space) -> Int? {
        switch space {
        case .null: return 0
        case .scalar: return 1
        case .simple(let dimensions): return Shape.elementCount(dimensions)
        }
    }

    /// The dataspace `space` describes.
    static func space(_ space: HDF5Tree.Space, file: String, object: String) throws -> HDF5Handle {
        switch space {
        case .null: return try nullSpace(file: file, object: object)
        case .scalar: return try scalarSpace(file: file, object: object)
        case .simple(let dimensions): return try simpleSpace(dimensions, file: file, object: object)
        }
    }

    /// A second hard link `name`, below this file or group, to the object at `target`.
    func createHardLink(_ name: String, to target: String) throws {
        try check(H5Lcreate_hard(id, target, id, name, chdf5_p_default(), chdf5_p_default()), "H5Lcreate_hard")
    }

    /// A soft link `name`, below this file or group, to the path `target`.
    func createSoftLink(_ name: String, to target: String) throws {
        try check(H5Lcreate_soft(target, id, name, chdf5_p_default(), chdf5_p_default()), "H5Lcreate_soft")
    }

    /// Writes `value` into this attribute (`type` its datatype) or, with `dataset`, this dataset,
    /// of `elements` elements. The value must fit the type as `HDF5File.readExactly` reads it —
    /// checked first, as the value comes from a container: libhdf5 reads as many bytes as the type
    /// and dataspace say, and follows whatever a variable-length or reference element holds.
    func write(_ value: HDF5Tree.Value, type: HDF5Handle, elements: Int, dataset: Bool = false) throws {
        let isVariableString = type.typeClass == .string && H5Tis_variable_str(type.id) > 0
        if isVariableString { h5ClearErrors() }
        switch value {
        case .bytes(let bytes):
            let holdsPointers =
                isVariableString || H5Tdetect_class(type.id, H5T_VLEN) != 0 || H5Tdetect_class(type.id, H5T_REFERENCE) != 0
                || (type.typeClass != .string && H5Tdetect_class(type.id, H5T_STRING) != 0)
            let (expected, overflow) = elements.multipliedReportingOverflow(by: type.typeSize)
            guard !holdsPointers, type.typeSize > 0, !overflow, bytes.count == expected else {
                throw HDF5Error(
                    .malformed, file: file, "`\(object)`: the stored value (\(bytes.count) bytes) does not fit its type and dataspace (\(elements) elements)")
            }
        case .strings(let strings):
            guard isVariableString, strings.count == elements else {
                throw HDF5Error(
                    .malformed, file: file, "`\(object)`: the stored strings (\(strings.count)) do not fit its type and dataspace (\(elements) elements)")
            }
        }
        h5ClearErrors()
        func put(_ pointer: UnsafeRawPointer?) throws {
            if dataset {
                try check(H5Dwrite(id, type.id, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), pointer), "H5Dwrite")
            } else {
                try check(H5Awrite(id, type.id, pointer), "H5Awrite")
            }
        }
        switch value {
        case .bytes(let bytes):
            guard !bytes.isEmpty else { return }
            try bytes.withUnsafeBytes { try put($0.baseAddress) }
        case .strings(let strings):
            guard !strings.isEmpty else { return }
            // Each string as a NUL-terminated copy; a missing one (a null pointer in the source) stays null.
            let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
            defer { for copy in copies { free(copy) } }
            try copies.withUnsafeBytes { try put($0.baseAddress) }
        }
    }
}

extension HDF5File {
    /// Whether the file was written in the oldest format (superblock version 0 or 1, as h5py
    /// writes by default), rather than with HDF5 1.8's formats as the low bound.
    func usesEarliestFormat() throws -> Bool {
        var info = H5F_info2_t()
        try h5Check(H5Fget_info2(root, &info), "H5Fget_info2", file: path, object: "/")
        return info.super.version < 2
    }

    /// The creation-order flags of the group or dataset `object`.
    func creationOrder(of object: HDF5ObjectID, isGroup: Bool, name: String) throws -> HDF5CreationOrder {
        let plist = try HDF5Handle(
            isGroup ? H5Gget_create_plist(object) : H5Dget_create_plist(object), .propertyList,
            call: isGroup ? "H5Gget_create_plist" : "H5Dget_create_plist", file: path, object: name)
        var order = HDF5CreationOrder()
        var flags: UInt32 = 0
        if isGroup {
            try h5Check(H5Pget_link_creation_order(plist.id, &flags), "H5Pget_link_creation_order", file: path, object: name)
            order.links = flags
        }
        flags = 0
        try h5Check(H5Pget_attr_creation_order(plist.id, &flags), "H5Pget_attr_creation_order", file: path, object: name)
        order.attributes = flags
        return order
    }

    /// The links of a group with their kinds, in creation order when `creationOrder`, else in name order.
    func links(of group: HDF5ObjectID, creationOrder: Bool, name: String) throws -> [(name: String, kind: HDF5LinkKind)] {
        final class Collector { var links: [(String, HDF5LinkKind)] = [] }
        let collector = Collector()
        var index: hsize_t = 0
        let status = H5Literate(
            group, creationOrder ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME, H5_ITER_INC, &index,
            { _, linkName, info, data in
                guard let linkName, let info, let data else { return 0 }
                let kind: HDF5LinkKind
                switch info.pointee.type {
                case H5L_TYPE_HARD: kind = .hard
                case H5L_TYPE_SOFT: kind = .soft
                default: kind = .other
                }
                Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().links.append((String(cString: linkName), kind))
                return 0
            }, Unmanaged.passUnretained(collector).toOpaque())
        try h5Check(status, "H5Literate", file: path, object: name)
        return collector.links
    }

    /// The path a soft link `name` of `group` points to.
    func softLinkTarget(_ name: String, in group: HDF5ObjectID, label: String) throws -> String {
        var info = H5L_info_t()
        try h5Check(H5Lget_info(group, name, &info, chdf5_p_default()), "H5Lget_info", file: path, object: label)
        let size = try h5Int(info.u.val_size, "H5Lget_info", file: path, object: label)
        guard size > 0, size <= 1 << 16 else { throw HDF5Error(.malformed, file: path, "soft link `\(label)`: a target of \(size) bytes is not plausible") }
        var buffer = [CChar](repeating: 0, count: size + 1)
        try h5Check(H5Lget_val(group, name, &buffer, size, chdf5_p_default()), "H5Lget_val", file: path, object: label)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Everything libhdf5 says of `type` (class, size, byte order, precision, offset, padding,
    /// sign, float fields, character set, string padding, members), for `HDF5Handle.buildType`.
    /// Types Pith does not write back (references, variable-length sequences, opaque, bitfield,
    /// time) are refused as unsupported, naming `label`.
    func describe(type: HDF5Handle, label: String, depth: Int = 0) throws -> HDF5Tree.ElementType {
        guard depth <= 32 else { throw HDF5Error(.unsupported, file: path, "`\(label)`: its type nests deeper than 32") }
        func value<T: BinaryInteger>(_ result: T, _ call: String) throws -> Int {
            try h5Int(try h5Check(result, call, file: path, object: label), call, file: path, object: label)
        }
        func order() throws -> UInt8 {
            let order = H5Tget_order(type.id)
            switch order {
            case H5T_ORDER_LE: return 0
            case H5T_ORDER_BE: return 1
            case H5T_ORDER_NONE: return 2
            default:
                h5ClearErrors()
                throw HDF5Error(.unsupported, file: path, "`\(label)`: its type has a byte order Pith does not write back")
            }
        }
        func padding(float: Bool) throws -> [UInt8] {
            var low = H5T_PAD_ZERO, high = H5T_PAD_ZERO
            try h5Check(H5Tget_pad(type.id, &low, &high), "H5Tget_pad", file: path, object: label)
            var pads = [UInt8(truncatingIfNeeded: low.rawValue), UInt8(truncatingIfNeeded: high.rawValue)]
            if float { pads.append(UInt8(truncatingIfNeeded: H5Tget_inpad(type.id).rawValue)) }
            guard pads.allSatisfy({ $0 <= 2 }) else { throw HDF5Error(.malformed, file: path, "`\(label)`: its type's padding cannot be read") }
            return pads
        }
        let size = type.typeSize
        guard size > 0 else { throw HDF5Error(.malformed, file: path, "`\(label)`: its type has no size") }
        switch type.typeClass {
        case .integer:
            return .integer(
                size: size, order: try order(), signed: type.isSigned, precision: try value(H5Tget_precision(type.id), "H5Tget_precision"),
                offset: try value(H5Tget_offset(type.id), "H5Tget_offset"), pad: try padding(float: false))
        case .float:
            var s = 0, e = 0, eSize = 0, m = 0, mSize = 0
            try h5Check(H5Tget_fields(type.id, &s, &e, &eSize, &m, &mSize), "H5Tget_fields", file: path, object: label)
            let norm = H5Tget_norm(type.id)
            guard norm.rawValue >= 0 else { throw HDF5Error(.malformed, file: path, "`\(label)`: H5Tget_norm failed (\(h5ErrorStack()))") }
            return .float(
                size: size, order: try order(), precision: try value(H5Tget_precision(type.id), "H5Tget_precision"),
                offset: try value(H5Tget_offset(type.id), "H5Tget_offset"), pad: try padding(float: true), norm: UInt8(norm.rawValue),
                bias: try value(H5Tget_ebias(type.id), "H5Tget_ebias"), fields: [s, e, eSize, m, mSize])
        case .string:
            let variable = H5Tis_variable_str(type.id) > 0
            let cset = H5Tget_cset(type.id), pad = H5Tget_strpad(type.id)
            guard cset.rawValue >= 0, cset.rawValue <= 1, pad.rawValue >= 0, pad.rawValue <= 2 else {
                h5ClearErrors()
                throw HDF5Error(.unsupported, file: path, "`\(label)`: its string type has a character set or padding Pith does not write back")
            }
            return .string(size: variable ? nil : size, cset: UInt8(cset.rawValue), pad: UInt8(pad.rawValue))
        case .enumeration:
            let base = try HDF5Handle(H5Tget_super(type.id), .datatype, call: "H5Tget_super", file: path, object: label)
            let baseDescription = try describe(type: base, label: label, depth: depth + 1)
            var members: [HDF5Tree.ElementType.Member] = []
            for index in 0..<(try value(H5Tget_nmembers(type.id), "H5Tget_nmembers")) {
                guard let name = H5Tget_member_name(type.id, UInt32(index)) else {
                    throw HDF5Error(.malformed, file: path, "`\(label)`: H5Tget_member_name failed")
                }
                defer { H5free_memory(name) }
                var bytes = [UInt8](repeating: 0, count: base.typeSize)
                _ = try bytes.withUnsafeMutableBytes {
                    try h5Check(H5Tget_member_value(type.id, UInt32(index), $0.baseAddress), "H5Tget_member_value", file: path, object: label)
                }
                members.append(.init(name: String(decoding: UnsafeRawBufferPointer(start: name, count: strlen(name)), as: UTF8.self), value: bytes))
            }
            return .enumeration(base: baseDescription, members: members)
        case .compound:
            var members: [HDF5Tree.ElementType.Member] = []
            for index in 0..<(try value(H5Tget_nmembers(type.id), "H5Tget_nmembers")) {
                guard let name = H5Tget_member_name(type.id, UInt32(index)) else {
                    throw HDF5Error(.malformed, file: path, "`\(label)`: H5Tget_member_name failed")
                }
                defer { H5free_memory(name) }
                let memberType = try HDF5Handle(H5Tget_member_type(type.id, UInt32(index)), .datatype, call: "H5Tget_member_type", file: path, object: label)
                members.append(
                    .init(
                        name: String(decoding: UnsafeRawBufferPointer(start: name, count: strlen(name)), as: UTF8.self),
                        offset: H5Tget_member_offset(type.id, UInt32(index)), type: try describe(type: memberType, label: label, depth: depth + 1)))
            }
            return .compound(size: size, members: members)
        case .array:
            let rank = try value(H5Tget_array_ndims(type.id), "H5Tget_array_ndims")
            guard rank >= 1, rank <= 32 else { throw HDF5Error(.malformed, file: path, "`\(label)`: array rank \(rank)") }
            var dimensions = [hsize_t](repeating: 0, count: rank)
            try h5Check(H5Tget_array_dims2(type.id, &dimensions), "H5Tget_array_dims2", file: path, object: label)
            let base = try HDF5Handle(H5Tget_super(type.id), .datatype, call: "H5Tget_super", file: path, object: label)
            return .array(
                dimensions: try dimensions.map { try h5Int($0, "H5Tget_array_dims2", file: path, object: label) },
                base: try describe(type: base, label: label, depth: depth + 1))
        default:
            throw HDF5Error(
                .unsupported, file: path, "`\(label)`: its type (references, variable-length sequences, opaque, bitfield or time) is not one Pith writes back")
        }
    }

    /// The shape of a dataspace: null, scalar or simple with its current dimensions.
    func describe(space: HDF5Handle, label: String) throws -> HDF5Tree.Space {
        switch H5Sget_simple_extent_type(space.id) {
        case H5S_NULL: return .null
        case H5S_SCALAR: return .scalar
        case H5S_SIMPLE:
            let rank = try space.rank()
            guard rank <= 32 else { throw HDF5Error(.malformed, file: path, "`\(label)`: rank \(rank) exceeds HDF5's limit of 32") }
            return .simple(try space.dimensions(rank: rank).map { try h5Int($0, "H5Sget_simple_extent_dims", file: path, object: label) })
        default:
            throw HDF5Error(.malformed, file: path, "`\(label)`: the dataspace has no known class")
        }
    }

    /// Reads every element of an attribute or dataset (`handle`), of datatype `type` and `count`
    /// elements, as the file stores it: the bytes of a fixed-size type unconverted, variable-length
    /// strings as strings. Types holding other variable-length data or references (addresses in
    /// this file) are refused as unsupported.
    func readExactly(_ handle: HDF5Handle, type: HDF5Handle, space: HDF5Handle, count: Int, dataset: Bool, label: String) throws -> HDF5Tree.Value {
        func read(_ memory: HDF5Handle, _ buffer: UnsafeMutableRawPointer?) throws {
            if dataset {
                try h5Check(H5Dread(handle.id, memory.id, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), buffer), "H5Dread", file: path, object: label)
            } else {
                try h5Check(H5Aread(handle.id, memory.id, buffer), "H5Aread", file: path, object: label)
            }
        }
        if type.typeClass == .string, H5Tis_variable_str(type.id) > 0 {
            if count == 0 { return .strings([]) }
            guard count <= fileBytes / 16 else {
                throw HDF5Error(.malformed, file: path, "`\(label)`: \(count) strings do not fit in the \(fileBytes)-byte file")
            }
            let memory = try HDF5Handle.copyType(.cString, file: path, object: label)
            try memory.setVariableLength()
            try h5Check(H5Tset_cset(memory.id, H5Tget_cset(type.id)), "H5Tset_cset", file: path, object: label)
            try h5Check(H5Tset_strpad(memory.id, H5Tget_strpad(type.id)), "H5Tset_strpad", file: path, object: label)
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            try pointers.withUnsafeMutableBytes { try read(memory, $0.baseAddress) }
            let strings = pointers.map { $0.map { String(cString: $0) } }
            pointers.withUnsafeMutableBufferPointer { buffer in
                _ = H5Dvlen_reclaim(memory.id, space.id, chdf5_p_default(), buffer.baseAddress)
            }
            return .strings(strings)
        }
        for (kind, what) in [(H5T_VLEN, "variable-length data"), (H5T_REFERENCE, "references")] where H5Tdetect_class(type.id, kind) > 0 {
            throw HDF5Error(.unsupported, file: path, "`\(label)`: its type holds \(what), which Pith cannot restore exactly")
        }
        if type.typeClass != .string, H5Tdetect_class(type.id, H5T_STRING) > 0 {
            throw HDF5Error(.unsupported, file: path, "`\(label)`: strings inside a compound or array type are not restored exactly")
        }
        let size = type.typeSize
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard size > 0, !overflow, bytes <= Self.maximumAttributeBytes, bytes / Self.maximumExpansion <= fileBytes else {
            throw HDF5Error(.malformed, file: path, "`\(label)`: \(count) elements of \(size) bytes is not plausible")
        }
        if bytes == 0 { return .bytes([]) }
        let memory = try type.copyType()
        var buffer = [UInt8](repeating: 0, count: bytes)
        try buffer.withUnsafeMutableBytes { try read(memory, $0.baseAddress) }
        return .bytes(buffer)
    }

    /// Every attribute of `object`, in creation order when `creationOrder`, else in name order, each
    /// with its exact datatype, dataspace and value.
    func exactAttributes(of object: HDF5ObjectID, creationOrder: Bool, name: String) throws -> [HDF5Tree.Attribute] {
        try attributeNames(of: object, name: name, creationOrder: creationOrder).map { attribute in
            let label = name + "@" + attribute
            let handle = try HDF5Handle(H5Aopen(object, attribute, chdf5_p_default()), .attribute, call: "H5Aopen", file: path, object: label)
            let type = try HDF5Handle(H5Aget_type(handle.id), .datatype, call: "H5Aget_type", file: path, object: label)
            let space = try HDF5Handle(H5Aget_space(handle.id), .dataspace, call: "H5Aget_space", file: path, object: label)
            let shape = try describe(space: space, label: label)
            let count = shape == .null ? 0 : try space.elementCount()
            let value = try readExactly(handle, type: type, space: space, count: count, dataset: false, label: label)
            return HDF5Tree.Attribute(name: attribute, type: try describe(type: type, label: label), space: shape, value: value)
        }
    }

    /// The exact datatype, dataspace and, when `withData`, the stored value of the dataset `name`.
    func exactDataset(
        _ name: String, in location: HDF5ObjectID, label: String, withData: Bool
    ) throws -> (type: HDF5Tree.ElementType, space: HDF5Tree.Space, value: HDF5Tree.Value?) {
        let dataset = try openDataset(name, in: location)
        let type = try dataset.datasetType()
        let space = try dataset.datasetSpace()
        let shape = try describe(space: space, label: label)
        var value: HDF5Tree.Value?
        if withData {
            let count = shape == .null ? 0 : try space.elementCount()
            value = try readExactly(dataset, type: type, space: space, count: count, dataset: true, label: label)
        }
        return (try describe(type: type, label: label), shape, value)
    }
}
