import Foundation
import Testing
import PithIR
@testable import PithContainer
import PithCoding

/// Format 1.6's small containers: a manifest frame made with `manifest-1` and stored without its
/// magic number (header flag bit 1), streams packed without alignment or offsets (bit 2), the
/// skeleton after the manifest's JSON in its frame (bit 3); and what a damaged or lying file of that
/// kind is refused with.
@Suite struct SmallContainerTests {
    /// A file names `manifest-1` by a header flag and decodes only with its very bytes: this sum pins
    /// it (scripts/make_dictionaries.py writes its vocabulary).
    @Test func theManifestDictionaryNeverChanges() {
        let bytes = ManifestDictionary.bytes
        #expect(bytes.count == 34_765)
        #expect(CRC32C.checksum(bytes) == 0x8AD7_2B26)
        // `hdf5-1` and `onnx-1` first, unchanged.
        let hdf5 = WholeFileContainer.Dictionary.hdf5v1.bytes, onnx = WholeFileContainer.Dictionary.onnx1.bytes
        #expect(Array(bytes.prefix(hdf5.count)) == hdf5 && Array(bytes[hdf5.count..<hdf5.count + onnx.count]) == onnx)
        #expect(String(decoding: bytes.suffix(15), as: UTF8.self) == #"],"version":"1."#)
    }

    /// Two float32 weights, an int64 constant, and a skeleton that spells their names as an ONNX
    /// file does.
    func model() -> (Model, skeleton: [UInt8]) {
        let names = ["features.0.weight", "features.0.bias", "shape"]
        let tensors = [
            Tensor(
                name: names[0], dtype: .float32, shape: [16, 3, 3, 3], storage: .dense(TensorBuffer(values: randomFloats(432, seed: 5))),
                origin: .initializer(graph: .main), consumer: Consumer(op: "Conv", name: "Conv_0")),
            Tensor(
                name: names[1], dtype: .float32, shape: [16], storage: .dense(TensorBuffer(values: randomFloats(16, seed: 6))),
                origin: .initializer(graph: .main), consumer: Consumer(op: "Conv", name: "Conv_0")),
            Tensor(name: names[2], dtype: .int64, shape: [2], storage: .dense(TensorBuffer(values: [Int64(1), -1])), origin: .initializer(graph: .main)),
        ]
        var skeleton: [UInt8] = [0x08, 0x07, 0x12, 0x07] + Array("pytorch".utf8)
        for name in names + ["Conv_0", "Conv", "input", "output"] { skeleton += [0x0A, UInt8(name.utf8.count)] + Array(name.utf8) }
        var metadata = ModelMetadata()
        metadata.producerName = "pytorch"
        return (Model(format: .onnx, metadata: metadata, tensors: tensors), skeleton)
    }

    func header(_ bytes: [UInt8]) throws -> ContainerHeader {
        try bytes.withUnsafeBytes { try ContainerHeader.decode($0, file: "s.pith", fileSize: bytes.count) }
    }

    /// `bytes` with the header's flags replaced (the header's CRC made to match).
    func reflagged(_ bytes: [UInt8], _ flags: UInt32) throws -> [UInt8] {
        var header = try header(bytes)
        header.flags = flags
        var out = bytes
        out.replaceSubrange(0..<ContainerHeader.size, with: header.encoded())
        return out
    }

    /// `bytes` with the stored manifest replaced by `stored` (header length and CRC made to match).
    func restored(_ bytes: [UInt8], manifest stored: [UInt8]) throws -> [UInt8] {
        var header = try header(bytes)
        var out = Array(bytes[..<Int(header.manifestOffset)]) + stored
        header.manifestLength = UInt64(stored.count)
        header.manifestChecksum = CRC32C.checksum(stored)
        out.replaceSubrange(0..<ContainerHeader.size, with: header.encoded())
        return out
    }

    func refusal(_ bytes: [UInt8]) -> ContainerError? {
        do {
            _ = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "s.pith") }
            return nil
        } catch let error as ContainerError { return error } catch { return nil }
    }

    @Test func aSmallContainerIsPackedWithItsSkeletonInTheManifestFrame() throws {
        let (model, skeleton) = model()
        let (bytes, manifest, accounting) = try ContainerWriter.encodeWithAccounting(model, skeleton: skeleton)
        let flags = try header(bytes).flags
        #expect(flags == ContainerHeader.manifestZstd | ContainerHeader.manifestDictionary | ContainerHeader.packed | ContainerHeader.skeletonInManifest)
        #expect(manifest.version == "1.6" && manifest.source.skeleton == nil)
        // Streams tile bytes 64 ..< the manifest, which follows the last without padding.
        let end = manifest.streams.reduce(64) { offset, stream in offset == stream.offset ? offset + stream.length : -1 }
        #expect(end == Int(try header(bytes).manifestOffset))
        #expect(accounting.paddingBytes == 0 && accounting.skeletonInManifest && accounting.skeletonBytes == 0)
        #expect(accounting.fileBytes == bytes.count)
        // The stored manifest: a zstd frame without its magic number, whose content is the JSON
        // (without offsets), a 0x00 byte, then the skeleton.
        let stored = Array(bytes[end...])
        #expect(!stored.starts(with: WholeFileContainer.frameMagic))
        let content = try #require(stored.withUnsafeBytes { ManifestDictionary.content(of: $0, limit: 1 << 20) })
        let zero = try #require(content.firstIndex(of: 0))
        #expect(Array(content[(zero + 1)...]) == skeleton)
        #expect(!String(decoding: content[..<zero], as: UTF8.self).contains("\"offset\""))
        // It reads back, and writing again gives the same bytes.
        let contents = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "s.pith") }
        #expect(contents.skeleton == skeleton)
        for (a, b) in zip(model.tensors, contents.model.tensors) { #expect(a.storage == b.storage && a.consumer == b.consumer, "\(a.name)") }
        #expect(contents.manifest.streams == manifest.streams, "offsets placed by the reader as the writer laid them")
        #expect(try ContainerWriter.encode(model, skeleton: skeleton).bytes == bytes)
        // Smaller than the 1.5 layout: aligned raw streams, the skeleton in a stream of its own.
        let aligned = try ContainerWriter.encodeWithAccounting(model, skeleton: skeleton, packed: false).bytes
        #expect(bytes.count < aligned.count)
    }

    @Test func aSkeletonThatAStreamStoresBetterStaysInAStream() throws {
        // Random symbols 0–3: coded on their own in about a quarter of their bytes, and nothing the
        // manifest's frame holds helps them.
        var state: UInt64 = 1
        let skeleton = (0..<4000).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(state >> 62)
        }
        let (model, _) = model()
        let (bytes, manifest, accounting) = try ContainerWriter.encodeWithAccounting(model, skeleton: skeleton)
        #expect(try header(bytes).flags & ContainerHeader.skeletonInManifest == 0)
        let stream = try #require(manifest.source.skeleton)
        #expect(manifest.streams[stream].coding != .raw && accounting.skeletonBytes == manifest.streams[stream].length, "\(manifest.streams[stream])")
        #expect(try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "s.pith") }.skeleton == skeleton)
    }

    @Test func aLargeContainerKeepsItsAlignment() throws {
        let weights = randomFloats(300_000, seed: 8)  // 1.2 MB, past `packedLimit`
        let model = Model(
            format: .onnx,
            tensors: [
                Tensor(name: "w", dtype: .float32, shape: [300, 1000], storage: .dense(TensorBuffer(values: weights)), origin: .initializer(graph: .main))
            ])
        let (bytes, manifest) = try ContainerWriter.encode(model)
        let header = try header(bytes)
        #expect(!header.isPacked && header.manifestOffset % 64 == 0)
        #expect(manifest.streams.allSatisfy { $0.coding != .raw || $0.offset % 64 == 0 })
        #expect(try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "s.pith") }.model.tensors[0].storage == model.tensors[0].storage)
    }

    @Test func packedStreamsThatDoNotTileTheDataAreRefused() throws {
        let (model, _) = model()
        let (bytes, manifest) = try ContainerWriter.encode(model)
        #expect(refusal(try withManifest(manifest, of: bytes)) == nil, "rewritten unchanged, it reads")
        var offset = manifest
        offset.streams[1].offset = 64
        let withOffset = try #require(refusal(try Self.encoded(offset, of: bytes, offsets: true)))
        #expect(withOffset.kind == .malformed && withOffset.message.contains("stream 0 gives an `offset`"))
        var longer = manifest
        longer.streams[0].length += 1
        let long = try #require(refusal(try withManifest(longer, of: bytes)))
        #expect(long.kind == .malformed && long.message.contains("do not fit before the manifest"))
        var shorter = manifest
        shorter.streams[manifest.streams.count - 1].length -= 1
        let gap = try #require(refusal(try withManifest(shorter, of: bytes)))
        #expect(gap.kind == .malformed && gap.message.contains("1 bytes belong to nothing"))
        var past = manifest
        past.streams[0].length = Int.max / 2
        let overflow = try #require(refusal(try withManifest(past, of: bytes)))
        #expect(overflow.kind == .malformed && overflow.message.contains("do not fit before the manifest"))
        // A stream without an offset in a container that is not packed.
        let aligned = try ContainerWriter.encodeWithAccounting(model, skeleton: nil, packed: false)
        #expect(refusal(try Self.encoded(aligned.manifest, of: aligned.bytes, offsets: true)) == nil)
        let noOffsets = try #require(refusal(try Self.encoded(aligned.manifest, of: aligned.bytes, offsets: false)))
        #expect(noOffsets.kind == .malformed && noOffsets.message.contains("stream 0 has no `offset`"))
    }

    /// `manifest` as one zstd frame (flag bit 0) over `bytes`'s, with the offsets or not, the packed flag kept.
    static func encoded(_ manifest: PithContainer.Manifest, of bytes: [UInt8], offsets: Bool) throws -> [UInt8] {
        try withManifest(manifest, of: bytes, offsets: offsets)
    }

    @Test func flagsAndManifestFramesThatLieAreRefusedByName() throws {
        let (model, skeleton) = model()
        let (bytes, manifest) = try ContainerWriter.encode(model, skeleton: skeleton)
        let flags = try header(bytes).flags
        // A flag this Pith does not know: a newer format.
        let newer = try #require(refusal(try reflagged(bytes, flags | 1 << 4)))
        #expect(newer.kind == .unsupported && newer.message.contains("upgrade Pith"))
        // The dictionary flag without the zstd flag.
        let bit1 = try #require(refusal(try reflagged(bytes, flags & ~ContainerHeader.manifestZstd)))
        #expect(bit1.kind == .malformed && bit1.message.contains("bit 1"))
        // Without the dictionary flag the frame (no magic number) is not one.
        let plain = try #require(refusal(try reflagged(bytes, flags & ~ContainerHeader.manifestDictionary)))
        #expect(plain.kind == .malformed && plain.message.contains("not a zstd frame"))
        // A frame damaged under a valid CRC.
        var stored = Array(bytes[Int(try header(bytes).manifestOffset)...])
        stored[stored.count / 2] ^= 0x55
        let damaged = try #require(refusal(try restored(bytes, manifest: stored)))
        #expect(damaged.kind == .malformed && damaged.message.contains("made with the `manifest-1` dictionary"))
        // A frame declaring more than the manifest limit is refused before anything is allocated.
        var huge: [UInt8] = [0xC0, 0x58]  // frame header: 8-byte content size, window descriptor
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { huge += $0 }
        huge += [0x01, 0x00, 0x00]
        #expect(refusal(try restored(bytes, manifest: huge))?.message.contains("at most 67108864 bytes") == true)
        // Flag bit 3 without a skeleton after the JSON.
        let json = try manifest.encodedJSON(offsets: false)
        let jsonFrame = try #require(ManifestDictionary.frame(json))
        let noSkeleton = try #require(refusal(try restored(bytes, manifest: jsonFrame)))
        #expect(noSkeleton.kind == .malformed && noSkeleton.message.contains("has none"))
        // A skeleton after the JSON, and one in a stream too.
        var twice = manifest
        twice.source.skeleton = 0
        let twiceFrame = try #require(ManifestDictionary.frame(try twice.encodedJSON(offsets: false) + [0] + skeleton))
        let both = try #require(refusal(try restored(bytes, manifest: twiceFrame)))
        #expect(both.kind == .malformed && both.message.contains("names stream 0 as well"))
        // Unchanged, the same frame reads.
        let sameFrame = try #require(ManifestDictionary.frame(json + [0] + skeleton))
        #expect(refusal(try restored(bytes, manifest: sameFrame)) == nil)
    }
}
