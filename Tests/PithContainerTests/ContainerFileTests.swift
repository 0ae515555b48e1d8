import Foundation
import Testing
import PithIR
@testable import PithContainer

/// Opening a container file: PithIR's mapper underneath, its refusals as `ContainerError`s that
/// name the file: a missing file is a missing input (exit 66, as for every input of every command),
/// anything else that cannot be opened an I/O error (exit 74).
@Suite struct ContainerFileTests {
    func refusal(_ path: String) -> ContainerError? {
        do { _ = try ContainerFile(path); return nil } catch { return error as? ContainerError }
    }

    @Test func aMissingFileIsAMissingInputNamingIt() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-missing-\(getpid()).pith").path
        let error = try #require(refusal(path))
        #expect(error.kind == .missing && error.exitKind == .noInput)
        #expect(error.description == "\(path): cannot open the file (No such file or directory)")
    }

    @Test func aFolderIsAnIOErrorNamingIt() throws {
        let path = FileManager.default.temporaryDirectory.path
        let error = try #require(refusal(path))
        #expect(error.kind == .io && error.file == path)
    }

    @Test func aWrittenContainerOpensFromItsFile() throws {
        let model = Model(
            format: .onnx,
            tensors: [
                Tensor(
                    name: "w", dtype: .float32, shape: [3], storage: .dense(TensorBuffer(values: [Float](arrayLiteral: 1, 2, 3))),
                    origin: .initializer(graph: .main))
            ])
        let bytes = try ContainerWriter.encode(model).bytes
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-file-\(getpid()).pith").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let contents = try ContainerReader.read(contentsOf: path)
        #expect(contents.fileBytes == bytes.count)
        #expect(contents.model.tensors[0].floatValues() == [1, 2, 3])
    }
}
