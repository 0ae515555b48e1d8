import PithIR
#if canImport(Glibc)
import Glibc
#endif

/// Recognising HDF5 by content. The superblock, which starts with the signature, is at offset 0 or
/// after a user block of 512 bytes times a power of two (512, 1024, 2048, …).
extension HDF5Reader {
    /// The eight bytes that start an HDF5 superblock: `\x89HDF\r\n\x1a\n`.
    public static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The last offset the signature is looked for at (after a 1 MiB user block).
    public static let maximumSignatureOffset = 1 << 20

    /// The offsets the signature may start at: 0, 512, 1024, …, `maximumSignatureOffset`.
    static var signatureOffsets: [Int] {
        [0] + sequence(first: 512) { $0 < maximumSignatureOffset ? $0 * 2 : nil }
    }

    /// Whether the file at `path` is HDF5: the signature at one of the offsets a superblock may
    /// start at, up to `maximumSignatureOffset`. Throws `HDF5Error` (`io`) when the file cannot be
    /// opened or read; a file that ends first simply has no signature there.
    public static func hasSignature(contentsOf path: String) throws -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw HDF5Error(.io, file: path, "cannot open the file (\(FileIO.describe(errorNumber: errno)))")
        }
        defer { close(descriptor) }
        var head = [UInt8](repeating: 0, count: signature.count)
        for offset in signatureOffsets {
            do {
                try head.withUnsafeMutableBytes { try FileIO.read(descriptor, into: $0, at: offset) }
            } catch let failure as FileIO.IOFailure {
                if failure.errorNumber == 0 { return false }  // the file ends before this offset
                throw HDF5Error(.io, file: path, "cannot read 8 bytes at offset \(offset): \(failure)")
            }
            if head == signature { return true }
        }
        return false
    }

    /// Whether `bytes`, the start of a file, hold the signature at one of the offsets a superblock
    /// may start at (those that `bytes` reach).
    public static func hasSignature(_ bytes: UnsafeRawBufferPointer) -> Bool {
        signatureOffsets.contains { offset in
            offset <= bytes.count - signature.count && bytes[offset..<offset + signature.count].elementsEqual(signature)
        }
    }
}
