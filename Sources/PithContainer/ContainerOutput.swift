#if canImport(Glibc)
import Glibc
#endif
import PithIR

/// Where `ContainerWriter` puts a container's bytes as it makes them: appended in file order, the
/// header written over its placeholder last. The writer reads back a stream it has written only to
/// compare it with a new one that looks identical (same checksum and length), and takes back the
/// new one when it is (`truncate`), so a stream is stored once without the writer holding every
/// stream it wrote.
public protocol ContainerOutput {
    /// The bytes written so far.
    var size: Int { get }
    /// Adds `bytes` at the end.
    mutating func append(_ bytes: UnsafeRawBufferPointer) throws
    /// Writes `bytes` over ones already written, from `offset`.
    mutating func overwrite(at offset: Int, with bytes: UnsafeRawBufferPointer) throws
    /// Fills `buffer` with the bytes written at `offset`.
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws
    /// Drops every byte from `size` on.
    mutating func truncate(to size: Int) throws
}

/// A container made in memory.
public struct ContainerMemoryOutput: ContainerOutput, Sendable {
    public private(set) var bytes: [UInt8] = []

    /// With room for `capacity` bytes made at once (pages are only touched as bytes are written).
    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public var size: Int { bytes.count }
    public mutating func append(_ bytes: UnsafeRawBufferPointer) { self.bytes.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self)) }
    public mutating func overwrite(at offset: Int, with bytes: UnsafeRawBufferPointer) {
        self.bytes.replaceSubrange(offset..<offset + bytes.count, with: bytes)
    }
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + buffer.count])) }
    }
    public mutating func truncate(to size: Int) { bytes.removeLast(bytes.count - size) }
}

/// A container written straight to an open file, from its start (the file is empty when given):
/// streams reach the file as they are coded, so writing holds no copy of the container. Errors name
/// `path` with the system's reason and how far the file had got.
public struct ContainerFileOutput: ContainerOutput {
    public let descriptor: Int32
    /// The file as the user named it, for messages.
    public let path: String
    public private(set) var size = 0
    /// Bytes before this offset have been handed to the kernel to write to the disk.
    private var flushedUpTo = 0
    /// Written bytes are handed to the kernel to write out in steps of this many, while the writer
    /// goes on coding, so the `fsync` that ends the file has little left to wait for.
    static let writeBackStep = 8 << 20

    public init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        do { try FileIO.write(descriptor, bytes, at: size) } catch {
            throw failure("write failed after \(size + error.done) bytes", error.errorNumber)
        }
        size += bytes.count
        if size - flushedUpTo >= Self.writeBackStep {
            // POSIX_FADV_DONTNEED starts the write-back of the range's dirty pages without waiting
            // for it (Linux); a hint, so its result does not matter.
            _ = posix_fadvise(descriptor, off_t(flushedUpTo), off_t(size - flushedUpTo), POSIX_FADV_DONTNEED)
            flushedUpTo = size
        }
    }

    public mutating func overwrite(at offset: Int, with bytes: UnsafeRawBufferPointer) throws {
        do { try FileIO.write(descriptor, bytes, at: offset) } catch {
            throw failure("write failed at byte \(offset + error.done)", error.errorNumber)
        }
    }

    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        do { try FileIO.read(descriptor, into: buffer, at: offset) } catch {
            throw failure("reading back \(buffer.count) bytes at \(offset) failed", error.errorNumber)
        }
    }

    public mutating func truncate(to size: Int) throws {
        guard ftruncate(descriptor, off_t(size)) == 0 else { throw failure("cannot shorten the file to \(size) bytes", errno) }
        self.size = size
        flushedUpTo = min(flushedUpTo, size)
    }

    private func failure(_ what: String, _ errorNumber: Int32) -> ContainerError {
        ContainerError(.io, file: path, "\(what) (\(FileIO.describe(errorNumber: errorNumber)))")
    }
}
