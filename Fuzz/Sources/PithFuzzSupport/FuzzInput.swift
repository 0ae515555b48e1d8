import Glibc

/// Reads a fuzz input front to back as the numbers a target needs; past the end every read gives 0,
/// so any input is a valid sequence of choices.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var position = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var remaining: Int { max(0, bytes.count - position) }

    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func uint16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }

    /// The bytes not read yet.
    public mutating func rest() -> UnsafeRawBufferPointer {
        defer { position = bytes.count }
        return UnsafeRawBufferPointer(rebasing: bytes[min(position, bytes.count)...])
    }
}

/// A scratch folder of this process in memory (`/dev/shm` when it exists), for targets whose reader
/// needs a path (libhdf5, restore); removed with what it holds when the process exits.
public let scratchFolder: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    let folder = "\(base)/pith-fuzz-\(getpid())"
    mkdir(folder, 0o700)
    scratchOwner = getpid()
    atexit {
        // Only the process that made it (not a child the code under test forked) removes it.
        guard getpid() == scratchOwner, let entries = opendir(scratchFolder) else { return }
        while let entry = readdir(entries) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { unlink(scratchFolder + "/" + name) }
        }
        closedir(entries)
        rmdir(scratchFolder)
    }
    return folder
}()

nonisolated(unsafe) private var scratchOwner: pid_t = 0

/// Writes `bytes` to `path`, replacing it; false when the file cannot be written.
@discardableResult
public func writeFile(_ path: String, _ bytes: UnsafeRawBufferPointer) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        guard n > 0 else { return false }
        done += n
    }
    return true
}
