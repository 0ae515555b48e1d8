internal import CHDF5
import PithIR

/// Every libhdf5 call of Pith goes through this file: thin wrappers that turn
/// negative return codes into `HDF5Error`s carrying the library's own error
/// stack, and handles that close themselves.

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
    _ = H5Ewalk2(chdf5_e_default(), H5E_WALK_DOWNWARD, { _, error, data in
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

/// Throws when `status` is negative, naming the call and the object.
@discardableResult
func h5Check<T: BinaryInteger>(_ status: T, _ call: String, file: String, object: String) throws -> T {
    if status < 0 {
        let stack = h5ErrorStack()
        throw HDF5Error(.malformed, file: file, "`\(object)`: \(call) failed" + (stack.isEmpty ? "" : " (\(stack))"))
    }
    return status
}

/// An open HDF5 identifier that closes itself.
final class H5Handle {
    enum Kind { case file, group, dataset, attribute, datatype, dataspace, propertyList, object }
    let id: hid_t
    let kind: Kind

    init(_ id: hid_t, _ kind: Kind) {
        self.id = id
        self.kind = kind
    }

    /// Wraps `id`, throwing if the call that produced it failed.
    convenience init(_ id: hid_t, _ kind: Kind, call: String, file: String, object: String) throws {
        try h5Check(id, call, file: file, object: object)
        self.init(id, kind)
    }

    deinit {
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
}

/// The kind of object a link points to.
enum H5ObjectKind { case group, dataset, other }

/// A file opened read-only, with the operations the Keras reader needs.
struct H5File {
    let path: String
    let handle: H5Handle

    init(path: String) throws {
        h5Quiet()
        let id = H5Fopen(path, chdf5_f_acc_rdonly(), chdf5_p_default())
        if id < 0 {
            let stack = h5ErrorStack()
            throw HDF5Error(.malformed, file: path, "not a readable HDF5 file" + (stack.isEmpty ? "" : " (\(stack))"))
        }
        self.path = path
        handle = H5Handle(id, .file)
    }

    var root: hid_t { handle.id }

    /// Whether a link `name` exists below `location` (every path component is checked).
    func exists(_ name: String, in location: hid_t) -> Bool {
        var prefix = ""
        for component in name.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + component
            if H5Lexists(location, prefix, chdf5_p_default()) <= 0 {
                _ = H5Eclear2(chdf5_e_default())
                return false
            }
        }
        return true
    }

    func kind(of name: String, in location: hid_t) -> H5ObjectKind {
        object(name, in: location)?.kind ?? .other
    }

    /// The kind of object `name` names and its address in the file, which identifies it
    /// whatever path leads to it (hard links can make a group reachable twice, or form a cycle).
    func object(_ name: String, in location: hid_t) -> (kind: H5ObjectKind, address: UInt64)? {
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(location, name, &info, UInt32(H5O_INFO_BASIC), chdf5_p_default()) >= 0 else {
            _ = H5Eclear2(chdf5_e_default())
            return nil
        }
        switch info.type {
        case H5O_TYPE_GROUP: return (.group, UInt64(info.addr))
        case H5O_TYPE_DATASET: return (.dataset, UInt64(info.addr))
        default: return (.other, UInt64(info.addr))
        }
    }

    func openGroup(_ name: String, in location: hid_t) throws -> H5Handle {
        try H5Handle(H5Gopen2(location, name, chdf5_p_default()), .group, call: "H5Gopen2", file: path, object: name)
    }

    /// Names of the hard links in a group, in name order.
    func children(of group: hid_t, name: String) throws -> [String] {
        final class Collector { var names: [String] = [] }
        let collector = Collector()
        var index: hsize_t = 0
        let status = H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &index, { _, linkName, info, data in
            guard let linkName, let info, let data else { return 0 }
            if info.pointee.type == H5L_TYPE_HARD {
                Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: linkName))
            }
            return 0
        }, Unmanaged.passUnretained(collector).toOpaque())
        try h5Check(status, "H5Literate", file: path, object: name)
        return collector.names
    }

    /// Names of the attributes of an object, in name order.
    func attributeNames(of object: hid_t, name: String) throws -> [String] {
        final class Collector { var names: [String] = [] }
        let collector = Collector()
        var index: hsize_t = 0
        let status = H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, { _, attributeName, _, data in
            guard let attributeName, let data else { return 0 }
            Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: attributeName))
            return 0
        }, Unmanaged.passUnretained(collector).toOpaque())
        try h5Check(status, "H5Aiterate2", file: path, object: name)
        return collector.names
    }

    func hasAttribute(_ attribute: String, on object: hid_t) -> Bool {
        let result = H5Aexists(object, attribute)
        if result < 0 { _ = H5Eclear2(chdf5_e_default()) }
        return result > 0
    }

    /// A string-list attribute as Keras writes them: variable- or fixed-length
    /// strings, scalar or array; an empty numeric array reads as no strings;
    /// attributes too large for one object header split into `name0`, `name1`, ….
    /// Nil when neither `name` nor `name0` exists.
    func stringsAttribute(_ attribute: String, on object: hid_t, objectName: String) throws -> [String]? {
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
    func stringAttribute(_ attribute: String, on object: hid_t, objectName: String) throws -> String? {
        try stringsAttribute(attribute, on: object, objectName: objectName)?.joined()
    }

    private func readStrings(_ attribute: String, on object: hid_t, objectName: String) throws -> [String] {
        let label = objectName + "@" + attribute
        let handle = try H5Handle(H5Aopen(object, attribute, chdf5_p_default()), .attribute, call: "H5Aopen", file: path, object: label)
        let type = try H5Handle(H5Aget_type(handle.id), .datatype, call: "H5Aget_type", file: path, object: label)
        let space = try H5Handle(H5Aget_space(handle.id), .dataspace, call: "H5Aget_space", file: path, object: label)
        let count = Int(try h5Check(H5Sget_simple_extent_npoints(space.id), "H5Sget_simple_extent_npoints", file: path, object: label))
        if count == 0 { return [] }
        guard H5Tget_class(type.id) == H5T_STRING else {
            throw HDF5Error(.malformed, file: path, "attribute `\(label)`: expected strings, found a non-string type")
        }
        if H5Tis_variable_str(type.id) > 0 {
            let memory = try H5Handle(H5Tcopy(chdf5_t_c_s1()), .datatype, call: "H5Tcopy", file: path, object: label)
            try h5Check(H5Tset_size(memory.id, chdf5_t_variable()), "H5Tset_size", file: path, object: label)
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
        let size = H5Tget_size(type.id)
        guard size > 0, size <= 1 << 26 else {
            throw HDF5Error(.malformed, file: path, "attribute `\(label)`: string size \(size) is not plausible")
        }
        var bytes = [UInt8](repeating: 0, count: count * size)
        _ = try bytes.withUnsafeMutableBytes { buffer in
            try h5Check(H5Aread(handle.id, type.id, buffer.baseAddress), "H5Aread", file: path, object: label)
        }
        return (0..<count).map { index in
            let slice = bytes[index * size ..< (index + 1) * size]
            let end = slice.firstIndex(of: 0) ?? slice.endIndex
            return String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
        }
    }
}
