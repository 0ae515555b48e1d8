import Foundation
import Testing
import PithIR
@testable import PithHDF5
import PithTestSupport

/// Every Keras / HDF5 fixture imports with exactly the tensors h5py saw, in the
/// layout the generator recorded; optimizer state is loaded as tensors of its own role, after the
/// weights, and counted apart (`separatingOptimizerState`).
@Suite struct KerasFixtureTests {
    static let fixtures: [String] =
        (try? Fixtures.manifests())?
        .filter { $0.manifest.format != "onnx" }.map(\.fixture) ?? []

    @Test(arguments: fixtures)
    func importsExactlyTheRecordedTensors(fixture: String) throws {
        let manifest = try #require(try Fixtures.manifests().first { $0.fixture == fixture }?.manifest)
        let whole = try HDF5Reader.read(contentsOf: Fixtures.path(fixture))
        let model = whole.separatingOptimizerState().model
        #expect(whole.tensors.prefix(model.tensors.count).map(\.name) == model.tensors.map(\.name), "optimizer state comes after the weights")
        #expect(model.format.rawValue == manifest.format)
        #expect(model.tensors.map(\.name) == manifest.tensors.map(\.name))
        if let optimizer = manifest.optimizerStateTensors { #expect(model.optimizerState.count == optimizer) }
        for (tensor, expected) in zip(model.tensors, manifest.tensors) {
            #expect(tensor.dtype.rawValue == expected.dtype, "\(tensor.name)")
            #expect(tensor.shape == expected.shape, "\(tensor.name)")
            var nonzero = 0, low = Double.infinity, high = -Double.infinity, sum = 0.0
            tensor.forEachValueChunk { chunk in
                for v in chunk { if v != 0 { nonzero += 1 }; low = min(low, v); high = max(high, v); sum += v }
            }
            if let n = expected.nonzero { #expect(nonzero == n, "\(tensor.name)") }
            if let m = expected.min { #expect(low == m, "\(tensor.name)") }
            if let m = expected.max { #expect(high == m, "\(tensor.name)") }
            if let m = expected.mean, tensor.count > 0 { #expect(approximatelyEqual(sum / Double(tensor.count), m), "\(tensor.name)") }
        }
    }

    @Test func keras2ModelKeepsItsConfigAndLayerClasses() throws {
        let model = try HDF5Reader.read(contentsOf: Fixtures.path("lenet-300-100.h5"))
        #expect(model.format == .keras2)
        let config = try #require(model.configuration)
        #expect(config.contains("\"class_name\": \"Sequential\""))
        #expect(model.tensors.first?.consumer == Consumer(op: "Dense", name: "fc1"))
        #expect(model.tensors.first?.shape == [784, 300])
        #expect(model.metadata.properties.contains { $0.key == "keras_version" })
    }

    @Test func splitAndFixedLengthAttributesAreJoined() throws {
        let model = try HDF5Reader.read(contentsOf: Fixtures.path("keras/legacy-fixed-strings.h5"))
        #expect(Set(model.tensors.compactMap(\.consumer?.name)) == ["conv2d_1", "dense_1", "dense_2"])
        #expect(model.metadata.producerVersion == "2.0.5")
    }

    @Test(arguments: ["keras/keras2-cnn.h5", "keras/keras3-nested.h5", "keras/keras3-nested.weights.h5"])
    func optimizerStateIsLoadedButNeverAModelWeight(fixture: String) throws {
        let whole = try HDF5Reader.read(contentsOf: Fixtures.path(fixture))
        let optimizer = whole.tensors.filter(\.isOptimizerState)
        #expect(!optimizer.isEmpty)
        #expect(optimizer.allSatisfy { $0.name.hasPrefix("optimizer_weights/") || $0.name.hasPrefix("optimizer/vars/") })
        #expect(
            optimizer.allSatisfy {
                if case .dense(let buffer) = $0.storage { return buffer.count == $0.dtype.storageBytes(count: $0.count) } else { return false }
            })
        let roles = whole.tensorRoles()
        for (tensor, role) in zip(whole.tensors, roles) { #expect((role.kind == .optimizer) == tensor.isOptimizerState, "\(tensor.name)") }
        let model = whole.separatingOptimizerState().model
        #expect(!model.tensors.contains { $0.isOptimizerState })
        #expect(model.optimizerState.map(\.name) == optimizer.map(\.name))
    }

    @Test func brokenFilesThrowInsteadOfCrashing() {
        for name in ["keras-missing-dataset.h5", "keras-missing-layer-group.h5", "hdf5-truncated.h5", "hdf5-huge-unwritten-dataset.h5"] {
            #expect(throws: HDF5Error.self, "\(name)") { try HDF5Reader.read(contentsOf: Fixtures.path("broken/" + name)) }
        }
    }
}
