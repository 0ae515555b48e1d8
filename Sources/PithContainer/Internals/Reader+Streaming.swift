import PithIR
import PithCoding

/// A tensor's dense bytes handed on a piece at a time (`ContainerFile.denseBytes`, for a streamed
/// restore), so that no buffer of the whole tensor is needed where the encoding allows.
extension Reader {
    /// Elements per stream decoded and joined in one run of `denseBytes`: four pieces of this many
    /// elements, with their byte planes, stay in cache between decoding and the caller writing them.
    static let pieceElements = 1 << 14

    /// The tensor's dense little-endian bytes, in pieces, without a buffer of the whole tensor where
    /// the encoding allows: raw dense streams are handed on from the file's own bytes (with `paging`,
    /// a run at a time, each given back once handed on); float-split streams are decoded a run at a
    /// time (`HuffmanStreamsReader`) and joined into pieces. Other encodings decode to their storage,
    /// which is expanded in memory. With `paging`, the streams' pages are given back at the end.
    mutating func denseBytes(_ entry: Manifest.TensorEntry, dtype: DType, _ body: (_ offset: Int, _ piece: UnsafeRawBufferPointer) throws -> Void) throws {
        let label = "tensor `\(entry.name)`"
        let e = entry.encoding
        guard dtype != .string else { throw ContainerError(.unsupported, file: file, "\(label): strings have no dense bytes") }
        guard let count = Shape.elementCount(entry.shape), let byteCount = dtype.storageBytes(count: count) else {
            throw fail("\(label): shape \(entry.shape) is negative or too large")
        }
        used = 0
        defer { releaseHeld() }
        if e.kind == .dense, (e.start ?? 0) == 0, let streams = e.streams, streams.count == 1, manifest.streams[safe: streams[0]]?.coding == .raw,
            manifest.streams[streams[0]].symbols == byteCount
        {
            let offset = manifest.streams[streams[0]].offset
            try inRuns(offset..<offset + stored(streams[0], purpose: label).count) { run in
                try body(run.lowerBound - offset, UnsafeRawBufferPointer(rebasing: bytes[run]))
            }
            return
        }
        let parts = dtype == .float32 ? 4 : (dtype == .bfloat16 ? 2 : 0)
        if e.kind == .floatSplit, parts > 0, let streams = e.streams, streams.count == parts, ownsSplitStreams(e, count: count) {
            try splitPieces(streams, dtype: dtype, count: count, label: label, body)
            return
        }
        if e.kind == .blocks {
            // Block by block (1.6), each handed on as its own encoding allows.
            let layout = try blockLayout(e, dtype: dtype, count: count, shape: entry.shape, label: label)
            var offset = 0
            for (b, block) in layout.enumerated() {
                var part = entry
                part.name = "\(entry.name) block \(b)"
                part.shape = block.shape
                part.encoding = block.encoding
                let start = offset
                try denseBytes(part, dtype: dtype) { o, piece in try body(start + o, piece) }
                offset += dtype.bitWidth / 8 * block.elements
            }
            return
        }
        let (tensor, _) = try self.tensor(entry)
        guard case .dense(let buffer) = tensor.densified().storage else {
            throw ContainerError(.unsupported, file: file, "\(label): \(dtype.rawValue) stored as \(e.kind) has no dense form")
        }
        try buffer.withUnsafeBytes { try body(0, $0) }
    }

    /// Whether a float-split tensor has its streams to itself (not pooled with others), each raw or
    /// Huffman-coded: then `splitPieces` decodes it a run at a time.
    func ownsSplitStreams(_ e: Manifest.Encoding, count: Int) -> Bool {
        (e.start ?? 0) == 0
            && (e.streams ?? []).allSatisfy { index in
                manifest.streams[safe: index].map { $0.symbols == count && ($0.coding == .raw || $0.coding == .huffman) } ?? false
            }
    }

    /// Float-split planes (`FloatSplit`), raw or four-stream Huffman, turned into pieces of the
    /// joined elements: each run decodes the next `pieceElements` symbols of every stream of every
    /// plane, then joins the four quarters' elements, each a piece of its own.
    mutating func splitPieces(
        _ streams: [Int], dtype: DType, count: Int, label: String, _ body: (_ offset: Int, _ piece: UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let width = dtype.bitWidth / 8
        let run = Self.pieceElements
        var raw: [UnsafeRawBufferPointer?] = []
        var readers: [HuffmanStreamsReader?] = []
        for index in streams {
            let payload = try stored(index, purpose: label)
            let s = manifest.streams[index]
            if s.coding == .raw {
                raw.append(payload)
                readers.append(nil)
            } else {
                guard s.symbolBits == 8 else { throw fail("\(label): stream \(index) has \(s.symbolBits ?? 0)-bit symbols, 8 expected") }
                do {
                    do {
                        readers.append(try HuffmanStreamsReader(payload, count: count, decoder: huffmanDecoder(s, index: index, purpose: label)))
                    } catch let error as CodingError {
                        throw fail("\(label): stream \(index): \(error)")
                    }
                } catch let error as CodingError {
                    throw fail("\(label): stream \(index): \(error)")
                }
                raw.append(nil)
            }
        }
        while planes.count < streams.count + 1 { planes.append(Scratch()) }
        let scratch = planes.prefix(streams.count).map { $0.bytes(4 * run) }
        let piece = planes[streams.count].bytes(run * width)
        let quarter = (count + 3) / 4
        var done = 0
        var givenBack = 0  // with `paging`: elements of each quarter whose raw planes' pages were given back
        while done < quarter {
            let lengths = (0..<4).map { k in max(0, min(run, min(quarter, count - k * quarter) - done)) }
            for p in readers.indices where readers[p] != nil {
                do {
                    do {
                        try readers[p]!.decodeNext(
                            run, into: (0..<4).map { k in UnsafeMutableBufferPointer(rebasing: scratch[p][k * run..<k * run + lengths[k]]) })
                    } catch let error as CodingError {
                        throw fail("\(label): stream \(streams[p]): \(error)")
                    }
                } catch let error as CodingError {
                    throw fail("\(label): stream \(streams[p]): \(error)")
                }
            }
            for k in 0..<4 where lengths[k] > 0 {
                let first = k * quarter + done
                let views = (0..<streams.count).map { p in
                    raw[p].map { UnsafeBufferPointer(rebasing: $0.bindMemory(to: UInt8.self)[first..<first + lengths[k]]) }
                        ?? UnsafeBufferPointer(rebasing: scratch[p][k * run..<k * run + lengths[k]])
                }
                FloatSplit.join(views, dtype: dtype, range: 0..<lengths[k], into: UnsafeMutableRawPointer(piece.baseAddress!))
                try body(first * width, UnsafeRawBufferPointer(start: piece.baseAddress, count: lengths[k] * width))
            }
            done += run
            if let paging, done - givenBack >= paging.run {
                // The raw planes' bytes (one per element) joined so far are read for good: each
                // quarter's are given back a run at a time. Huffman-coded planes are read in four
                // interleaved streams whose positions the reader keeps to itself: they are given
                // back with the tensor (`releaseHeld`), as is what is left here.
                let joined = givenBack..<min(done, quarter)
                for p in raw.indices where raw[p] != nil {
                    let offset = manifest.streams[streams[p]].offset
                    for k in 0..<4 {
                        paging.file.releasePages(offset + min(count, k * quarter + joined.lowerBound)..<offset + min(count, k * quarter + joined.upperBound))
                    }
                }
                givenBack = done
            }
        }
        for p in readers.indices {
            do { try readers[p]?.finish() } catch let error as CodingError { throw fail("\(label): stream \(streams[p]): \(error)") }
        }
    }
}
