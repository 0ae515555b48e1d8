import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Writing output files without ever leaving a partial file or touching the input.
///
/// Every output is written to a temporary file `.NAME.tmp-PID` beside it, flushed to the disk
/// (`fsync`), renamed over the output, and the folder flushed too, so that after a crash the output is
/// either the old file or the whole new one. An error removes the temporary file; so do SIGINT, SIGTERM
/// and SIGHUP (the handler removes it and lets the signal end the process as it would have). Temporary
/// files that a killed process left behind (its PID no longer runs) are removed when the next output is
/// written into the same folder; those of a running process are never touched.
public enum AtomicFile {
    /// Refuses an output that cannot be written before any work is done: an empty path, a folder, a
    /// name or path longer than the system allows, or something other than a regular file or a
    /// symbolic link (a device, a FIFO, a socket: the rename would replace it — `/dev/null` with a
    /// regular file) (usage, 64); the input itself (usage, 64); an existing file or link without
    /// `force` (with it, the rename replaces the link itself, not what it points to), or a folder
    /// that does not exist or cannot be written (cannot create, 73).
    public static func checkWritable(_ output: String, input: String?, force: Bool) throws {
        guard !output.isEmpty else { throw PithError(.usage, "the output path is empty; give a file name with -o") }
        var status = stat()
        if lstat(output, &status) == 0 {
            switch status.st_mode & S_IFMT {
            case S_IFDIR: throw PithError(.usage, "\(output): is a folder; give the output file's name")
            case S_IFREG, S_IFLNK: break
            default:
                throw PithError(
                    .usage,
                    "\(output): is \(status.st_mode & S_IFMT == S_IFIFO ? "a pipe (FIFO)" : status.st_mode & S_IFMT == S_IFSOCK ? "a socket" : "a device"), "
                        + "not a regular file: Pith writes its output to a new file it renames into place, which would replace it (--dry-run writes nothing)")
            }
        } else if errno == ENAMETOOLONG {
            throw PithError(.usage, "\(output): the path or one of its names is longer than the system allows")
        }
        if let input {
            let inputPath = URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath().path
            let outputPath = URL(fileURLWithPath: output).standardizedFileURL.resolvingSymlinksInPath().path
            guard inputPath != outputPath else { throw PithError(.usage, "\(output): is the input file; choose another output") }
        }
        if lstat(output, &status) == 0, !force {
            throw PithError(.cannotCreate, "\(output): exists; use --force to replace it")
        }
        var isFolder: ObjCBool = false
        let folder = URL(fileURLWithPath: output).standardizedFileURL.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw PithError(.cannotCreate, "\(output): the folder \(folder) does not exist")
        }
        guard access(folder, W_OK) == 0 else {
            throw PithError(.cannotCreate, "\(output): cannot write into the folder \(folder) (\(FileIO.describe(errorNumber: errno)))")
        }
    }

    /// Writes `bytes` to a temporary file beside `output`, then renames it over `output`.
    public static func write(_ bytes: [UInt8], to output: String) throws {
        try write(
            to: output,
            through: { descriptor in
                do { try bytes.withUnsafeBytes { try FileIO.write(descriptor, $0) } } catch let error as FileIO.IOFailure {
                    throw PithError(
                        .io, "\(output): write failed after \(error.done) of \(bytes.count) bytes (\(FileIO.describe(errorNumber: error.errorNumber)))")
                }
            })
    }

    /// Lets `body` write the new, empty temporary file beside `output` through `descriptor` (open
    /// for reading and writing), then flushes it and renames it over `output`, as `write(to:_:)`.
    public static func write(to output: String, through body: (_ descriptor: Int32) throws -> Void) throws {
        try write(to: output) { (temporary: String) in
            let descriptor = open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw PithError(
                    .cannotCreate,
                    "\(output): cannot write into \(URL(fileURLWithPath: temporary).deletingLastPathComponent().path) (\(FileIO.describe(errorNumber: errno)))")
            }
            defer { close(descriptor) }
            try body(descriptor)
        }
    }

    /// Lets `body` write a temporary file beside `output`, then flushes it to the disk and renames it
    /// over `output`; if `body` throws (or the process is interrupted), the temporary file is removed
    /// and `output` is left as it was.
    public static func write(to output: String, _ body: (_ temporary: String) throws -> Void) throws {
        let url = URL(fileURLWithPath: output).standardizedFileURL
        let folder = url.deletingLastPathComponent().path
        let prefix = temporaryPrefix(url.lastPathComponent)
        removeStale(in: folder, prefix: prefix)
        let temporary = folder + "/" + prefix + "\(getpid())"
        let slot = Interruption.register(temporary)
        defer { Interruption.unregister(slot) }
        do {
            try body(temporary)
            try flush(temporary, output: output)
        } catch {
            unlink(temporary)
            throw error
        }
        if rename(temporary, url.path) != 0 {
            let reason = FileIO.describe(errorNumber: errno)
            unlink(temporary)
            throw PithError(.cannotCreate, "\(output): cannot move the finished file into place (\(reason))")
        }
        // The rename itself reaches the disk with the folder's entry.
        let directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    /// `.NAME.tmp-` for the temporary files of output NAME; for a name too long to take the
    /// additions within the system's 255 bytes, its first 200 bytes and a hash of the whole name.
    static func temporaryPrefix(_ name: String) -> String {
        guard name.utf8.count > 220 else { return "." + name + ".tmp-" }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        var start = ""
        for character in name {
            guard start.utf8.count + character.utf8.count <= 200 else { break }
            start.append(character)
        }
        return "." + start + "-" + String(hash, radix: 16) + ".tmp-"
    }

    /// `fsync` of the finished temporary file.
    static func flush(_ temporary: String, output: String) throws {
        let descriptor = open(temporary, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw PithError(.io, "\(output): the finished file cannot be reopened (\(FileIO.describe(errorNumber: errno)))") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw PithError(.io, "\(output): cannot flush the file to the disk (\(FileIO.describe(errorNumber: errno)))") }
    }

    /// Removes `prefix`PID files in `folder` whose process no longer runs.
    static func removeStale(in folder: String, prefix: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0, errno == ESRCH { unlink(folder + "/" + name) }
        }
    }
}

extension AtomicFile {
    /// Files written with a main output, beside it (ONNX external data files): each is written to
    /// its own temporary file, then `commit` flushes them all and renames them into place (called
    /// by the writer just before the main output is renamed); `abandon` removes every temporary
    /// file. A name must stay inside the main output's folder: its folder must exist and resolve
    /// (symbolic links followed) to that folder or one below it.
    public final class Companions {
        /// The main output, as given.
        let output: String
        let folder: String
        let input: String?
        let force: Bool
        private var pending: [(temporary: String, path: String, shown: String, slot: Int?)] = []
        /// The files moved into place (named beside the output as it was given), with their sizes,
        /// in the order they were named.
        public private(set) var written: [(path: String, bytes: Int)] = []

        public init(beside output: String, input: String?, force: Bool) {
            self.output = output
            folder = URL(fileURLWithPath: output).standardizedFileURL.deletingLastPathComponent().path
            self.input = input
            self.force = force
        }

        deinit { abandon() }

        /// The temporary file to write the companion `name` (relative to the main output's folder)
        /// into; refuses a name that leaves the folder, or an existing file without `force`.
        public func temporary(for name: String) throws -> String {
            let path = folder + "/" + name
            let url = URL(fileURLWithPath: path).standardizedFileURL
            let parent = url.deletingLastPathComponent().path
            guard let resolvedParent = Self.resolve(parent) else {
                throw PithError(.cannotCreate, "\(output): the folder of its data file `\(name)` does not exist")
            }
            let base = Self.resolve(folder) ?? folder
            guard resolvedParent == base || resolvedParent.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
                throw PithError(.data, "\(output): data file `\(name)` would be written to \(resolvedParent), outside the model's folder")
            }
            guard !pending.contains(where: { $0.path == url.path }) else {
                throw PithError(.data, "\(output): data file `\(name)` is named twice")
            }
            try AtomicFile.checkWritable(url.path, input: input, force: force)
            let prefix = AtomicFile.temporaryPrefix(url.lastPathComponent)
            AtomicFile.removeStale(in: parent, prefix: prefix)
            let temporary = parent + "/" + prefix + "\(getpid())"
            let given = (output as NSString).deletingLastPathComponent
            pending.append((temporary, url.path, given.isEmpty ? name : given + "/" + name, Interruption.register(temporary)))
            return temporary
        }

        /// Flushes every companion and renames it into place.
        public func commit() throws {
            for file in pending { try AtomicFile.flush(file.temporary, output: file.path) }
            for (k, file) in pending.enumerated() {
                guard rename(file.temporary, file.path) == 0 else {
                    let reason = FileIO.describe(errorNumber: errno)
                    pending.removeFirst(k)
                    throw PithError(.cannotCreate, "\(file.path): cannot move the finished file into place (\(reason))")
                }
                Interruption.unregister(file.slot)
                var status = stat()
                written.append((file.shown, lstat(file.path, &status) == 0 ? Int(status.st_size) : 0))
            }
            pending.removeAll()
        }

        /// Removes every temporary file not yet moved into place.
        public func abandon() {
            for file in pending {
                unlink(file.temporary)
                Interruption.unregister(file.slot)
            }
            pending.removeAll()
        }

        private static func resolve(_ path: String) -> String? {
            guard let resolved = realpath(path, nil) else { return nil }
            defer { free(resolved) }
            return String(cString: resolved)
        }
    }
}

/// The temporary files being written, removed by a signal handler if the process is interrupted.
/// Paths live in fixed C buffers allocated once, so the handler only reads memory and calls `unlink`
/// (both allowed in a signal handler).
enum Interruption {
    static let slots = 8
    static let pathBytes = Int(PATH_MAX) + 1
    nonisolated(unsafe) static let paths: UnsafeMutablePointer<CChar> = {
        let memory = UnsafeMutablePointer<CChar>.allocate(capacity: slots * pathBytes)
        memory.initialize(repeating: 0, count: slots * pathBytes)
        return memory
    }()
    static let used = Mutex<[Bool]>(Array(repeating: false, count: slots))

    /// Installs the handlers for SIGINT, SIGTERM and SIGHUP (once, from `Runtime.start`).
    static func install() {
        _ = paths
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                for slot in 0..<Interruption.slots {
                    let path = Interruption.paths + slot * Interruption.pathBytes
                    if path.pointee != 0 { unlink(path) }
                }
                // Die of the signal as if no handler had been installed.
                Glibc.signal(number, SIG_DFL)
                raise(number)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(signal, &action, nil)
        }
    }

    /// Records `path`; returns its slot (nil when all slots are taken or the path is too long: then the
    /// file is only removed on errors, not on signals).
    static func register(_ path: String) -> Int? {
        let bytes = Array(path.utf8CString)
        guard bytes.count <= pathBytes else { return nil }
        let slot = used.withLock { used -> Int? in
            guard let free = used.firstIndex(of: false) else { return nil }
            used[free] = true
            return free
        }
        guard let slot else { return nil }
        let target = paths + slot * pathBytes
        // Write the path, then its first byte last, so the handler never sees a half-written path.
        bytes.withUnsafeBufferPointer { source in
            (target + 1).update(from: source.baseAddress! + 1, count: bytes.count - 1)
        }
        target.pointee = bytes[0]
        return slot
    }

    static func unregister(_ slot: Int?) {
        guard let slot else { return }
        paths[slot * pathBytes] = 0
        used.withLock { $0[slot] = false }
    }
}
