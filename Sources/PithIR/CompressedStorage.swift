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
    /// One code per element: the integer code for linear schemes, the bit pattern for float schemes,
    /// each held in the narrowest integer type (`QuantizedCodes`).
    public var codes: QuantizedCodes

    public init(scheme: Scheme, scales: [Float], zeroPoints: [Int32], axis: Int = 0, codes: QuantizedCodes) {
        self.scheme = scheme
        self.scales = scales
        self.axis = axis
        self.zeroPoints = zeroPoints
        self.codes = codes
    }

    public init(scheme: Scheme, scales: [Float], zeroPoints: [Int32], axis: Int = 0, codes: [Int32]) {
        self.init(scheme: scheme, scales: scales, zeroPoints: zeroPoints, axis: axis, codes: QuantizedCodes(codes))
    }

    /// The storage its codes need: 8 or 16 bits, signed for signed linear schemes.
    public var codeWidth: QuantizedCodes.Width {
        switch scheme {
        case .linear(let bits, let signed): return QuantizedCodes.Width(bits: bits, signed: signed)
        case .float16, .bfloat16: return .uint16
        }
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

/// A weight held as factors whose product approximates it (low-rank and tensor-train
/// factorization, circulant and separable approximations). The tensor is viewed as a
/// `rows × columns` matrix: its first dimension by the product of the others.
public struct FactoredStorage: Sendable, Equatable {
    public enum Method: Sendable, Equatable, Hashable {
        /// `W = left · right`: `factors[0]` is `rows × rank`, `factors[1]` is `rank × columns`.
        case lowRank(rank: Int)
        /// A TT-matrix: `W[(i₁…i_d), (j₁…j_d)] = G₁[:, i₁, j₁, :] ⋯ G_d[:, i_d, j_d, :]`, core k of shape
        /// `[ranks[k], rowFactors[k], columnFactors[k], ranks[k+1]]` (`ranks` has d + 1 entries, the
        /// first and last 1). `∏ rowFactors ≥ rows` and `∏ columnFactors ≥ columns`: the matrix is
        /// the top-left corner of the (zero-padded) product.
        case tensorTrain(rowFactors: [Int], columnFactors: [Int], ranks: [Int])
        /// A square matrix with `W[i][j] = c[(i − j) mod n]`: `factors[0]` is `c`.
        case circulant
        /// A convolution kernel `[M, C, kH, kW]` in which every filter is a sum of `rank` outer
        /// products of 1-D filters over channels, height and width: `factors` are `[M, rank, C]`,
        /// `[M, rank, kH]` and `[M, rank, kW]`.
        case separable(rank: Int)
    }

    public var method: Method
    public var rows: Int
    public var columns: Int
    /// The factors' values (row-major, shapes from `factorShapes`): what the product multiplies.
    public var factors: [[Float]]
    /// How each factor is stored, one per factor, when not as float32: quantized codes, a codebook,
    /// or either in CSR (`entropy_quantize` of a low-rank split). `factors` then holds the values
    /// these storages decode to. Nil: every factor is stored as float32.
    public var encodings: [TensorStorage]?

    public init(method: Method, rows: Int, columns: Int, factors: [[Float]], encodings: [TensorStorage]? = nil) {
        precondition(encodings.map { $0.count == factors.count } ?? true, "one encoding per factor")
        self.method = method
        self.rows = rows
        self.columns = columns
        self.factors = factors
        self.encodings = encodings
    }

    /// The shape each factor must have.
    public func factorShapes(tensorShape: [Int]) -> [[Int]] {
        switch method {
        case .lowRank(let rank): return [[rows, rank], [rank, columns]]
        case .tensorTrain(let m, let n, let r): return m.indices.map { [r[$0], m[$0], n[$0], r[$0 + 1]] }
        case .circulant: return [[rows]]
        case .separable(let rank):
            guard tensorShape.count == 4 else { return [] }
            return [[tensorShape[0], rank, tensorShape[1]], [tensorShape[0], rank, tensorShape[2]], [tensorShape[0], rank, tensorShape[3]]]
        }
    }

    /// Stored parameters: the factors' values.
    public var parameters: Int { factors.reduce(0) { $0 + $1.count } }

    /// The product, row-major `rows × columns`. `tensorShape` is needed for separable kernels.
    public func expand(tensorShape: [Int]) -> [Float] {
        switch method {
        case .lowRank(let rank):
            return Self.multiply(factors[0], factors[1], m: rows, k: rank, n: columns)
        case .circulant:
            let c = factors[0], n = rows
            var out = [Float](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { out[i * n + j] = c[((i - j) % n + n) % n] } }
            return out
        case .separable(let rank):
            let (m, ch, kh, kw) = (tensorShape[0], tensorShape[1], tensorShape[2], tensorShape[3])
            var out = [Float](repeating: 0, count: m * ch * kh * kw)
            for f in 0..<m {
                for r in 0..<rank {
                    let a = (f * rank + r) * ch, b = (f * rank + r) * kh, c = (f * rank + r) * kw
                    for i in 0..<ch {
                        for y in 0..<kh {
                            for x in 0..<kw {
                                out[((f * ch + i) * kh + y) * kw + x] += factors[0][a + i] * factors[1][b + y] * factors[2][c + x]
                            }
                        }
                    }
                }
            }
            return out
        case .tensorTrain(let m, let n, let r):
            // Contract core by core: T holds, for every prefix (i₁…i_k, j₁…j_k), a row vector of r_k.
            // Layout of T: [i₁…i_k][j₁…j_k][r_k], grown one core at a time.
            var t: [Float] = [1]
            var rowsSoFar = 1, columnsSoFar = 1
            for k in m.indices {
                let (r0, mk, nk, r1) = (r[k], m[k], n[k], r[k + 1])
                // next[(I, i), (J, j), b] = Σ_a T[I, J, a] · G[a, i, j, b]
                let g = factors[k]
                var next = [Float](repeating: 0, count: rowsSoFar * mk * columnsSoFar * nk * r1)
                let product = Self.multiply(t, g, m: rowsSoFar * columnsSoFar, k: r0, n: mk * nk * r1)
                for I in 0..<rowsSoFar {
                    for J in 0..<columnsSoFar {
                        for i in 0..<mk {
                            for j in 0..<nk {
                                let source = ((I * columnsSoFar + J) * mk * nk + i * nk + j) * r1
                                let destination = (((I * mk + i) * columnsSoFar + J) * nk + j) * r1
                                for b in 0..<r1 { next[destination + b] = product[source + b] }
                            }
                        }
                    }
                }
                t = next
                rowsSoFar *= mk
                columnsSoFar *= nk
            }
            // r_d = 1: t is the padded matrix; keep its top-left corner.
            if rowsSoFar == rows, columnsSoFar == columns { return t }
            var out = [Float](repeating: 0, count: rows * columns)
            for i in 0..<rows { for j in 0..<columns { out[i * columns + j] = t[i * columnsSoFar + j] } }
            return out
        }
    }

    /// Row-major `a (m × k) · b (k × n)`, accumulated row by row so the inner loop vectorizes.
    static func multiply(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    for i in 0..<m {
                        let row = pc.baseAddress! + i * n
                        for p in 0..<k {
                            let x = pa[i * k + p]
                            if x == 0 { continue }
                            let source = pb.baseAddress! + p * n
                            for j in 0..<n { row[j] += x * source[j] }
                        }
                    }
                }
            }
        }
        return c
    }
}
