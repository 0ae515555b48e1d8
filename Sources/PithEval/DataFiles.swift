import Foundation
public import PithIR
private import CZlib

/// Input arrays for evaluation, read from the files users have: NumPy `.npy` and `.npz`
/// (stored or deflated members) and IDX (the MNIST format, optionally gzip-compressed).
///
/// Everything is checked against the bytes present before anything is allocated; a file that is
/// not what it claims gives a `DataFileError` naming the file, the member and what was found.
public enum DataFiles {
    /// Largest array a data file may declare (elements).
    public static let maximumElements = 1 << 31

    /// The arrays in `path`, by name: one named after the file for `.npy` and IDX, one per member
    /// (without `.npy`) for `.npz`, in file order.
    public static func read(_ path: String) throws -> [(name: String, value: Value)] {
        // Only regular files are opened (a FIFO would block); a missing file is a missing input (66).
        let file: MappedFile
        do { file = try MappedFile(path) } catch { throw DataFileError(path, error.reason, exitKind: error.exitKind == .noInput ? .noInput : error.exitKind) }
        // Arrays are read where they lie in the mapping (one copy, into the values); a gzip'd file
        // is inflated first.
        return try withExtendedLifetime(file) {
            if file.bytes.starts(with: [0x1F, 0x8B]) { return try gunzip(file.bytes, file: path).withUnsafeBytes { try read($0, path: path) } }
            return try read(file.bytes, path: path)
        }
    }

    /// The arrays in `bytes`, the contents of the file at `path`.
    private static func read(_ bytes: UnsafeRawBufferPointer, path: String) throws -> [(name: String, value: Value)] {
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        if bytes.starts(with: [0x93] + Array("NUMPY".utf8)) { return [(stem, try npy(bytes, file: path))] }
        if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) || bytes.starts(with: [0x50, 0x4B, 0x05, 0x06]) { return try npz(bytes, file: path) }
        if bytes.count >= 4, bytes[0] == 0, bytes[1] == 0, (0x08...0x0E).contains(bytes[2]) {
            return [(stem.replacingOccurrences(of: ".idx", with: ""), try idx(bytes, file: path))]
        }
        throw DataFileError(
            path,
            "is not a .npy, .npz or IDX file (optionally gzip-compressed): it starts with \(bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " "))"
        )
    }

    // MARK: NumPy

    /// The array in `bytes[start..<end]` (the whole of `bytes` by default): a `.npy` file or a
    /// stored `.npz` member, read where it lies.
    static func npy(_ bytes: UnsafeRawBufferPointer, start: Int = 0, end: Int? = nil, file: String) throws -> Value {
        let end = end ?? bytes.count, count = end - start
        guard count >= 10 else { throw DataFileError(file, "the .npy header is truncated") }
        let major = bytes[start + 6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1: headerLength = Int(bytes[start + 8]) | Int(bytes[start + 9]) << 8; headerStart = start + 10
        case 2, 3:
            guard count >= 12 else { throw DataFileError(file, "the .npy header is truncated") }
            headerLength =
                Int(bytes[start + 8]) | Int(bytes[start + 9]) << 8 | Int(bytes[start + 10]) << 16 | Int(bytes[start + 11]) << 24
            headerStart = start + 12
        default: throw DataFileError(file, ".npy format version \(major) is not one this Pith reads (1, 2, 3)")
        }
        guard headerLength <= end - headerStart, headerLength < 1 << 20 else {
            throw DataFileError(file, "the .npy header of \(headerLength) bytes runs past the file")
        }
        let header = String(decoding: bytes[headerStart..<headerStart + headerLength], as: UTF8.self)
        guard let descr = field(header, "descr").flatMap(quoted), let order = field(header, "fortran_order"), let shapeText = field(header, "shape") else {
            throw DataFileError(file, "the .npy header `\(header.trimmingCharacters(in: .whitespacesAndNewlines))` lacks descr, fortran_order or shape")
        }
        let fortran = order.hasPrefix("True")
        guard fortran || order.hasPrefix("False") else { throw DataFileError(file, "fortran_order is `\(order)`, not True or False") }
        let shape = try shapeText.dropFirst().prefix { $0 != ")" }.split(separator: ",").map { part -> Int in
            guard let d = Int(part.trimmingCharacters(in: .whitespaces)), d >= 0 else {
                throw DataFileError(file, "shape \(shapeText) is not a tuple of sizes")
            }
            return d
        }
        // Fortran order (column-major, as numpy saves a transposed view): the bytes are the
        // row-major array of the reversed shape.
        guard fortran else { return try array(bytes, from: headerStart + headerLength, end: end, descr: descr, shape: shape, file: file) }
        return try array(bytes, from: headerStart + headerLength, end: end, descr: descr, shape: shape.reversed(), file: file).axesReversed()
    }

    /// The value of `key` in a Python dict literal header (up to the next top-level comma).
    private static func field(_ header: String, _ key: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        let rest = header[range.upperBound...].drop { $0 == " " }
        if rest.first == "(" { return rest.firstIndex(of: ")").map { String(rest[...$0]) } }
        return String(rest.prefix { $0 != "," && $0 != "}" })
    }

    private static func quoted(_ text: String) -> String? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard t.count >= 2, t.first == "'", t.last == "'" else { return nil }
        return String(t.dropFirst().dropLast())
    }

    static func array(_ bytes: UnsafeRawBufferPointer, from offset: Int, end: Int? = nil, descr: String, shape: [Int], file: String) throws -> Value {
        let end = end ?? bytes.count
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maximumElements else { throw DataFileError(file, "shape \(shape) is larger than \(maximumElements) elements") }
            count = p
        }
        // Unicode strings: `<U n`, n UTF-32 code units per element, NUL-padded.
        if descr.hasPrefix("<U") || descr.hasPrefix("|U"), let width = Int(descr.dropFirst(2)), width >= 0, width <= 1 << 20 {
            guard count * width * 4 <= end - offset else {
                throw DataFileError(file, "\(count) strings of \(width) characters need \(count * width * 4) bytes; \(end - offset) remain")
            }
            let strings = (0..<count).map { i -> String in
                var scalars = String.UnicodeScalarView()
                for k in 0..<width {
                    let at = offset + (i * width + k) * 4
                    let code = UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
                    if code == 0 { break }
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                }
                return String(scalars)
            }
            return Value(strings: strings, shape: shape)
        }
        let kinds: [String: (DType, Int)] = [
            "f4": (.float32, 4), "f8": (.float64, 8), "f2": (.float16, 2), "u1": (.uint8, 1), "i1": (.int8, 1),
            "u2": (.uint16, 2), "i2": (.int16, 2), "u4": (.uint32, 4), "i4": (.int32, 4), "u8": (.uint64, 8), "i8": (.int64, 8), "b1": (.bool, 1),
        ]
        let endian = descr.first
        guard let (dtype, width) = kinds[String(descr.dropFirst())], endian == "<" || endian == "|" || (endian == "=" && true) else {
            throw DataFileError(
                file, "dtype `\(descr)` is not one this Pith reads (little-endian float16/32/64, int8…int64, uint8…uint64, bool, unicode strings)")
        }
        guard count * width <= end - offset else {
            throw DataFileError(file, "\(count) elements of \(descr) need \(count * width) bytes; \(end - offset) remain")
        }
        if dtype == .float32 {
            // The evaluator's own representation: one memory copy, straight from the file's bytes.
            let floats = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count * 4]))
                initialized = count
            }
            return Value(floats: floats, shape: shape)
        }
        // One memory copy (a generic copy of the slice goes byte by byte).
        let buffer = TensorBuffer(copying: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count * width]))
        let tensor = Tensor(name: file, dtype: dtype, shape: shape, storage: .dense(buffer), origin: .initializer(graph: .main))
        return try Value(tensor)
    }

    // MARK: npz (zip)

    static func npz(_ bytes: UnsafeRawBufferPointer, file: String) throws -> [(name: String, value: Value)] {
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        var result: [(String, Value)] = []
        var position = 0
        while position + 30 <= bytes.count, u32(position) == 0x0403_4B50 {
            let flags = u16(position + 6), method = u16(position + 8)
            var compressed = u32(position + 18), size = u32(position + 22)
            let nameLength = u16(position + 26), extraLength = u16(position + 28)
            guard position + 30 + nameLength + extraLength <= bytes.count else { throw DataFileError(file, "a zip entry header runs past the file") }
            let name = String(decoding: bytes[(position + 30)..<(position + 30 + nameLength)], as: UTF8.self)
            // ZIP64: numpy writes sizes of 0xFFFFFFFF with the real ones in the extra field.
            if compressed == 0xFFFF_FFFF || size == 0xFFFF_FFFF {
                var e = position + 30 + nameLength
                let endExtra = e + extraLength
                while e + 4 <= endExtra {
                    let id = u16(e), length = u16(e + 2)
                    if id == 1, length >= 16, e + 20 <= endExtra { size = u32(e + 4) | u32(e + 8) << 32; compressed = u32(e + 12) | u32(e + 16) << 32 }
                    e += 4 + length
                }
            }
            guard flags & 0x08 == 0 else { throw DataFileError(file, "member `\(name)` uses a data descriptor; rewrite the archive with numpy.savez") }
            let start = position + 30 + nameLength + extraLength
            guard compressed <= bytes.count - start, size <= maximumElements * 8 else { throw DataFileError(file, "member `\(name)` runs past the file") }
            let arrayName = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            switch method {
            case 0: result.append((arrayName, try npy(bytes, start: start, end: start + compressed, file: "\(file) member `\(name)`")))
            case 8:
                let member = try inflate(
                    UnsafeRawBufferPointer(rebasing: bytes[start..<start + compressed]), expected: size, windowBits: -15, file: "\(file) member `\(name)`")
                result.append((arrayName, try member.withUnsafeBytes { try npy($0, file: "\(file) member `\(name)`") }))
            default: throw DataFileError(file, "member `\(name)` uses zip compression method \(method); only stored and deflate are read")
            }
            position = start + compressed
        }
        return result
    }

    // MARK: IDX

    static func idx(_ bytes: UnsafeRawBufferPointer, file: String) throws -> Value {
        let rank = Int(bytes[3])
        guard bytes.count >= 4 + 4 * rank else { throw DataFileError(file, "the IDX header of \(rank) dimensions is truncated") }
        let shape = (0..<rank).map { i in (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * i + $1]) } }
        let types: [UInt8: (DType, Int)] = [
            0x08: (.uint8, 1), 0x09: (.int8, 1), 0x0B: (.int16, 2), 0x0C: (.int32, 4), 0x0D: (.float32, 4), 0x0E: (.float64, 8),
        ]
        guard let (dtype, width) = types[bytes[2]] else { throw DataFileError(file, "IDX type code 0x\(String(bytes[2], radix: 16)) is unknown") }
        let offset = 4 + 4 * rank
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maximumElements else { throw DataFileError(file, "shape \(shape) is larger than \(maximumElements) elements") }
            count = p
        }
        guard count * width <= bytes.count - offset else {
            throw DataFileError(file, "\(count) elements need \(count * width) bytes; \(bytes.count - offset) remain")
        }
        // IDX is big-endian: reverse each element's bytes.
        var payload = Array(bytes[offset..<offset + count * width])
        if width > 1 { for i in 0..<count { payload[i * width..<(i + 1) * width].reverse() } }
        return try Value(Tensor(name: file, dtype: dtype, shape: shape, storage: .dense(TensorBuffer(bytes: payload)), origin: .initializer(graph: .main)))
    }

    // MARK: zlib

    static func gunzip(_ bytes: UnsafeRawBufferPointer, file: String) throws -> [UInt8] {
        // gzip stores the size modulo 2^32 in its last four bytes: a hint, capped, not trusted.
        let hint = bytes.count >= 4 ? bytes.suffix(4).reversed().reduce(0) { $0 << 8 | Int($1) } : 0
        return try inflate(bytes, expected: nil, capacityHint: min(hint, 1 << 30), windowBits: 15 + 16, file: file)
    }

    static func inflate(_ input: UnsafeRawBufferPointer, expected: Int?, capacityHint: Int = 0, windowBits: Int32, file: String) throws -> [UInt8] {
        var stream = z_stream()
        guard czlib_inflate_init(&stream, windowBits) == Z_OK else { throw DataFileError(file, "zlib could not start inflating") }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: max(expected ?? capacityHint, 1 << 16))
        var produced = 0
        var status: Int32 = Z_OK
        do {
            let inBuffer = input.bindMemory(to: UInt8.self)
            stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
            stream.avail_in = UInt32(inBuffer.count)
            while status != Z_STREAM_END {
                if produced == output.count {
                    guard expected == nil, output.count < maximumElements * 8 else {
                        throw DataFileError(file, "decompresses to more than the \(output.count) bytes it declares")
                    }
                    output.append(contentsOf: [UInt8](repeating: 0, count: output.count))
                }
                status = output.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress! + produced
                    stream.avail_out = UInt32(min(out.count - produced, Int(UInt32.max)))
                    let before = stream.avail_out
                    let result = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced += Int(before - stream.avail_out)
                    return result
                }
                guard status == Z_OK || status == Z_STREAM_END || (status == Z_BUF_ERROR && produced == output.count) else {
                    throw DataFileError(file, "the compressed data is damaged (zlib status \(status))")
                }
            }
        }
        if let expected, produced != expected { throw DataFileError(file, "decompresses to \(produced) bytes, not the \(expected) it declares") }
        output.removeLast(output.count - produced)
        return output
    }
}

/// A data file that could not be read: the file (and member) and what was wrong.
public struct DataFileError: ReportableError {
    /// `data` (65) for a file that is not what it claims; `noInput` (66) for one that does not exist.
    public var exitKind: ExitKind
    public var file: String
    public var message: String
    init(_ file: String, _ message: String, exitKind: ExitKind = .data) {
        self.file = file
        self.message = message
        self.exitKind = exitKind
    }
    public var description: String { "\(file): \(message)" }
}

extension DataFiles {
    /// A NumPy `.npz` archive (stored, uncompressed members) of `arrays`: floats as float32,
    /// integers as int64, bool as bool — what `numpy.load` reads.
    public static func npz(_ arrays: [(name: String, value: Value)]) -> [UInt8] {
        var out: [UInt8] = [], central: [UInt8] = []
        func u16(_ v: Int, _ into: inout [UInt8]) { into += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: Int, _ into: inout [UInt8]) { u16(v & 0xFFFF, &into); u16(v >> 16 & 0xFFFF, &into) }
        for (name, value) in arrays {
            let member = npy(value)
            let fileName = Array((name + ".npy").utf8)
            let crc = member.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, UInt32($0.count))) }
            let offset = out.count
            u32(0x0403_4B50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u16(0, &out); u16(0x21, &out)
            u32(crc, &out); u32(member.count, &out); u32(member.count, &out); u16(fileName.count, &out); u16(0, &out)
            out += fileName + member
            u32(0x0201_4B50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0x21, &central)
            u32(crc, &central); u32(member.count, &central); u32(member.count, &central); u16(fileName.count, &central)
            u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central); u32(0, &central); u32(offset, &central)
            central += fileName
        }
        let centralOffset = out.count
        out += central
        u32(0x0605_4B50, &out); u16(0, &out); u16(0, &out); u16(arrays.count, &out); u16(arrays.count, &out)
        u32(central.count, &out); u32(centralOffset, &out); u16(0, &out)
        return out
    }

    /// One array in `.npy` format version 1.0.
    static func npy(_ value: Value) -> [UInt8] {
        let width = value.isString ? max(1, value.strings.map { $0.unicodeScalars.count }.max() ?? 1) : 0
        let descr = value.isString ? "<U\(width)" : value.isFloat ? "<f4" : (value.dtype == .bool ? "|b1" : "<i8")
        let shape =
            value.shape.isEmpty ? "()" : value.shape.count == 1 ? "(\(value.shape[0]),)" : "(" + value.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        if value.isString {
            for text in value.strings {
                var codes = text.unicodeScalars.map(\.value)
                codes += [UInt32](repeating: 0, count: width - codes.count)
                codes.withUnsafeBytes { out += $0 }
            }
        } else if value.isFloat {
            value.floats.withUnsafeBytes { out += $0 }
        } else if value.dtype == .bool {
            out += value.ints.map { $0 != 0 ? 1 : 0 }
        } else {
            value.ints.withUnsafeBytes { out += $0 }
        }
        return out
    }
}

extension DataFiles {
    /// zlib's CRC-32 (the zip format's checksum) of `bytes`, continuing from `previous`.
    public static func zipChecksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        var crc = UInt(previous)
        var offset = 0
        // zlib takes lengths as UInt32: large buffers in pieces.
        while offset < bytes.count {
            let piece = min(bytes.count - offset, 1 << 30)
            crc = crc32(crc, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self), UInt32(piece))
            offset += piece
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}
