import Foundation
import Testing
import PithIR
@testable import PithONNX
import PithTestSupport

/// Model files and external data files are opened only when they are regular files: a FIFO (or a
/// device) is refused at once with a message, never read and never waited on.
@Suite struct ONNXFileTests {
    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-onnx-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// An external data file that is a FIFO is refused at once, naming the file and the tensor;
    /// opening it must not wait for a writer.
    @Test func aFIFOAsExternalDataIsRefusedWithoutBlocking() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("external-data.onnx").path
        try FileManager.default.copyItem(atPath: Fixtures.path("onnx/external-data.onnx"), toPath: model)
        try FileManager.default.copyItem(
            atPath: Fixtures.path("onnx/external-data-2.bin"),
            toPath: folder.appendingPathComponent("external-data-2.bin").path)
        #expect(mkfifo(folder.appendingPathComponent("external-data.bin").path, 0o644) == 0)
        do {
            _ = try ONNXReader.read(contentsOf: model)
            Issue.record("a FIFO was read as external data")
        } catch let error as ONNXError {
            #expect(error.kind == .externalData)
            #expect(error.description.contains("external-data.bin"))
            #expect(error.description.contains("not a regular file"))
            #expect(error.description.contains("ext_a"))
        }
    }

    /// The model file itself must be a regular file too.
    @Test func aFIFOAsTheModelIsRefused() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("model.onnx").path
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect(throws: ONNXError.self) { try ONNXReader.read(contentsOf: fifo) }
        #expect(throws: ONNXError.self) { try ONNXSkeleton.strip(contentsOf: fifo) }
        #expect(throws: ONNXError.self) { try ONNXReader.readWithSkeleton(contentsOf: fifo) }
    }
}
