public import PithIR

/// A NumPy `.npz` archive written member by member to a file descriptor, each array's bytes
/// streamed once: what `pith dump` writes, for models larger than memory allows twice. Members are
/// stored (not deflated), as `numpy.savez` writes them; sizes past the zip format's 4 GiB limits
/// are refused rather than written wrong (no zip64).
public final class NPZWriter {
    public struct Failure: ReportableError {
        public var message: String
        public var exitKind: ExitKind
        public var description: String { message }
    }

    private let descriptor: Int32
    private let file: String
    private var offset = 0
    private var central: [UInt8] = []
    private var count = 0

    public init(descriptor: Int32, file: String) {
        self.descriptor = descriptor
        self.file = file
    }

    /// Appends `name.npy`: an array of numpy type `descr` (`<f4`, `|u1`, …) and `shape`, whose
    /// `bytes` are produced by `body` in pieces (little-endian, C order), `byteCount` in all.
    public func append(
        _ name: String, descr: String, shape: [Int], byteCount: Int, _ body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': "
        header += shape.isEmpty ? "()" : shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        header += ", }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let preamble: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        let size = preamble.count + byteCount
        let fileName = Array((name + ".npy").utf8)
        guard size < 0xFFFF_FFFF, offset < 0xFFFF_FFFF, fileName.count < 0xFFFF else {
            throw Failure(
                message: "\(file): member `\(name)` (\(size) bytes at offset \(offset)) passes the zip format's 4 GiB limit; write .safetensors instead",
                exitKind: .data)
        }
        // The local header is written with the checksum left 0, then rewritten once the data is in.
        let start = offset
        var local = Self.localHeader(crc: 0, size: size, name: fileName)
        try put(local)
        var crc = preamble.withUnsafeBytes { DataFiles.zipChecksum($0) }
        try preamble.withUnsafeBytes { try put($0) }
        var written = 0
        try body { piece in
            crc = DataFiles.zipChecksum(piece, continuing: crc)
            written += piece.count
            try put(piece)
        }
        guard written == byteCount else {
            throw Failure(message: "\(file): member `\(name)` gave \(written) of its \(byteCount) bytes", exitKind: .data)
        }
        local = Self.localHeader(crc: crc, size: size, name: fileName)
        do { try local.withUnsafeBytes { try FileIO.write(descriptor, $0, at: start) } } catch { throw Failure(message: "\(file): \(error)", exitKind: .io) }
        Self.u32(0x0201_4B50, &central)
        for v in [20, 20, 0, 0, 0, 0x21] { Self.u16(v, &central) }
        Self.u32(Int(crc), &central)
        Self.u32(size, &central)
        Self.u32(size, &central)
        Self.u16(fileName.count, &central)
        for _ in 0..<4 { Self.u16(0, &central) }
        Self.u32(0, &central)
        Self.u32(start, &central)
        central += fileName
        count += 1
    }

    /// Writes the central directory; the archive is complete after this.
    public func finish() throws {
        guard count < 0xFFFF, offset < 0xFFFF_FFFF else {
            throw Failure(message: "\(file): \(count) members at offset \(offset) pass the zip format's limits; write .safetensors instead", exitKind: .data)
        }
        let centralOffset = offset
        var end = central
        Self.u32(0x0605_4B50, &end)
        Self.u16(0, &end)
        Self.u16(0, &end)
        Self.u16(count, &end)
        Self.u16(count, &end)
        Self.u32(central.count, &end)
        Self.u32(centralOffset, &end)
        Self.u16(0, &end)
        try put(end)
    }

    private func put(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try put($0) } }

    private func put(_ bytes: UnsafeRawBufferPointer) throws {
        do { try FileIO.write(descriptor, bytes, at: offset) } catch { throw Failure(message: "\(file): \(error)", exitKind: .io) }
        offset += bytes.count
    }

    private static func localHeader(crc: UInt32, size: Int, name: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        u32(0x0403_4B50, &out)
        for v in [20, 0, 0, 0, 0x21] { u16(v, &out) }
        u32(Int(crc), &out)
        u32(size, &out)
        u32(size, &out)
        u16(name.count, &out)
        u16(0, &out)
        return out + name
    }

    private static func u16(_ v: Int, _ into: inout [UInt8]) { into += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    private static func u32(_ v: Int, _ into: inout [UInt8]) {
        u16(v & 0xFFFF, &into)
        u16(v >> 16 & 0xFFFF, &into)
    }
}
