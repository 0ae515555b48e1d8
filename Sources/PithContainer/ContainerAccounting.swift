import PithIR

/// Where the bytes of a container go, per tensor and in total, after entropy coding: the
/// right-hand columns of Deep Compression's Table 2. The totals add up to the file's size exactly.
public struct ContainerAccounting: Sendable, Codable, Equatable {
    public struct TensorRow: Sendable, Codable, Equatable {
        public var tensor: String
        /// Stored entries (elements, or sparse entries including fillers).
        public var entries: Int
        /// Bytes of the weight streams: dense values, codebook indices, quantized codes.
        public var weightBytes: Int
        /// Bytes of sparse gaps and row pointers.
        public var indexBytes: Int
        /// Bytes of codebooks, scales and zero points.
        public var tableBytes: Int
        /// Weight and gap bits per stored entry after entropy coding.
        public var weightBitsPerEntry: Double
        public var indexBitsPerEntry: Double
        public var bytes: Int { weightBytes + indexBytes + tableBytes }
    }

    public var tensors: [TensorRow]
    public var headerBytes: Int
    /// The manifest as stored (with the skeleton when `skeletonInManifest`).
    public var manifestBytes: Int
    /// The source skeleton (ONNX graph and metadata without tensor data) in its stream; 0 when it is
    /// in the manifest's frame.
    public var skeletonBytes: Int
    /// The skeleton follows the manifest's JSON in its frame (format 1.6, header flag bit 3), whose
    /// bytes count both.
    public var skeletonInManifest = false
    /// Zero bytes that align streams to 64.
    public var paddingBytes: Int
    public var fileBytes: Int
    /// A container in the whole-file form (format 1.5): the source file's size and the dictionary
    /// its one frame was made with; `tensors` is then empty and `headerBytes` the form's header.
    public var storedWhole: StoredWhole?

    public struct StoredWhole: Sendable, Codable, Equatable {
        public var sourceBytes: Int
        public var dictionary: String

        /// What the frame holds and how it was made, for a report: `onnx-skeleton-1` (1.6) is the
        /// model's skeleton followed by its tensors' data, made with `onnx-1`.
        public var framing: String {
            dictionary == "onnx-skeleton-1"
                ? "one zstd frame of its ONNX skeleton followed by its tensors' data, made with Pith's `onnx-1` dictionary"
                : "one zstd frame made with Pith's `\(dictionary)` dictionary"
        }
    }

    /// The accounting of a whole-file container of `fileBytes` bytes holding `sourceBytes`.
    public init(storedWhole sourceBytes: Int, dictionary: WholeFileContainer.Dictionary, fileBytes: Int) {
        tensors = []
        headerBytes = WholeFileContainer.headerBytes
        manifestBytes = 0
        skeletonBytes = 0
        paddingBytes = 0
        self.fileBytes = fileBytes
        storedWhole = StoredWhole(sourceBytes: sourceBytes, dictionary: dictionary.name)
    }

    /// The accounting of a container's `manifest`, stored in `manifestBytes` at `manifestOffset`
    /// (nil: on the first 64-byte boundary after the last stream, as every container before format
    /// 1.6's packed ones lays it out); `skeletonInManifest` when the stored manifest holds the
    /// skeleton too. Pooled streams (small tensors sharing `float-split` streams) are shared out in
    /// proportion to each tensor's elements; other shared streams count for the first tensor that
    /// uses them.
    public init(manifest: Manifest, manifestBytes: Int, manifestOffset: Int? = nil, skeletonInManifest: Bool = false) {
        var counted = Set<Int>()
        func size(_ stream: Int?) -> Int {
            guard let stream, stream < manifest.streams.count, counted.insert(stream).inserted else { return 0 }
            return manifest.streams[stream].length
        }
        // Shares of pooled streams: per stream, what each member tensor is charged (the last the remainder).
        var poolShare: [Int: Int] = [:]  // tensor index → bytes
        var pools: [[Int]: [Int]] = [:]
        for (i, entry) in manifest.tensors.enumerated()
        where (entry.encoding.kind == .floatSplit || entry.encoding.kind == .dense) && entry.encoding.start != nil {
            pools[entry.encoding.streams ?? [], default: []].append(i)
        }
        for (streams, members) in pools {
            var seenRanges = Set<[Int]>()
            let unique = members.filter { seenRanges.insert([manifest.tensors[$0].encoding.start ?? 0, manifest.tensors[$0].shape.reduce(1, *)]).inserted }
            let total = unique.reduce(0) { $0 + manifest.tensors[$1].shape.reduce(1, *) }
            for stream in streams where stream < manifest.streams.count && counted.insert(stream).inserted {
                let length = manifest.streams[stream].length
                var given = 0
                for (k, i) in unique.enumerated() {
                    let share = k == unique.count - 1 ? length - given : (total == 0 ? 0 : length * manifest.tensors[i].shape.reduce(1, *) / total)
                    poolShare[i, default: 0] += share
                    given += share
                }
            }
        }
        var rows: [TensorRow] = []
        for (tensorIndex, entry) in manifest.tensors.enumerated() {
            var weights = 0, index = 0, tables = 0
            var entries = entry.shape.reduce(1, *)
            func add(_ e: Manifest.Encoding) {
                switch e.kind {
                case .codebook:
                    weights += size(e.indices)
                    tables += size(e.centroids)
                case .quantized:
                    weights += size(e.codes) + (e.streams ?? []).reduce(0) { $0 + size($1) }
                    tables += size(e.scales) + size(e.zeroPoints)
                case .sparse:
                    index += size(e.gaps) + size(e.rowStarts)
                    entries = e.entries ?? entries
                    if let values = e.values?.value { add(values) }
                case .factored:
                    // The factors' values are the weights (per entry: per element of the product).
                    for factor in e.factors ?? [] { add(factor) }
                case .blocks:
                    for block in e.blocks ?? [] { add(block) }
                default:
                    if e.kind == .floatSplit || e.kind == .dense, e.start != nil {
                        weights += poolShare[tensorIndex] ?? 0
                    } else {
                        weights += (e.streams ?? []).reduce(0) { $0 + size($1) }
                    }
                }
            }
            add(entry.encoding)
            rows.append(
                TensorRow(
                    tensor: entry.name, entries: entries, weightBytes: weights, indexBytes: index, tableBytes: tables,
                    weightBitsPerEntry: entries == 0 ? 0 : Double(weights * 8) / Double(entries),
                    indexBitsPerEntry: entries == 0 ? 0 : Double(index * 8) / Double(entries)))
        }
        tensors = rows
        headerBytes = 64
        self.manifestBytes = manifestBytes
        skeletonBytes = size(manifest.source.skeleton)
        self.skeletonInManifest = skeletonInManifest
        let streamsEnd = manifest.streams.map { $0.offset + $0.length }.max() ?? 64
        fileBytes = (manifestOffset ?? streamsEnd + (64 - streamsEnd % 64) % 64) + manifestBytes
        paddingBytes =
            fileBytes - headerBytes - manifestBytes - skeletonBytes - rows.reduce(0) { $0 + $1.bytes }
            - manifest.streams.indices.filter { !counted.contains($0) }.reduce(0) { $0 + manifest.streams[$1].length }
    }
}
