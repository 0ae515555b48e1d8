/// Checks a message before protobuf-c unpacks it, and explains what is wrong,
/// which protobuf-c does not: it only returns NULL.
///
/// Walks the protobuf wire format of a `ModelProto` and the messages nested
/// in it that matter most (graph, nodes, attributes, tensors), and reports the
/// first field that cannot be decoded, with its byte offset.
struct WireScanner {
    /// Field numbers of length-delimited fields that hold a nested message, per message kind.
    private static let nested: [String: [Int: String]] = [
        "ModelProto": [7: "GraphProto", 8: "OperatorSetIdProto", 14: "StringStringEntryProto", 25: "FunctionProto"],
        "GraphProto": [
            1: "NodeProto", 5: "TensorProto", 15: "SparseTensorProto", 11: "ValueInfoProto",
            12: "ValueInfoProto", 13: "ValueInfoProto",
        ],
        "FunctionProto": [7: "NodeProto", 11: "AttributeProto"],
        "NodeProto": [5: "AttributeProto"],
        "AttributeProto": [
            5: "TensorProto", 6: "GraphProto", 10: "TensorProto", 11: "GraphProto",
            14: "TypeProto", 15: "TypeProto", 22: "SparseTensorProto", 23: "SparseTensorProto",
        ],
        "ValueInfoProto": [2: "TypeProto"],
        "TypeProto": [
            1: "TypeProto.Tensor", 4: "TypeProto.Sequence", 5: "TypeProto.Map", 8: "TypeProto.Tensor",
            9: "TypeProto.Optional",
        ],
        "TypeProto.Sequence": [1: "TypeProto"],
        "TypeProto.Map": [2: "TypeProto"],
        "TypeProto.Optional": [1: "TypeProto"],
        "SparseTensorProto": [1: "TensorProto", 2: "TensorProto"],
        "TensorProto": [13: "StringStringEntryProto"],
    ]
    /// Deeper than this, nesting is reported as the problem. Each subgraph level costs three
    /// (graph → node → attribute), so this allows about 30 levels of `If`/`Loop` nesting; real
    /// models use a few. The limit keeps protobuf-c's recursive unpacking off a stack overflow.
    static let maximumDepth = 100

    let bytes: UnsafeRawBufferPointer

    /// A description of the first problem, or nil if the wire format is sound.
    func firstProblem() -> String? {
        scan(message: "ModelProto", range: 0..<bytes.count, depth: 0)
    }

    private func scan(message: String, range: Range<Int>, depth: Int) -> String? {
        if depth > Self.maximumDepth { return "messages nested deeper than \(Self.maximumDepth) levels at byte \(range.lowerBound)" }
        var position = range.lowerBound
        while position < range.upperBound {
            let fieldStart = position
            guard let key = varint(&position, end: range.upperBound) else {
                return "\(message): truncated field key at byte \(fieldStart)"
            }
            let field = Int(key >> 3), wireType = Int(key & 7)
            if field == 0 { return "\(message): field number 0 at byte \(fieldStart)" }
            switch wireType {
            case 0:
                guard varint(&position, end: range.upperBound) != nil else {
                    return "\(message) field \(field): truncated varint at byte \(fieldStart)"
                }
            case 1, 5:
                let width = wireType == 1 ? 8 : 4
                guard range.upperBound - position >= width else {
                    return "\(message) field \(field): needs \(width) bytes at byte \(position), \(range.upperBound - position) remain"
                }
                position += width
            case 2:
                guard let length = varint(&position, end: range.upperBound) else {
                    return "\(message) field \(field): truncated length at byte \(fieldStart)"
                }
                let remaining = range.upperBound - position
                guard length <= UInt64(remaining) else {
                    return "\(message) field \(field): declares \(length) bytes at byte \(position), but only \(remaining) remain (file truncated or corrupt)"
                }
                let end = position + Int(length)
                if let child = Self.nested[message]?[field],
                    let problem = scan(message: child, range: position..<end, depth: depth + 1)
                {
                    return problem
                }
                position = end
            default:
                return "\(message) field \(field): invalid wire type \(wireType) at byte \(fieldStart)"
            }
        }
        return nil
    }

    /// One field of a message, as `fields(in:)` finds it.
    struct Field {
        var number: Int
        var wireType: Int
        /// The whole field: key, length (wire type 2) and content.
        var whole: Range<Int>
        /// Where the length varint starts (wire type 2).
        var lengthStart: Int
        /// The content of a length-delimited field; empty otherwise.
        var content: Range<Int>
    }

    /// The fields of the message in `range`, in order, for bytes `firstProblem` found sound (it
    /// stops at the first field it cannot read).
    func fields(in range: Range<Int>) -> [Field] {
        var result: [Field] = []
        var position = range.lowerBound
        while position < range.upperBound {
            let start = position
            guard let key = varint(&position, end: range.upperBound) else { break }
            let wireType = Int(key & 7)
            let lengthStart = position
            var content = position..<position
            switch wireType {
            case 0: guard varint(&position, end: range.upperBound) != nil else { return result }
            case 1: position += 8
            case 5: position += 4
            case 2:
                guard let length = varint(&position, end: range.upperBound), length <= UInt64(range.upperBound - position) else { return result }
                content = position..<position + Int(length)
                position = content.upperBound
            default: return result
            }
            guard position <= range.upperBound else { return result }
            result.append(Field(number: Int(key >> 3), wireType: wireType, whole: start..<position, lengthStart: lengthStart, content: content))
        }
        return result
    }

    /// Appends `value` as a varint.
    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    private func varint(_ position: inout Int, end: Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < end, shift < 64 {
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        return nil
    }
}
