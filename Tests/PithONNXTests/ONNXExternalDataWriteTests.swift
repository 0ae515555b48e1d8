import Foundation
import Testing
import PithIR
@testable import PithONNX
import PithTestSupport

/// Restore writes external data where the skeleton's `external_data` entries say, and those entries
/// come from a container: every location, offset and length is checked before a file is created.
@Suite struct ONNXExternalDataWriteTests {
    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-external-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The broken models' skeletons keep their hostile entries; writing them back with a 4×4
    /// float32 `w` is refused before any file is created, with the reason.
    @Test(arguments: [
        ("broken/external-escapes-folder.onnx", "contains `..`"),
        ("broken/external-absolute-path.onnx", "absolute path"),
        ("broken/external-length-mismatch.onnx", "`length` is"),
        ("broken/external-bad-offset.onnx", "`offset` is"),
    ])
    func hostileEntriesAreRefusedBeforeWriting(fixture: String, words: String) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let skeleton = try ONNXSkeleton.strip(contentsOf: Fixtures.path(fixture))
        let w = Tensor(
            name: "w", dtype: .float32, shape: [4, 4], storage: .dense(TensorBuffer(values: [Float](repeating: 1, count: 16))),
            origin: .initializer(graph: .main))
        let output = folder.appendingPathComponent("model.onnx").path
        var created: [String] = []
        let options = ExternalDataOptions(layout: .source, modelName: "model.onnx") { location in
            created.append(location)
            return folder.appendingPathComponent(location).path
        }
        do {
            _ = try ONNXWriter.write(skeleton: skeleton, source: TensorArray([w]), file: "c.pith", to: output, externalData: options)
            Issue.record("\(fixture): written")
        } catch let error as ONNXError {
            #expect(error.kind == .externalData)
            #expect(error.message.contains(words), "\(error.message)")
        }
        #expect(created.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    func plan() -> ExternalDataPlan { ExternalDataPlan(layout: .source(overflow: nil), modelName: "model.onnx", file: "c.pith") }

    @Test func tiedTensorsMayShareBytesButNotOverlap() throws {
        let tied = plan()
        _ = try tied.sourcePlacement([("location", "w.bin"), ("offset", "0"), ("length", "64")], name: "a", bytes: 64)
        _ = try tied.sourcePlacement([("location", "./w.bin"), ("offset", "0"), ("length", "64")], name: "b", bytes: 64)
        _ = try tied.sourcePlacement([("location", "w.bin"), ("offset", "64")], name: "c", bytes: 16)
        #expect(try tied.finish() == [80])
        #expect(tied.locations == ["w.bin"])

        let overlapping = plan()
        _ = try overlapping.sourcePlacement([("location", "w.bin"), ("offset", "0")], name: "a", bytes: 64)
        _ = try overlapping.sourcePlacement([("location", "w.bin"), ("offset", "32")], name: "b", bytes: 64)
        #expect { try overlapping.finish() } throws: { ($0 as? ONNXError)?.message.contains("overlaps tensor `a`") == true }
    }

    @Test func paddingIsBoundedAndTheModelsOwnNameRefused() throws {
        let padded = plan()
        _ = try padded.sourcePlacement([("location", "w.bin"), ("offset", "\(ExternalDataPlan.maximumGap)")], name: "a", bytes: 8)
        #expect(try padded.finish() == [ExternalDataPlan.maximumGap + 8])

        let far = plan()
        _ = try far.sourcePlacement([("location", "w.bin"), ("offset", "\(ExternalDataPlan.maximumGap + 1)")], name: "a", bytes: 8)
        #expect { try far.finish() } throws: { ($0 as? ONNXError)?.message.contains("padding") == true }

        #expect { try plan().sourcePlacement([("location", "./model.onnx")], name: "a", bytes: 8) } throws: {
            ($0 as? ONNXError)?.message.contains("own file") == true
        }
        #expect { try plan().sourcePlacement([("location", "w.bin"), ("offset", "\(Int.max)")], name: "a", bytes: 8) } throws: {
            ($0 as? ONNXError)?.message.contains("too large") == true
        }
    }

    @Test func dataLocationsMustStayInTheFolder() {
        #expect(ONNXWriter.problem(withDataLocation: "w.bin") == nil)
        #expect(ONNXWriter.problem(withDataLocation: "data/w.bin") == nil)
        #expect(ONNXWriter.problem(withDataLocation: "") != nil)
        #expect(ONNXWriter.problem(withDataLocation: "/etc/passwd")?.contains("absolute") == true)
        #expect(ONNXWriter.problem(withDataLocation: "a/../../w.bin")?.contains("`..`") == true)
        #expect(ONNXWriter.problem(withDataLocation: "./") != nil)
        #expect(ONNXWriter.normalized(dataLocation: "./a//b.bin") == "a/b.bin")
    }

    /// External data is mapped: a tensor that starts 64-byte aligned in its file (the fixture's
    /// offsets are 4096-aligned) is a view of the mapping, and stays readable after its pages are
    /// given back.
    @Test func alignedExternalTensorsAreViewsOfTheMapping() throws {
        let model = try ONNXReader.read(contentsOf: Fixtures.path("onnx/external-data.onnx"))
        let external = model.tensors.filter { $0.name.hasPrefix("ext_") }
        #expect(!external.isEmpty)
        for tensor in external {
            guard case .dense(let buffer) = tensor.storage else {
                Issue.record("\(tensor.name) is not dense")
                continue
            }
            let before = buffer.bytes
            #expect(buffer.isMappedView, "\(tensor.name)")
            buffer.releasePages()
            #expect(buffer.bytes == before)
        }
    }

    /// A model of two float32 initializers of 1.25 GiB each, as a skeleton (no data): hand-encoded
    /// `ModelProto { graph { initializer { dims, data_type = FLOAT, name } … } }`.
    static func bigSkeleton(elements: Int) -> [UInt8] {
        func varint(_ value: Int) -> [UInt8] {
            var v = UInt64(value), out: [UInt8] = []
            while v >= 0x80 {
                out.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            return out + [UInt8(v)]
        }
        func field(_ tag: UInt8, _ bytes: [UInt8]) -> [UInt8] { [tag] + varint(bytes.count) + bytes }
        let tensors = ["a", "b"].flatMap { name in field(0x2A, [0x08] + varint(elements) + [0x10, 0x01] + field(0x42, Array(name.utf8))) }
        return field(0x3A, tensors)
    }

    /// Headers of any size; producing data is an error (the tests stop before or at the first write).
    struct HeadersOnly: TensorSource {
        let headers: [TensorInfo]
        var tensorCount: Int { headers.count }
        func header(_ index: Int) -> TensorInfo { headers[index] }
        func makeWorker() {}
        func denseTensor(_ index: Int, worker: inout Void) throws -> Tensor { throw ONNXError(.io, file: "source", "no data") }
        func denseBytes(_ index: Int, worker: inout Void, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
            throw ONNXError(.io, file: "source", "no data for `\(headers[index].name)`")
        }
    }

    /// Inline, the model would pass protobuf's 2 GiB: without external data options it is refused
    /// before any file is created; with the source's layout its large tensors go to `MODEL.data`.
    @Test func aModelOverTwoGiBIsRefusedOrSpillsToADataFile() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let elements = 5 << 26  // 1.25 GiB of float32
        let source = HeadersOnly(headers: ["a", "b"].map { TensorInfo(name: $0, dtype: .float32, shape: [elements]) })
        let output = folder.appendingPathComponent("big.onnx").path
        #expect { try ONNXWriter.write(skeleton: Self.bigSkeleton(elements: elements), source: source, file: "c.pith", to: output) } throws: {
            guard let error = $0 as? ONNXError else { return false }
            return error.kind == .unsupported && error.message.contains("--external-data")
        }
        #expect(!FileManager.default.fileExists(atPath: output))

        var created: [String] = []
        let options = ExternalDataOptions(layout: .source, modelName: "big.onnx") { location in
            created.append(location)
            return folder.appendingPathComponent(location).path
        }
        #expect {
            try ONNXWriter.write(skeleton: Self.bigSkeleton(elements: elements), source: source, file: "c.pith", to: output, externalData: options)
        } throws: {
            ($0 as? ONNXError)?.message.contains("no data for") == true
        }
        #expect(created == ["big.onnx.data"])
        let size = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent("big.onnx.data").path)[.size] as? Int
        #expect(size == 2 * elements * 4)
    }
}
