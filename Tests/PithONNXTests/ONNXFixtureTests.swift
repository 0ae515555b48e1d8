import Foundation
import Testing
import PithIR
@testable import PithONNX
import PithTestSupport

/// Every ONNX fixture must import with exactly the tensors its generator script recorded,
/// and the values Pith decodes must give the statistics numpy / ml_dtypes computed.
@Suite struct ONNXFixtureTests {
    static let fixtures: [String] =
        (try? Fixtures.manifests())?
        .filter { $0.manifest.format == "onnx" }.map(\.fixture) ?? []

    @Test(arguments: fixtures)
    func importsExactlyTheRecordedTensors(fixture: String) throws {
        let manifest = try #require(try Fixtures.manifests().first { $0.fixture == fixture }?.manifest)
        let model = try ONNXReader.read(contentsOf: Fixtures.path(fixture))
        #expect(model.format == .onnx)
        #expect(model.tensors.map(\.name) == manifest.tensors.map(\.name))
        for (tensor, expected) in zip(model.tensors, manifest.tensors) {
            #expect(tensor.dtype.rawValue == expected.dtype, "\(tensor.name)")
            #expect(tensor.shape == expected.shape, "\(tensor.name)")
            #expect(tensor.count == expected.count, "\(tensor.name)")
            guard tensor.dtype.isReal else { continue }
            var nonzero = 0, low = Double.infinity, high = -Double.infinity, sum = 0.0, finite = 0
            tensor.forEachValueChunk { chunk in
                for v in chunk {
                    if v != 0 { nonzero += 1 }
                    if v.isFinite { low = min(low, v); high = max(high, v); sum += v; finite += 1 }
                }
            }
            if let n = expected.nonzero { #expect(nonzero == n, "\(tensor.name)") }
            if let m = expected.min { #expect(low == m, "\(tensor.name)") }
            if let m = expected.max { #expect(high == m, "\(tensor.name)") }
            if let m = expected.mean { #expect(approximatelyEqual(sum / Double(finite), m), "\(tensor.name)") }
        }
    }

    @Test func lenetGraphKeepsItsStructure() throws {
        let model = try ONNXReader.read(contentsOf: Fixtures.path("lenet-300-100.onnx"))
        let graph = try #require(model.graph)
        #expect(graph.nodes.map(\.opType) == ["Gemm", "Relu", "Gemm", "Relu", "Gemm"])
        #expect(graph.inputs.map(\.name) == ["input"])
        #expect(graph.inputs.first?.shape == [.symbolic("N"), .fixed(784)])
        #expect(graph.outputs.first?.dtype == .float32)
        #expect(graph.initializers.count == 6)
        #expect(model.metadata.opsets == [ModelMetadata.OperatorSet(domain: "", version: 17)])
        let fc1 = try #require(model.tensors.first { $0.name == "fc1.weight" })
        #expect(fc1.consumer == Consumer(op: "Gemm", name: "fc1"))
        if case .int(let transB)? = graph.nodes[0].attribute("transB") { #expect(transB == 1) } else { Issue.record("transB missing") }
    }

    @Test func subgraphTensorsKeepTheirOrigins() throws {
        let model = try ONNXReader.read(contentsOf: Fixtures.path("onnx/subgraphs.onnx"))
        let nested = try #require(model.tensors.first { $0.name == "loop/body/If#1/then_branch/k" })
        guard case .nodeAttribute(let graph, let node, let attribute, _) = nested.origin else {
            Issue.record("wrong origin \(nested.origin)"); return
        }
        #expect(graph.description == "loop/body/If#1/then_branch/")
        #expect(node == "Constant#0")
        #expect(attribute == "value")
        #expect(model.functions.map(\.name) == ["AddBias"])
        let thenWeight = try #require(model.tensors.first { $0.name == "gate/then_branch/then_w" })
        #expect(thenWeight.consumer?.op == "Add")
    }

    @Test func bytesInMemoryNeedNoFile() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("lenet-300-100.onnx")))
        let model = try data.withUnsafeBytes { try ONNXReader.read(bytes: $0, name: "memory") }
        #expect(model.tensors.count == 6)
        let external = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("onnx/external-data.onnx")))
        #expect(throws: ONNXError.self) { try external.withUnsafeBytes { try ONNXReader.read(bytes: $0, name: "memory") } }
    }

    @Test func everyTruncationIsRejectedWithoutCrashing() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("onnx/constants-sparse.onnx")))
        for length in stride(from: 0, to: data.count - 1, by: 7) {
            let prefix = data.prefix(length)
            // A prefix may still be a valid message (protobuf has no terminator); it must never crash.
            do {
                _ = try prefix.withUnsafeBytes { try ONNXReader.read(bytes: $0, name: "prefix-\(length)") }
            } catch let error as ONNXError {
                #expect(error.description.contains("prefix-\(length)"))
            }
        }
    }
}
