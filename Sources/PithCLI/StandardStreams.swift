import Foundation
import Pith

/// Standard error as a text stream, written with every byte (retrying short writes).
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        bytes.withUnsafeMutableBytes { try? FileIO.write(2, UnsafeRawBufferPointer($0)) }
    }
}

func printError(_ message: String) {
    var standardError = StandardError()
    print(message, to: &standardError)
}

/// `-` for a file read or written whole: standard input copied to a temporary file first, or the
/// output written to a temporary file and then copied to standard output. The library only ever sees
/// regular files (it maps inputs and replaces outputs atomically).
enum StandardStreams {
    nonisolated(unsafe) private static var spools: [String] = []
    nonisolated(unsafe) private static var inputSpool: String?

    /// `argument` itself, or for `-` the path of a temporary copy of standard input (made once).
    static func input(_ argument: String) throws -> String {
        guard argument == "-" else { return argument }
        if let inputSpool { return inputSpool }
        guard isatty(0) == 0 else {
            throw PithError(.usage, "-: standard input is a terminal; pipe a file in (`pith inspect - < model.onnx`) or give its path")
        }
        let path = try makeSpool(suffix: "stdin")
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw PithError(.io, "-: cannot copy standard input to \(path) (\(FileIO.describe(errorNumber: errno)))") }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw PithError(.io, "-: cannot read standard input (\(FileIO.describe(errorNumber: errno)))") }
            if count == 0 { break }
            do {
                try buffer.withUnsafeBytes { try FileIO.write(descriptor, UnsafeRawBufferPointer(rebasing: $0[0..<count]), at: offset) }
            } catch {
                throw PithError(.io, "-: cannot copy standard input to \(path) (\(error))")
            }
            offset += count
        }
        inputSpool = path
        return path
    }

    /// For an output `-`: a temporary path to write to (the command then replaces it, so it needs
    /// --force semantics), and `finish` copies it to standard output.
    static func output(_ argument: String, suffix: String) throws -> String {
        guard argument == "-" else { return argument }
        guard isatty(1) == 0 else {
            throw PithError(.usage, "-: standard output is a terminal; redirect it to a file (`> model.pith`) or give a path with -o")
        }
        return try makeSpool(suffix: suffix)
    }

    /// Copies the spooled output at `path` to standard output (nothing when `argument` is a path).
    static func finish(_ argument: String, spooled path: String) throws {
        guard argument == "-" else { return }
        let file: MappedFile
        do { file = try MappedFile(path, populate: true) } catch { throw PithError(.io, "-: \(error.description)") }
        do { try FileIO.write(1, file.bytes) } catch { throw PithError(.io, "-: cannot write standard output (\(error))") }
    }

    /// Removes every temporary file made for `-`.
    static func removeSpools() {
        for path in spools { unlink(path) }
        spools.removeAll()
        inputSpool = nil
    }

    /// `text` with temporary paths shown as `-`.
    static func displayed(_ text: String) -> String {
        spools.reduce(text) { $0.replacingOccurrences(of: $1, with: "-") }
    }

    private static func makeSpool(suffix: String) throws -> String {
        let folder = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(folder)/pith-\(getpid())-XXXXXX.\(suffix)".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, Int32(suffix.utf8.count + 1)) }
        guard descriptor >= 0 else { throw PithError(.cannotCreate, "-: cannot make a temporary file in \(folder) (\(FileIO.describe(errorNumber: errno)))") }
        close(descriptor)
        let path = String(cString: template.map { $0 })
        spools.append(path)
        return path
    }
}
