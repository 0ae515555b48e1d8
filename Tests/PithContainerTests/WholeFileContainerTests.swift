import Foundation
import Testing
import PithCoding
import PithIR
@testable import PithContainer

/// The whole-file form (format 1.5): its dictionaries never change once released, a source comes
/// back byte for byte, and what a damaged or hostile file declares is checked before anything is
/// allocated.
@Suite struct WholeFileContainerTests {
    /// A file names its dictionary by number and decodes only with the very bytes it was made with:
    /// these sums pin each released dictionary (scripts/make_dictionaries.py).
    @Test func releasedDictionariesNeverChange() {
        let pinned: [WholeFileContainer.Dictionary: (bytes: Int, crc: UInt32)] = [
            .onnx1: (16_113, 0x6354_55B8), .hdf5v1: (13_960, 0x22B3_A094), .onnxSkeleton1: (16_113, 0x6354_55B8),
        ]
        for dictionary in WholeFileContainer.Dictionary.allCases {
            let bytes = dictionary.bytes
            #expect(bytes.count == pinned[dictionary]?.bytes, "\(dictionary.name) size")
            #expect(CRC32C.checksum(bytes) == pinned[dictionary]?.crc, "\(dictionary.name) CRC-32C")
        }
    }

    @Test func aSourceComesBackByteForByte() throws {
        // What a model's graph spells out: operator and attribute names, the producer.
        let words = [
            "pytorch", "Conv", "kernel_shape", "strides", "pads", "dilations", "group", "BatchNormalization", "epsilon", "momentum",
            "Relu", "MaxPool", "Gemm", "alpha", "beta", "transB", "Softmax", "axis",
        ]
        let source = words.enumerated().flatMap { k, word in [UInt8(k), UInt8(word.utf8.count)] + Array(word.utf8) }
        let stored = try #require(source.withUnsafeBytes { WholeFileContainer.encode($0, dictionary: .onnx1) })
        #expect(WholeFileContainer.hasForm(stored))
        let plain = Zstd.compress(source).count
        #expect(stored.count < plain, "the dictionary holds the operator schemas: \(stored.count) bytes, \(plain) for zstd alone")
        let (dictionary, decoded) = try stored.withUnsafeBytes { try WholeFileContainer.decode($0, file: "t.pith", rebuild: Self.reversed) }
        #expect(dictionary == .onnx1 && decoded == source)
    }

    @Test func anotherDictionaryDoesNotDecodeTheFrame() throws {
        let source = [UInt8](repeating: 7, count: 300) + Array("model_weights layer_names".utf8)
        var stored = try #require(source.withUnsafeBytes { WholeFileContainer.encode($0, dictionary: .hdf5v1) })
        stored[9] = WholeFileContainer.Dictionary.onnx1.rawValue
        #expect(throws: ContainerError.self) { try stored.withUnsafeBytes { try WholeFileContainer.decode($0, file: "t.pith", rebuild: Self.reversed) } }
    }

    @Test func aFrameDeclaringMoreThanTheLimitIsRefusedBeforeAllocating() throws {
        // A zstd frame header (without its magic) declaring 2^40 bytes: single segment off, an
        // 8-byte content size, then an empty raw last block.
        var frame: [UInt8] = [0xC0, 0x58]  // FCS flag 3 (8 bytes), window descriptor
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { frame += $0 }
        frame += [0x01, 0x00, 0x00]
        var bytes = ContainerHeader.magic + [WholeFileContainer.formByte, 1]
        bytes += [0, 0, 0, 0] + frame
        let error = try #require(throws: ContainerError.self) {
            try bytes.withUnsafeBytes { try WholeFileContainer.decode($0, file: "big.pith", rebuild: Self.reversed) }
        }
        #expect(error.description.contains("declares 1099511627776 bytes"))
    }

    @Test func theStandardReaderNamesTheFormInsteadOfCallingItDamaged() throws {
        let source = Array("plain".utf8)
        let stored = try #require(source.withUnsafeBytes { WholeFileContainer.encode($0, dictionary: .hdf5v1) })
        let padded = stored + [UInt8](repeating: 0, count: 64)
        let error = try #require(throws: ContainerError.self) { try padded.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "w.pith") } }
        #expect(error.kind == .unsupported && error.description.contains("whole-file form"))
    }

    /// A stand-in for packing an ONNX source again from a skeleton frame: the bytes reversed.
    static func reversed(_ bytes: [UInt8]) -> [UInt8] { Array(bytes.reversed()) }

    /// An `onnx-skeleton-1` frame (dictionary 3) is handed to the rebuilder, and the header's
    /// CRC-32C is checked against what the rebuilder gives, not against the frame's content.
    @Test func aSkeletonFrameIsRebuiltAndTheSourceChecksumChecked() throws {
        let source = Array("the source model file, packed again".utf8)
        let content = Array(source.reversed())
        let stored = try #require(
            content.withUnsafeBytes { WholeFileContainer.encode($0, dictionary: .onnxSkeleton1, sourceChecksum: CRC32C.checksum(source)) })
        #expect(stored[9] == 3)
        let (dictionary, decoded) = try stored.withUnsafeBytes { try WholeFileContainer.decode($0, file: "s.pith", rebuild: Self.reversed) }
        #expect(dictionary == .onnxSkeleton1 && dictionary.holdsSkeleton && decoded == source)
        // The CRC-32C of the frame's content is not the source's: refused as damaged.
        let wrong = try #require(
            content.withUnsafeBytes { WholeFileContainer.encode($0, dictionary: .onnxSkeleton1, sourceChecksum: CRC32C.checksum(content)) })
        let error = try #require(throws: ContainerError.self) {
            try wrong.withUnsafeBytes { try WholeFileContainer.decode($0, file: "s.pith", rebuild: Self.reversed) }
        }
        #expect(error.kind == .checksum && error.exitKind == .data)
        // What the rebuilder refuses is refused.
        struct Refused: Error {}
        #expect(throws: Refused.self) { try stored.withUnsafeBytes { try WholeFileContainer.decode($0, file: "s.pith") { _ in throw Refused() } } }
        // The checksum is fixed to the rebuilt source's.
        let fixed = try #require(WholeFileContainer.withChecksumFixed(wrong, rebuild: Self.reversed))
        #expect(fixed == stored)
    }

    /// A Pith that does not know a dictionary number asks for an upgrade (exit 69).
    @Test func anUnknownDictionaryAsksForAnUpgrade() throws {
        var stored = try #require(Array("x".utf8).withUnsafeBytes { WholeFileContainer.encode($0, dictionary: .onnx1) })
        stored[9] = 4
        let error = try #require(throws: ContainerError.self) {
            try stored.withUnsafeBytes { try WholeFileContainer.decode($0, file: "u.pith", rebuild: Self.reversed) }
        }
        #expect(error.kind == .unsupported && error.description.contains("upgrade Pith"))
    }
}
