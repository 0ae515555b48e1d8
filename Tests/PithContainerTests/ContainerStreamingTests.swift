import Foundation
import Testing
import PithIR
@testable import PithContainer
import PithCoding

/// The writer streams a container to its output: a large tensor's streams are made a quarter at a
/// time on every core (`writeLarge`) and must be byte for byte what the one-piece encoding makes;
/// a file output gets the same bytes as memory; identical streams are written once, the second
/// taken back from the file.
@Suite struct ContainerStreamingTests {
    func tensor(_ name: String, _ dtype: DType, _ bytes: [UInt8]) -> Tensor {
        Tensor(
            name: name, dtype: dtype, shape: [bytes.count * 8 / dtype.bitWidth], storage: .dense(TensorBuffer(bytes: bytes)),
            origin: .initializer(graph: .main))
    }

    /// Large tensors of each kind of dense storage: float-split float32 and bfloat16, byte planes,
    /// Huffman-coded bytes, raw bytes and a zstd frame.
    func largeTensors() -> [Tensor] {
        let n = ContainerWriter.largeTensorBytes / 4 + 1001
        let floats = randomFloats(n, seed: 11).withUnsafeBytes { Array($0) }
        let bfloat = randomFloats(2 * n, seed: 12).flatMap { value -> [UInt8] in
            let bits = value.bitPattern >> 16
            return [UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8)]
        }
        var state: UInt64 = 5
        let noise = (0..<(4 * n)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let skewed = noise.map { $0 < 200 ? 0 : $0 & 7 }  // few symbols: Huffman
        let pattern = (0..<(4 * n)).map { UInt8(truncatingIfNeeded: $0 % 4099 * 37) }  // repeats: zstd
        let halves = (0..<(2 * n)).flatMap { i -> [UInt8] in [noise[i], UInt8(i % 3)] }  // float16 bytes: one plane random
        return [
            tensor("f32", .float32, floats), tensor("bf16", .bfloat16, bfloat), tensor("f16", .float16, halves),
            tensor("i8", .int8, skewed), tensor("u8", .uint8, noise), tensor("pattern", .int32, pattern),
        ]
    }

    @Test func largeTensorsAreTheStreamsOfTheOnePieceEncoding() throws {
        var kinds: Set<String> = [], codings: Set<String> = []
        defer {
            #expect(kinds == ["float-split", "planes", "dense"], "\(kinds)")
            #expect(codings == ["raw", "huffman", "zstd"], "\(codings)")
        }
        for tensor in largeTensors() {
            guard case .dense(let buffer) = tensor.storage else { continue }
            #expect(buffer.count >= ContainerWriter.largeTensorBytes)
            var reference = StreamBuilder()
            let expected = ContainerWriter.denseEncoding(buffer, dtype: tensor.dtype, into: &reference)
            let (bytes, manifest) = try ContainerWriter.encode(Model(format: .onnx, tensors: [tensor]))
            let encoding = try #require(manifest.tensors.first?.encoding)
            #expect(encoding.kind == expected.kind, "\(tensor.name)")
            kinds.insert("\(encoding.kind)")
            let streams = try #require(encoding.streams)
            #expect(streams.count == expected.streams?.count, "\(tensor.name)")
            for (k, (index, local)) in zip(streams, expected.streams ?? []).enumerated() {
                let entry = manifest.streams[index], want = reference.entries[local]
                codings.insert("\(entry.coding)")
                #expect(Array(bytes[entry.offset..<entry.offset + entry.length]) == reference.payloads[local], "\(tensor.name) stream \(k)")
                #expect(entry.coding == want.coding && entry.symbols == want.symbols && entry.codeLengths == want.codeLengths, "\(tensor.name) stream \(k)")
                #expect(entry.crc32c == want.crc32c, "\(tensor.name) stream \(k)")
            }
            let read = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "t") }
            #expect(read.model.tensors.first?.storage == tensor.storage, "\(tensor.name)")
        }
    }

    /// Two identical large tensors and two identical small ones, written to a file: the second of
    /// each is found equal by reading the first back, taken back, and shares its streams.
    @Test func aFileGetsTheBytesOfMemoryAndIdenticalStreamsOnce() throws {
        let large = largeTensors()[0], small = tensor("s", .float32, randomFloats(5000, seed: 3).withUnsafeBytes { Array($0) })
        var again = large, smallAgain = small
        again.name = "again"
        smallAgain.name = "s-again"
        let model = Model(format: .onnx, tensors: [large, small, again, smallAgain])
        let (memory, manifest) = try ContainerWriter.encode(model)
        #expect(manifest.tensors[0].encoding.streams == manifest.tensors[2].encoding.streams)
        #expect(manifest.tensors[1].encoding.streams == manifest.tensors[3].encoding.streams)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-stream-\(UUID().uuidString).pith").path
        defer { unlink(path) }
        let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        try #require(descriptor >= 0)
        var output = ContainerFileOutput(descriptor: descriptor, path: path)
        let accounting = try ContainerWriter.write(model, to: &output).accounting
        close(descriptor)
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(written == memory)
        #expect(accounting.fileBytes == written.count)
        let read = try written.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: path) }
        #expect(read.model.tensors.map(\.storage) == model.tensors.map(\.storage))
    }
}
