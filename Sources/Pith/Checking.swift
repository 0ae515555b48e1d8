import Foundation
import PithContainer
import PithONNX

/// `pith check`: a container's integrity tested without writing anything, as `zstd -t` tests a
/// frame — the header and manifest checksums, every stream's checksum and decoding (each tensor
/// decoded to its dense bytes on every core, then dropped), and for an ONNX container the skeleton
/// against the manifest (every slot's name, and each initializer's type and shape).
public enum Checking {
    public struct Result: Sendable {
        public var file: String
        public var format: SourceFormat
        public var tensors: Int
        public var streams: Int
        public var fileBytes: Int
        /// The tensors' bytes once decoded.
        public var denseBytes: Int
        public var seconds: Double

        public func renderText() -> String {
            "\(file): ok — \(format.rawValue) container, \(tensors) tensors in \(streams) streams: every checksum holds and every stream "
                + "decodes (\(grouped(fileBytes)) bytes → \(grouped(denseBytes)) bytes of tensors) in \(String(format: "%.2f", seconds)) s\n"
        }
    }

    static func grouped(_ value: Int) -> String { TextTable.grouped(value) }

    /// The bytes no stream covers — the header's reserved bytes 40…63 and the alignment padding
    /// between streams and before the manifest — are zero, as the writer leaves them: no checksum
    /// covers them, so a flipped bit there would otherwise go unseen.
    static func checkGaps(_ path: String, _ container: ContainerFile) throws {
        let file: MappedFile
        do { file = try MappedFile(path, populate: false) } catch { throw PithError(error.exitKind, error.description) }
        let manifestOffset = container.fileBytes - container.manifestBytes
        var covered = container.manifest.streams.map { ($0.offset, $0.offset + $0.length) }.sorted { $0.0 < $1.0 }
        covered.append((manifestOffset, container.fileBytes))
        var position = 40
        for (start, end) in covered {
            if start > position {
                for i in position..<min(start, file.bytes.count) where file.bytes[i] != 0 {
                    throw PithError(
                        .data, "\(path): byte \(i), padding that no stream covers, is \(file.bytes[i]) where the writer leaves 0: the file is damaged")
                }
            }
            position = max(position, end)
        }
    }

    /// Checks the container at `path`; throws (exit 65) at the first damage, naming the tensor or
    /// stream.
    public static func run(_ path: String) throws -> Result {
        let started = DispatchTime.now().uptimeNanoseconds
        try ModelFile.requireContainer(path)
        if let stored = try StoredWhole.source(of: path) {
            // The CRC-32C of the source was checked as it was decoded; the model must read too.
            let model = try StoredWhole.load(stored, container: path).model
            return Result(
                file: path, format: model.format, tensors: model.tensors.count, streams: 1, fileBytes: stored.fileBytes,
                denseBytes: model.tensors.reduce(0) { $0 + $1.storedBytes }, seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        }
        let container = try PithError.translatingErrors { try ContainerFile(path) }
        let progress = ProgressReport.Counter("check", total: container.tensorCount, unit: "tensors")
        let sizes = try PithError.translatingErrors {
            try Parallel.map(count: container.tensorCount, makeWorker: { container.makeWorker() }) { worker, index in
                var bytes = 0
                if container.header(index).dtype == .string {
                    // Strings have no dense bytes: decoded whole (a strings stream is small).
                    bytes = try container.denseTensor(index, worker: &worker).storedBytes
                } else {
                    try container.denseBytes(index, worker: &worker) { _, piece in bytes += piece.count }
                }
                progress.advance()
                return bytes
            }
        }
        try checkGaps(path, container)
        if container.format == .onnx {
            guard let skeleton = container.skeleton else {
                throw PithError(.data, "\(path): the container has no ONNX skeleton to restore the graph from")
            }
            // Stand-ins with each tensor's name, type and shape: the skeleton is checked against
            // them as a restore or an evaluation would pair them.
            let standIns = (0..<container.tensorCount).map { index -> Tensor in
                let header = container.header(index)
                return Tensor(
                    name: header.name, dtype: header.dtype, shape: header.shape, storage: .dense(TensorBuffer(bytes: [])),
                    origin: container.origin(index))
            }
            _ = try PithError.translatingErrors { try ONNXReader.read(skeleton: skeleton, tensors: standIns, file: path) }
        }
        return Result(
            file: path, format: container.format, tensors: container.tensorCount, streams: container.manifest.streams.count,
            fileBytes: container.fileBytes, denseBytes: sizes.reduce(0, +),
            seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }
}
