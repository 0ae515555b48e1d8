import PithIR

/// The whole structure of an HDF5 file, without the data of the datasets that are tensors: every
/// group (empty ones too), dataset, hard and soft link, and attribute, in the order the source
/// lists them (creation order where the group or object tracks it, else name order), each
/// attribute and dataset with its exact datatype (`ElementType`: string padding, character set,
/// fixed or variable length, byte order, precision) and dataspace (null, scalar or simple). A restore
/// that writes this tree and puts each tensor into the dataset at its path gives back the file's
/// every object and attribute.
///
/// Stored in a container as the source skeleton (`HDF5Reader.readWithSkeleton`,
/// `HDF5Writer.write(skeleton:…)`). Byte layout, all integers little-endian:
/// `PITHH5T1`, a format byte (1: the source was written in HDF5's earliest format, superblock
/// version 0 or 1; 0: with HDF5 1.8's formats as the low bound), then the root node. A node: kind (UInt8: 0 group, 1 dataset, 2 hard link to an
/// object met before, 3 soft link), name (string), then by kind — group: link and attribute
/// creation-order flags (UInt32 each), attributes, children (UInt32 count, nodes); dataset:
/// attribute order flags, attributes, type, space, tensor (UInt8: 1 when the container
/// holds its data as a tensor, followed by that tensor's dataset path (string), which differs from
/// the node's path when the reader met the dataset through another hard link), then, when not a
/// tensor, its value; links: the
/// target path (string). An attribute: name, type, space, value. A type: UInt8 class (0 integer,
/// 1 float, 2 string, 3 enumeration, 4 compound, 5 array), then its fields as `ElementType` lists
/// them (sizes and positions as Int64, flags as UInt8, lists with a UInt32 count). A space: UInt8 0 null,
/// 1 scalar, 2 simple followed by UInt32 rank and UInt64 dimensions. A value: UInt8 0 bytes
/// (bytes) or 1 strings (UInt32 count, each UInt8 present flag and string). Strings and bytes:
/// UInt32 length, then the bytes.
struct HDF5Tree {
    enum Space: Equatable {
        case null, scalar
        case simple([Int])
    }

    enum Value: Equatable {
        /// The elements as the file stores them (fixed-size types).
        case bytes([UInt8])
        /// Variable-length strings; nil for a null pointer.
        case strings([String?])
    }

    /// An HDF5 datatype, described field by field so that a restore can rebuild it through libhdf5's
    /// own calls (a raw `H5Tencode` buffer would be decoded by `H5Tdecode`, which trusts every length
    /// in it). Byte order: 0 little-endian, 1 big-endian, 2 none; padding, normalization, character
    /// set and string padding as libhdf5 numbers them (`H5T_pad_t`, `H5T_norm_t`, `H5T_cset_t`,
    /// `H5T_str_t`).
    indirect enum ElementType: Equatable {
        /// size in bytes, order, signed, precision and offset in bits, low and high padding.
        case integer(size: Int, order: UInt8, signed: Bool, precision: Int, offset: Int, pad: [UInt8])
        /// size, order, precision, offset, pad (low, high, internal), normalization, exponent bias and the
        /// sign position, exponent position and width, mantissa position and width (bits).
        case float(size: Int, order: UInt8, precision: Int, offset: Int, pad: [UInt8], norm: UInt8, bias: Int, fields: [Int])
        /// size in bytes (nil: variable length), character set, padding.
        case string(size: Int?, cset: UInt8, pad: UInt8)
        /// base integer type, members (name, value as the base type's bytes) in the type's order.
        case enumeration(base: ElementType, members: [Member])
        /// size in bytes, members (name, offset, type).
        case compound(size: Int, members: [Member])
        /// dimensions, element type.
        case array(dimensions: [Int], base: ElementType)

        struct Member: Equatable {
            var name: String
            var offset: Int = 0
            var value: [UInt8] = []
            var type: ElementType?
        }
    }

    struct Attribute: Equatable {
        var name: String
        var type: ElementType
        var space: Space
        var value: Value
    }

    struct Node: Equatable {
        enum Kind: UInt8 { case group = 0, dataset = 1, hardLink = 2, softLink = 3 }
        var kind: Kind
        var name: String
        var order = HDF5CreationOrder()
        var attributes: [Attribute] = []
        var children: [Node] = []
        var type: ElementType = .string(size: 1, cset: 0, pad: 0)
        var space: Space = .scalar
        /// A dataset whose data is a container tensor: the tensor's dataset path.
        var tensorPath: String?
        /// A dataset that is not a tensor: its stored value.
        var value: Value?
        /// Links: the absolute path of the target.
        var target = ""

        init(kind: Kind, name: String) {
            self.kind = kind
            self.name = name
        }
    }

    var root: Node
    /// The source used HDF5's earliest object formats (as h5py writes by default).
    var earliestFormat: Bool

    init(root: Node, earliestFormat: Bool) {
        self.root = root
        self.earliestFormat = earliestFormat
    }

    static let magic = Array("PITHH5T1".utf8)

    /// Most nodes, attributes or strings a decoded tree may hold, and its deepest nesting.
    static let maximumCount = 1 << 24, maximumDepth = 512

    // MARK: Encoding

    func encoded() -> [UInt8] {
        var out = Self.magic
        out.append(earliestFormat ? 1 : 0)
        Self.encode(root, into: &out)
        return out
    }

    private static func put(_ value: UInt32, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func put(bytes: [UInt8], _ out: inout [UInt8]) {
        put(UInt32(bytes.count), &out)
        out.append(contentsOf: bytes)
    }

    private static func put(_ string: String, _ out: inout [UInt8]) { put(bytes: Array(string.utf8), &out) }

    private static func put(_ space: Space, _ out: inout [UInt8]) {
        switch space {
        case .null: out.append(0)
        case .scalar: out.append(1)
        case .simple(let dimensions):
            out.append(2)
            put(UInt32(dimensions.count), &out)
            for dimension in dimensions { withUnsafeBytes(of: UInt64(dimension).littleEndian) { out.append(contentsOf: $0) } }
        }
    }

    private static func put(_ value: Value, _ out: inout [UInt8]) {
        switch value {
        case .bytes(let bytes):
            out.append(0)
            put(bytes: bytes, &out)
        case .strings(let strings):
            out.append(1)
            put(UInt32(strings.count), &out)
            for string in strings {
                out.append(string == nil ? 0 : 1)
                if let string { put(string, &out) }
            }
        }
    }

    private static func put(int value: Int, _ out: inout [UInt8]) {
        withUnsafeBytes(of: Int64(value).littleEndian) { out.append(contentsOf: $0) }
    }

    private static func put(_ type: ElementType, _ out: inout [UInt8]) {
        switch type {
        case .integer(let size, let order, let signed, let precision, let offset, let pad):
            out.append(0)
            for value in [size, precision, offset] { put(int: value, &out) }
            out += [order, signed ? 1 : 0]
            put(bytes: pad, &out)
        case .float(let size, let order, let precision, let offset, let pad, let norm, let bias, let fields):
            out.append(1)
            for value in [size, precision, offset, bias] { put(int: value, &out) }
            out += [order, norm]
            put(bytes: pad, &out)
            put(UInt32(fields.count), &out)
            for field in fields { put(int: field, &out) }
        case .string(let size, let cset, let pad):
            out.append(2)
            put(int: size ?? -1, &out)
            out += [cset, pad]
        case .enumeration(let base, let members):
            out.append(3)
            put(base, &out)
            put(UInt32(members.count), &out)
            for member in members {
                put(member.name, &out)
                put(bytes: member.value, &out)
            }
        case .compound(let size, let members):
            out.append(4)
            put(int: size, &out)
            put(UInt32(members.count), &out)
            for member in members {
                put(member.name, &out)
                put(int: member.offset, &out)
                put(member.type ?? .string(size: 1, cset: 0, pad: 0), &out)
            }
        case .array(let dimensions, let base):
            out.append(5)
            put(UInt32(dimensions.count), &out)
            for dimension in dimensions { put(int: dimension, &out) }
            put(base, &out)
        }
    }

    private static func put(_ attributes: [Attribute], _ out: inout [UInt8]) {
        put(UInt32(attributes.count), &out)
        for attribute in attributes {
            put(attribute.name, &out)
            put(attribute.type, &out)
            put(attribute.space, &out)
            put(attribute.value, &out)
        }
    }

    private static func encode(_ node: Node, into out: inout [UInt8]) {
        out.append(node.kind.rawValue)
        put(node.name, &out)
        switch node.kind {
        case .group:
            put(node.order.links, &out)
            put(node.order.attributes, &out)
            put(node.attributes, &out)
            put(UInt32(node.children.count), &out)
            for child in node.children { encode(child, into: &out) }
        case .dataset:
            put(node.order.attributes, &out)
            put(node.attributes, &out)
            put(node.type, &out)
            put(node.space, &out)
            if let tensorPath = node.tensorPath {
                out.append(1)
                put(tensorPath, &out)
            } else {
                out.append(0)
                put(node.value ?? .bytes([]), &out)
            }
        case .hardLink, .softLink:
            put(node.target, &out)
        }
    }

    // MARK: Decoding

    /// Decodes a tree `encoded()` gave; throws, naming `file`, on anything else.
    init(decoding bytes: [UInt8], file: String) throws {
        var reader = Reader(bytes: bytes, file: file)
        guard bytes.count >= Self.magic.count, Array(bytes[0..<Self.magic.count]) == Self.magic else {
            throw reader.failure("it does not start with `PITHH5T1`")
        }
        reader.position = Self.magic.count
        switch try reader.byte() {
        case 0: earliestFormat = false
        case 1: earliestFormat = true
        case let other: throw reader.failure("unknown format byte \(other)")
        }
        root = try reader.node(depth: 0)
        guard root.kind == .group else { throw reader.failure("the root is not a group") }
        guard reader.position == bytes.count else { throw reader.failure("\(bytes.count - reader.position) bytes follow the tree") }
    }

    private struct Reader {
        let bytes: [UInt8]
        let file: String
        var position = 0
        var items = 0

        func failure(_ why: String) -> HDF5Error {
            HDF5Error(.malformed, file: file, "the HDF5 skeleton cannot be read: \(why) (at byte \(position))")
        }

        mutating func byte() throws -> UInt8 {
            guard position < bytes.count else { throw failure("it ends early") }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func uint32() throws -> UInt32 {
            guard bytes.count - position >= 4 else { throw failure("it ends early") }
            var value: UInt32 = 0
            for k in 0..<4 { value |= UInt32(bytes[position + k]) << (8 * k) }
            position += 4
            return value
        }

        mutating func count() throws -> Int {
            let value = Int(try uint32())
            items += value
            guard value <= bytes.count - position, items <= HDF5Tree.maximumCount else { throw failure("a count of \(value) is more than the bytes left") }
            return value
        }

        mutating func data() throws -> [UInt8] {
            let length = Int(try uint32())
            guard length <= bytes.count - position else { throw failure("a length of \(length) is more than the bytes left") }
            defer { position += length }
            return Array(bytes[position..<position + length])
        }

        mutating func string() throws -> String {
            let raw = try data()
            guard let string = String(validating: raw, as: UTF8.self) else { throw failure("a name is not UTF-8") }
            return string
        }

        mutating func space() throws -> Space {
            switch try byte() {
            case 0: return .null
            case 1: return .scalar
            case 2:
                let rank = Int(try uint32())
                guard rank <= 32 else { throw failure("rank \(rank) exceeds HDF5's 32") }
                var dimensions: [Int] = []
                for _ in 0..<rank {
                    guard bytes.count - position >= 8 else { throw failure("it ends early") }
                    var value: UInt64 = 0
                    for k in 0..<8 { value |= UInt64(bytes[position + k]) << (8 * k) }
                    position += 8
                    guard let dimension = Int(exactly: value), dimension <= Int(Int32.max) * 1024 else { throw failure("dimension \(value) is too large") }
                    dimensions.append(dimension)
                }
                return .simple(dimensions)
            case let other: throw failure("unknown dataspace kind \(other)")
            }
        }

        mutating func value() throws -> Value {
            switch try byte() {
            case 0: return .bytes(try data())
            case 1:
                var strings: [String?] = []
                for _ in 0..<(try count()) { strings.append(try byte() == 0 ? nil : try string()) }
                return .strings(strings)
            case let other: throw failure("unknown value kind \(other)")
            }
        }

        /// A size, position or count of a type: 0 ... 2^32 (libhdf5 checks the rest).
        mutating func int(allowingMinusOne: Bool = false) throws -> Int {
            guard bytes.count - position >= 8 else { throw failure("it ends early") }
            var value: UInt64 = 0
            for k in 0..<8 { value |= UInt64(bytes[position + k]) << (8 * k) }
            position += 8
            let signed = Int64(bitPattern: value)
            guard (signed >= 0 && signed <= 1 << 32) || (allowingMinusOne && signed == -1) else { throw failure("\(signed) is not a plausible type field") }
            return Int(signed)
        }

        mutating func type(depth: Int) throws -> ElementType {
            guard depth <= 32 else { throw failure("types nest deeper than 32") }
            items += 1
            guard items <= HDF5Tree.maximumCount else { throw failure("too many items") }
            switch try byte() {
            case 0:
                let (size, precision, offset) = (try int(), try int(), try int())
                let (order, signed) = (try byte(), try byte() == 1)
                return .integer(size: size, order: order, signed: signed, precision: precision, offset: offset, pad: try data())
            case 1:
                let (size, precision, offset, bias) = (try int(), try int(), try int(), try int())
                let (order, norm) = (try byte(), try byte())
                let pad = try data()
                var fields: [Int] = []
                for _ in 0..<(try count()) { fields.append(try int()) }
                return .float(size: size, order: order, precision: precision, offset: offset, pad: pad, norm: norm, bias: bias, fields: fields)
            case 2:
                let size = try int(allowingMinusOne: true)
                return .string(size: size < 0 ? nil : size, cset: try byte(), pad: try byte())
            case 3:
                let base = try type(depth: depth + 1)
                var members: [ElementType.Member] = []
                for _ in 0..<(try count()) { members.append(.init(name: try string(), value: try data())) }
                return .enumeration(base: base, members: members)
            case 4:
                let size = try int()
                var members: [ElementType.Member] = []
                for _ in 0..<(try count()) { members.append(.init(name: try string(), offset: try int(), type: try type(depth: depth + 1))) }
                return .compound(size: size, members: members)
            case 5:
                var dimensions: [Int] = []
                let rank = try count()
                guard rank <= 32 else { throw failure("array rank \(rank) exceeds 32") }
                for _ in 0..<rank { dimensions.append(try int()) }
                return .array(dimensions: dimensions, base: try type(depth: depth + 1))
            case let other: throw failure("unknown type class \(other)")
            }
        }

        mutating func attributes() throws -> [Attribute] {
            var result: [Attribute] = []
            for _ in 0..<(try count()) {
                result.append(Attribute(name: try string(), type: try type(depth: 0), space: try space(), value: try value()))
            }
            return result
        }

        mutating func node(depth: Int) throws -> Node {
            guard depth <= HDF5Tree.maximumDepth else { throw failure("groups nest deeper than \(HDF5Tree.maximumDepth)") }
            guard let kind = Node.Kind(rawValue: try byte()) else { throw failure("unknown node kind") }
            var node = Node(kind: kind, name: try string())
            guard depth == 0 || (!node.name.isEmpty && !node.name.contains("/") && node.name != "." && node.name != "..") else {
                throw failure("`\(node.name)` is not a link name")
            }
            switch kind {
            case .group:
                node.order.links = try uint32()
                node.order.attributes = try uint32()
                node.attributes = try attributes()
                for _ in 0..<(try count()) { node.children.append(try self.node(depth: depth + 1)) }
            case .dataset:
                node.order.attributes = try uint32()
                node.attributes = try attributes()
                node.type = try type(depth: 0)
                node.space = try space()
                if try byte() == 1 { node.tensorPath = try string() } else { node.value = try value() }
            case .hardLink, .softLink:
                node.target = try string()
            }
            return node
        }
    }
}
