/// Weight sharing (Deep Compression §3): every element is an index into a small table of
/// centroids. With `channels > 1` each output channel — each index along `axis` of the
/// tensor's shape — has its own table.
///
/// When `zeroIsReserved`, code 0 of every table is exactly 0.0: pruned weights stay exactly
/// zero and only the surviving weights are clustered, into the other `2^bits − 1` codes.
public struct CodebookStorage: Sendable, Equatable {
    /// Bits per index, 1…8.
    public var bits: Int
    /// `channels` tables of `centroidsPerChannel` values each, table after table.
    public var centroids: [Float]
    public var channels: Int
    /// The tensor axis whose index selects the table when `channels > 1` (the output-channel axis).
    public var axis: Int
    /// One index per element (or per stored entry, inside `SparseStorage`).
    public var indices: [UInt8]
    public var zeroIsReserved: Bool

    public init(bits: Int, centroids: [Float], channels: Int, axis: Int = 0, indices: [UInt8], zeroIsReserved: Bool) {
        precondition((1...8).contains(bits), "codebook bits must be 1…8")
        precondition(channels >= 1 && centroids.count % channels == 0, "centroid tables must be equal in size")
        self.bits = bits
        self.centroids = centroids
        self.channels = channels
        self.axis = axis
        self.indices = indices
        self.zeroIsReserved = zeroIsReserved
    }

    public var centroidsPerChannel: Int { centroids.count / channels }
}

/// Quantized values: integer codes with a scale (and zero point) per tensor or per output
/// channel (each index along `axis`), or reduced-precision floats.
public struct QuantizedStorage: Sendable, Equatable {
    public enum Scheme: Sendable, Equatable, Hashable {
        /// `value = scale · (code − zeroPoint)`, codes of `bits` bits, signed or not.
        case linear(bits: Int, signed: Bool)
        /// IEEE binary16 codes.
        case float16
        /// bfloat16 codes.
        case bfloat16
    }

    public var scheme: Scheme
    /// One per channel (index along `axis`), or one for the whole tensor. Empty for float schemes.
    public var scales: [Float]
    /// The tensor axis of the channels when there is more than one scale.
    public var axis: Int
    public var zeroPoints: [Int32]
    /// One code per element: the integer code for linear schemes, the bit pattern for float schemes.
    public var codes: [Int32]

    public init(scheme: Scheme, scales: [Float], zeroPoints: [Int32], axis: Int = 0, codes: [Int32]) {
        self.scheme = scheme
        self.scales = scales
        self.axis = axis
        self.zeroPoints = zeroPoints
        self.codes = codes
    }

    /// Bits one code occupies.
    public var codeBits: Int {
        switch scheme {
        case .linear(let bits, _): return bits
        case .float16, .bfloat16: return 16
        }
    }

    /// Whether every zero point is 0 (symmetric quantization stores none).
    public var isSymmetric: Bool { zeroPoints.allSatisfy { $0 == 0 } }
}

/// Compressed sparse rows with relative column indices (Deep Compression §2).
///
/// The tensor is viewed as `rows × columns` (a conv kernel (M, C, kH, kW) as M × C·kH·kW).
/// Each row lists its stored entries in column order. An entry's `gap` is the number of
/// zero columns skipped since the previous entry of the row (or the row start), so it lies in
/// `0 ..< 2^indexBits`. When more zeros than that separate two nonzeros, a *filler* entry holding
/// an explicit zero is stored `2^indexBits − 1` columns further on, as often as needed.
public struct SparseStorage: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    /// Bits per gap, 1…16.
    public var indexBits: Int
    /// `rows + 1` offsets into the entries: row `r` holds entries `rowStarts[r] ..< rowStarts[r+1]`.
    public var rowStarts: [Int]
    /// One gap per entry.
    public var gaps: [UInt16]
    /// Entries holding explicit zeros only because a gap was too long.
    public var fillers: Int
    /// The entries' values, in entry order: a dense 1-D buffer of the tensor's dtype, a codebook
    /// or quantized codes. Fillers hold zero (code 0 of a reserved-zero codebook).
    public var values: EntryValues

    public indirect enum EntryValues: Sendable, Equatable {
        case dense(TensorBuffer)
        case codebook(CodebookStorage)
        case quantized(QuantizedStorage)
    }

    public init(rows: Int, columns: Int, indexBits: Int, rowStarts: [Int], gaps: [UInt16], fillers: Int, values: EntryValues) {
        self.rows = rows
        self.columns = columns
        self.indexBits = indexBits
        self.rowStarts = rowStarts
        self.gaps = gaps
        self.fillers = fillers
        self.values = values
    }

    /// Stored entries: nonzeros plus fillers.
    public var entries: Int { gaps.count }
}
