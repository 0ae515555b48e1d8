public import PithIR
import PithCoding

/// Writes a model as a `.pith` container: deterministic bytes (same model and options, same
/// file), identical streams stored once, every stream coded raw, with Huffman or (element bytes,
/// since 1.4) as a zstd frame, whichever is smallest, and checksummed.
public enum ContainerWriter {
    /// The container's bytes and its manifest. `skeleton` is the source's structure without
    /// tensor data (ONNX); it travels in the container so that restore needs nothing else.
    public static func encode(_ model: Model, skeleton: [UInt8]? = nil) throws -> (bytes: [UInt8], manifest: Manifest) {
        let (bytes, manifest, _) = try encodeWithAccounting(model, skeleton: skeleton)
        return (bytes, manifest)
    }

    /// As `encode`, with the accounting of where the bytes went.
    public static func encodeWithAccounting(
        _ model: Model, skeleton: [UInt8]? = nil
    ) throws -> (bytes: [UInt8], manifest: Manifest, accounting: ContainerAccounting) {
        try encodeWithAccounting(model, skeleton: skeleton, packed: nil)
    }

    /// As `encodeWithAccounting`, `packed` or not whatever its size (nil: by its size, as `write`
    /// decides), for tests of either layout.
    static func encodeWithAccounting(
        _ model: Model, skeleton: [UInt8]? = nil, packed: Bool?
    ) throws -> (bytes: [UInt8], manifest: Manifest, accounting: ContainerAccounting) {
        // Room for the model as it is and its skeleton: a lossless container is rarely larger.
        var output = ContainerMemoryOutput(capacity: model.tensors.reduce(skeleton?.count ?? 0) { $0 + $1.storedBytes } + (1 << 16))
        let (manifest, accounting) = try write(model, skeleton: skeleton, to: &output, packed: packed)
        return (output.bytes, manifest, accounting)
    }

    /// Writes the container to `output` (empty when given) as its streams are made, so that no copy
    /// of the container is held: the header's placeholder, each tensor's streams in tensor order
    /// (identical ones stored once), the skeleton, the manifest, then the header over its
    /// placeholder. Returns the manifest and the accounting of where the bytes went.
    ///
    /// Tensors are encoded on every core: small ones in batches, each tensor into streams of its
    /// own (`Encoded`), which join the container's in tensor order, so the bytes are the same
    /// whatever the number of cores; a large dense one (`largeTensorBytes`) on its own, its streams
    /// made a quarter at a time over the cores (`writeLarge`). The pages of a tensor that views a
    /// mapped file are given back once it is written, so the working set stays bounded however
    /// large the model.
    ///
    /// A container whose tensors and skeleton take fewer than `packedLimit` bytes is `packed` (1.6).
    public static func write<Output: ContainerOutput>(
        _ model: Model, skeleton: [UInt8]? = nil, to output: inout Output
    ) throws -> (manifest: Manifest, accounting: ContainerAccounting) {
        try write(model, skeleton: skeleton, to: &output, packed: nil)
    }

    /// As above, `packed` or not as given (nil: by size).
    static func write<Output: ContainerOutput>(
        _ model: Model, skeleton: [UInt8]?, to output: inout Output, packed: Bool?
    ) throws -> (manifest: Manifest, accounting: ContainerAccounting) {
        precondition(output.size == 0, "ContainerWriter.write: the output must start empty")
        try [UInt8](repeating: 0, count: ContainerHeader.size).withUnsafeBytes { try output.append($0) }
        // A small container packs its streams (1.6): aligned elements do not matter there, and its
        // alignment would take a good share of the file.
        var sink = StreamSink(packed: packed ?? (model.tensors.reduce(skeleton?.count ?? 0) { $0 + $1.storedBytes } < packedLimit))
        let tensors = model.tensors
        var encodings = [Manifest.Encoding?](repeating: nil, count: tensors.count)

        var pooledStreams = StreamBuilder()
        let pooled = pool(tensors, into: &pooledStreams)
        let pooledIndices = try pooledStreams.payloads.indices.map { try sink.add($0, of: pooledStreams, to: &output) }
        for (index, encoding) in pooled { encodings[index] = encoding.remappingStreams { pooledIndices[$0] } }

        var batch: [Int] = [], batchBytes = 0
        func writeBatch() throws {
            defer { batch = []; batchBytes = 0 }
            let order = batch.sorted { (tensors[$0].count, $1) > (tensors[$1].count, $0) }
            let encoded = try Parallel.map(count: order.count, makeWorker: {}) { (_: inout Void, k: Int) throws -> Encoded in
                var local = StreamBuilder()
                let encoding = try encoding(of: tensors[order[k]], into: &local)
                return Encoded(encoding: encoding, streams: local)
            }
            var byTensor: [Int: Encoded] = [:]
            for (k, index) in order.enumerated() { byTensor[index] = encoded[k] }
            for index in batch {
                let local = byTensor.removeValue(forKey: index)!
                let global = try local.streams.payloads.indices.map { try sink.add($0, of: local.streams, to: &output) }
                encodings[index] = local.encoding.remappingStreams { global[$0] }
                if case .dense(let buffer) = tensors[index].storage { buffer.releasePages() }
            }
        }
        for index in tensors.indices where encodings[index] == nil {
            if case .dense(let buffer) = tensors[index].storage, buffer.count >= largeTensorBytes {
                try writeBatch()
                encodings[index] = try writeLarge(buffer, dtype: tensors[index].dtype, shape: tensors[index].shape, into: &sink, output: &output)
                continue
            }
            batch.append(index)
            batchBytes += tensors[index].storedBytes
            if batchBytes >= batchBytesLimit || batch.count >= batchCountLimit { try writeBatch() }
        }
        try writeBatch()

        let entries = zip(tensors, encodings).map { tensor, encoding in
            Manifest.TensorEntry(
                name: tensor.name, dtype: tensor.dtype.rawValue, shape: tensor.shape,
                origin: model.format == .onnx ? nil : OriginCoding.encode(tensor.origin),
                consumerOp: tensor.consumer?.op, consumerName: tensor.consumer?.name,
                encoding: encoding!)
        }
        let source = Manifest.Source(
            format: model.format.rawValue, producerName: model.metadata.producerName,
            producerVersion: model.metadata.producerVersion,
            properties: model.metadata.properties.map { Manifest.Property(key: $0.key, value: $0.value) },
            configuration: model.configuration, skeleton: nil)
        let manifest = Manifest(
            version: "\(ContainerHeader.majorVersion).\(ContainerHeader.minorVersion)", source: source, tensors: entries, streams: sink.entries)
        return try finish(manifest, skeleton: skeleton, configuration: model.configuration, sink: &sink, output: &output)
    }

    /// Containers whose tensors and skeleton take fewer bytes than this are written `packed` (1.6).
    static let packedLimit = 1 << 20

    /// Writes the skeleton and the manifest after the streams, then the header over its
    /// placeholder. The manifest is one zstd frame made with `manifest-1` (1.6), on a 64-byte
    /// boundary unless the container is packed; the skeleton goes where it takes fewer bytes: in a
    /// stream of its own (`StreamBuilder.metadata`: raw, Huffman or a zstd frame, with the Keras
    /// configuration as its dictionary when that helps) before the manifest, or (1.6) after the
    /// manifest's JSON inside its frame, where the dictionary's format framing and the names the
    /// manifest just spelled out serve it.
    static func finish<Output: ContainerOutput>(
        _ manifest: Manifest, skeleton: [UInt8]?, configuration: String?, sink: inout StreamSink, output: inout Output
    ) throws -> (manifest: Manifest, accounting: ContainerAccounting) {
        func frame(_ content: [UInt8]) throws -> [UInt8] {
            guard let frame = ManifestDictionary.frame(content) else {
                throw ContainerError(.io, file: "the container", "libzstd cannot make a compression context for the manifest")
            }
            return frame
        }
        func alignedEnd(_ size: Int) -> Int { sink.packed ? size : size + padding(size) }
        let streamsEnd = output.size, streamCount = sink.entries.count
        let json = try manifest.encodedJSON(offsets: !sink.packed)
        // The skeleton after the JSON in the manifest's frame, within the size readers accept for a manifest.
        let inline = try skeleton.flatMap { bytes in
            json.count + 1 + bytes.count <= ContainerHeader.maximumManifestBytes ? try frame(json + [0] + bytes) : nil
        }
        var chosen = manifest, stored = try inline ?? frame(json), inManifest = inline != nil
        if let skeleton {
            // The skeleton in a stream of its own, kept when that takes fewer bytes.
            var local = StreamBuilder()
            let index = try sink.add(local.metadata(skeleton, configuration: configuration), of: local, to: &output)
            var separate = manifest
            separate.source.skeleton = index
            separate.streams = sink.entries
            let alone = try frame(try separate.encodedJSON(offsets: !sink.packed))
            if inline == nil || alignedEnd(output.size) + alone.count < alignedEnd(streamsEnd) + stored.count {
                (chosen, stored, inManifest) = (separate, alone, false)
            } else {
                try sink.removeStreams(from: streamCount, output: &output, size: streamsEnd)
            }
        }
        let gap = alignedEnd(output.size) - output.size
        if gap > 0 { try [UInt8](repeating: 0, count: gap).withUnsafeBytes { try output.append($0) } }
        let manifestOffset = output.size
        try stored.withUnsafeBytes { try output.append($0) }
        var flags = ContainerHeader.manifestZstd | ContainerHeader.manifestDictionary
        if sink.packed { flags |= ContainerHeader.packed }
        if inManifest { flags |= ContainerHeader.skeletonInManifest }
        let header = ContainerHeader(
            flags: flags, manifestOffset: UInt64(manifestOffset), manifestLength: UInt64(stored.count), manifestChecksum: CRC32C.checksum(stored))
        try header.encoded().withUnsafeBytes { try output.overwrite(at: 0, with: $0) }
        let accounting = ContainerAccounting(
            manifest: chosen, manifestBytes: stored.count, manifestOffset: manifestOffset, skeletonInManifest: inManifest)
        precondition(accounting.fileBytes == output.size, "container accounting must add up to the file size")
        return (chosen, accounting)
    }

    /// Small tensors are encoded in batches of up to this many bytes or tensors, whose streams are
    /// written before the next batch is encoded.
    static let batchBytesLimit = 16 << 20
    static let batchCountLimit = 1024

    /// One tensor's encoding, its stream indices those of its own `streams`.
    struct Encoded: Sendable {
        var encoding: Manifest.Encoding
        var streams: StreamBuilder
    }

    /// Tensors below this many elements share pooled streams (larger ones keep their own tables,
    /// which fit their distribution better).
    static let poolLimit = 4096

    /// Small dense float32 and bfloat16 tensors, split into exponent and sign-mantissa fields and
    /// concatenated per dtype into shared streams (other dtypes: below): one Huffman table and one alignment for all of
    /// them instead of one per tensor (small tensors are many in real models: norms, biases).
    static func pool(_ tensors: [Tensor], into streams: inout StreamBuilder) -> [Int: Manifest.Encoding] {
        var result: [Int: Manifest.Encoding] = [:]
        for dtype in [DType.float32, .bfloat16] {
            let members = tensors.indices.filter { i in
                guard tensors[i].dtype == dtype, tensors[i].count > 0, tensors[i].count < poolLimit, case .dense = tensors[i].storage else { return false }
                return true
            }
            guard members.count >= 2 else { continue }
            var parts: [[UInt8]] = []
            var starts: [Int: Int] = [:]
            var seen: [[UInt8]: Int] = [:]  // identical tensors share one slice
            var offset = 0
            for i in members {
                guard case .dense(let buffer) = tensors[i].storage else { continue }
                let bytes = buffer.bytes
                if let start = seen[bytes] { starts[i] = start; continue }
                guard let split = FloatSplit.split(bytes, dtype: dtype) else { continue }
                if parts.isEmpty { parts = split } else { for k in parts.indices { parts[k] += split[k] } }
                starts[i] = offset
                seen[bytes] = offset
                offset += tensors[i].count
            }
            let ids = parts.map { streams.bytes($0, lz: true) }
            for (i, start) in starts {
                var encoding = Manifest.Encoding(kind: .floatSplit)
                encoding.streams = ids
                encoding.start = start
                result[i] = encoding
            }
        }
        // Since 1.4, the small tensors of every other whole-byte dtype (shape and index constants,
        // float16 and float64 values) share one `dense` stream per dtype: their bytes concatenated,
        // coded as one, and one manifest entry and alignment for all.
        var pooledTypes: [DType] = []
        for tensor in tensors where !pooledTypes.contains(tensor.dtype) && tensor.dtype != .float32 && tensor.dtype != .bfloat16 {
            pooledTypes.append(tensor.dtype)
        }
        for dtype in pooledTypes where dtype != .string && dtype.bitWidth > 0 && dtype.bitWidth % 8 == 0 {
            let members = tensors.indices.filter { i in
                guard tensors[i].dtype == dtype, tensors[i].count > 0, tensors[i].count < poolLimit, case .dense = tensors[i].storage else { return false }
                return true
            }
            guard members.count >= 2 else { continue }
            var joined: [UInt8] = []
            var starts: [Int: Int] = [:]
            var seen: [[UInt8]: Int] = [:]
            var offset = 0
            for i in members {
                guard case .dense(let buffer) = tensors[i].storage else { continue }
                let bytes = buffer.bytes
                if let start = seen[bytes] { starts[i] = start; continue }
                joined += bytes
                starts[i] = offset
                seen[bytes] = offset
                offset += tensors[i].count
            }
            let id = streams.bytes(joined, lz: true)
            for (i, start) in starts {
                var encoding = Manifest.Encoding(kind: .dense)
                encoding.streams = [id]
                encoding.start = start
                result[i] = encoding
            }
        }
        return result
    }

    static func padding(_ count: Int) -> Int { (ContainerHeader.alignment - count % ContainerHeader.alignment) % ContainerHeader.alignment }

    static func encoding(of tensor: Tensor, into streams: inout StreamBuilder) throws -> Manifest.Encoding {
        switch tensor.storage {
        case .dense(let buffer): return denseEncoding(buffer, dtype: tensor.dtype, shape: tensor.shape, into: &streams)
        case .strings(let values):
            var bytes: [UInt8] = []
            for value in values {
                withUnsafeBytes(of: UInt32(value.count).littleEndian) { bytes.append(contentsOf: $0) }
                bytes += value
            }
            var encoding = Manifest.Encoding(kind: .strings)
            encoding.streams = [streams.bytes(bytes)]
            return encoding
        case .codebook(let codebook): return codebookEncoding(codebook, into: &streams)
        case .quantized(let quantized): return quantizedEncoding(quantized, into: &streams)
        case .factored(let factored):
            var encoding = Manifest.Encoding(kind: .factored)
            encoding.rows = factored.rows
            encoding.columns = factored.columns
            switch factored.method {
            case .lowRank(let rank): encoding.method = .lowRank; encoding.rank = rank
            case .tensorTrain(let m, let n, let r):
                encoding.method = .tensorTrain
                encoding.rowFactors = m
                encoding.columnFactors = n
                encoding.ranks = r
            case .circulant: encoding.method = .circulant
            case .separable(let rank): encoding.method = .separable; encoding.rank = rank
            }
            if let stored = factored.encodings {
                // Each factor in its own storage (quantized codes, a codebook, or either in CSR).
                let shapes = factored.factorShapes(tensorShape: tensor.shape)
                encoding.factors = try zip(stored, shapes).map { storage, shape in
                    try self.encoding(of: Tensor(name: tensor.name, dtype: .float32, shape: shape, storage: storage, origin: tensor.origin), into: &streams)
                }
            } else {
                encoding.factors = factored.factors.map { denseEncoding(TensorBuffer(values: $0), dtype: .float32, into: &streams) }
            }
            return encoding
        case .sparse(let sparse):
            var encoding = Manifest.Encoding(kind: .sparse)
            encoding.rows = sparse.rows
            encoding.columns = sparse.columns
            encoding.indexBits = sparse.indexBits
            encoding.fillers = sparse.fillers
            encoding.entries = sparse.entries
            var starts: [UInt8] = []
            for start in sparse.rowStarts { withUnsafeBytes(of: UInt32(start).littleEndian) { starts.append(contentsOf: $0) } }
            encoding.rowStarts = streams.bytes(starts)
            encoding.gaps =
                sparse.indexBits <= 8
                ? streams.bytes(sparse.gaps.map { UInt8($0) }, alphabet: 1 << sparse.indexBits)
                : streams.wide(sparse.gaps, alphabet: 1 << sparse.indexBits)
            switch sparse.values {
            case .dense(let buffer): encoding.values = Box(denseEncoding(buffer, dtype: tensor.dtype, into: &streams))
            case .codebook(let codebook): encoding.values = Box(codebookEncoding(codebook, into: &streams))
            case .quantized(let quantized): encoding.values = Box(quantizedEncoding(quantized, into: &streams))
            }
            return encoding
        }
    }

    /// Lossless storage of dense elements: the raw bytes (raw, Huffman-coded, or since 1.4 one zstd
    /// frame), or — for types of 2 bytes or more — one stream per byte position ("byte planes":
    /// exponent bytes of floats compress well, low mantissa bytes do not) or, for float32 and
    /// bfloat16, per field (`FloatSplit`), each stream raw or Huffman on its own; whichever is
    /// smallest. Every candidate is sized from histograms taken in one pass (Huffman sizes from the
    /// code lengths), and only the chosen streams are built and encoded.
    ///
    /// With the tensor's `shape`, when a zstd frame stores some stream of the best choice (bytes that
    /// LZ shrinks), a frame of the elements column by column (`transposed`, format 1.5) is tried
    /// too, and kept when smaller; and a tensor that can form blocks of rows is stored as `blocks`
    /// (1.6) where the blocks' own tables save (`BlockChoice`), as `writeLarge` does.
    static func denseEncoding(_ buffer: TensorBuffer, dtype: DType, shape: [Int]? = nil, into streams: inout StreamBuilder) -> Manifest.Encoding {
        buffer.withUnsafeBytes { raw -> Manifest.Encoding in
            let width = DenseChoice.width(dtype, byteCount: raw.count)
            // A tensor that can form blocks of rows (1.6) has its histograms counted a block at a time.
            let layout = shape.flatMap { BlockChoice.layout(shape: $0, dtype: dtype, byteCount: raw.count) }
            let counted = layout.map { BlockChoice.histograms(raw, layout: $0, dtype: dtype, width: width) }
            let (positions, fields) = counted.map { ($0.positions, $0.fields) } ?? FloatSplit.histograms(raw, dtype: dtype, width: width)
            // As `writeLarge` stores a tensor of `largeTensorBytes` or more: its split streams without LZ.
            let best = DenseChoice(raw, dtype: dtype, width: width, positions: positions, fields: fields, splitLZ: raw.count < largeTensorBytes)
            let lz = best.plans.contains { if case .zstd = $0.choice { return true } else { return false } }
            if let shape, lz, let transposed = DenseChoice.transposedFrame(raw, dtype: dtype, shape: shape, against: best.size - StreamBuilder.streamOverhead) {
                var encoding = Manifest.Encoding(kind: .transposed)
                encoding.rows = transposed.rows
                encoding.columns = transposed.columns
                encoding.streams = [streams.add(transposed.frame, coding: .zstd, symbols: raw.count, symbolBits: nil, codeLengths: nil)]
                return encoding
            }
            if let layout, let counted,
                let choices = BlockChoice.choices(
                    layout: layout, histograms: counted.blocks, estimates: counted.blocks.map { BlockChoice.estimate(positions: $0.0, fields: $0.1) },
                    whole: (positions, fields, best.size),
                    choose: { blocks in
                        (0..<blocks).map { BlockChoice.choice(layout.block($0, of: raw), dtype: dtype, width: width, histograms: counted.blocks[$0]) }
                    })
            {
                var encoding = Manifest.Encoding(kind: .blocks)
                encoding.blockRows = layout.blockRows
                encoding.blocks = choices.enumerated().map { b, choice in
                    var block = Manifest.Encoding(kind: choice.kind)
                    block.streams = BlockChoice.streams(layout.block(b, of: raw), choice: choice, dtype: dtype, width: width).map { stream in
                        streams.add(
                            stream.payload, coding: stream.coding, symbols: stream.symbols, symbolBits: stream.coding == .huffman ? 8 : nil,
                            codeLengths: stream.lengths)
                    }
                    return block
                }
                return encoding
            }
            var encoding = Manifest.Encoding(kind: best.kind)
            switch best.kind {
            case .floatSplit:
                // One field at a time, each dropped once coded: a quarter of the tensor beside its
                // streams, not a second copy of it.
                encoding.streams = best.plans.enumerated().map { k, plan in streams.add(FloatSplit.field(k, of: raw, dtype: dtype), plan: plan) }
            case .planes:
                encoding.streams = best.plans.enumerated().map { k, plan in streams.add(FloatSplit.plane(raw, position: k, width: width), plan: plan) }
            default:
                encoding.streams = [streams.add(Array(raw), plan: best.plans[0])]
            }
            return encoding
        }
    }

    static func codebookEncoding(_ codebook: CodebookStorage, into streams: inout StreamBuilder) -> Manifest.Encoding {
        var encoding = Manifest.Encoding(kind: .codebook)
        encoding.bits = codebook.bits
        encoding.channels = codebook.channels
        encoding.axis = codebook.axis
        encoding.zeroReserved = codebook.zeroIsReserved
        encoding.centroids = streams.raw(codebook.centroids.withUnsafeBytes { Array($0) })
        encoding.indices = streams.bytes(codebook.indices, alphabet: 1 << codebook.bits)
        return encoding
    }

    static func quantizedEncoding(_ quantized: QuantizedStorage, into streams: inout StreamBuilder) -> Manifest.Encoding {
        var encoding = Manifest.Encoding(kind: .quantized)
        encoding.axis = quantized.axis
        switch quantized.scheme {
        case .linear(let bits, let signed):
            encoding.scheme = .linear
            encoding.bits = bits
            encoding.signed = signed
            encoding.scales = streams.raw(quantized.scales.withUnsafeBytes { Array($0) })
            if !quantized.isSymmetric { encoding.zeroPoints = streams.raw(quantized.zeroPoints.withUnsafeBytes { Array($0) }) }
            // Codes as their low `bits` bits (two's complement for signed codes).
            if bits <= 8 {
                encoding.codes = streams.bytes(quantized.codes.lowBytes(bits: bits), alphabet: 1 << bits)
            } else {
                encoding.codes = streams.wide(quantized.codes.lowHalfwords(bits: bits), alphabet: 1 << bits)
            }
        case .float16, .bfloat16:
            encoding.scheme = quantized.scheme == .float16 ? .float16 : .bfloat16
            let bits = quantized.codes.lowHalfwords(bits: 16)
            encoding.streams = [streams.bytes(bits.map { UInt8(truncatingIfNeeded: $0) }), streams.bytes(bits.map { UInt8($0 >> 8) })]
        }
        return encoding
    }
}
