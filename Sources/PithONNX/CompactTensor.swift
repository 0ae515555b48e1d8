import PithIR

/// A compressed tensor as an ONNX graph can hold it without expanding it: one stored *code* per
/// element, and a *decoder* — the operators that turn the codes into the tensor's values.
///
/// | storage | codes | decoder |
/// |---|---|---|
/// | quantized, linear, `bits` ≤ 4 / ≤ 8 / ≤ 16 | int4 (or int8) / int8 / int16, unsigned when the storage is | `DequantizeLinear` (or `Cast` → `Sub` → `Mul`) |
/// | quantized, float16 / bfloat16 | the 16-bit patterns | `Cast` to the tensor's type (none when it is that type) |
/// | codebook, table of ≤ 16 / ≤ 256 entries | uint4 (or uint8) / uint8 indices | `Cast` to int64 → (`Add` the channel's table offset) → `Gather` |
/// | sparse | the entries' codes as above, and every other element the code of zero | as its entries' |
/// | 4-bit codes or indices, below opset 21 | packed two per byte (uint8) | `Cast` to int32 → `Gather` from a `PairTable` → `Reshape` (→ `Mul` …) |
///
/// Decoding gives exactly the values a dense restore writes: `DequantizeLinear` computes
/// `(code − zero point) · scale` in float32 as `Tensor.decodedFloats` does, `Gather` copies table
/// entries (the table is stored in the tensor's own type, rounded as the dense restore rounds), and
/// the final `Cast` to float16 or bfloat16 rounds to nearest even as `Tensor.encode` does. Packed
/// codes decode to the same values: a `PairTable` row holds what each nibble of a byte decodes to
/// (`code − zero point` exactly, or a codebook entry), and the scale multiplies after, as in
/// `Tensor.decodedFloats`.
struct CompactTensor {
    /// What the stored codes are.
    enum Codes: Equatable {
        /// Integers of `bits` bits, two's complement when `signed`.
        case integer(bits: Int, signed: Bool)
        /// Bit patterns of a float type (float16, bfloat16, float32), held in the low bits of each code.
        case float(DType)
    }

    enum Decoder {
        /// The codes are the values (float codes of the tensor's own type).
        case none
        /// value = scale · (code − zero point): one scale, or one per index along `axis`; `zeroPoints`
        /// is empty when every zero point is 0, else as long as `scales`.
        case linear(scales: [Float], zeroPoints: [Int32], axis: Int)
        /// Float codes of another float type: one `Cast`.
        case cast
        /// value = table[channel · (table.count / channels) + code], the channel being the element's
        /// index along `axis` when `channels` > 1.
        case lookup(table: [Float], channels: Int, axis: Int)
    }

    /// Why a tensor cannot be written compact.
    struct Refusal: Error {
        var reason: String
    }

    /// The 256-row table that bytes of packed 4-bit codes are looked up in: row `b` holds what its
    /// low nibble (the first of the two codes) and its high nibble (the second) decode to. Every
    /// tensor whose nibbles decode alike shares one, stored once in the main graph.
    struct PairTable: Hashable {
        /// The table's element type: float32 for linear codes (scaled after the lookup), int32
        /// for codebook indices (looked up in the codebook after).
        var element: DType
        /// What nibbles 0…15 decode to, as `Float` bit patterns (so that a table holding −0 is not
        /// taken for one holding 0).
        var nibbleBits: [UInt32]

        init(element: DType, nibbles: [Float]) {
            precondition(nibbles.count == 16, "a pair table decodes 16 nibbles")
            self.element = element
            nibbleBits = nibbles.map(\.bitPattern)
        }

        /// The 512 elements, row-major: row `b` is (nibble `b & 15`, nibble `b >> 4`).
        var elements: [Float] {
            (0..<256).flatMap { b in [Float(bitPattern: nibbleBits[b & 15]), Float(bitPattern: nibbleBits[b >> 4])] }
        }

        /// The table in ONNX `raw_data` layout (int32 tables: the nibbles as integers).
        var rawData: [UInt8] {
            if element == .int32 { return elements.map { Int32($0) }.withUnsafeBytes { Array($0) } }
            return Tensor.encode(elements, as: element).bytes
        }

        /// Bytes of the stored table.
        var bytes: Int { 512 * element.bitWidth / 8 }
    }

    /// One way to store the codes, with what it costs.
    struct Choice: Equatable {
        /// The ONNX element type of the stored codes (uint8 for packed codes).
        var element: DType
        /// A `Constant` node with a `sparse_value` (the codes that are not 0, with int64 positions)
        /// instead of an initializer holding every code.
        var sparse: Bool
        /// For a linear decoder: `DequantizeLinear`, or else `Cast` → `Sub` → `Mul`, which every opset
        /// from 7 runs per axis.
        var dequantize: Bool
        /// 4-bit codes packed two per byte into a uint8 initializer of half the elements, decoded by
        /// `Cast` → `Gather` from `table` → `Reshape` and the decoder's arithmetic, with operators
        /// every opset from 7 has: the form for models whose opset cannot reach 21 (int4, uint4).
        var packed = false
        /// The pair table packed codes are looked up in (stored once for every tensor that shares
        /// it, so not counted in `bytes`).
        var table: PairTable?
        /// The lowest default-domain opset whose operators and types this needs.
        var opset: Int
        /// Bytes of the stored codes (a sparse Constant: values and int64 positions; packed codes:
        /// with the constants of their `Reshape` and `Slice` and `packedNodeBytes` for each node
        /// more than the `Cast` → `Mul` form has).
        var bytes: Int
        /// The codes are the tensor's values stored dense in its own type: nothing to gain over
        /// the dense restore (plain values whose sparse Constant would not be smaller).
        var isDense: Bool
    }

    var codes: Codes
    /// One code per element, row-major.
    var values: [Int32]
    var decoder: Decoder
    /// Whether code 0 decodes to 0 in every channel, so that a sparse Constant (which fills the
    /// elements it does not list with 0) can hold the codes.
    var zeroIsCodeZero: Bool
    /// The number of codes that are not 0.
    var nonzero: Int

    /// The codes and decoder of `tensor`'s compressed storage; dense, string and factored tensors, and
    /// storage whose codes do not fit its declared bits, are refused.
    init(_ tensor: Tensor) throws(Refusal) {
        guard [.float32, .float16, .bfloat16, .float64].contains(tensor.dtype) else {
            throw Refusal(reason: "its dtype \(tensor.dtype.rawValue) is not a float type a decoder can give")
        }
        let count = tensor.count
        switch tensor.storage {
        case .dense, .strings: throw Refusal(reason: "it is not compressed")
        case .factored: throw Refusal(reason: "factored weights are written by the factored rewrite")
        case .quantized(let q):
            try self.init(quantized: q, tensor: tensor, positions: nil, count: count)
        case .codebook(let c):
            try self.init(codebook: c, tensor: tensor, positions: nil, count: count)
        case .sparse(let s):
            var positions = [Int](repeating: 0, count: s.entries)
            for row in 0..<s.rows {
                var column = -1
                for entry in s.rowStarts[row]..<s.rowStarts[row + 1] {
                    column += Int(s.gaps[entry]) + 1
                    positions[entry] = row * s.columns + column
                }
            }
            guard positions.allSatisfy({ $0 < count }) else { throw Refusal(reason: "its sparse entries lie outside the tensor") }
            switch s.values {
            case .dense(let buffer):
                guard [.float32, .float16, .bfloat16].contains(tensor.dtype), buffer.count == s.entries * tensor.dtype.bitWidth / 8 else {
                    throw Refusal(reason: "its sparse entries are \(tensor.dtype.rawValue) values, which are kept dense")
                }
                var values = [Int32](repeating: 0, count: count)
                buffer.withUnsafeBytes { bytes in
                    for (entry, position) in positions.enumerated() {
                        if tensor.dtype == .float32 {
                            values[position] = Int32(bitPattern: bytes.loadUnaligned(fromByteOffset: entry * 4, as: UInt32.self))
                        } else {
                            values[position] = Int32(bytes.loadUnaligned(fromByteOffset: entry * 2, as: UInt16.self))
                        }
                    }
                }
                self.init(codes: .float(tensor.dtype), values: values, decoder: .none, zeroIsCodeZero: true)
            case .quantized(let q):
                try self.init(quantized: q, tensor: tensor, positions: positions, count: count)
            case .codebook(let c):
                try self.init(codebook: c, tensor: tensor, positions: positions, count: count)
            }
        }
    }

    init(codes: Codes, values: [Int32], decoder: Decoder, zeroIsCodeZero: Bool) {
        self.codes = codes
        self.values = values
        self.decoder = decoder
        self.zeroIsCodeZero = zeroIsCodeZero
        nonzero = values.reduce(0) { $0 + ($1 == 0 ? 0 : 1) }
    }

    /// Quantized codes; with `positions`, the codes of a sparse tensor's entries (every other element
    /// gets its channel's zero point).
    private init(quantized q: QuantizedStorage, tensor: Tensor, positions: [Int]?, count: Int) throws(Refusal) {
        let entries = positions?.count ?? count
        guard q.codes.count == entries else { throw Refusal(reason: "it holds \(q.codes.count) codes for \(entries) elements") }
        switch q.scheme {
        case .float16, .bfloat16:
            let type: DType = q.scheme == .float16 ? .float16 : .bfloat16
            var values = positions == nil ? Array(q.codes) : [Int32](repeating: 0, count: count)
            if let positions { for (entry, position) in positions.enumerated() { values[position] = q.codes[entry] } }
            for i in values.indices { values[i] &= 0xFFFF }
            self.init(codes: .float(type), values: values, decoder: tensor.dtype == type ? .none : .cast, zeroIsCodeZero: true)
        case .linear(let bits, let signed):
            guard (1...16).contains(bits) else { throw Refusal(reason: "its \(bits)-bit codes fit no ONNX integer type") }
            let channels = q.scales.count
            let axis = q.axis
            guard channels == 1 || (axis < tensor.shape.count && tensor.shape[axis] == channels) else {
                throw Refusal(reason: "it has \(channels) scales along axis \(axis) of shape \(Shape.describe(tensor.shape))")
            }
            guard q.zeroPoints.isEmpty || q.zeroPoints.count == channels else {
                throw Refusal(reason: "it has \(q.zeroPoints.count) zero points for \(channels) scales")
            }
            let low = signed ? -(1 << (bits - 1)) : 0, high = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1
            let zeroPoints = q.zeroPoints.allSatisfy { $0 == 0 } ? [] : q.zeroPoints
            guard zeroPoints.allSatisfy({ (low...high).contains(Int($0)) }), q.codes.allSatisfy({ (low...high).contains(Int($0)) }) else {
                throw Refusal(reason: "its codes or zero points lie outside the \(bits)-bit range")
            }
            var values: [Int32]
            if let positions {
                // The elements a sparse tensor does not store are zero: the code of their channel's zero point.
                if zeroPoints.isEmpty {
                    values = [Int32](repeating: 0, count: count)
                } else {
                    values = (0..<count).map { zeroPoints[channels == 1 ? 0 : tensor.channel(ofElement: $0, axis: axis)] }
                }
                for (entry, position) in positions.enumerated() { values[position] = q.codes[entry] }
            } else {
                values = Array(q.codes)
            }
            self.init(
                codes: .integer(bits: bits, signed: signed), values: values,
                decoder: .linear(scales: q.scales, zeroPoints: zeroPoints, axis: channels == 1 ? 0 : axis), zeroIsCodeZero: zeroPoints.isEmpty)
        }
    }

    /// Codebook indices; with `positions`, the indices of a sparse tensor's entries, every other
    /// element getting an index whose value is 0 (a 0 appended to every table when one lacks it).
    private init(codebook c: CodebookStorage, tensor: Tensor, positions: [Int]?, count: Int) throws(Refusal) {
        let entries = positions?.count ?? count
        guard c.indices.count == entries else { throw Refusal(reason: "it holds \(c.indices.count) indices for \(entries) elements") }
        guard c.channels == 1 || (c.axis < tensor.shape.count && tensor.shape[c.axis] == c.channels) else {
            throw Refusal(reason: "it has \(c.channels) codebooks along axis \(c.axis) of shape \(Shape.describe(tensor.shape))")
        }
        var table = c.centroids, per = c.centroidsPerChannel
        guard per > 0, c.indices.allSatisfy({ Int($0) < per }) else { throw Refusal(reason: "its indices point past its codebook of \(per) entries") }
        let channelOf: (Int) -> Int = { c.channels == 1 ? 0 : tensor.channel(ofElement: $0, axis: c.axis) }
        var values: [Int32]
        var zeroIsCodeZero = (0..<c.channels).allSatisfy { table[$0 * per] == 0 }
        if let positions {
            // Each channel's index of 0, for the elements the sparse tensor does not store.
            var zeroIndex = (0..<c.channels).map { channel in table[(channel * per)..<((channel + 1) * per)].firstIndex(of: 0).map { $0 - channel * per } }
            if zeroIndex.contains(where: { $0 == nil }) {
                guard per < 256 else { throw Refusal(reason: "its codebooks are full and lack a zero for the pruned elements") }
                var widened: [Float] = []
                for channel in 0..<c.channels { widened += table[(channel * per)..<((channel + 1) * per)] + [0] }
                table = widened
                zeroIndex = [Int?](repeating: per, count: c.channels)
                per += 1
                zeroIsCodeZero = false
            }
            values = (0..<count).map { Int32(zeroIndex[channelOf($0)]!) }
            for (entry, position) in positions.enumerated() { values[position] = Int32(c.indices[entry]) }
        } else {
            values = c.indices.map { Int32($0) }
        }
        let bits = max(1, Int.bitWidth - (per - 1).leadingZeroBitCount)
        self.init(
            codes: .integer(bits: bits, signed: false), values: values, decoder: .lookup(table: table, channels: c.channels, axis: c.axis),
            zeroIsCodeZero: zeroIsCodeZero)
    }

    /// The element types the codes can be stored as, smallest first.
    var elementTypes: [DType] {
        switch codes {
        case .float(let type): return [type]
        case .integer(let bits, let signed):
            if bits <= 4 { return signed ? [.int4, .int8] : [.uint4, .uint8] }
            if bits <= 8 { return signed ? [.int8] : [.uint8] }
            return signed ? [.int16] : [.uint16]
        }
    }

    /// About what one more decoder node takes in the file (op type, node name, input and output
    /// names), charged to packed codes so that they are not chosen where they save fewer bytes
    /// than their extra nodes take.
    static let packedNodeBytes = 64

    /// The pair table 4-bit codes would be looked up in when packed two per byte; nil when the codes
    /// are not integers of at most 4 bits, or index codebooks of more than 16 entries. Linear codes'
    /// nibbles are `code − zero point` when every channel has the same zero point (else the codes,
    /// and a `Sub` follows). Codebook indices' are the nibbles themselves, as int32, which then
    /// index the codebook (after the channel's offset is added): a table of each codebook's values
    /// would save that `Gather` but cost 2 KB per weight, where one table of nibbles serves them all.
    func pairTable() -> PairTable? {
        guard case .integer(let bits, let signed) = codes, bits <= 4 else { return nil }
        let nibbles = (0..<16).map { Int32(signed && $0 >= 8 ? $0 - 16 : $0) }
        switch decoder {
        case .none, .cast: return nil
        case .linear(_, let zeroPoints, _):
            let zero = Set(zeroPoints).count <= 1 ? zeroPoints.first ?? 0 : 0
            return PairTable(element: .float32, nibbles: nibbles.map { Float($0 - zero) })
        case .lookup(let table, let channels, _):
            guard table.count / channels <= 16 else { return nil }
            return PairTable(element: .int32, nibbles: (0..<16).map(Float.init))
        }
    }

    /// Every way to store the tensor (of `dtype`, `count` elements, `rank` dimensions), best first:
    /// fewest bytes, then `DequantizeLinear` before its Cast/Mul form, then the lowest opset.
    func choices(dtype: DType, count: Int, rank: Int) -> [Choice] {
        var result: [Choice] = []
        if let table = pairTable() {
            // Reshape's shape; an odd count also a Reshape to the padded length and Slice's bounds.
            let constants = 8 * rank + (count % 2 == 1 ? 24 : 0)
            let nodes = count % 2 == 1 ? 4 : 2
            result.append(
                Choice(
                    element: .uint8, sparse: false, dequantize: false, packed: true, table: table,
                    opset: opset(element: .uint8, sparse: false, dequantize: false, dtype: dtype),
                    bytes: (count + 1) / 2 + constants + nodes * Self.packedNodeBytes, isDense: false))
        }
        for element in elementTypes {
            for sparse in [false, true] {
                // A sparse Constant fills with zeros; onnxruntime refuses 4-bit sparse values (measured).
                if sparse, !zeroIsCodeZero || element.bitWidth < 8 { continue }
                let dequantizeForms: [Bool]
                if case .linear = decoder { dequantizeForms = [true, false] } else { dequantizeForms = [false] }
                for dequantize in dequantizeForms {
                    let bytes = sparse ? nonzero * (element.bitWidth / 8 + 8) : (count * element.bitWidth + 7) / 8
                    var plain = false
                    if case .none = decoder { plain = !sparse }
                    result.append(
                        Choice(
                            element: element, sparse: sparse, dequantize: dequantize, packed: false, table: nil,
                            opset: opset(element: element, sparse: sparse, dequantize: dequantize, dtype: dtype), bytes: bytes, isDense: plain))
                }
            }
        }
        return result.sorted { ($0.bytes, $0.dequantize ? 0 : 1, $0.opset) < ($1.bytes, $1.dequantize ? 0 : 1, $1.opset) }
    }

    /// The lowest default-domain opset that has every operator and type the choice uses:
    /// int4/uint4 tensors and Cast from them, and DequantizeLinear of int16/uint16: 21;
    /// DequantizeLinear per axis: 13, per tensor: 10; Cast/Gather of bfloat16: 13; a Constant's
    /// `sparse_value`: 11; Mul, Sub and Add broadcasting: 7; Cast: 6 (packed codes: Gather since 1,
    /// Reshape with its shape as an input since 5, Slice in its form of each opset).
    func opset(element: DType, sparse: Bool, dequantize: Bool, dtype: DType) -> Int {
        var need = 1
        if element == .int4 || element == .uint4 { need = 21 }
        if sparse { need = max(need, 11) }
        let bfloat = element == .bfloat16 || dtype == .bfloat16
        switch decoder {
        case .none: break
        case .linear(let scales, _, _):
            if dequantize {
                need = max(need, scales.count > 1 ? 13 : 10)
                if element == .int16 || element == .uint16 { need = max(need, 21) }
            } else {
                need = max(need, 7)
            }
            if dtype != .float32 { need = max(need, bfloat ? 13 : 6) }
        case .cast: need = max(need, bfloat ? 13 : 6)
        case .lookup(_, let channels, _):
            need = max(need, channels > 1 ? 7 : 6, bfloat ? 13 : 1)
        }
        return need
    }

    /// The codes `values` (or those at `positions`) in the ONNX `raw_data` layout of `element`:
    /// little-endian; 4-bit types two to a byte, the first in the low nibble.
    static func pack(_ values: [Int32], as element: DType, positions: [Int]? = nil) -> [UInt8] {
        let count = positions?.count ?? values.count
        func value(_ i: Int) -> Int32 { positions.map { values[$0[i]] } ?? values[i] }
        switch element.bitWidth {
        case 4:
            var bytes = [UInt8](repeating: 0, count: (count + 1) / 2)
            for i in 0..<count { bytes[i / 2] |= UInt8(truncatingIfNeeded: value(i) & 0xF) << (4 * (i & 1)) }
            return bytes
        case 8:
            return (0..<count).map { UInt8(truncatingIfNeeded: value($0)) }
        case 16:
            var bytes = [UInt8](repeating: 0, count: count * 2)
            for i in 0..<count {
                let v = UInt16(truncatingIfNeeded: value(i))
                bytes[2 * i] = UInt8(v & 0xFF)
                bytes[2 * i + 1] = UInt8(v >> 8)
            }
            return bytes
        default:
            var bytes = [UInt8](repeating: 0, count: count * 4)
            for i in 0..<count {
                let v = UInt32(bitPattern: value(i))
                for k in 0..<4 { bytes[4 * i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
            }
            return bytes
        }
    }
}
