import Foundation
import Synchronization
import Testing
import PithIR
@testable import PithHDF5
import PithTestSupport

/// The streamed writer (tensors asked of a `TensorSource` one at a time) writes what the
/// whole-model call writes, for every Keras / HDF5 fixture, and asks for each tensor's bytes once.
@Suite struct HDF5WriterTests {
    static let fixtures = KerasFixtureTests.fixtures

    static func placements(_ model: Model) -> [HDF5Writer.Placement] {
        model.tensors.map { HDF5Writer.Placement(origin: $0.origin, layer: $0.consumer?.name) }
    }

    /// A fresh path in a folder of its own, removed when `body` ends.
    func withTemporaryFolder<R>(_ body: (String) throws -> R) throws -> R {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-hdf5-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try body(folder)
    }

    /// Everything the reader sees of a file: format, metadata, configuration, and each tensor's
    /// name, type, shape, origin, layer and bytes.
    func expectSameModel(_ a: Model, _ b: Model, _ comment: Comment) {
        #expect(a.format == b.format, comment)
        #expect(a.metadata == b.metadata, comment)
        #expect(a.configuration == b.configuration, comment)
        #expect(a.tensors.map(\.name) == b.tensors.map(\.name), comment)
        for (x, y) in zip(a.tensors, b.tensors) {
            #expect(x.dtype == y.dtype && x.shape == y.shape, "\(comment) \(x.name)")
            #expect(x.origin == y.origin && x.consumer?.name == y.consumer?.name, "\(comment) \(x.name)")
            guard case .dense(let p) = x.storage, case .dense(let q) = y.storage else {
                Issue.record("\(comment) \(x.name): not dense")
                continue
            }
            #expect(p.withUnsafeBytes { Array($0) } == q.withUnsafeBytes { Array($0) }, "\(comment) \(x.name)")
        }
    }

    @Test(arguments: fixtures)
    func streamedWriterWritesWhatTheWholeModelCallWrites(fixture: String) throws {
        let model = try HDF5Reader.read(contentsOf: Fixtures.path(fixture))
        try withTemporaryFolder { folder in
            let whole = folder + "/whole.h5", streamed = folder + "/streamed.h5"
            try HDF5Writer.write(model, to: whole)
            try HDF5Writer.write(
                format: model.format, metadata: model.metadata, configuration: model.configuration,
                placements: Self.placements(model), source: TensorArray(model.tensors), to: streamed)
            let a = try HDF5Reader.read(contentsOf: whole), b = try HDF5Reader.read(contentsOf: streamed)
            expectSameModel(a, b, "\(fixture): whole vs streamed")
            expectSameModel(model, b, "\(fixture): source vs streamed")
        }
    }

    /// A compressed tensor is densified by the stream as restore used to densify the whole model first.
    @Test func compressedTensorsAreDensifiedOneAtATime() throws {
        var model = try HDF5Reader.read(contentsOf: Fixtures.path("lenet-300-100.h5"))
        let kernel = try #require(model.tensors.firstIndex { $0.shape == [784, 300] })
        let count = model.tensors[kernel].count
        model.tensors[kernel].storage = .codebook(
            CodebookStorage(
                bits: 2, centroids: [-0.25, 0, 0.125, 0.5], channels: 1,
                indices: (0..<count).map { UInt8(truncatingIfNeeded: $0 * 7 % 4) }, zeroIsReserved: false))
        try withTemporaryFolder { folder in
            var densified = model
            densified.tensors = model.tensors.map { $0.densified() }
            try HDF5Writer.write(densified, to: folder + "/before.h5")
            try HDF5Writer.write(
                format: model.format, metadata: model.metadata, configuration: model.configuration,
                placements: Self.placements(model), source: TensorArray(model.tensors), to: folder + "/after.h5")
            expectSameModel(
                try HDF5Reader.read(contentsOf: folder + "/before.h5"),
                try HDF5Reader.read(contentsOf: folder + "/after.h5"), "codebook kernel")
        }
    }

    /// Records which tensors the writer asks for.
    final class CountingSource: TensorSource {
        let inner: TensorArray
        let requests = Mutex<[Int]>([])
        init(_ tensors: [Tensor]) { inner = TensorArray(tensors) }
        var tensorCount: Int { inner.tensorCount }
        func header(_ index: Int) -> TensorInfo { inner.header(index) }
        func makeWorker() {}
        func denseTensor(_ index: Int, worker: inout Void) throws -> Tensor {
            Issue.record("the writer asked for tensor \(index) whole")
            return try inner.denseTensor(index, worker: &worker)
        }
        func denseBytes(_ index: Int, worker: inout Void, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
            requests.withLock { $0.append(index) }
            try inner.denseBytes(index, worker: &worker, body)
        }
    }

    @Test func eachTensorIsAskedForOnceInOrder() throws {
        let model = try HDF5Reader.read(contentsOf: Fixtures.path("keras/keras2-cnn.h5"))
        let source = CountingSource(model.tensors)
        try withTemporaryFolder { folder in
            try HDF5Writer.write(
                format: model.format, metadata: model.metadata, configuration: model.configuration,
                placements: Self.placements(model), source: source, to: folder + "/m.h5")
        }
        #expect(source.requests.withLock { $0 } == model.tensors.indices.filter { model.tensors[$0].count > 0 })
    }

    /// Hands out each tensor's bytes in pieces of `piece` bytes, last piece first, leaving out the
    /// last `missing` bytes.
    struct PiecewiseSource: TensorSource {
        let inner: TensorArray
        let piece: Int
        var missing = 0
        var tensorCount: Int { inner.tensorCount }
        func header(_ index: Int) -> TensorInfo { inner.header(index) }
        func makeWorker() {}
        func denseTensor(_ index: Int, worker: inout Void) throws -> Tensor { try inner.denseTensor(index, worker: &worker) }
        func denseBytes(_ index: Int, worker: inout Void, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
            try inner.denseBytes(index, worker: &worker) { _, bytes in
                let count = bytes.count - missing
                for start in stride(from: 0, to: count, by: piece).reversed() {
                    try body(start, UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + piece, count)]))
                }
            }
        }
    }

    @Test func piecesLandAtTheirOffsets() throws {
        let model = try HDF5Reader.read(contentsOf: Fixtures.path("keras/legacy-fixed-strings.h5"))
        try withTemporaryFolder { folder in
            try HDF5Writer.write(
                format: model.format, metadata: model.metadata, configuration: model.configuration,
                placements: Self.placements(model), source: PiecewiseSource(inner: TensorArray(model.tensors), piece: 7),
                to: folder + "/m.h5")
            expectSameModel(model, try HDF5Reader.read(contentsOf: folder + "/m.h5"), "pieces of 7 bytes")
            #expect(throws: HDF5Error.self) {
                try HDF5Writer.write(
                    format: model.format, metadata: model.metadata, configuration: model.configuration,
                    placements: Self.placements(model), source: PiecewiseSource(inner: TensorArray(model.tensors), piece: 7, missing: 1),
                    to: folder + "/short.h5")
            }
        }
    }

    @Test func signatureIsFoundAtZeroAndAfterAUserBlock() throws {
        for fixture in Self.fixtures { #expect(try HDF5Reader.hasSignature(contentsOf: Fixtures.path(fixture)), "\(fixture)") }
        #expect(try !HDF5Reader.hasSignature(contentsOf: Fixtures.path("lenet-300-100.onnx")))
        let h5 = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path("keras/plain.h5"))))
        try withTemporaryFolder { folder in
            for (name, bytes, expected) in [
                ("user-block", [UInt8](repeating: 0, count: 2048) + h5, true),
                ("odd-offset", [UInt8](repeating: 0, count: 700) + h5, false),
                ("short", Array(h5.prefix(7)), false), ("empty", [], false),
            ] {
                let path = folder + "/" + name
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                #expect(try HDF5Reader.hasSignature(contentsOf: path) == expected, "\(name)")
                #expect(bytes.withUnsafeBytes { HDF5Reader.hasSignature($0) } == expected, "\(name) (bytes)")
            }
        }
        #expect(throws: HDF5Error.self) { try HDF5Reader.hasSignature(contentsOf: "/nonexistent/model.h5") }
    }
}
