import Foundation
import Testing
import Pith
import PithContainer
import PithTestSupport

/// Every container format version written so far (Fixtures/golden/, by the last Pith that wrote each
/// version; see Fixtures/generate/make_golden.py) keeps reading and restoring to the same tensors:
/// the names, dtypes, shapes and bytes (FNV-1a 64) that its own writer's restore gave, as onnx / h5py
/// read them; lossless ones also to the tensors of their source fixture.
@Suite struct GoldenContainerTests {
    struct Expected: Decodable {
        struct Entry: Decodable {
            var name: String
            var dtype: String
            var shape: [Int]
            var fnv1a64: String
        }
        var version: String
        var source: String
        var restoresTo: String
        var lossless: Bool
        var tensors: [Entry]
        enum CodingKeys: String, CodingKey {
            case version, source, tensors, lossless
            case restoresTo = "restores_to"
        }
    }

    static func expected() throws -> [String: Expected] {
        try JSONDecoder().decode([String: Expected].self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("golden/expected.json"))))
    }

    static let containers: [String] = (try? expected())?.keys.sorted() ?? []

    /// FNV-1a 64 of a tensor's little-endian bytes (strings: each as a UInt32 length and its bytes).
    static func fingerprint(_ tensor: Tensor) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func add(_ bytes: some Sequence<UInt8>) { for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 } }
        switch tensor.densified().storage {
        case .dense(let buffer): buffer.withUnsafeBytes { add($0) }
        case .strings(let values):
            for value in values {
                withUnsafeBytes(of: UInt32(value.count).littleEndian) { add($0) }
                add(value)
            }
        default: Issue.record("tensor `\(tensor.name)` has no dense form")
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func fingerprints(_ model: Model) -> [String: (dtype: String, shape: [Int], hash: String)] {
        Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, ($0.dtype.rawValue, $0.shape, fingerprint($0))) })
    }

    func check(_ model: Model, against expected: Expected, _ what: String) {
        let found = Self.fingerprints(model)
        #expect(Set(found.keys) == Set(expected.tensors.map(\.name)), "\(what): tensor names")
        for entry in expected.tensors {
            guard let tensor = found[entry.name] else { continue }
            #expect(tensor.dtype == entry.dtype, "\(what): `\(entry.name)` dtype")
            #expect(tensor.shape == entry.shape, "\(what): `\(entry.name)` shape")
            #expect(tensor.hash == entry.fnv1a64, "\(what): `\(entry.name)` bytes")
        }
    }

    @Test(arguments: containers)
    func goldenContainerRestoresToTheSameTensors(container: String) throws {
        let expected = try #require(try Self.expected()[container])
        let path = Fixtures.path("golden/" + container)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let whole = WholeFileContainer.hasForm(bytes.prefix(9))
        let file = whole ? nil : try ContainerFile(path)
        // A whole-file container (1.5) has no manifest: its form byte says what it is, and its
        // dictionary 3 (`onnx-skeleton-1`) is 1.6's.
        let wholeVersion = bytes.count > 9 && bytes[bytes.startIndex + 9] == 3 ? "1.6" : "1.5"
        #expect((file?.manifest.version ?? wholeVersion) == expected.version, "the file is the format version it stands for")

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-golden-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("restored." + expected.restoresTo).path
        _ = try Restoration.run(path, to: output, force: false)
        check(try ModelFile.load(output), against: expected, "\(container) restored")

        if expected.restoresTo == "onnx" {
            // The container's own tensors, decoded without restoring (what inspect and eval read).
            check(try file?.contents().model ?? ModelFile.load(path), against: expected, "\(container) read")
        }
        if expected.lossless {
            // The source's tensors; a Keras file's optimizer state only where the container holds it
            // (format 1.4 on: the golden containers written before do not).
            let whole = try ModelFile.load(Fixtures.path(expected.source))
            let optimizer = Set(whole.tensors.filter(\.isOptimizerState).map(\.name))
            let expectsOptimizer = expected.tensors.contains { optimizer.contains($0.name) }
            check(expectsOptimizer ? whole : whole.separatingOptimizerState().model, against: expected, "\(container)'s source \(expected.source)")
        }
    }

    /// One golden container per format version written so far.
    @Test func everyFormatVersionIsRepresented() throws {
        let versions = Set(try Self.expected().values.map(\.version))
        #expect(versions == ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6"])
    }

    /// The encodings each version added are in its golden files, so that their readers stay tested.
    @Test func theGoldenFilesHoldTheEncodingsTheirVersionAdded() throws {
        let kinds: [(String, PithContainer.Manifest.Encoding.Kind)] = [
            ("v1.2-lenet-factored.pith", .factored), ("v1.5-stft-basis.pith", .transposed), ("v1.6-blocks.pith", .blocks),
        ]
        for (container, kind) in kinds {
            let manifest = try ContainerFile(Fixtures.path("golden/" + container)).manifest
            #expect(manifest.tensors.contains { $0.encoding.kind == kind }, "\(container) holds `\(kind)`")
        }
    }
}
