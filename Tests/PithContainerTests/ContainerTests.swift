import Foundation
import Testing
import PithIR
@testable import PithContainer
import PithCoding
import PithTestSupport

func randomFloats(_ n: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<n).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23) * 0.1
    }
}

@Suite struct ContainerRoundTripTests {
    func model() -> Model {
        let weights = randomFloats(3000, seed: 1)
        let sparseValues = weights.enumerated().map { $0.offset % 7 == 0 ? $0.element : 0 }
        var tensors: [Tensor] = [
            Tensor(
                name: "w", dtype: .float32, shape: [30, 100], storage: .dense(TensorBuffer(values: weights)), origin: .initializer(graph: .main),
                consumer: Consumer(op: "Gemm", name: "fc")),
            Tensor(name: "w-again", dtype: .float32, shape: [30, 100], storage: .dense(TensorBuffer(values: weights)), origin: .initializer(graph: .main)),
            Tensor(
                name: "h", dtype: .float16, shape: [4, 5], storage: .dense(TensorBuffer(values: (0..<20).map { UInt16($0 * 977) })), origin: .dataset(path: "h")
            ),
            Tensor(name: "q4", dtype: .int4, shape: [5], storage: .dense(TensorBuffer(bytes: [0x21, 0x43, 0x05])), origin: .dataset(path: "q4")),
            Tensor(name: "s", dtype: .string, shape: [2], storage: .strings([[104, 105], []]), origin: .dataset(path: "s")),
            Tensor(name: "empty", dtype: .float32, shape: [0, 3], storage: .dense(TensorBuffer(count: 0) { _ in }), origin: .dataset(path: "e")),
        ]
        let codebook = CodebookStorage(
            bits: 3, centroids: [0, 0.1, -0.1, 0.2, 0.05, -0.05, 0.3, -0.3], channels: 1, indices: (0..<3000).map { UInt8($0 % 8) }, zeroIsReserved: true)
        tensors.append(Tensor(name: "c", dtype: .float32, shape: [30, 100], storage: .codebook(codebook), origin: .initializer(graph: .main)))
        let quantized = QuantizedStorage(
            scheme: .linear(bits: 8, signed: true), scales: (0..<30).map { Float($0 + 1) / 100 },
            zeroPoints: (0..<30).map { Int32($0 % 5) }, axis: 0, codes: (0..<3000).map { Int32($0 % 256) - 128 })
        tensors.append(Tensor(name: "q", dtype: .float32, shape: [30, 100], storage: .quantized(quantized), origin: .initializer(graph: .main)))
        var entries: [UInt16] = [], starts = [0], kept: [Float] = []
        for row in 0..<30 {
            var previous = -1
            for column in 0..<100 where sparseValues[row * 100 + column] != 0 {
                entries.append(UInt16(column - previous - 1)); previous = column; kept.append(sparseValues[row * 100 + column])
            }
            starts.append(entries.count)
        }
        let sparse = SparseStorage(
            rows: 30, columns: 100, indexBits: 8, rowStarts: starts, gaps: entries, fillers: 0, values: .dense(TensorBuffer(values: kept)))
        tensors.append(Tensor(name: "sp", dtype: .float32, shape: [30, 100], storage: .sparse(sparse), origin: .initializer(graph: .main)))
        // Factored weights of every method.
        let lowRank = FactoredStorage(method: .lowRank(rank: 3), rows: 30, columns: 100, factors: [randomFloats(90, seed: 2), randomFloats(300, seed: 3)])
        tensors.append(Tensor(name: "svd", dtype: .float32, shape: [30, 100], storage: .factored(lowRank), origin: .initializer(graph: .main)))
        let train = FactoredStorage(
            method: .tensorTrain(rowFactors: [5, 6], columnFactors: [10, 10], ranks: [1, 4, 1]), rows: 30, columns: 100,
            factors: [randomFloats(200, seed: 4), randomFloats(240, seed: 5)])
        tensors.append(Tensor(name: "tt", dtype: .float32, shape: [30, 100], storage: .factored(train), origin: .initializer(graph: .main)))
        tensors.append(
            Tensor(
                name: "circ", dtype: .float32, shape: [8, 8],
                storage: .factored(FactoredStorage(method: .circulant, rows: 8, columns: 8, factors: [randomFloats(8, seed: 6)])),
                origin: .initializer(graph: .main)))
        // A low-rank split whose factors are stored as codes: one dense, one in CSR.
        let codesA: [Int32] = (0..<90).map { (i: Int) -> Int32 in Int32(i % 9) - 4 }
        let codesB: [Int32] = (0..<300).map { (i: Int) -> Int32 in i % 5 == 0 ? Int32(i % 3) - 1 : 0 }
        let quantizedA = QuantizedStorage(scheme: .linear(bits: 4, signed: true), scales: [0.05], zeroPoints: [0], axis: 0, codes: codesA)
        var sparseB: [UInt16] = [], startsB = [0], keptB: [Int32] = []
        for row in 0..<3 {
            var previous = -1
            for column in 0..<100 where codesB[row * 100 + column] != 0 {
                sparseB.append(UInt16(column - previous - 1)); previous = column; keptB.append(codesB[row * 100 + column])
            }
            startsB.append(sparseB.count)
        }
        let quantizedB = QuantizedStorage(scheme: .linear(bits: 2, signed: true), scales: [0.5], zeroPoints: [0], axis: 0, codes: keptB)
        let storedB = SparseStorage(rows: 3, columns: 100, indexBits: 6, rowStarts: startsB, gaps: sparseB, fillers: 0, values: .quantized(quantizedB))
        let coded = FactoredStorage(
            method: .lowRank(rank: 3), rows: 30, columns: 100, factors: [codesA.map { 0.05 * Float($0) }, codesB.map { 0.5 * Float($0) }],
            encodings: [.quantized(quantizedA), .sparse(storedB)])
        tensors.append(Tensor(name: "svd-codes", dtype: .float32, shape: [30, 100], storage: .factored(coded), origin: .initializer(graph: .main)))
        let separable = FactoredStorage(
            method: .separable(rank: 2), rows: 4, columns: 27, factors: [randomFloats(24, seed: 7), randomFloats(24, seed: 8), randomFloats(24, seed: 9)])
        tensors.append(Tensor(name: "sep", dtype: .float32, shape: [4, 3, 3, 3], storage: .factored(separable), origin: .initializer(graph: .main)))
        var metadata = ModelMetadata()
        metadata.producerName = "test"
        metadata.properties = [(key: "k", value: "v")]
        return Model(format: .onnx, metadata: metadata, tensors: tensors)
    }

    /// Codes of every width the format allows come back equal and as narrow as their bits: signed
    /// codes sign-extended from `bits` (4, 8, 12), unsigned ones (8, 16), float16 and bfloat16 patterns.
    @Test func quantizedCodesOfEveryWidthRoundTripNarrow() throws {
        let cases: [(QuantizedStorage.Scheme, [Int32], QuantizedCodes.Width)] = [
            (.linear(bits: 4, signed: true), (0..<600).map { Int32($0 % 16) - 8 }, .int8),
            (.linear(bits: 8, signed: false), (0..<600).map { Int32($0 % 256) }, .uint8),
            (.linear(bits: 12, signed: true), (0..<600).map { Int32($0 * 7 % 4096) - 2048 }, .int16),
            (.linear(bits: 16, signed: false), (0..<600).map { Int32($0 * 109 % 65536) }, .uint16),
            (.float16, (0..<600).map { Int32($0 * 97 % 65536) }, .uint16),
            (.bfloat16, (0..<600).map { Int32($0 * 89 % 65536) }, .uint16),
        ]
        let tensors = cases.enumerated().map { i, c in
            let linear: Bool
            if case .linear = c.0 { linear = true } else { linear = false }
            let storage = QuantizedStorage(
                scheme: c.0, scales: linear ? [0.5, 0.25] : [], zeroPoints: linear ? [3, 0] : [], axis: 0, codes: c.1)
            return Tensor(name: "q\(i)", dtype: .float32, shape: [2, 300], storage: .quantized(storage), origin: .initializer(graph: .main))
        }
        let (bytes, _) = try ContainerWriter.encode(Model(format: .onnx, tensors: tensors))
        let contents = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "memory") }
        for ((_, codes, width), tensor) in zip(cases, contents.model.tensors) {
            guard case .quantized(let q) = tensor.storage else {
                Issue.record("\(tensor.name) is not quantized")
                continue
            }
            #expect(Array(q.codes) == codes, "\(tensor.name)")
            #expect(q.codes.width == width, "\(tensor.name)")
        }
    }

    @Test func everyStorageKindRoundTripsExactly() throws {
        let original = model()
        let (bytes, manifest) = try ContainerWriter.encode(original, skeleton: [1, 2, 3])
        let contents = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "memory") }
        #expect(contents.model.tensors.count == original.tensors.count)
        for (a, b) in zip(original.tensors, contents.model.tensors) {
            #expect(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape, "\(a.name)")
            #expect(a.storage == b.storage, "\(a.name)")
            #expect(a.decodedFloats() == b.decodedFloats(), "\(a.name)")
        }
        #expect(contents.skeleton == [1, 2, 3])
        #expect(contents.model.metadata.producerName == "test")
        #expect(contents.model.tensors[0].consumer == Consumer(op: "Gemm", name: "fc"))
        // Identical tensors share their streams (and, pooled, their slice).
        #expect(manifest.tensors[0].encoding == manifest.tensors[1].encoding)
        // Deterministic.
        #expect(try ContainerWriter.encode(original, skeleton: [1, 2, 3]).bytes == bytes)
        // A small container is packed (1.6): its streams follow each other from byte 64, raw ones too.
        #expect(zip(manifest.streams, [64] + manifest.streams.map { $0.offset + $0.length }).allSatisfy { $0.offset == $1 })
        #expect(manifest.streams.contains { $0.coding == .raw && $0.offset % 64 != 0 })
        // Otherwise raw streams are 64-byte aligned and coded ones packed (1.4), as in a large container.
        let aligned = try ContainerWriter.encodeWithAccounting(original, skeleton: [1, 2, 3], packed: false)
        #expect(aligned.manifest.streams.allSatisfy { $0.coding != .raw || $0.offset % 64 == 0 })
        #expect(aligned.manifest.streams.contains { $0.coding != .raw && $0.offset % 64 != 0 })
        #expect(aligned.accounting.paddingBytes > 0 && aligned.bytes.count == aligned.accounting.fileBytes)
        let back = try aligned.bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "memory") }
        for (a, b) in zip(original.tensors, back.model.tensors) { #expect(a.storage == b.storage, "\(a.name)") }
        #expect(back.skeleton == [1, 2, 3])
    }

    /// Per-tensor codec choice (1.4, 1.5): a tensor whose values repeat in a pattern (a windowed cosine
    /// basis, as STFT front ends store) is stored as zstd frames (its bytes in order or column by
    /// column, or its byte planes), far smaller than its Huffman-coded fields; trained-like weights
    /// keep the float split; small integer constants share one stream.
    @Test func eachTensorGetsTheCodecThatFitsIt() throws {
        // 130 × 256: cosines of 64 frequencies (each row twice, as cos and mirrored), a Hann window.
        let basis: [Float] = (0..<130).flatMap { k in
            (0..<256).map { n in
                let window = 0.5 - 0.5 * cos(2 * Float.pi * Float(n) / 256)
                return window * cos(2 * Float.pi * Float(k % 65) * Float(n) / 256)
            }
        }
        let weights = randomFloats(20_000, seed: 11)
        let constants: [[Int64]] = [[1, 2, 3], [0, -1], [64, 1, 1, 0], [7]]
        var tensors = [
            Tensor(name: "basis", dtype: .float32, shape: [130, 256], storage: .dense(TensorBuffer(values: basis)), origin: .initializer(graph: .main)),
            Tensor(name: "weights", dtype: .float32, shape: [200, 100], storage: .dense(TensorBuffer(values: weights)), origin: .initializer(graph: .main)),
        ]
        for (k, values) in constants.enumerated() {
            tensors.append(
                Tensor(
                    name: "shape\(k)", dtype: .int64, shape: [values.count], storage: .dense(TensorBuffer(values: values)), origin: .initializer(graph: .main)))
        }
        let original = Model(format: .onnx, metadata: ModelMetadata(), tensors: tensors)
        let (bytes, manifest) = try ContainerWriter.encode(original)
        let contents = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "memory") }
        for (a, b) in zip(original.tensors, contents.model.tensors) { #expect(a.storage == b.storage, "\(a.name)") }

        let basisEncoding = manifest.tensors[0].encoding
        let basisStreams = basisEncoding.streams!.map { manifest.streams[$0] }
        #expect([.dense, .transposed, .planes, .floatSplit].contains(basisEncoding.kind))
        #expect(basisStreams.contains { $0.coding == .zstd })
        // Entropy coding of the fields would need about 0.8 of the raw bytes; the frames are under half.
        #expect(basisStreams.reduce(0) { $0 + $1.length } * 2 < basis.count * 4)
        #expect(manifest.tensors[1].encoding.kind == .floatSplit)
        // The four int64 constants: one stream, four slices of it.
        let pooled = manifest.tensors[2...].map(\.encoding)
        #expect(pooled.allSatisfy { $0.kind == .dense && $0.streams == pooled.first!.streams })
        #expect(pooled.map { $0.start } == [0, 3, 5, 9])
        #expect(manifest.streams[pooled[0].streams![0]].symbols == 10 * 8)
        // The accounting still adds up, pooled slices charged their share.
        let accounting = ContainerAccounting(manifest: manifest, manifestBytes: 0)
        #expect(accounting.tensors[2...].reduce(0) { $0 + $1.bytes } == manifest.streams[pooled[0].streams![0]].length)
        // And the choice is deterministic.
        #expect(try ContainerWriter.encode(original).bytes == bytes)
    }

    /// A skeleton that repeats the model configuration (a Keras file's `model_config` attribute) is
    /// stored as a zstd frame made with the configuration as its dictionary (1.4), and reads back.
    @Test func skeletonIsCodedWithTheConfigurationAsDictionary() throws {
        let configuration =
            #"{"class_name": "Sequential", "config": {"name": "sequential", "layers": [{"class_name": "Dense", "config": {"name": "dense", "units": 10, "activation": "relu", "use_bias": true, "kernel_initializer": {"class_name": "GlorotUniform"}}}]}}"#
        var skeleton = Array("model_config\u{0}".utf8) + Array(configuration.utf8) + Array("\u{0}layer_names\u{0}dense\u{0}weight_names".utf8)
        skeleton += (0..<200).map { UInt8($0 % 7) }
        let tensor = Tensor(
            name: "dense/kernel:0", dtype: .float32, shape: [4, 10], storage: .dense(TensorBuffer(values: randomFloats(40, seed: 3))),
            origin: .dataset(path: "model_weights/dense/dense/kernel:0"))
        let keras = Model(format: .hdf5, metadata: ModelMetadata(), tensors: [tensor], configuration: configuration)
        var streams = StreamBuilder()
        let stream = streams.entries[streams.metadata(skeleton, configuration: configuration)]
        #expect(stream.coding == .zstd && stream.dictionary == "configuration")
        #expect(stream.length < Zstd.compress(skeleton).count)
        // Without a configuration, the skeleton is coded on its own.
        var plain = StreamBuilder()
        #expect(plain.entries[plain.metadata(skeleton)].dictionary == nil)
        // A container keeps the skeleton where it takes fewer bytes (since 1.6 that may be after the
        // manifest's JSON in its frame, which the configuration is part of), and reads it back; the
        // skeleton in its stream, made with the configuration, reads back too.
        for layout in [nil, false] as [Bool?] {
            var output = ContainerMemoryOutput(capacity: 0)
            let (manifest, _) = try ContainerWriter.write(keras, skeleton: skeleton, to: &output, packed: layout)
            if let index = manifest.source.skeleton { #expect(manifest.streams[index].dictionary == "configuration") }
            let contents = try output.bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "memory") }
            #expect(contents.skeleton == skeleton)
        }
    }

    /// The writer takes a float tensor's fields one at a time (`field`): joined again they give the
    /// elements back, and field 0 is the biased exponent.
    @Test func fieldsTakenOneAtATimeJoinBackToTheElements() {
        let bytes = (randomFloats(999, seed: 21) + [1, -2.5]).withUnsafeBytes { Array($0) }
        for dtype in [DType.float32, .bfloat16] {
            let width = dtype == .float32 ? 4 : 2
            let fields = (0..<width).map { k in bytes.withUnsafeBytes { FloatSplit.field(k, of: $0, dtype: dtype) } }
            let count = bytes.count / width
            #expect(FloatSplit.join(fields, dtype: dtype, count: count).bytes == bytes, "\(dtype)")
        }
        // 1.0f = 0x3F800000: exponent 127, sign and mantissa zero; -2.5f = 0xC0200000: exponent 128, sign set.
        let ones = [Float(1), -2.5].withUnsafeBytes { raw in (FloatSplit.field(0, of: raw, dtype: .float32), FloatSplit.field(1, of: raw, dtype: .float32)) }
        #expect(ones.0 == [127, 128] && ones.1 == [0, 0x80 | 0x20])
    }

    /// Hostile pooled `dense` slices and misplaced streams are refused by name.
    @Test func pooledDenseSlicesMustTileTheirStream() throws {
        let tensors = (0..<3).map { k in
            Tensor(name: "c\(k)", dtype: .int64, shape: [2], storage: .dense(TensorBuffer(values: [Int64(k), 5])), origin: .initializer(graph: .main))
        }
        let (bytes, manifest) = try ContainerWriter.encode(Model(format: .onnx, metadata: ModelMetadata(), tensors: tensors))
        func rewritten(_ change: (inout PithContainer.Manifest) -> Void) throws -> [UInt8] {
            var m = manifest
            change(&m)
            return try withManifest(m, of: bytes)
        }
        func message(_ data: [UInt8]) -> String? {
            do { _ = try data.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "hostile.pith") }; return nil } catch { return "\(error)" }
        }
        #expect(message(try rewritten { _ in }) == nil)
        #expect(message(try rewritten { $0.tensors[1].encoding.start = 3 })?.contains("tensor `c1`: bytes 24..<40 of streams") == true)
        #expect(message(try rewritten { $0.tensors[2].encoding.start = Int.max / 4 })?.contains("c2") == true)
        #expect(message(try rewritten { $0.tensors.removeLast() })?.contains("cover") == true)
    }

    /// The broken-container corpus, generated: every truncation at a multiple of 64 bytes, every bit of
    /// the header flipped, and every byte of every stream changed, is refused with an error.
    @Test func damagedContainersAreRefused() throws {
        let (bytes, manifest) = try ContainerWriter.encode(model(), skeleton: nil)
        func refused(_ data: [UInt8]) -> Bool {
            do { _ = try data.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "damaged") }; return false } catch let error as ContainerError {
                return error.description.hasPrefix("damaged: ")
            } catch { return false }
        }
        for cut in stride(from: 0, to: bytes.count, by: 64) { #expect(refused(Array(bytes.prefix(cut))), "truncated at \(cut)") }
        for bit in 0..<(40 * 8) {
            var damaged = bytes
            damaged[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(refused(damaged), "header bit \(bit)")
        }
        for stream in manifest.streams where stream.length > 0 {
            var damaged = bytes
            damaged[stream.offset + stream.length / 2] ^= 0x40
            #expect(refused(damaged), "stream at \(stream.offset)")
        }
    }

    @Test func manifestLiesAreRefused() throws {
        let (bytes, manifest, _) = try ContainerWriter.encodeWithAccounting(model(), skeleton: nil, packed: false)
        func rewrite(_ change: (inout PithContainer.Manifest) -> Void) throws -> [UInt8] {
            var m = manifest
            change(&m)
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            let json = [UInt8](try encoder.encode(m))
            let offset = Int(UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self) }))
            var out = Array(bytes.prefix(offset)) + json
            let header = ContainerHeader(manifestOffset: UInt64(offset), manifestLength: UInt64(json.count), manifestChecksum: CRC32C.checksum(json))
            out.replaceSubrange(0..<64, with: header.encoded())
            return out
        }
        // The manifest rewritten unchanged reads: each refusal below is the lie's.
        _ = try rewrite { _ in }.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "m") }
        let cases: [(String, (inout PithContainer.Manifest) -> Void)] = [
            ("overlapping streams", { $0.streams[1].offset = $0.streams[0].offset }),
            ("stream past the data", { $0.streams[0].length = 1 << 40 }),
            ("huge shape", { $0.tensors[0].shape = [1 << 40, 1 << 40] }),
            ("shape that does not match", { $0.tensors[0].shape = [31, 100] }),
            ("unknown encoding", { $0.tensors[0].encoding.kind = .init(rawValue: "zstd") }),
            ("unknown dtype", { $0.tensors[0].dtype = "float128" }),
            ("unknown coding", { $0.streams[0].coding = .init(rawValue: "lz4") }),
            ("missing stream", { $0.tensors[6].encoding.indices = 999 }),
        ]
        for (label, change) in cases {
            let damaged = try rewrite(change)
            #expect(throws: ContainerError.self, "\(label)") { try damaged.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "m") } }
        }
    }

    @Test func newerVersionsSayWhatToDo() throws {
        var bytes = try ContainerWriter.encode(model(), skeleton: nil).bytes
        bytes[8] = 2  // major version 2
        let crc = CRC32C.checksum(Array(bytes[0..<36]))
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(36..<40, with: $0) }
        do {
            _ = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "new.pith") }
            Issue.record("accepted a newer major version")
        } catch let error as ContainerError {
            #expect(error.kind == .unsupported && error.message.contains("upgrade Pith"))
        }
    }
}

/// The container as a `TensorSource`: what a streamed restore writes is the dense form of every
/// tensor, whichever encoding holds it, in pieces that add up to its bytes.
@Suite struct ContainerSourceTests {
    @Test func denseBytesAreTheDensifiedTensors() throws {
        var model = ContainerRoundTripTests().model()
        // Large enough to be joined in several pieces, with an odd tail; one bfloat16 too, and one
        // stored raw (random bytes do not compress).
        var g: UInt64 = 9
        func uniform() -> Double { g = g &* 6364136223846793005 &+ 1442695040888963407; return (Double(g >> 11) + 0.5) / Double(1 << 53) }
        // Normal weights (Box–Muller): few exponents, near-random mantissas — the float-split case.
        let large = (0..<(13 * Reader.pieceElements + 123)).map { _ in Float(0.05 * (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform())) }
        model.tensors.append(
            Tensor(name: "large", dtype: .float32, shape: [large.count], storage: .dense(TensorBuffer(values: large)), origin: .initializer(graph: .main)))
        let halves = (0..<(Reader.pieceElements + 7)).map { UInt16(truncatingIfNeeded: $0 &* 40503) }
        model.tensors.append(
            Tensor(name: "bf", dtype: .bfloat16, shape: [halves.count], storage: .dense(TensorBuffer(values: halves)), origin: .initializer(graph: .main)))
        var state: UInt64 = 3
        let noise = (0..<70_000).map { _ in
            state = state &* 6364136223846793005 &+ 1; return UInt8(truncatingIfNeeded: state >> 56)
        }
        model.tensors.append(
            Tensor(name: "noise", dtype: .uint8, shape: [noise.count], storage: .dense(TensorBuffer(bytes: noise)), origin: .initializer(graph: .main)))
        let (bytes, manifest) = try ContainerWriter.encode(model, skeleton: nil)
        #expect(manifest.tensors.first { $0.name == "large" }?.encoding.kind == .floatSplit)
        #expect(manifest.tensors.first { $0.name == "noise" }?.encoding.kind == .dense)
        try bytes.withUnsafeBytes { raw in
            let file = try ContainerFile(bytes: raw, file: "m.pith", owner: nil)
            #expect(file.tensorCount == model.tensors.count)
            var worker = file.makeWorker()
            for (index, tensor) in model.tensors.enumerated() {
                let header = file.header(index)
                #expect(header == TensorInfo(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape))
                let dense = try file.denseTensor(index, worker: &worker)
                #expect(dense.storage == tensor.densified().storage, "\(tensor.name)")
                guard tensor.dtype != .string, case .dense(let expected) = tensor.densified().storage else { continue }
                // Pieces in any order, each at its offset, covering the tensor once.
                var streamed = [UInt8](repeating: 0, count: expected.bytes.count), covered = 0, pieces = 0
                try file.denseBytes(index, worker: &worker) { offset, piece in
                    streamed.replaceSubrange(offset..<offset + piece.count, with: piece)
                    covered += piece.count
                    pieces += 1
                }
                #expect(streamed == expected.bytes, "\(tensor.name)")
                #expect(covered == expected.bytes.count)
                #expect(header.bytes == expected.bytes.count)
                // Four quarters, each in runs of `pieceElements`.
                if tensor.name == "large" { #expect(pieces == 4 * (((tensor.count + 3) / 4 + Reader.pieceElements - 1) / Reader.pieceElements)) }
            }
        }
    }

    @Test func aDamagedStreamIsRefusedWhenItsTensorIsStreamed() throws {
        var model = ContainerRoundTripTests().model()
        let large = randomFloats(100_000, seed: 4)
        model.tensors = [
            Tensor(name: "large", dtype: .float32, shape: [large.count], storage: .dense(TensorBuffer(values: large)), origin: .initializer(graph: .main))
        ]
        var (bytes, manifest) = try ContainerWriter.encode(model, skeleton: nil)
        let stream = manifest.streams[manifest.tensors[0].encoding.streams![1]]
        bytes[stream.offset + stream.length / 2] ^= 0x10
        try bytes.withUnsafeBytes { raw in
            let file = try ContainerFile(bytes: raw, file: "m.pith", owner: nil)  // the manifest is intact
            var worker = file.makeWorker()
            #expect(throws: ContainerError.self) { try file.denseBytes(0, worker: &worker) { _, _ in } }
        }
    }
}

@Suite struct FloatSplitTests {
    /// Splitting floats into exponent / sign-mantissa streams and joining them back is exact for
    /// every bit pattern, NaN payloads and infinities included.
    @Test func splitAndJoinAreInverse() throws {
        var state: UInt64 = 99
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state }
        let patterns = (0..<10_000).map { _ in UInt32(truncatingIfNeeded: next() >> 17) } + [0, 0x8000_0000, 0x7F80_0000, 0xFF80_0001, 0x7FFF_FFFF]
        let bytes = patterns.withUnsafeBytes { Array($0) }
        let parts = try #require(FloatSplit.split(bytes, dtype: .float32))
        #expect(parts.count == 4)
        #expect(FloatSplit.join(parts, dtype: .float32, count: patterns.count).bytes == bytes)
        let halves = bytes.prefix(20_000).map { $0 }
        let bfParts = try #require(FloatSplit.split(halves, dtype: .bfloat16))
        #expect(FloatSplit.join(bfParts, dtype: .bfloat16, count: halves.count / 2).bytes == halves)
        #expect(FloatSplit.split(bytes, dtype: .float16) == nil)
    }

    /// Trained-like weights choose the exponent split, and it reads back bit for bit.
    @Test func weightsChooseTheSplitAndRoundTrip() throws {
        var state: UInt64 = 5
        let weights: [Float] = (0..<50_000).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Double(state >> 11) / Double(1 << 53)
            return Float((u - 0.5) * 0.1)
        }
        let model = Model(
            format: .onnx,
            tensors: [
                Tensor(name: "w", dtype: .float32, shape: [500, 100], storage: .dense(TensorBuffer(values: weights)), origin: .initializer(graph: .main))
            ])
        let (bytes, manifest) = try ContainerWriter.encode(model)
        #expect(manifest.tensors[0].encoding.kind == .floatSplit)
        #expect(bytes.count < weights.count * 4)
        let back = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "w") }
        #expect(back.model.tensors[0].floatValues().map(\.bitPattern) == weights.map(\.bitPattern))
    }
}

/// `blocks` (1.6): a large tensor whose rows drift (each row its own scale) is stored a block of
/// rows at a time, each block with its own tables, and reads back whole and streamed; a tensor whose
/// rows share one distribution is not.
@Suite struct BlockEncodingTests {
    /// Rows × 4,096 normal weights (Box–Muller); row r scaled by `scale(r)`.
    func weights(rows: Int, seed: UInt64, scale: (Int) -> Double) -> [Float] {
        var g = seed
        func uniform() -> Double { g = g &* 6364136223846793005 &+ 1442695040888963407; return (Double(g >> 11) + 0.5) / Double(1 << 53) }
        return (0..<rows * 4096).map { i in Float(scale(i / 4096) * (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform())) }
    }

    func model(_ values: [Float], rows: Int) -> Model {
        Model(
            format: .onnx, metadata: ModelMetadata(),
            tensors: [
                Tensor(name: "w", dtype: .float32, shape: [rows, 4096], storage: .dense(TensorBuffer(values: values)), origin: .initializer(graph: .main))
            ])
    }

    @Test func driftingRowsAreStoredAsBlocksAndReadBack() throws {
        // 4 MiB (writeLarge's threshold); scales from 1e-4 to 10 across the rows.
        let rows = 256
        let values = weights(rows: rows, seed: 11) { r in pow(10, -4 + 5 * Double(r) / Double(rows - 1)) }
        let (bytes, manifest) = try ContainerWriter.encode(model(values, rows: rows))
        let encoding = manifest.tensors[0].encoding
        #expect(encoding.kind == .blocks)
        let blockRows = try #require(encoding.blockRows)
        let blocks = try #require(encoding.blocks)
        // Blocks of at least 64 KiB: rows of 16 KiB, four to a block.
        #expect(blockRows == 4 && blocks.count == rows / 4)
        #expect(blocks.allSatisfy { Manifest.Encoding.Kind.elementwise.contains($0.kind) && $0.start == nil })
        // Smaller than one encoding for the whole tensor, by more than the 1% the writer asks.
        var whole = StreamBuilder()
        let single = values.withUnsafeBytes { raw in
            ContainerWriter.denseEncoding(TensorBuffer(values: values), dtype: .float32, into: &whole)
        }
        #expect(single.kind != .blocks)
        let blockBytes = ContainerAccounting(manifest: manifest, manifestBytes: 0).tensors[0].bytes
        #expect(Double(blockBytes) < 0.99 * Double(whole.payloads.reduce(0) { $0 + $1.count }))
        try bytes.withUnsafeBytes { raw in
            let contents = try ContainerReader.read(bytes: raw, file: "m.pith")
            #expect(contents.model.tensors[0].floatValues() == values)
            let file = try ContainerFile(bytes: raw, file: "m.pith", owner: nil)
            var worker = file.makeWorker()
            var streamed = [UInt8](repeating: 0, count: values.count * 4), covered = 0
            try file.denseBytes(0, worker: &worker) { offset, piece in
                streamed.replaceSubrange(offset..<offset + piece.count, with: piece)
                covered += piece.count
            }
            #expect(covered == values.count * 4)
            #expect(streamed == values.withUnsafeBytes { Array($0) })
        }
        // Deterministic, whatever the cores did.
        #expect(try ContainerWriter.encode(model(values, rows: rows)).bytes == bytes)
    }

    /// Under 4 MiB (the writer that encodes small tensors in batches): 64 rows of 4 KiB, four blocks of
    /// 16 rows, each block a scale of its own.
    @Test func aSmallerTensorWhoseRowsDriftIsStoredAsBlocksToo() throws {
        // 16 × 4,096 values, the scale changing every 16,384: every 16 rows of 1,024.
        let values = weights(rows: 16, seed: 14) { q in [1e-3, 0.1, 10, 1000][q / 4] }
        let tensor = Tensor(name: "w", dtype: .float32, shape: [64, 1024], storage: .dense(TensorBuffer(values: values)), origin: .initializer(graph: .main))
        let (bytes, manifest) = try ContainerWriter.encode(Model(format: .onnx, metadata: ModelMetadata(), tensors: [tensor]))
        let encoding = manifest.tensors[0].encoding
        #expect(encoding.kind == .blocks && encoding.blockRows == 16 && encoding.blocks?.count == 4)
        let contents = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "m.pith") }
        #expect(contents.model.tensors[0].floatValues() == values)
    }

    @Test func rowsOfOneDistributionStayOneEncoding() throws {
        let rows = 256
        let values = weights(rows: rows, seed: 12) { _ in 0.05 }
        let (_, manifest) = try ContainerWriter.encode(model(values, rows: rows))
        #expect(manifest.tensors[0].encoding.kind == .floatSplit)
    }

    /// A damaged block stream is refused by name when the tensor is read.
    @Test func aDamagedBlockIsRefused() throws {
        let rows = 256
        let values = weights(rows: rows, seed: 13) { r in r < rows / 2 ? 1e-3 : 5 }
        var (bytes, manifest) = try ContainerWriter.encode(model(values, rows: rows))
        let blocks = try #require(manifest.tensors[0].encoding.blocks)
        let stream = manifest.streams[try #require(blocks[3].streams?.first)]
        bytes[stream.offset + stream.length / 2] ^= 0x04
        let error = try #require(
            {
                do {
                    _ = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "m.pith") }
                    return nil
                } catch { return error as? ContainerError }
            }() as ContainerError?)
        #expect(error.kind == .checksum, "\(error)")
    }
}

/// `bytes`, a container Pith wrote without a skeleton, with its manifest replaced by `manifest`:
/// one zstd frame (header flag bit 0), the packed flag kept, with the streams' offsets when `offsets`
/// says so (by default: when the container is not packed).
func withManifest(_ manifest: PithContainer.Manifest, of bytes: [UInt8], offsets: Bool? = nil) throws -> [UInt8] {
    let old = try bytes.withUnsafeBytes { try ContainerHeader.decode($0, file: "x", fileSize: bytes.count) }
    let json = Zstd.compress(try manifest.encodedJSON(offsets: offsets ?? !old.isPacked))
    var out = Array(bytes[..<Int(old.manifestOffset)]) + json
    let header = ContainerHeader(
        flags: ContainerHeader.manifestZstd | (old.flags & ContainerHeader.packed), manifestOffset: old.manifestOffset,
        manifestLength: UInt64(json.count), manifestChecksum: CRC32C.checksum(json))
    out.replaceSubrange(0..<64, with: header.encoded())
    return out
}
