import PithCoding
import PithIR

/// How a dense tensor is stored losslessly, chosen from its histograms before any stream is made:
/// the raw bytes as one stream (raw, Huffman, or since 1.4 a zstd frame), one stream per byte
/// position (`planes`), or for float32 and bfloat16 one per field (`floatSplit`), each stream raw
/// or Huffman on its own; whichever is smallest. Each stream also costs its manifest entry and
/// alignment (`StreamBuilder.streamOverhead`), counted in the choice.
struct DenseChoice {
    var kind: Manifest.Encoding.Kind
    /// One plan per stream of `kind`, in stream order.
    var plans: [StreamBuilder.Plan]
    /// What the choice stores, with each stream's `StreamBuilder.streamOverhead`.
    var size: Int

    /// The byte positions the histograms count: the element's bytes for whole-byte types of two
    /// bytes or more, else 1 (every byte counted as one position).
    static func width(_ dtype: DType, byteCount: Int) -> Int {
        let width = max(1, dtype.bitWidth / 8)
        return width >= 2 && dtype.bitWidth % 8 == 0 && byteCount >= width ? width : 1
    }

    /// The choice for the element bytes `raw`, from `FloatSplit.histograms(raw, dtype:, width:)`
    /// and, when already taken, `StreamBuilder.lzProbe(raw)`. With `splitLZ`, when the raw bytes show
    /// repetition (`lzFriendly`), each stream of the byte planes and float fields may be a zstd frame
    /// too (format 1.5): a sinusoidal position table's planes repeat where its whole bytes do not.
    /// Without `lz`, no zstd frame is tried at all (the blocks of a `blocks` tensor, 1.6).
    init(
        _ raw: UnsafeRawBufferPointer, dtype: DType, width: Int, positions: [[Int]], fields: [[Int]]?, probe: Double?? = nil, splitLZ: Bool = true,
        lz: Bool = true
    ) {
        let overhead = StreamBuilder.streamOverhead
        let rawProbe = lz ? probe ?? StreamBuilder.lzProbe(raw) : nil
        var whole = [Int](repeating: 0, count: 256)
        for histogram in positions { for (symbol, n) in histogram.enumerated() { whole[symbol] += n } }
        let wholePlan = StreamBuilder.plan(frequencies: whole, count: raw.count)
        var best: (kind: Manifest.Encoding.Kind, plans: [StreamBuilder.Plan], size: Int) = (.dense, [wholePlan], wholePlan.size + overhead)
        if width >= 2 {
            let count = raw.count / width
            let splitFrames = lz && splitLZ && Self.lzFriendly(raw, probe: rawProbe)
            var plans = positions.map { StreamBuilder.plan(frequencies: $0, count: count) }
            if splitFrames { plans = Self.withLZ(plans) { FloatSplit.plane(raw, position: $0, width: width) } }
            let size = plans.reduce(0) { $0 + $1.size + overhead }
            if size < best.size { best = (.planes, plans, size) }
            if let fields {
                var plans = fields.map { StreamBuilder.plan(frequencies: $0, count: count) }
                if splitFrames { plans = Self.withLZ(plans) { FloatSplit.field($0, of: raw, dtype: dtype) } }
                let size = plans.reduce(0) { $0 + $1.size + overhead }
                if size < best.size { best = (.floatSplit, plans, size) }
            }
        }
        // LZ last: a frame of the raw bytes when it beats the best split (a fast probe first).
        let against = best.size - best.plans.count * overhead
        if lz, let frame = StreamBuilder.lzFrame(raw, against: against, probe: rawProbe), frame.count + overhead < best.size {
            best = (.dense, [StreamBuilder.Plan(choice: .zstd(frame: frame), size: frame.count)], frame.count + overhead)
        }
        kind = best.kind
        plans = best.plans
        size = best.size
    }
}

extension DenseChoice {
    /// A share of the raw bytes' size that zstd's quick probe (level 3) must come under for the split
    /// streams to be tried with zstd: trained weights, whose bytes LZ cannot shrink below their
    /// entropy, come out at 0.93 or more, and cost nothing more.
    static let splitLZShare = 0.9

    /// Whether the raw bytes repeat enough for the split streams to be worth an LZ try: the probe
    /// of a large tensor (`StreamBuilder.lzProbe`), or for one of at most `StreamBuilder.lzDirect`
    /// bytes a frame at the probe level, under `splitLZShare`.
    static func lzFriendly(_ raw: UnsafeRawBufferPointer, probe: Double?) -> Bool {
        guard raw.count >= StreamBuilder.lzMinimum else { return false }
        if let probe { return probe < splitLZShare }
        return Double(Zstd.compress(raw, level: Zstd.probeLevel).count) < splitLZShare * Double(raw.count)
    }

    /// `plans` with each stream a zstd frame instead where that is smaller; `stream(k)` makes
    /// stream k's bytes.
    static func withLZ(_ plans: [StreamBuilder.Plan], stream: (Int) -> [UInt8]) -> [StreamBuilder.Plan] {
        plans.enumerated().map { k, plan in
            let bytes = stream(k)
            guard let frame = bytes.withUnsafeBytes({ StreamBuilder.lzFrame($0, against: plan.size) }), frame.count < plan.size else { return plan }
            return StreamBuilder.Plan(choice: .zstd(frame: frame), size: frame.count)
        }
    }

    /// The elements of `raw`, a tensor of `shape` viewed as rows (its first dimension) × columns
    /// (the rest), column by column (`transposed`, format 1.5). Its own inverse with rows and
    /// columns swapped: the stored elements are a columns × rows matrix.
    static func transposed(_ raw: UnsafeRawBufferPointer, rows: Int, columns: Int, width: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: raw.count) { out, initialized in
            for r in 0..<rows {
                for c in 0..<columns {
                    let from = (r * columns + c) * width, to = (c * rows + r) * width
                    for k in 0..<width { out[to + k] = raw[from + k] }
                }
            }
            initialized = raw.count
        }
    }

    /// A zstd frame of the elements of `raw` column by column, when the tensor has two dimensions
    /// or more (at least 2 × 2 as rows × columns), whole-byte elements, fewer than
    /// `ContainerWriter.largeTensorBytes` bytes, and the frame is smaller than `against` (what the
    /// best other choice stores, tried only where some stream of it is a zstd frame: bytes LZ shrinks).
    static func transposedFrame(
        _ raw: UnsafeRawBufferPointer, dtype: DType, shape: [Int], against: Int
    ) -> (frame: [UInt8], rows: Int, columns: Int)? {
        guard shape.count >= 2, dtype.bitWidth % 8 == 0, dtype.bitWidth > 0, raw.count < ContainerWriter.largeTensorBytes else { return nil }
        let width = dtype.bitWidth / 8
        let rows = shape[0]
        guard rows >= 2, raw.count % (width * rows) == 0 else { return nil }
        let columns = raw.count / width / rows
        guard columns >= 2 else { return nil }
        let frame = transposed(raw, rows: rows, columns: columns, width: width).withUnsafeBytes { Zstd.compress($0, level: Zstd.level) }
        return frame.count < against ? (frame, rows, columns) : nil
    }
}

extension ContainerWriter {
    /// Dense tensors of this many bytes or more are written on their own by `writeLarge`.
    static let largeTensorBytes = 4 << 20
    /// `writeLarge` counts histograms this many bytes at a time, on every core.
    static let histogramChunkBytes = 4 << 20
    /// A mapped tensor this large gives its pages back a piece at a time as `writeLarge` reads it
    /// (each pass over it reads them in again); a smaller one once written, which costs one pass.
    static let pieceByPieceReleaseBytes = 64 << 20

    /// A large dense tensor, written as `denseEncoding` would store it (the same streams, byte for
    /// byte) with the work spread over the cores and little held at once: the histograms are
    /// counted in chunks on every core, then each chosen stream is made as the four parts of a
    /// Huffman block (`HuffmanStreams.stream(_:of:)`) or four raw pieces, a quarter of the elements
    /// each, on every core, and written before the next stream is made. A view of a mapped file
    /// gives its pages back once written or, from `pieceByPieceReleaseBytes`, those of each piece
    /// once read: a tensor of gigabytes never has all its pages resident.
    ///
    /// A tensor of `shape` that can form blocks of rows (`BlockChoice.layout`) has its histograms
    /// counted a block at a time; when the blocks' own tables store it in fewer bytes, it is written
    /// as `blocks` (format 1.6) by `writeBlocks`.
    static func writeLarge(
        _ buffer: TensorBuffer, dtype: DType, shape: [Int], into sink: inout StreamSink, output: inout some ContainerOutput
    ) throws -> Manifest.Encoding {
        defer { buffer.releasePages() }
        let release = buffer.count >= pieceByPieceReleaseBytes
        return try buffer.withUnsafeBytes { raw -> Manifest.Encoding in
            let width = DenseChoice.width(dtype, byteCount: raw.count)
            let layout = BlockChoice.layout(shape: shape, dtype: dtype, byteCount: raw.count)
            // Histograms, a chunk (a whole number of elements; a block of rows where the tensor may
            // be stored as blocks) at a time, summed; the zstd probe as one more task beside them
            // (first, as the longest).
            let chunk = layout?.blockBytes ?? max(width, histogramChunkBytes / width * width)
            let chunks = (raw.count + chunk - 1) / chunk
            // A block's entropy estimate is taken beside its histograms, on its core.
            let counted = Parallel.map(count: chunks + 1, makeWorker: {}) { (_: inout Void, task: Int) -> ([[Int]], [[Int]]?, Double?) in
                buffer.withUnsafeBytes { raw in
                    if task == 0 { return ([], nil, StreamBuilder.lzProbe(raw)) }
                    let c = task - 1
                    let bytes = c * chunk..<min(raw.count, (c + 1) * chunk)
                    defer { if release { buffer.releasePages(bytes: bytes) } }
                    let (positions, fields) = FloatSplit.histograms(UnsafeRawBufferPointer(rebasing: raw[bytes]), dtype: dtype, width: width)
                    return (positions, fields, layout.map { _ in BlockChoice.estimate(positions: positions, fields: fields) })
                }
            }
            var (positions, fields, _) = counted[1]
            for (p, f, _) in counted.dropFirst(2) {
                add(p, to: &positions)
                if let f { add(f, to: &fields!) }
            }
            // Large tensors keep their split streams raw or Huffman-coded: each is made a quarter at a
            // time on every core, never whole.
            let best = DenseChoice(raw, dtype: dtype, width: width, positions: positions, fields: fields, probe: .some(counted[0].2), splitLZ: false)
            if let layout, counted.count - 1 == layout.blocks,
                let blocks = try writeBlocks(
                    buffer, dtype: dtype, width: width, layout: layout, histograms: counted.dropFirst().map { ($0.0, $0.1) },
                    estimates: counted.dropFirst().map { $0.2 ?? 0 }, whole: (positions, fields, best.size), into: &sink, output: &output)
            {
                return blocks
            }

            let kind = best.kind
            // A `dense` stream's symbols are the tensor's bytes; the other kinds' one per element.
            let symbolWidth = kind == .dense ? 1 : width
            let symbolCount = raw.count / symbolWidth
            var encoding = Manifest.Encoding(kind: kind)
            encoding.streams = try best.plans.enumerated().map { k, plan in
                @Sendable func piece(_ q: Int) -> [UInt8] {
                    let quarter = HuffmanStreams.stream(q, of: symbolCount)
                    let bytes = quarter.lowerBound * symbolWidth..<quarter.upperBound * symbolWidth
                    return symbols(k, bytes, of: buffer, kind: kind, dtype: dtype, width: width, release: release)
                }
                switch plan.choice {
                case .zstd(let frame):
                    return try write([frame], to: &sink, output: &output, coding: .zstd, symbols: symbolCount, codeLengths: nil)
                case .raw where kind == .dense:
                    return try sink.write([raw], coding: .raw, symbols: symbolCount, symbolBits: nil, codeLengths: nil, to: &output)
                case .raw:
                    let pieces = Parallel.map(count: 4, makeWorker: {}) { (_: inout Void, q: Int) in piece(q) }
                    return try write(pieces, to: &sink, output: &output, coding: .raw, symbols: symbolCount, codeLengths: nil)
                case .huffman(let lengths):
                    // The lengths came from this histogram, so they form a valid code.
                    let code = try! HuffmanCode(lengths: lengths)
                    let parts = Parallel.map(count: 4, makeWorker: {}) { (_: inout Void, q: Int) in code.encode(piece(q)) }
                    let header = HuffmanStreams.header(streamLengths: parts.map(\.count))
                    let lengths = StreamBuilder.hexDigits(lengths)
                    return try write([header] + parts, to: &sink, output: &output, coding: .huffman, symbols: symbolCount, codeLengths: lengths)
                }
            }
            return encoding
        }
    }

    /// The tensor as `blocks` (1.6), written, when `BlockChoice.choices` finds the blocks' own
    /// choices better than `whole.size`, the best choice for the whole tensor; nil (nothing written)
    /// otherwise. The blocks are chosen and coded on every core, a group at a time, and written in
    /// order.
    private static func writeBlocks(
        _ buffer: TensorBuffer, dtype: DType, width: Int, layout: BlockChoice.Layout, histograms: [([[Int]], [[Int]]?)], estimates: [Double],
        whole: (positions: [[Int]], fields: [[Int]]?, size: Int), into sink: inout StreamSink, output: inout some ContainerOutput
    ) throws -> Manifest.Encoding? {
        guard
            let choices = BlockChoice.choices(
                layout: layout, histograms: histograms, estimates: estimates, whole: whole,
                choose: { blocks in
                    Parallel.map(count: blocks, makeWorker: {}) { (_: inout Void, b: Int) -> DenseChoice in
                        buffer.withUnsafeBytes { BlockChoice.choice(layout.block(b, of: $0), dtype: dtype, width: width, histograms: histograms[b]) }
                    }
                })
        else { return nil }
        var blocks: [Manifest.Encoding] = []
        let group = 16
        for first in stride(from: 0, to: layout.blocks, by: group) {
            let made = Parallel.map(count: min(group, layout.blocks - first), makeWorker: {}) { (_: inout Void, k: Int) -> [BlockChoice.Stream] in
                buffer.withUnsafeBytes { BlockChoice.streams(layout.block(first + k, of: $0), choice: choices[first + k], dtype: dtype, width: width) }
            }
            for (k, streams) in made.enumerated() {
                var block = Manifest.Encoding(kind: choices[first + k].kind)
                block.streams = try streams.map { stream in
                    try write(
                        [stream.payload], to: &sink, output: &output, coding: stream.coding, symbols: stream.symbols,
                        codeLengths: stream.lengths.map(StreamBuilder.hexDigits))
                }
                blocks.append(block)
            }
        }
        var encoding = Manifest.Encoding(kind: .blocks)
        encoding.blockRows = layout.blockRows
        encoding.blocks = blocks
        return encoding
    }

    /// Stream `k`'s symbols from `bytes` of a tensor stored as `kind` (`dense`: the bytes
    /// themselves); with `release`, the pages of those bytes given back once read.
    private static func symbols(
        _ k: Int, _ bytes: Range<Int>, of buffer: TensorBuffer, kind: Manifest.Encoding.Kind, dtype: DType, width: Int, release: Bool
    ) -> [UInt8] {
        defer { if release { buffer.releasePages(bytes: bytes) } }
        return buffer.withUnsafeBytes { raw in
            let part = UnsafeRawBufferPointer(rebasing: raw[bytes])
            switch kind {
            case .floatSplit: return FloatSplit.field(k, of: part, dtype: dtype)
            case .planes: return FloatSplit.plane(part, position: k, width: width)
            default: return Array(part)
            }
        }
    }

    private static func write(
        _ pieces: [[UInt8]], to sink: inout StreamSink, output: inout some ContainerOutput, coding: Manifest.StreamEntry.Coding, symbols: Int,
        codeLengths: String?
    ) throws -> Int {
        func withPointers(_ done: [UnsafeRawBufferPointer]) throws -> Int {
            done.count == pieces.count
                ? try sink.write(done, coding: coding, symbols: symbols, symbolBits: coding == .huffman ? 8 : nil, codeLengths: codeLengths, to: &output)
                : try pieces[done.count].withUnsafeBytes { try withPointers(done + [$0]) }
        }
        return try withPointers([])
    }

    /// Adds each of `histograms` to the same one of `sum`.
    static func add(_ histograms: [[Int]], to sum: inout [[Int]]) {
        for k in sum.indices { for s in sum[k].indices { sum[k][s] += histograms[k][s] } }
    }
}
