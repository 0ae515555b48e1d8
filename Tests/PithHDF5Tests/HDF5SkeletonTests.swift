import Foundation
import Synchronization
import Testing
import PithIR
@testable import PithHDF5
import PithTestSupport

/// The whole-file skeleton: every Keras / HDF5 fixture written back from its skeleton and its tensors
/// has the same skeleton again (every group, dataset, link and attribute with its exact type, in its
/// order), the same tensors, and the same bytes when written twice; a damaged skeleton is refused
/// with an error naming the container, never a crash.
@Suite struct HDF5SkeletonTests {
    static let fixtures = KerasFixtureTests.fixtures

    func withTemporaryFolder<R>(_ body: (String) throws -> R) throws -> R {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-skeleton-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try body(folder)
    }

    func write(_ model: Model, skeleton: [UInt8], to path: String) throws {
        try HDF5Writer.write(
            skeleton: skeleton, container: "test.pith", placements: HDF5WriterTests.placements(model),
            source: TensorArray(model.tensors), to: path)
    }

    @Test(arguments: fixtures)
    func fileComesBackWhole(fixture: String) throws {
        let (model, skeleton, gap) = try HDF5Reader.readWithSkeleton(contentsOf: Fixtures.path(fixture))
        #expect(gap == nil)
        let bytes = try #require(skeleton)
        try withTemporaryFolder { folder in
            let first = folder + "/first.h5", second = folder + "/second.h5"
            try write(model, skeleton: bytes, to: first)
            try write(model, skeleton: bytes, to: second)
            let (back, again, _) = try HDF5Reader.readWithSkeleton(contentsOf: first)
            #expect(again == skeleton, "the restored file's structure differs from the source's")
            HDF5WriterTests().expectSameModel(model, back, "\(fixture)")
            #expect(FileManager.default.contents(atPath: first) == FileManager.default.contents(atPath: second), "two writes differ")
        }
    }

    /// The file lists its objects in creation order (root `z` before `a`), the source hands out
    /// tensors in its own order: each is asked for once, in that order, and lands in its dataset.
    @Test func eachTensorIsAskedForOnceInTheSourcesOrder() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/ordered.h5"
            let tensors = ["z/w", "a/w"].enumerated().map { index, name in
                let values = (0..<6).map { Float(index * 10 + $0) }
                return Tensor(
                    name: name, dtype: .float32, shape: [2, 3],
                    storage: .dense(TensorBuffer(bytes: values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })),
                    origin: .dataset(path: name))
            }
            // Two tensors at `z/w` and `a/w`, in a file whose root tracks creation order (z first).
            var tree = HDF5Tree(root: HDF5Tree.Node(kind: .group, name: ""), earliestFormat: false)
            tree.root.order = HDF5CreationOrder(links: 3, attributes: 0)
            for name in ["z", "a"] {
                var group = HDF5Tree.Node(kind: .group, name: name)
                var dataset = HDF5Tree.Node(kind: .dataset, name: "w")
                dataset.type = .float(size: 4, order: 0, precision: 32, offset: 0, pad: [0, 0, 0], norm: 1, bias: 127, fields: [31, 23, 8, 0, 23])
                dataset.space = .simple([2, 3])
                dataset.tensorPath = name + "/w"
                group.children = [dataset]
                tree.root.children.append(group)
            }
            let model = Model(format: .hdf5, tensors: tensors.sorted { $0.name < $1.name })
            let source = HDF5WriterTests.CountingSource(model.tensors)
            try HDF5Writer.write(
                skeleton: tree.encoded(), container: "test.pith", placements: HDF5WriterTests.placements(model), source: source, to: path)
            #expect(source.requests.withLock { $0 } == [0, 1])
            let back = try HDF5Reader.readWithSkeleton(contentsOf: path)
            #expect(back.model.tensors.map(\.name) == ["a/w", "z/w"])
            let root = try HDF5Tree(decoding: #require(back.skeleton), file: path).root
            #expect(root.children.map(\.name) == ["z", "a"], "creation order kept")
            HDF5WriterTests().expectSameModel(model, back.model, "ordered")
        }
    }

    @Test func droppingTheOptimizerRemovesItsGroupOnly() throws {
        let (model, skeleton, _) = try HDF5Reader.readWithSkeleton(contentsOf: Fixtures.path("keras/keras3-nested.weights.h5"))
        let dropped = try HDF5Skeleton.droppingOptimizer(#require(skeleton), format: model.format, file: "x")
        let before = try HDF5Tree(decoding: #require(skeleton), file: "x"), after = try HDF5Tree(decoding: dropped, file: "x")
        #expect(before.root.children.map(\.name) == ["layers", "optimizer", "vars"])
        #expect(after.root.children.map(\.name) == ["layers", "vars"])
        var weights = model
        weights.tensors.removeAll(where: \.isOptimizerState)
        try withTemporaryFolder { folder in
            try write(weights, skeleton: dropped, to: folder + "/w.h5")
            let back = try HDF5Reader.read(contentsOf: folder + "/w.h5")
            #expect(back.tensors.map(\.name) == weights.tensors.map(\.name))
        }
    }

    @Test func damagedSkeletonsAreRefusedNamingTheContainer() throws {
        let (model, skeleton, _) = try HDF5Reader.readWithSkeleton(contentsOf: Fixtures.path("keras/keras3-nested.weights.h5"))
        let bytes = try #require(skeleton)
        // Every prefix, and every single byte flipped in the header and first nodes: an error, never a trap.
        var damaged: [[UInt8]] = (0..<min(bytes.count, 400)).map { Array(bytes.prefix($0)) }
        for i in 0..<min(bytes.count, 200) {
            var copy = bytes
            copy[i] ^= 0xFF
            damaged.append(copy)
        }
        try withTemporaryFolder { folder in
            for candidate in damaged {
                do {
                    try write(model, skeleton: candidate, to: folder + "/d.h5")
                } catch let error as HDF5Error {
                    #expect(error.file == "test.pith" || error.file == folder + "/d.h5", "\(error)")
                }
            }
        }
        #expect(throws: HDF5Error.self) { try HDF5Tree(decoding: Array(bytes.dropLast()), file: "x") }
    }
}
