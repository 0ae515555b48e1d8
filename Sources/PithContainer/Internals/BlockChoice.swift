import Foundation
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
    /// At most this many blocks: the histograms of each are held until the choice is made.
    static let maximumBlocks = 1024
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

    /// Bytes an order-0 entropy coder needs for symbols counted in `histogram` (at least the
    /// table's cost), or the raw bytes when fewer.
    static func entropyBytes(_ histogram: [Int]) -> Double {
        var n = 0
        var sum = 0.0
        for c in histogram where c > 0 {
            n += c
            sum += Double(c) * log2(Double(c))
        }
        guard n > 0 else { return 0 }
        let bits = Double(n) * log2(Double(n)) - sum
        return min(Double(n), bits / 8 + Double(histogram.count / 2))
    }

    /// The entropy estimate of the best split of one block (or the whole tensor): its bytes as one
    /// stream, its byte planes, or its float fields, each stream with its manifest overhead.
    static func estimate(positions: [[Int]], fields: [[Int]]?) -> Double {
        let overhead = Double(StreamBuilder.streamOverhead)
        var whole = [Int](repeating: 0, count: 256)
        for histogram in positions { for (symbol, n) in histogram.enumerated() { whole[symbol] += n } }
        var best = entropyBytes(whole) + overhead
        if positions.count >= 2 { best = min(best, positions.reduce(0) { $0 + entropyBytes($1) + overhead }) }
        if let fields { best = min(best, fields.reduce(0) { $0 + entropyBytes($1) + overhead }) }
        return best
    }

    /// Whether blocks with these histograms promise to beat the whole tensor's.
    static func promising(blocks: [(positions: [[Int]], fields: [[Int]]?)], positions: [[Int]], fields: [[Int]]?) -> Bool {
        let whole = estimate(positions: positions, fields: fields)
        let split = blocks.reduce(0) { $0 + estimate(positions: $1.positions, fields: $1.fields) }
        return split < whole * (1 - estimateShare)
    }
}
