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

    /// Drops the pages wholly inside `range` (byte offsets into `bytes`) from the process's resident
    /// memory (`madvise(MADV_DONTNEED)`); they are read from the file again if used again, so what
    /// `bytes` holds never changes. For readers that go through a large file once and need not hold
    /// what they have read. A page `range` covers only in part stays (what is beside it may be in
    /// use), unless it is the file's last.
    public func releasePages(_ range: Range<Int>) {
        #if canImport(Glibc)
        guard let region, !range.isEmpty else { return }
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "pages \(range) are outside the \(bytes.count) bytes mapped")
        let page = Self.pageSize
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound == bytes.count ? range.upperBound : range.upperBound / page * page
        guard end > start else { return }
        _ = madvise(region + start, end - start, MADV_DONTNEED)
        #endif
    }

    /// The size of a page of memory: the mapping starts on one, so offsets into `bytes` round as addresses do.
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    deinit { region.map { _ = munmap($0, bytes.count) } }
}
