import PithCoding

/// The fixed 64-byte header (see docs/container-format.md, "Byte map").
struct ContainerHeader: Equatable {
    /// `\x89 P I T H \r \n \x1a`: non-ASCII first byte, and the CR LF / EOF bytes catch text-mode mangling (as PNG's does).
    static let magic: [UInt8] = [0x89, 0x50, 0x49, 0x54, 0x48, 0x0D, 0x0A, 0x1A]
    static let size = 64
    static let majorVersion: UInt16 = 1
    static let minorVersion: UInt16 = 6
    /// Header flag (since 1.1): the manifest is stored as one zstd frame of the JSON.
    static let manifestZstd: UInt32 = 1
    /// Header flag (1.6, with `manifestZstd`): the manifest's frame was made with the `manifest-1`
    /// dictionary (`ManifestDictionary`) and is stored without its 4-byte magic number.
    static let manifestDictionary: UInt32 = 1 << 1
    /// Header flag (1.6): the streams follow each other from byte 64 in index order, without
    /// alignment and without `offset` in their entries, and the manifest follows the last one.
    static let packed: UInt32 = 1 << 2
    /// Header flag (1.6): the source skeleton follows the manifest's JSON, after a 0x00 byte, in
    /// the manifest as stored (inside its frame when it has one), instead of in a stream.
    static let skeletonInManifest: UInt32 = 1 << 3
    /// Every flag this Pith reads.
    static let knownFlags = manifestZstd | manifestDictionary | packed | skeletonInManifest
    /// The manifest and raw streams start on multiples of this (before 1.4, every stream), unless
    /// the container is `packed`.
    static let alignment = 64
    /// Largest manifest a reader accepts.
    static let maximumManifestBytes = 64 << 20

    var major: UInt16 = majorVersion
    var minor: UInt16 = minorVersion
    var flags: UInt32 = 0
    var manifestOffset: UInt64
    var manifestLength: UInt64
    var manifestChecksum: UInt32

    func encoded() -> [UInt8] {
        var bytes = Self.magic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        append(major)
        append(minor)
        append(flags)
        append(manifestOffset)
        append(manifestLength)
        append(manifestChecksum)
        append(CRC32C.checksum(bytes))  // header checksum over bytes 0..<36
        bytes += [UInt8](repeating: 0, count: Self.size - bytes.count)
        return bytes
    }

    /// Parses and checks the header; `file` and `fileSize` for messages and bounds.
    static func decode(_ bytes: UnsafeRawBufferPointer, file: String, fileSize: Int) throws -> ContainerHeader {
        guard bytes.count >= size else {
            throw ContainerError(.malformed, file: file, "\(bytes.count) bytes is shorter than the \(size)-byte header: not a .pith container, or truncated")
        }
        guard Array(bytes[0..<8]) == magic else { throw ContainerError(.malformed, file: file, "no .pith signature at byte 0") }
        guard bytes[8] != WholeFileContainer.formByte else {
            throw ContainerError(
                .unsupported, file: file, "the container holds its source file whole (format 1.5's whole-file form), which has no manifest or streams to read")
        }
        func load<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T { T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        let stored = load(36, UInt32.self)
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<36]))
        guard stored == actual else {
            throw ContainerError(.checksum, file: file, "header checksum is \(hex(stored)), the header's bytes give \(hex(actual)): the file is damaged")
        }
        let header = ContainerHeader(
            major: load(8, UInt16.self), minor: load(10, UInt16.self), flags: load(12, UInt32.self),
            manifestOffset: load(16, UInt64.self), manifestLength: load(24, UInt64.self), manifestChecksum: load(32, UInt32.self))
        guard header.major == majorVersion else {
            throw ContainerError(
                .unsupported, file: file,
                "container format \(header.major).\(header.minor) is not readable by this Pith (reads \(majorVersion).x): \(header.major > majorVersion ? "upgrade Pith" : "re-create the file with this Pith")"
            )
        }
        guard header.flags & ~knownFlags == 0 else {
            throw ContainerError(
                .unsupported, file: file,
                "header flags 0x\(String(header.flags, radix: 16)) are not defined in format \(majorVersion).\(minorVersion): upgrade Pith")
        }
        guard header.flags & manifestDictionary == 0 || header.flags & manifestZstd != 0 else {
            throw ContainerError(.malformed, file: file, "header flag bit 1 (a manifest frame made with `manifest-1`) is set without bit 0 (a zstd manifest)")
        }
        guard header.manifestLength <= UInt64(maximumManifestBytes) else {
            throw ContainerError(.malformed, file: file, "manifest length \(header.manifestLength) exceeds the \(maximumManifestBytes)-byte limit")
        }
        let aligned = !header.isPacked
        guard header.manifestOffset >= UInt64(size), !aligned || header.manifestOffset % UInt64(alignment) == 0,
            header.manifestOffset <= UInt64(fileSize), header.manifestLength <= UInt64(fileSize) - header.manifestOffset
        else {
            throw ContainerError(
                .malformed, file: file,
                "manifest at bytes \(header.manifestOffset)..<\(header.manifestOffset &+ header.manifestLength) is not inside the \(fileSize)-byte file\(aligned ? " on a 64-byte boundary" : "")"
            )
        }
        return header
    }

    /// Whether the streams are packed (flag bit 2, 1.6): no alignment, no offsets in the manifest.
    var isPacked: Bool { flags & Self.packed != 0 }
}

/// A CRC-32C as the manifest and messages write it: 8 lowercase hexadecimal digits.
func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}
