import Foundation
import Testing
import PithIR
@testable import PithONNX
import PithTestSupport

/// The skeleton and the writer visit the tensor slots the reader lists, in the same order
/// (`TensorSlots`): reading a file, stripping it and writing the skeleton back with the tensors
/// read gives the file again.
@Suite struct ONNXSkeletonTests {
    static let fixtures: [String] =
        (try? Fixtures.manifests())?
        .filter { $0.manifest.format == "onnx" }.map(\.fixture) ?? []

    /// Files whose tensors are all in `raw_data` (as the writer puts them) and whose sparse
    /// tensors use linear indices: for them the round trip is byte for byte.
    static let byteForByte = ["onnx/custom-constants.onnx", "lenet-300-100.onnx", "onnx/subgraphs.onnx"]

    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Writes the skeleton of `fixture` back with the tensors read from it; returns the new file.
    func roundTrip(_ fixture: String, in folder: URL) throws -> (source: Model, restored: String) {
        let path = Fixtures.path(fixture)
        let model = try ONNXReader.read(contentsOf: path)
        let skeleton = try ONNXSkeleton.strip(contentsOf: path)
        let output = folder.appendingPathComponent("back.onnx").path
        let written = try ONNXWriter.write(skeleton: skeleton, tensors: model.tensors, file: path, to: output)
        #expect(written == (try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int))
        return (model, output)
    }

    @Test(arguments: byteForByte)
    func writingTheSkeletonBackGivesTheFileByteForByte(fixture: String) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (_, restored) = try roundTrip(fixture, in: folder)
        let original = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(fixture)))
        #expect(try Data(contentsOf: URL(fileURLWithPath: restored)) == original)
    }

    @Test(arguments: fixtures + ["lenet-300-100.onnx"])
    func writingTheSkeletonBackGivesEveryTensor(fixture: String) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (source, restored) = try roundTrip(fixture, in: folder)
        let back = try ONNXReader.read(contentsOf: restored)
        #expect(back.tensors.map(\.name) == source.tensors.map(\.name))
        for (a, b) in zip(source.tensors, back.tensors) {
            #expect(a.dtype == b.dtype && a.shape == b.shape, "\(a.name)")
            #expect(a.storage == b.storage, "\(a.name)")
            #expect(a.origin == b.origin && a.consumer == b.consumer, "\(a.name)")
        }
    }

    /// A `Constant` of a custom domain is not ONNX's Constant: its `value_floats` and `value_ints`
    /// are ordinary attributes, kept in the skeleton; only its TENSOR attribute is a tensor.
    @Test func aCustomDomainConstantKeepsItsNumbersInTheSkeleton() throws {
        let path = Fixtures.path("onnx/custom-constants.onnx")
        let model = try ONNXReader.read(contentsOf: path)
        #expect(model.tensors.map(\.name) == ["w", "c_onnx", "custom/value", "gate/else_branch/e_onnx", "gate/then_branch/b_onnx"])
        let skeleton = try ONNXSkeleton.strip(contentsOf: path)
        let stripped = try ONNXReader.read(skeleton: skeleton, tensors: model.tensors, file: "skeleton")
        let custom = try #require(stripped.graph?.nodes.first { $0.domain == "pith.custom" })
        guard case .floats(let floats)? = custom.attribute("value_floats"), case .ints(let ints)? = custom.attribute("value_ints"),
            case .float(let scalar)? = custom.attribute("value_float")
        else {
            Issue.record("the custom Constant's attributes changed kind: \(custom.attributes)"); return
        }
        #expect(floats == [1.5, -2.0, 0.25, 8.0])
        #expect(ints == [4, -5])
        #expect(scalar == 0.75)
        // The numbers of ONNX's own Constants (c_onnx: 0.5, -1.25, 3; b_onnx: 2, 0, -0.5) are not in the
        // skeleton; the custom Constant's are.
        func appears(_ value: Float) -> Bool {
            let pattern = withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
            return (0...(skeleton.count - 4)).contains { Array(skeleton[$0..<$0 + 4]) == pattern }
        }
        #expect(![Float(-1.25), 3, -0.5].contains(where: appears))
        #expect([Float(1.5), -2, 0.25, 8].allSatisfy(appears))
    }

    /// One parse gives what the two calls give.
    @Test(arguments: fixtures + ["lenet-300-100.onnx"])
    func readWithSkeletonEqualsReadAndStrip(fixture: String) throws {
        let path = Fixtures.path(fixture)
        let (model, skeleton) = try ONNXReader.readWithSkeleton(contentsOf: path)
        #expect(skeleton == (try ONNXSkeleton.strip(contentsOf: path)))
        let alone = try ONNXReader.read(contentsOf: path)
        #expect(model.tensors.map(\.name) == alone.tensors.map(\.name))
        for (a, b) in zip(model.tensors, alone.tensors) {
            #expect(a.dtype == b.dtype && a.shape == b.shape && a.storage == b.storage, "\(a.name)")
            #expect(a.origin == b.origin && a.consumer == b.consumer, "\(a.name)")
        }
        // Graph and functions are not Equatable: their full descriptions are compared.
        #expect(String(describing: model.graph) == String(describing: alone.graph))
        #expect(String(describing: model.functions) == String(describing: alone.functions))
        #expect(model.metadata == alone.metadata)
    }
}
