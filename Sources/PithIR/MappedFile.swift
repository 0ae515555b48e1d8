#if canImport(Glibc)
import Glibc
#endif

/// An input file mapped read-only: the one file mapper of the package. Only regular files are
/// opened (a FIFO or a device would block or never end). With `populate`, the pages are read in at
/// once (MAP_POPULATE) instead of one fault at a time.
public final class MappedFile: @unchecked Sendable {  // immutable after init; the mapping is read-only
    /// The file's bytes, valid as long as this object lives.
    public let bytes: UnsafeRawBufferPointer
    /// The path it was opened with.
    public let path: String
    private let region: UnsafeMutableRawPointer?

    /// Why a file could not be mapped.
    public struct OpenError: ReportableError {
        public var path: String
        public var reason: String
        public var exitKind: ExitKind
        public var description: String { "\(path): \(reason)" }
    }

    public init(_ path: String, populate: Bool = true) throws(OpenError) {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            let number = errno
            throw OpenError(
                path: path, reason: "cannot open the file (\(FileIO.describe(errorNumber: number)))",
                // A path that leads to no readable file (missing, a symbolic-link loop, a name
                // too long, no permission) is a missing input (66); anything else an I/O error.
                exitKind: [ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP, EACCES].contains(number) ? .noInput : .io)
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw OpenError(path: path, reason: "cannot read the file's status (\(FileIO.describe(errorNumber: errno)))", exitKind: .io)
        }
        switch status.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw OpenError(path: path, reason: "is a folder, not a file", exitKind: .data)
        default: throw OpenError(path: path, reason: "is not a regular file (a pipe, socket or device)", exitKind: .data)
        }
        let size = Int(status.st_size)
        guard size > 0 else {
            region = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw OpenError(path: path, reason: "cannot map the file (\(FileIO.describe(errorNumber: errno)))", exitKind: .io)
        }
        region = mapped
        bytes = UnsafeRawBufferPointer(start: mapped, count: size)
    }

    deinit { region.map { _ = munmap($0, bytes.count) } }
}
