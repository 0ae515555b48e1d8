import PithIR
import PithCoding

/// The checks of the stream table and of pooled streams that `ContainerFile` runs when it opens a
/// container, before any tensor is decoded.
extension Reader {
    /// Which streams start on a 64-byte boundary.
    enum Alignment {
        /// Before format 1.4.
        case everyStream
        /// Since 1.4: coded streams follow each other without padding.
        case rawStreams
        /// A packed container (1.6): streams follow each other in index order.
        case none
    }

    /// Every stream inside the data area, aligned as `alignment` says, with plausible counts, and no
    /// two overlapping.
    func validateStreams(alignment: Alignment) throws {
        guard manifest.streams.count <= ContainerReader.maximumStreams else {
            throw fail("manifest lists \(manifest.streams.count) streams; the limit is \(ContainerReader.maximumStreams)")
        }
        for (i, s) in manifest.streams.enumerated() {
            guard s.dictionary == nil || s.coding == .zstd else {
                throw fail("stream \(i): a \(s.coding) stream has no dictionary (`dictionary` is for zstd streams)")
            }
            let aligned = alignment == .everyStream || (alignment == .rawStreams && s.coding == .raw)
            guard s.offset >= ContainerHeader.size, !aligned || s.offset % ContainerHeader.alignment == 0, s.length >= 0,
                s.offset <= streamsEnd, s.length <= streamsEnd - s.offset
            else {
                throw fail(
                    "stream \(i): bytes \(s.offset)..<\(s.offset &+ s.length) are not inside the data area 64..<\(streamsEnd)\(aligned ? " on a 64-byte boundary" : "")"
                )
            }
            switch s.coding {
            case .raw:
                guard s.symbols == s.length else { throw fail("stream \(i): \(s.coding) stream of \(s.length) bytes declares \(s.symbols) symbols") }
            case .huffman:
                guard s.symbolBits == 8 || s.symbolBits == 16 else { throw fail("stream \(i): symbol_bits must be 8 or 16") }
                guard let lengths = s.codeLengths, lengths.count <= (1 << (s.symbolBits ?? 8)) else {
                    throw fail("stream \(i): \(s.coding) stream without code lengths for its alphabet")
                }
                // Every symbol takes at least one bit.
                guard s.symbols >= 0, s.length >= HuffmanStreams.headerBytes, s.symbols <= (s.length - HuffmanStreams.headerBytes) * 8 else {
                    throw fail("stream \(i): \(s.length) bytes cannot hold \(s.symbols) Huffman symbols")
                }
            case .zstd:
                if let dictionary = s.dictionary, !Manifest.StreamEntry.knownDictionaries.contains(dictionary) {
                    throw ContainerError(
                        .unsupported, file: file,
                        "stream \(i): dictionary `\(dictionary)` is not one this Pith knows (\(Manifest.StreamEntry.knownDictionaries.joined(separator: ", "))): upgrade Pith"
                    )
                }
                guard s.symbols >= 0, s.symbols <= ContainerReader.maximumMetadataBytes else {
                    throw fail("stream \(i): a \(s.coding) stream may decode to at most \(ContainerReader.maximumMetadataBytes) bytes, not \(s.symbols)")
                }
            default:
                let known = Manifest.StreamEntry.Coding.known.map(\.rawValue).joined(separator: ", ")
                throw ContainerError(.unsupported, file: file, "stream \(i): coding `\(s.coding)` is not one this Pith knows (\(known)): upgrade Pith")
            }
        }
        let order = manifest.streams.indices.sorted { manifest.streams[$0].offset < manifest.streams[$1].offset }
        for (a, b) in zip(order, order.dropFirst()) where manifest.streams[a].offset + manifest.streams[a].length > manifest.streams[b].offset {
            throw fail("streams \(a) and \(b) overlap (bytes \(manifest.streams[b].offset)…)")
        }
    }

    /// Tensors that share `float-split` streams must tile them: their element ranges, identical
    /// ones merged, follow each other without gap or overlap and end where the streams end.
    /// Pooled `dense` slices (1.4) likewise, counted in bytes.
    func validatePools() throws {
        var pools: [[Int]: [(start: Int, count: Int, name: String)]] = [:]
        var units: [[Int]: String] = [:]
        for entry in manifest.tensors where entry.encoding.kind == .floatSplit {
            guard let streams = entry.encoding.streams, let count = Shape.elementCount(entry.shape) else { continue }
            pools[streams, default: []].append((entry.encoding.start ?? 0, count, entry.name))
            units[streams] = "elements"
        }
        for entry in manifest.tensors where entry.encoding.kind == .dense {
            guard let start = entry.encoding.start, let streams = entry.encoding.streams, let count = Shape.elementCount(entry.shape),
                let dtype = DType(rawValue: entry.dtype), dtype.bitWidth > 0, dtype.bitWidth % 8 == 0
            else { continue }
            let width = dtype.bitWidth / 8
            let (first, overflow) = start.multipliedReportingOverflow(by: width)
            let (bytes, overflow2) = count.multipliedReportingOverflow(by: width)
            guard !overflow, !overflow2 else { throw fail("tensor `\(entry.name)`: elements \(start)..<\(start &+ count) are past any stream") }
            // Counted in bytes: the stream's symbols.
            pools[streams, default: []].append((first, bytes, entry.name))
            units[streams] = "bytes"
        }
        for (streams, members) in pools {
            guard let first = streams.first, let symbols = manifest.streams[safe: first]?.symbols else { continue }
            var ranges: [(start: Int, count: Int, name: String)] = []
            for member in members.sorted(by: { ($0.start, $0.count) < ($1.start, $1.count) })
            where ranges.last.map({ $0.start != member.start || $0.count != member.count }) ?? true {
                ranges.append(member)
            }
            var next = 0
            for range in ranges {
                guard range.start == next else {
                    throw fail(
                        "tensor `\(range.name)`: \(units[streams] ?? "elements") \(range.start)..<\(range.start &+ range.count) of streams \(streams) \(range.start < next ? "overlap the tensor before" : "leave a gap after the tensor before")"
                    )
                }
                next = range.start + range.count
            }
            guard next == symbols else { throw fail("tensors sharing streams \(streams) cover \(next) of their \(symbols) symbols") }
        }
    }
}
