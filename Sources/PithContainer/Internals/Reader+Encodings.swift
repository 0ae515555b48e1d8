import PithIR

/// A tensor decoded from its encoding into its compressed storage, one function per `kind`, each
/// checking the encoding's fields against the tensor's shape and its streams before allocating.
extension Reader {
    /// Tensor `entry` in its compressed storage, and the bytes of the streams it was read from. With
    /// `paging`, the streams' pages are given back once it is decoded.
    mutating func tensor(_ entry: Manifest.TensorEntry) throws -> (Tensor, Int) {
        guard let dtype = DType(rawValue: entry.dtype) else {
            throw ContainerError(.unsupported, file: file, "tensor `\(entry.name)`: dtype `\(entry.dtype)` is not one this Pith knows")
        }
        guard let count = Shape.elementCount(entry.shape) else {
            throw fail("tensor `\(entry.name)`: shape \(entry.shape) is negative or too large")
        }
        used = 0
        defer { releaseHeld() }
        let storage = try decode(entry.encoding, dtype: dtype, count: count, shape: entry.shape, tensor: entry.name)
        let consumer = entry.consumerOp.map { Consumer(op: $0, name: entry.consumerName ?? "") }
        let tensor = Tensor(
            name: entry.name, dtype: dtype, shape: entry.shape, storage: storage,
            origin: entry.origin.map { OriginCoding.decode($0, name: entry.name) } ?? .initializer(graph: .main), consumer: consumer)
        return (tensor, used)
    }

    /// The storage of one tensor (or, for `tensor`, of the values of a sparse one) from its encoding.
    mutating func decode(_ e: Manifest.Encoding, dtype: DType, count: Int, shape: [Int], tensor: String) throws -> TensorStorage {
        let label = "tensor `\(tensor)`"
        switch e.kind {
        case .dense, .planes, .floatSplit:
            return .dense(try dense(e, dtype: dtype, count: count, label: label))
        case .transposed:
            return .dense(try transposed(e, dtype: dtype, count: count, shape: shape, label: label))
        case .blocks:
            return .dense(try blocks(e, dtype: dtype, count: count, shape: shape, label: label))
        case .strings:
            return .strings(try strings(e, dtype: dtype, count: count, label: label))
        case .codebook:
            return .codebook(try codebook(e, count: count, shape: shape, label: label))
        case .quantized:
            return .quantized(try quantized(e, count: count, shape: shape, label: label))
        case .sparse:
            return .sparse(try sparse(e, dtype: dtype, count: count, shape: shape, label: label))
        case .factored:
            return .factored(try factored(e, count: count, shape: shape, label: label, tensor: tensor))
        default:
            let known = Manifest.Encoding.Kind.known.map(\.rawValue).joined(separator: ", ")
            throw ContainerError(.unsupported, file: file, "\(label): encoding `\(e.kind)` is not one this Pith knows (\(known)): upgrade Pith")
        }
    }

    /// Per element a UInt32 length and that many bytes, all in one stream.
    mutating func strings(_ e: Manifest.Encoding, dtype: DType, count: Int, label: String) throws -> [[UInt8]] {
        guard dtype == .string, let index = e.streams?.first else { throw fail("\(label): \(e.kind) encoding needs dtype string and one stream") }
        let raw = try byteSymbols(index, count: manifest.streams[safe: index]?.symbols ?? 0, purpose: label)
        var values: [[UInt8]] = [], position = 0
        while position < raw.count {
            guard raw.count - position >= 4 else { throw fail("\(label): string lengths truncated") }
            let length = Int(raw.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: position, as: UInt32.self)) })
            position += 4
            guard length <= raw.count - position else { throw fail("\(label): string of \(length) bytes runs past its stream") }
            values.append(Array(raw[position..<position + length]))
            position += length
        }
        guard values.count == count else { throw fail("\(label): \(values.count) strings for \(count) elements") }
        return values
    }

    /// Compressed sparse rows: row starts, gaps (every entry checked to land inside its row) and the
    /// entries' values in an elementwise, codebook or quantized encoding.
    mutating func sparse(_ e: Manifest.Encoding, dtype: DType, count: Int, shape: [Int], label: String) throws -> SparseStorage {
        guard let rows = e.rows, let columns = e.columns, let bits = e.indexBits, let entries = e.entries,
            let startsIndex = e.rowStarts, let gapsIndex = e.gaps, let values = e.values?.value, let fillers = e.fillers
        else {
            throw fail("\(label): \(e.kind) encoding lacks rows, columns, index_bits, entries, row_starts, gaps or values")
        }
        guard rows >= 0, columns >= 0, rows.multipliedReportingOverflow(by: columns) == (count, false) else {
            throw fail("\(label): sparse view \(rows)×\(columns) does not match the \(count) elements of its shape")
        }
        guard (1...16).contains(bits), entries >= 0, entries <= count + count / 2 + rows, fillers >= 0, fillers <= entries else {
            throw fail("\(label): sparse index_bits \(bits), entries \(entries) or fillers \(fillers) out of range")
        }
        let startBytes = try byteSymbols(startsIndex, count: (rows + 1) * 4, purpose: label)
        let starts = (0...rows).map { r in Int(startBytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4 * r, as: UInt32.self)) }) }
        guard starts.first == 0, starts.last == entries, zip(starts, starts.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw fail("\(label): row_starts must rise from 0 to \(entries)")
        }
        let gaps: [UInt16] =
            bits <= 8
            ? try byteSymbols(gapsIndex, count: entries, purpose: label).map(UInt16.init)
            : try wideSymbols(gapsIndex, count: entries, purpose: label)
        // Every entry must land inside its row.
        for row in 0..<rows {
            var column = -1
            for entry in starts[row]..<starts[row + 1] {
                guard Int(gaps[entry]) < 1 << bits else { throw fail("\(label): gap \(gaps[entry]) does not fit \(bits) bits") }
                column += Int(gaps[entry]) + 1
                guard column < columns else { throw fail("\(label): row \(row) runs past column \(columns - 1)") }
            }
        }
        let entryValues: SparseStorage.EntryValues
        switch values.kind {
        case .dense, .planes, .floatSplit: entryValues = .dense(try dense(values, dtype: dtype, count: entries, label: label))
        case .codebook: entryValues = .codebook(try codebook(values, count: entries, shape: shape, label: label))
        case .quantized: entryValues = .quantized(try quantized(values, count: entries, shape: shape, label: label))
        default: throw ContainerError(.unsupported, file: file, "\(label): sparse values encoding `\(values.kind)` is unknown: upgrade Pith")
        }
        return SparseStorage(rows: rows, columns: columns, indexBits: bits, rowStarts: starts, gaps: gaps, fillers: fillers, values: entryValues)
    }

    /// An elementwise encoding (`dense`, `planes`, `float-split`) of `count` elements of `dtype`.
    mutating func dense(_ e: Manifest.Encoding, dtype: DType, count: Int, label: String) throws -> TensorBuffer {
        guard dtype != .string, let byteCount = dtype.storageBytes(count: count) else { throw fail("\(label): \(dtype.rawValue) cannot be stored dense") }
        guard let streams = e.streams else { throw fail("\(label): \(e.kind) encoding without streams") }
        if e.kind == .dense {
            guard streams.count == 1 else { throw fail("\(label): \(e.kind) encoding needs one stream, found \(streams.count)") }
            guard let start = e.start else {
                return TensorBuffer(bytes: try byteSymbols(streams[0], count: byteCount, purpose: label))
            }
            // A pooled slice (1.4): elements `start ..< start + count` of a stream shared with other
            // tensors of this dtype; charged its share of the stream's bytes, as float-split pools are.
            guard dtype.bitWidth % 8 == 0 else { throw fail("\(label): \(dtype.rawValue) elements cannot start at an element offset of a shared stream") }
            let width = dtype.bitWidth / 8
            let before = used
            let whole = try sharedSymbols(streams[0], purpose: label)
            used = before + (whole.isEmpty ? 0 : manifest.streams[streams[0]].length * byteCount / whole.count)
            let (first, overflow) = start.multipliedReportingOverflow(by: width)
            guard start >= 0, !overflow, byteCount <= whole.count, first <= whole.count - byteCount else {
                throw fail(
                    "\(label): elements \(start)..<\(start &+ count) are outside stream \(streams[0])'s \(whole.count / width) \(dtype.rawValue) elements")
            }
            return TensorBuffer(bytes: Array(whole[first..<first + byteCount]))
        }
        let width = dtype.bitWidth / 8
        if e.kind == .floatSplit {
            let parts = dtype == .float32 ? 4 : (dtype == .bfloat16 ? 2 : 0)
            guard parts > 0, streams.count == parts else {
                throw fail("\(label): \(e.kind) encoding is defined for float32 (4 streams) and bfloat16 (2), not \(dtype.rawValue) with \(streams.count)")
            }
            let start = e.start ?? 0
            let decoded: [[UInt8]]
            if ownsSplitStreams(e, count: count) {
                // Decoded a run at a time in reused scratch, joined straight into the tensor.
                return try TensorBuffer(count: byteCount) { out in
                    try splitPieces(streams, dtype: dtype, count: count, label: label) { offset, piece in
                        (out.baseAddress! + offset).copyMemory(from: piece.baseAddress!, byteCount: piece.count)
                    }
                }
            } else {
                // Shared streams: decode each once, take this tensor's slice; the tensor is charged its
                // share of the streams' bytes, in proportion to its elements.
                decoded = try streams.map { index in
                    let before = used
                    let whole = try sharedSymbols(index, purpose: label)
                    used = before + (manifest.streams[index].symbols == 0 ? 0 : manifest.streams[index].length * count / manifest.streams[index].symbols)
                    guard start >= 0, count <= whole.count, start <= whole.count - count else {
                        throw fail("\(label): elements \(start)..<\(start &+ count) are outside stream \(index)'s \(whole.count) symbols")
                    }
                    return Array(whole[start..<start + count])
                }
            }
            return FloatSplit.join(decoded, dtype: dtype, count: count)
        }
        guard dtype.bitWidth % 8 == 0, streams.count == width else {
            throw fail("\(label): \(e.kind) encoding needs \(width) streams for \(dtype.rawValue), found \(streams.count)")
        }
        let planes = try streams.map { try byteSymbols($0, count: count, purpose: label) }
        return TensorBuffer(count: byteCount) { out in
            for (k, plane) in planes.enumerated() { for i in 0..<count { out[i * width + k] = plane[i] } }
        }
    }

    /// A `transposed` encoding (1.5): one stream of the elements column by column of the tensor
    /// viewed as `rows` (its first dimension) × `columns` (the rest).
    mutating func transposed(_ e: Manifest.Encoding, dtype: DType, count: Int, shape: [Int], label: String) throws -> TensorBuffer {
        guard dtype != .string, dtype.bitWidth % 8 == 0, dtype.bitWidth > 0, let byteCount = dtype.storageBytes(count: count) else {
            throw fail("\(label): \(dtype.rawValue) elements cannot be stored transposed")
        }
        guard let streams = e.streams, streams.count == 1 else { throw fail("\(label): \(e.kind) encoding needs one stream, found \(e.streams?.count ?? 0)") }
        guard let rows = e.rows, let columns = e.columns, shape.count >= 2, rows == shape[0], rows > 0, columns >= 0,
            rows.multipliedReportingOverflow(by: columns) == (count, false)
        else {
            throw fail(
                "\(label): \(e.kind) encoding needs rows (the first dimension) × columns (the rest) matching shape \(shape), found \(e.rows.map(String.init) ?? "none") × \(e.columns.map(String.init) ?? "none")"
            )
        }
        let stored = try byteSymbols(streams[0], count: byteCount, purpose: label)
        return TensorBuffer(bytes: stored.withUnsafeBytes { DenseChoice.transposed($0, rows: columns, columns: rows, width: dtype.bitWidth / 8) })
    }

    /// One block of a `blocks` tensor: its encoding, its shape and its element count.
    typealias Block = (encoding: Manifest.Encoding, shape: [Int], elements: Int)

    /// The blocks of a `blocks` encoding (1.6), checked against the tensor's shape: rows per block,
    /// and for each block its shape (`block_rows` rows, the last the rest, by the other dimensions)
    /// and an elementwise encoding of its own. Every block's streams are checked to hold its
    /// elements before the tensor is allocated.
    func blockLayout(_ e: Manifest.Encoding, dtype: DType, count: Int, shape: [Int], label: String) throws -> [Block] {
        guard let blockRows = e.blockRows, let blocks = e.blocks, let rows = shape.first, rows > 0, blockRows > 0 else {
            throw fail(
                "\(label): \(e.kind) encoding needs block_rows ≥ 1 and blocks over a first dimension of at least 1 (shape \(shape), block_rows \(e.blockRows.map(String.init) ?? "none"))"
            )
        }
        guard dtype.bitWidth > 0, dtype.bitWidth % 8 == 0 else { throw fail("\(label): \(dtype.rawValue) elements cannot be split into blocks of whole bytes") }
        let expected = (rows + blockRows - 1) / blockRows
        guard blocks.count == expected else {
            throw fail("\(label): \(rows) rows in blocks of \(blockRows) need \(expected) blocks, found \(blocks.count)")
        }
        let rowElements = count / rows
        var layout: [Block] = []
        for (b, block) in blocks.enumerated() {
            let blockShape = [min(blockRows, rows - b * blockRows)] + shape.dropFirst()
            let elements = blockShape[0] * rowElements
            guard Manifest.Encoding.Kind.elementwise.contains(block.kind), block.start == nil, let streams = block.streams, !streams.isEmpty else {
                throw fail(
                    "\(label): block \(b) is stored as `\(block.kind)`\(block.start != nil ? " with a start" : ""); blocks are dense, planes or float-split with streams of their own"
                )
            }
            // What the block's streams must hold: its bytes (`dense`), or one symbol per element.
            let symbols = block.kind == .dense ? elements * (dtype.bitWidth / 8) : elements
            for index in streams {
                guard let s = manifest.streams[safe: index], s.symbols == symbols else {
                    throw fail(
                        "\(label): block \(b) (\(blockShape)) needs streams of \(symbols) symbols; stream \(index) \(manifest.streams[safe: index].map { "holds \($0.symbols)" } ?? "does not exist")"
                    )
                }
            }
            layout.append((block, blockShape, elements))
        }
        return layout
    }

    /// A `blocks` tensor (1.6): each block decoded by its elementwise encoding into its rows.
    mutating func blocks(_ e: Manifest.Encoding, dtype: DType, count: Int, shape: [Int], label: String) throws -> TensorBuffer {
        let layout = try blockLayout(e, dtype: dtype, count: count, shape: shape, label: label)
        let width = dtype.bitWidth / 8
        return try TensorBuffer(count: count * width) { out in
            var offset = 0
            for (b, block) in layout.enumerated() {
                let buffer = try dense(block.encoding, dtype: dtype, count: block.elements, label: "\(label) block \(b)")
                buffer.withUnsafeBytes { if $0.count > 0 { out.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
                offset += block.elements * width
            }
        }
    }

    /// Factors of a factored tensor, their shapes checked against the method and the tensor.
    mutating func factored(_ e: Manifest.Encoding, count: Int, shape: [Int], label: String, tensor: String) throws -> FactoredStorage {
        guard let rows = e.rows, let columns = e.columns, rows >= 0, columns >= 0, rows.multipliedReportingOverflow(by: columns) == (count, false),
            shape.first.map({ $0 == rows }) ?? (rows == 1), let method = e.method, let encodings = e.factors
        else {
            throw fail("\(label): \(e.kind) encoding lacks rows × columns matching shape \(shape), a method or factors")
        }
        let limit = 1 << 16  // ranks and factors far beyond any real layer are refused before allocating
        let kind: FactoredStorage.Method
        switch method {
        case .lowRank:
            guard let rank = e.rank, (1...limit).contains(rank) else { throw fail("\(label): \(method) encoding needs a rank of 1…\(limit)") }
            kind = .lowRank(rank: rank)
        case .tensorTrain:
            guard let m = e.rowFactors, let n = e.columnFactors, let r = e.ranks, !m.isEmpty, m.count == n.count, r.count == m.count + 1,
                r.first == 1, r.last == 1, (m + n + r).allSatisfy({ (1...limit).contains($0) }),
                let rowsPadded = Shape.elementCount(m), let columnsPadded = Shape.elementCount(n), rowsPadded >= rows, columnsPadded >= columns,
                rowsPadded <= 2 * max(rows, 1) + 64, columnsPadded <= 2 * max(columns, 1) + 64
            else {
                throw fail(
                    "\(label): \(method) factors \(e.rowFactors ?? []) × \(e.columnFactors ?? []) with ranks \(e.ranks ?? []) do not describe a \(rows)×\(columns) matrix"
                )
            }
            kind = .tensorTrain(rowFactors: m, columnFactors: n, ranks: r)
        case .circulant:
            guard rows == columns else { throw fail("\(label): a \(method) matrix must be square, not \(rows)×\(columns)") }
            kind = .circulant
        case .separable:
            guard let rank = e.rank, (1...limit).contains(rank), shape.count == 4 else {
                throw fail("\(label): \(method) encoding needs a rank of 1…\(limit) and a 4-D kernel")
            }
            kind = .separable(rank: rank)
        default:
            throw ContainerError(.unsupported, file: file, "\(label): factorization method `\(method)` is unknown: upgrade Pith")
        }
        let storage = FactoredStorage(method: kind, rows: rows, columns: columns, factors: [])
        let shapes = storage.factorShapes(tensorShape: shape)
        guard shapes.count == encodings.count else { throw fail("\(label): \(method) needs \(shapes.count) factors, found \(encodings.count)") }
        var factors: [[Float]] = [], stored: [TensorStorage] = []
        for (factorShape, encoding) in zip(shapes, encodings) {
            guard let n = Shape.elementCount(factorShape), Manifest.Encoding.Kind.factorKinds.contains(encoding.kind) else {
                throw fail(
                    "\(label): factor of shape \(factorShape) is too large or stored as `\(encoding.kind)` (factors are float32 dense, planes or float-split, or codebook, quantized or sparse)"
                )
            }
            if Manifest.Encoding.Kind.elementwise.contains(encoding.kind) {
                let buffer = try dense(encoding, dtype: .float32, count: n, label: label)
                factors.append(buffer.withUnsafeBufferPointer(as: Float.self) { Array($0) })
                stored.append(.dense(buffer))
            } else {
                // Since 1.3: a factor in a compressed storage of its own.
                let storage = try decode(encoding, dtype: .float32, count: n, shape: factorShape, tensor: tensor)
                factors.append(Tensor(name: tensor, dtype: .float32, shape: factorShape, storage: storage, origin: .initializer(graph: .main)).decodedFloats())
                stored.append(storage)
            }
        }
        let compressed = stored.contains { $0.isCompressed }
        return FactoredStorage(method: kind, rows: rows, columns: columns, factors: factors, encodings: compressed ? stored : nil)
    }

    mutating func codebook(_ e: Manifest.Encoding, count: Int, shape: [Int], label: String) throws -> CodebookStorage {
        guard let bits = e.bits, (1...8).contains(bits), let channels = e.channels, channels >= 1, let axis = e.axis,
            let centroidsIndex = e.centroids, let indicesIndex = e.indices
        else {
            throw fail("\(label): \(e.kind) encoding lacks bits (1…8), channels, axis, centroids or indices")
        }
        guard channels == 1 || (axis >= 0 && axis < shape.count && shape[axis] == channels) else {
            throw fail("\(label): \(channels) codebook tables do not match axis \(axis) of shape \(shape)")
        }
        let centroidBytes = manifest.streams[safe: centroidsIndex]?.length ?? 0
        guard centroidBytes % (4 * channels) == 0, centroidBytes / (4 * channels) <= 1 << bits, centroidBytes > 0 else {
            throw fail("\(label): \(centroidBytes) bytes of centroids do not make \(channels) tables of at most \(1 << bits)")
        }
        let centroids = try floats(centroidsIndex, count: centroidBytes / 4, purpose: label)
        let indices = try byteSymbols(indicesIndex, count: count, purpose: label)
        let perChannel = centroids.count / channels
        guard indices.allSatisfy({ Int($0) < perChannel }) else { throw fail("\(label): an index points past its \(perChannel)-entry table") }
        return CodebookStorage(bits: bits, centroids: centroids, channels: channels, axis: axis, indices: indices, zeroIsReserved: e.zeroReserved ?? false)
    }

    mutating func quantized(_ e: Manifest.Encoding, count: Int, shape: [Int], label: String) throws -> QuantizedStorage {
        let axis = e.axis ?? 0
        switch e.scheme {
        case .linear:
            guard let bits = e.bits, (2...16).contains(bits), let scalesIndex = e.scales, let codesIndex = e.codes else {
                throw fail("\(label): \(Manifest.Encoding.Scheme.linear) quantization lacks bits (2…16), scales or codes")
            }
            let scaleBytes = manifest.streams[safe: scalesIndex]?.length ?? 0
            let channels = scaleBytes / 4
            guard scaleBytes % 4 == 0, channels == 1 || (axis >= 0 && axis < shape.count && shape[axis] == channels) else {
                throw fail("\(label): \(channels) scales do not match axis \(axis) of shape \(shape)")
            }
            let scales = try floats(scalesIndex, count: channels, purpose: label)
            var zeroPoints = [Int32](repeating: 0, count: channels)
            if let index = e.zeroPoints {
                let raw = try rawBytes(index, purpose: label)
                guard raw.count == channels * 4 else { throw fail("\(label): \(raw.count / 4) zero points for \(channels) scales") }
                zeroPoints = raw.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
            }
            let signed = e.signed ?? true
            // Codes are held as narrow as their bits allow, sign-extended from `bits` when signed.
            let codes: QuantizedCodes
            if bits <= 8 {
                let raw = try byteSymbols(codesIndex, count: count, purpose: label)
                let shift = Int8(8 - bits)
                codes = signed ? QuantizedCodes(int8: raw.map { (Int8(bitPattern: $0) << shift) >> shift }) : QuantizedCodes(uint8: raw)
            } else {
                let raw = try wideSymbols(codesIndex, count: count, purpose: label)
                let shift = Int16(16 - bits)
                codes = signed ? QuantizedCodes(int16: raw.map { (Int16(bitPattern: $0) << shift) >> shift }) : QuantizedCodes(uint16: raw)
            }
            return QuantizedStorage(scheme: .linear(bits: bits, signed: signed), scales: scales, zeroPoints: zeroPoints, axis: axis, codes: codes)
        case .float16, .bfloat16:
            guard let streams = e.streams, streams.count == 2 else { throw fail("\(label): \(e.scheme?.rawValue ?? "") codes need two byte streams") }
            let low = try byteSymbols(streams[0], count: count, purpose: label)
            let high = try byteSymbols(streams[1], count: count, purpose: label)
            let codes = QuantizedCodes(uint16: zip(low, high).map { UInt16($1) << 8 | UInt16($0) })
            return QuantizedStorage(scheme: e.scheme == .float16 ? .float16 : .bfloat16, scales: [], zeroPoints: [], axis: axis, codes: codes)
        default:
            throw ContainerError(.unsupported, file: file, "\(label): quantization scheme `\(e.scheme?.rawValue ?? "")` is unknown: upgrade Pith")
        }
    }
}
