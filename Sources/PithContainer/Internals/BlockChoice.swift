import Foundation
import PithCoding
import PithIR

/// Whether a large dense tensor is stored as `blocks` of rows (format 1.6), each block with its own
/// streams and Huffman tables: worth it where the rows' statistics drift, as in a classifier whose
/// rows each have their own scale (PP-OCRv6 rec's 120 × 18,710 output layer: one table per field over
/// the whole tensor cannot follow the rows; a table per row stores it 6.8% smaller).
///
/// The decision costs no pass of its own: `writeLarge` counts its histograms a block at a time
/// (`Layout`), a first estimate from their entropies decides whether exact plans are worth making,
/// and the exact plans decide.
struct BlockChoice {
    /// Rows per block and how many blocks.
    struct Layout {
        var blockRows: Int
        var blocks: Int
        /// Bytes of a full block (the last may be shorter).
        var blockBytes: Int
    }

    /// Blocks are at least this many bytes (fewer bytes pay a table per stream for too little).
    static let minimumBlockBytes = 64 << 10
    /// At most this many blocks: the histograms of each are held until the choice is made, and a
    /// block of 65,536 float32 or more has them counted three counts per element instead of six.
    static let maximumBlocks = 128
    /// The entropy estimate must promise this share of the tensor before exact plans are made, and
    /// the exact plans must save it for blocks to be written.
    static let estimateShare = 0.02
    static let requiredShare = 0.01

    /// The block layout for a tensor of `shape` and `byteCount` bytes, or nil when it cannot form
    /// four blocks or more: two dimensions or more, whole-byte elements, rows of whole elements.
    static func layout(shape: [Int], dtype: DType, byteCount: Int) -> Layout? {
        guard shape.count >= 2, let rows = shape.first, rows >= 4, dtype.bitWidth > 0, dtype.bitWidth % 8 == 0,
            byteCount > 0, byteCount % rows == 0
        else { return nil }
        let rowBytes = byteCount / rows
        var blockRows = max(1, (minimumBlockBytes + rowBytes - 1) / rowBytes)
        blockRows = max(blockRows, (rows + maximumBlocks - 1) / maximumBlocks)
        let blocks = (rows + blockRows - 1) / blockRows
        guard blocks >= 4 else { return nil }
        return Layout(blockRows: blockRows, blocks: blocks, blockBytes: blockRows * rowBytes)
    }

    /// c · log2(c) for the counts a block's histograms mostly hold, so that an estimate costs a
    /// table lookup per symbol instead of a logarithm (a tensor's blocks have up to 2,048 of them each).
    static let countLog: [Double] = (0..<(1 << 14)).map { $0 == 0 ? 0 : Double($0) * log2(Double($0)) }

    /// Bytes an order-0 entropy coder needs for symbols counted in `histogram` (at least the
    /// table's cost), or the raw bytes when fewer.
    static func entropyBytes(_ histogram: [Int]) -> Double {
        var n = 0
        var sum = 0.0
        countLog.withUnsafeBufferPointer { table in
            for c in histogram where c > 0 {
                n += c
                sum += c < table.count ? table[c] : Double(c) * log2(Double(c))
            }
        }
        guard n > 0 else { return 0 }
        let bits = Double(n) * log2(Double(n)) - sum
        return min(Double(n), bits / 8 + Double(histogram.count / 2))
    }

    /// The entropy estimate of one block (or the whole tensor) as the split that suits its type:
    /// float fields for float32 and bfloat16, byte planes for other types of several bytes, its
    /// bytes as one stream otherwise; each stream with its manifest overhead.
    static func estimate(positions: [[Int]], fields: [[Int]]?) -> Double {
        let overhead = Double(StreamBuilder.streamOverhead)
        return (fields ?? positions).reduce(0) { $0 + entropyBytes($1) + overhead }
    }

    /// Whether blocks whose estimates (`estimate`) add up to `split` promise to beat the whole
    /// tensor's histograms.
    static func promising(split: Double, positions: [[Int]], fields: [[Int]]?) -> Bool {
        split < estimate(positions: positions, fields: fields) * (1 - estimateShare)
    }
}

extension BlockChoice.Layout {
    /// Block `b`'s bytes within the tensor's.
    func block(_ b: Int, of raw: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: raw[b * blockBytes..<min(raw.count, (b + 1) * blockBytes)])
    }
}

extension BlockChoice {
    /// One stream of a block as it will be stored.
    struct Stream: Sendable {
        var payload: [UInt8]
        var coding: Manifest.StreamEntry.Coding
        /// Huffman code lengths (nil for a raw stream).
        var lengths: [UInt8]?
        var symbols: Int
    }

    /// The histograms of each block of `raw` (`FloatSplit.histograms`), and their sums: the whole
    /// tensor's, counted in the same pass.
    static func histograms(
        _ raw: UnsafeRawBufferPointer, layout: Layout, dtype: DType, width: Int
    ) -> (blocks: [([[Int]], [[Int]]?)], positions: [[Int]], fields: [[Int]]?) {
        let blocks = (0..<layout.blocks).map { b in FloatSplit.histograms(layout.block(b, of: raw), dtype: dtype, width: width) }
        var positions = blocks[0].positions, fields = blocks[0].fields
        for (p, f) in blocks.dropFirst() {
            ContainerWriter.add(p, to: &positions)
            if let f { ContainerWriter.add(f, to: &fields!) }
        }
        return (blocks.map { ($0.positions, $0.fields) }, positions, fields)
    }

    /// A block's own choice from its histograms: raw or Huffman streams, no zstd frame (blocks are
    /// chosen where per-block tables pay, and a frame's probe per block would cost more than it finds).
    static func choice(_ block: UnsafeRawBufferPointer, dtype: DType, width: Int, histograms: ([[Int]], [[Int]]?)) -> DenseChoice {
        DenseChoice(block, dtype: dtype, width: width, positions: histograms.0, fields: histograms.1, probe: .some(nil), splitLZ: false, lz: false)
    }

    /// Every block's choice (`choose` makes them, on as many cores as it likes) when the blocks
    /// store the tensor in `requiredShare` fewer bytes than `whole.size`; nil otherwise, or when the
    /// blocks' entropy `estimates` do not promise a gain (then no exact plan is made).
    static func choices(
        layout: Layout, histograms: [([[Int]], [[Int]]?)], estimates: [Double], whole: (positions: [[Int]], fields: [[Int]]?, size: Int),
        choose: (Int) -> [DenseChoice]
    ) -> [DenseChoice]? {
        guard histograms.count == layout.blocks, promising(split: estimates.reduce(0, +), positions: whole.positions, fields: whole.fields)
        else { return nil }
        let choices = choose(layout.blocks)
        let total = choices.reduce(0) { $0 + $1.size }
        return Double(total) < Double(whole.size) * (1 - requiredShare) ? choices : nil
    }

    /// The streams of one block stored as `choice` says.
    static func streams(_ block: UnsafeRawBufferPointer, choice: DenseChoice, dtype: DType, width: Int) -> [Stream] {
        let count = block.count / (choice.kind == .dense ? 1 : width)
        return choice.plans.enumerated().map { k, plan in
            let symbols: [UInt8]
            switch choice.kind {
            case .floatSplit: symbols = FloatSplit.field(k, of: block, dtype: dtype)
            case .planes: symbols = FloatSplit.plane(block, position: k, width: width)
            default: symbols = Array(block)
            }
            switch plan.choice {
            case .huffman(let lengths):
                // The lengths came from this block's histogram, so they form a valid code.
                return Stream(
                    payload: HuffmanStreams.encode(symbols, code: try! HuffmanCode(lengths: lengths)), coding: .huffman, lengths: lengths, symbols: count)
            case .raw, .zstd:  // no zstd in a block's choice
                return Stream(payload: symbols, coding: .raw, lengths: nil, symbols: count)
            }
        }
    }
}
