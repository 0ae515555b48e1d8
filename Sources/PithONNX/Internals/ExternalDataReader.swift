#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PithIR

/// Reads tensors stored outside the model file (`data_location = EXTERNAL`).
///
/// Each data file is opened once and mapped (`MappedFile`, pages read when first used); a tensor
/// whose data starts 64-byte aligned in the mapping is a view of it (`TensorBuffer.viewing`), any
/// other a copy, so a model of several gigabytes is read without allocating its size.
/// Locations must stay inside the model's folder: absolute paths, `..`
/// components and symbolic links that resolve outside it are refused. Only
/// regular files are read: a FIFO, socket or device is refused before any read,
/// so a model can never make the reader block.
final class ExternalDataReader {
    let file: String
    /// The model's folder, resolved.
    let folder: String
    private var open: [String: MappedFile] = [:]

    init(modelFile: String) {
        file = modelFile
        let parent = modelFile.contains("/") ? String(modelFile[..<modelFile.lastIndex(of: "/")!]) : "."
        folder = Self.resolve(parent.isEmpty ? "/" : parent) ?? parent
    }

    private static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private func fail(_ tensor: String, _ message: String) -> ONNXError {
        ExternalDataEntries.failure(tensor, file: file, message)
    }

    /// Reads `byteCount` bytes described by the `external_data` key/value `entries`.
    func read(entries: [(String, String)], byteCount: Int, tensor: String) throws -> TensorBuffer {
        let placed = try ExternalDataEntries(entries, tensor: tensor, file: file)
        let (location, offset, length) = (placed.location, placed.offset, placed.length)
        guard let location, !location.isEmpty else { throw fail(tensor, "has no `location`") }
        guard !location.hasPrefix("/") else { throw fail(tensor, "location `\(location)` is an absolute path; it must be relative to the model's folder") }
        guard !location.split(separator: "/").contains("..") else {
            throw fail(tensor, "location `\(location)` contains `..`; it must stay inside the model's folder")
        }
        if let length, length != byteCount {
            throw fail(tensor, "`length` is \(length) bytes, but the tensor's shape and type need \(byteCount)")
        }
        let mapped = try openFile(location, tensor: tensor)
        let size = mapped.bytes.count
        let (end, overflow) = offset.addingReportingOverflow(byteCount)
        guard !overflow, end <= size else {
            throw fail(tensor, "file `\(location)` is \(size) bytes; the tensor needs bytes \(offset)..<\(overflow ? Int.max : end)")
        }
        guard byteCount > 0 else { return TensorBuffer(bytes: []) }
        return TensorBuffer.viewing(UnsafeRawBufferPointer(rebasing: mapped.bytes[offset..<end]), of: mapped)
    }

    private func openFile(_ location: String, tensor: String) throws -> MappedFile {
        if let entry = open[location] { return entry }
        let path = folder + "/" + location
        guard let resolved = Self.resolve(path) else {
            throw fail(tensor, "file `\(location)` not found next to the model (\(String(cString: strerror(errno))))")
        }
        guard resolved.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/") else {
            throw fail(tensor, "location `\(location)` resolves to `\(resolved)`, outside the model's folder")
        }
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. It changes
        // nothing for the regular files that pass the check below.
        let descriptor = Glibc.open(resolved, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            throw fail(tensor, "file `\(location)` cannot be opened (\(FileIO.describe(errorNumber: errno)))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw fail(tensor, "`\(location)` is not a regular file (a pipe, socket, device or folder)")
        }
        close(descriptor)
        // The checked path, mapped without reading it in: pages come in as tensors are used.
        let mapped: MappedFile
        do { mapped = try MappedFile(resolved, populate: false) } catch {
            throw fail(tensor, "file `\(location)`: \(error.reason)")
        }
        open[location] = mapped
        return mapped
    }
}
