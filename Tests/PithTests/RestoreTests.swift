import Foundation
import Testing
import Pith
import PithContainer
import PithTestSupport

/// Restore of ONNX containers, which lays the file out first and writes each large tensor into its
/// place afterwards (`ONNXWriter.write(skeleton:source:file:to:)`).
@Suite struct RestoreTests {
    /// A new folder holding `m.pith`, the lossless container of LeNet; returns the folder, the
    /// source model and the container.
    func losslessLeNet() throws -> (folder: URL, source: String, container: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-restore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let source = Fixtures.path("lenet-300-100.onnx")
        let container = folder.appendingPathComponent("m.pith").path
        let compressed = try Compression.run(Recipe(steps: []), on: source)
        _ = try Compression.writeContainer(compressed, to: container, force: false)
        return (folder, source, container)
    }

    @Test func losslessRestoreGivesTheSourceFileBackByteForByte() throws {
        let (folder, source, container) = try losslessLeNet()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("back.onnx").path
        let bytes = try Restoration.run(container, to: output, force: false).bytes
        let restored = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(restored.count == bytes)
        #expect(restored == (try Data(contentsOf: URL(fileURLWithPath: source))))
    }

    /// A damaged stream of a tensor written in place is found while the file is being written: the
    /// restore fails naming the container and the tensor, and leaves no file behind.
    @Test func aDamagedTensorLeavesNoOutput() throws {
        let (folder, _, container) = try losslessLeNet()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Flip a byte in the middle of the largest stream (a plane of fc1.weight).
        let manifest = try ContainerFile(container).manifest
        let largest = try #require(manifest.streams.max { $0.length < $1.length })
        var bytes = try Data(contentsOf: URL(fileURLWithPath: container))
        bytes[largest.offset + largest.length / 2] ^= 0x24
        try bytes.write(to: URL(fileURLWithPath: container))
        let output = folder.appendingPathComponent("back.onnx").path
        do {
            _ = try Restoration.run(container, to: output, force: false).bytes
            Issue.record("a damaged stream was restored")
        } catch let error as PithError {
            #expect(error.description.contains(container))
            #expect(error.description.contains("fc1.weight"))
            #expect(error.description.contains("checksum"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["m.pith"])
    }
}
