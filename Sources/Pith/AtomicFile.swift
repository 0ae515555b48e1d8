import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writing output files without ever leaving a partial file or touching the input.
public enum AtomicFile {
    /// Refuses `output` when it is the input, or exists and `force` is off.
    public static func checkWritable(_ output: String, input: String, force: Bool) throws {
        let inputPath = URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath().path
        let outputPath = URL(fileURLWithPath: output).standardizedFileURL.resolvingSymlinksInPath().path
        guard inputPath != outputPath else { throw PithError(.usage, "\(output): is the input file; choose another output") }
        if FileManager.default.fileExists(atPath: output), !force {
            throw PithError(.cannotCreate, "\(output): exists; use --force to replace it")
        }
    }

    /// Writes `bytes` to a temporary file beside `output`, then renames it over `output`.
    public static func write(_ bytes: [UInt8], to output: String) throws {
        try write(to: output) { temporary in
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw PithError(.cannotCreate, "\(output): cannot write into \(URL(fileURLWithPath: temporary).deletingLastPathComponent().path) (\(FileIO.describe(errorNumber: errno))))")
            }
            defer { close(descriptor) }
            do { try bytes.withUnsafeBytes { try FileIO.write(descriptor, $0) } } catch let error as FileIO.IOFailure {
                throw PithError(.io, "\(output): write failed after \(error.done) of \(bytes.count) bytes (\(FileIO.describe(errorNumber: error.errorNumber)))")
            }
        }
    }

    /// Lets `body` write a temporary file beside `output`, then renames it over `output`; if `body`
    /// throws, the temporary file is removed and `output` is left as it was.
    public static func write(to output: String, _ body: (String) throws -> Void) throws {
        let url = URL(fileURLWithPath: output).standardizedFileURL
        let folder = url.deletingLastPathComponent().path
        let temporary = folder + "/." + url.lastPathComponent + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        do { try body(temporary) } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        if rename(temporary, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw PithError(.cannotCreate, "\(output): cannot move the finished file into place (\(reason))")
        }
    }
}
