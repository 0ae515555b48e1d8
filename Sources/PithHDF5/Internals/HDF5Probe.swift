#if canImport(Glibc)
import Glibc
#endif

/// Reads an HDF5 file once in a child process before the real read, so that libhdf5's own crashes
/// on damaged files end the child, not Pith.
///
/// libhdf5 1.10 (Debian 12's) follows some of what a file says without checking it: a variable-length
/// string whose global-heap reference names an object the collection does not hold is copied from
/// a null or stray pointer (`H5HG_read`); some damaged object headers are iterated after being freed
/// (`H5O__msg_iterate_real` under `H5Aexists`); a string attribute whose elements all name one large
/// heap object makes it allocate that object again for each. All were found by fuzzing (`Fuzz/`);
/// later libhdf5 versions check some of them, and Pith cannot check them without parsing object
/// headers itself. So the child does everything the real read does — every attribute, link and
/// dataset header, and the data of chunked datasets (B-trees and filters) — except copying contiguous
/// data, under limits (address space: what the process has mapped plus `memoryAllowance` and 1,100×
/// the file, the expansion the reader allows chunked data; time: `secondsAllowed`), and exits.
///
/// - The child ends normally: the parent reads the file itself.
/// - The read threw: the child hands the error to the parent through a pipe, and the parent throws
///   it (without reading the file again).
/// - The child died (a signal, a limit): the file is `malformed` (exit 65), the message says how.
///
/// Costs a fork and a second walk of the metadata (milliseconds for a Keras file; chunked data twice).
enum HDF5Probe {
    /// Memory the child may use beyond what the process has mapped when it forks (and 1,100× the
    /// file): reading a real Keras file's structure takes a few megabytes; a damaged attribute
    /// datatype of 256 MB had libhdf5 allocate 1.6 GB for a 50 KB file (found by fuzzing).
    static let memoryAllowance = 256 << 20
    /// Seconds the child may take, plus one per 20 MB of file.
    static let secondsAllowed = 20

    static func run(_ path: String, fileBytes: Int, _ read: () throws -> Void) throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { return }  // no pipe, no child: read in this process, as without the probe
        fflush(nil)
        let child = fork()
        guard child >= 0 else {
            close(ends[0])
            close(ends[1])
            return
        }
        if child == 0 {
            close(ends[0])
            runChild(fileBytes: fileBytes, report: ends[1], read)
        }
        close(ends[1])
        let report = readAll(ends[0])
        close(ends[0])
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 {
            guard errno == EINTR else { return }
        }
        // <sys/wait.h>'s WTERMSIG / WEXITSTATUS, which Swift does not import.
        let signalNumber = status & 0x7F
        let exitStatus = (status >> 8) & 0xFF
        if signalNumber == 0 && exitStatus == 0 {
            guard report.isEmpty else { throw decodeError(report, path: path) }
            return
        }
        let cause: String
        switch signalNumber {
        case 0: cause = "libhdf5 ended the process reading the file (exit status \(exitStatus))"
        case SIGALRM: cause = "libhdf5 did not finish reading the file's structure in \(seconds(fileBytes)) s"
        case SIGSEGV, SIGBUS: cause = "libhdf5 crashed reading the file (signal \(signalNumber), a memory fault)"
        default: cause = "libhdf5 crashed reading the file (signal \(signalNumber))"
        }
        throw HDF5Error(.malformed, file: path, cause + ", in the child process Pith reads HDF5 files in first: the file is damaged")
    }

    static func seconds(_ fileBytes: Int) -> Int { secondsAllowed + fileBytes / 20_000_000 }

    /// The child: limits, silence, the read, its error (if any) on `report`, exit 0.
    private static func runChild(fileBytes: Int, report: Int32, _ read: () throws -> Void) -> Never {
        // Die of a fault as the kernel would (no backtracer, no cleanup handler of the parent's).
        for number in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS, SIGINT, SIGTERM, SIGHUP, SIGALRM] { signal(number, SIG_DFL) }
        let null = open("/dev/null", O_WRONLY)
        if null >= 0 {
            dup2(null, STDOUT_FILENO)
            dup2(null, STDERR_FILENO)
        }
        let (expansion, overflow) = fileBytes.multipliedReportingOverflow(by: 1100)
        let (limit, overflow2) = (mappedBytes() + memoryAllowance).addingReportingOverflow(overflow ? Int.max : expansion)
        if !overflow2 {
            var memory = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit))
            _ = setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &memory)
        }
        alarm(UInt32(seconds(fileBytes)))
        do {
            try read()
        } catch let error as HDF5Error {
            writeAll(report, Array("\(error.kind == .io ? "io" : error.kind == .unsupported ? "unsupported" : "malformed")\n\(error.message)".utf8))
        } catch {
            writeAll(report, Array("malformed\n\(error)".utf8))
        }
        _exit(0)
    }

    private static func decodeError(_ report: [UInt8], path: String) -> HDF5Error {
        let text = String(decoding: report, as: UTF8.self)
        let kind = text.prefix { $0 != "\n" }
        let message = String(text.drop { $0 != "\n" }.dropFirst())
        return HDF5Error(kind == "io" ? .io : kind == "unsupported" ? .unsupported : .malformed, file: path, message)
    }

    /// The process's virtual size (`/proc/self/statm`, in pages), 0 when unknown.
    private static func mappedBytes() -> Int {
        let descriptor = open("/proc/self/statm", O_RDONLY)
        guard descriptor >= 0 else { return 0 }
        defer { close(descriptor) }
        let text = String(decoding: readAll(descriptor), as: UTF8.self)
        return (Int(text.prefix { $0 != " " }) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    private static func readAll(_ descriptor: Int32) -> [UInt8] {
        var result: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if n > 0 { result += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { return result }
        }
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + done, $0.count - done) }
            if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}
