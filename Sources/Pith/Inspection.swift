import Foundation
@_exported public import PithInspect
import PithContainer

/// `pith inspect`: every tensor of a model measured, then totals and a per-layer summary; for a
/// `.pith` container, also where the container's bytes went.
public enum Inspection {
    /// Loads and inspects the model at `path`. For a `.pith` container, each tensor's bytes are the
    /// bytes its streams occupy in the file (after entropy coding).
    public static func run(
        _ path: String, sort: InspectSort = .file, top: Int? = nil, distinctCap: Int = Inspector.defaultDistinctCap
    ) throws -> InspectReport {
        if try ModelFile.detectFormat(of: path) == .pith {
            if let stored = try StoredWhole.source(of: path) {
                let model = try StoredWhole.load(stored, container: path).model
                return Inspector.inspect(model, file: path, sort: sort, top: top, distinctCap: distinctCap, container: stored.summary)
            }
            let contents = try PithError.translatingErrors { try ContainerReader.read(contentsOf: path) }
            return Inspector.inspect(
                contents.model, file: path, sort: sort, top: top, distinctCap: distinctCap,
                storedBytes: contents.tensorBytes, container: containerSummary(contents))
        }
        return Inspector.inspect(try ModelFile.load(path), file: path, sort: sort, top: top, distinctCap: distinctCap)
    }

    /// The Deep Compression accounting of a container: IR bits before entropy coding beside the
    /// bytes the container's streams take.
    static func containerSummary(_ contents: ContainerReader.Contents) -> InspectReport.ContainerSummary {
        let accounting = ContainerAccounting(
            manifest: contents.manifest, manifestBytes: contents.manifestBytes, manifestOffset: contents.fileBytes - contents.manifestBytes,
            skeletonInManifest: contents.skeleton != nil && contents.manifest.source.skeleton == nil)
        var rows: [InspectReport.ContainerSummary.Row] = []
        for (tensor, after) in zip(contents.model.tensors, accounting.tensors) {
            let bits = tensor.storageBits
            var entries = tensor.count, fillers = 0, kept = tensor.count
            var encoding = tensor.storageLabel
            switch tensor.storage {
            case .sparse(let sparse):
                entries = sparse.entries
                fillers = sparse.fillers
                kept = sparse.entries - sparse.fillers
            case .codebook(let c):
                kept = c.indices.filter { $0 != 0 || !c.zeroIsReserved }.count
            case .quantized:
                break
            case .factored:
                kept = tensor.decodedFloats().filter { $0 != 0 }.count
            case .dense, .strings:
                // A dense tensor's label says how the container stores it and how each stream is
                // coded: `float-split float32 (2 huffman + 2 raw)`, `dense float32 (zstd)`,
                // `dense int64 (pooled, zstd)`,
                // `blocks float32 (120 blocks of 1 row, float-split, 240 huffman + 240 raw)`.
                if let stored = contents.manifest.tensors.first(where: { $0.name == tensor.name })?.encoding {
                    let kind = stored.kind
                    if kind != .dense { encoding = "\(kind) \(tensor.dtype.rawValue)" }
                    // A `blocks` tensor (1.6): the codings of all its blocks' streams.
                    let streams = stored.kind == .blocks ? (stored.blocks ?? []).flatMap { $0.streams ?? [] } : stored.streams ?? []
                    let codings = streams.compactMap {
                        $0 >= 0 && $0 < contents.manifest.streams.count ? contents.manifest.streams[$0].coding.rawValue : nil
                    }
                    var counts: [(String, Int)] = []
                    for coding in codings {
                        if let k = counts.firstIndex(where: { $0.0 == coding }) { counts[k].1 += 1 } else { counts.append((coding, 1)) }
                    }
                    var notes = stored.start != nil ? ["pooled"] : []
                    if let blocks = stored.blocks, stored.kind == .blocks {
                        let kinds = blocks.reduce(into: [String]()) { if !$0.contains($1.kind.rawValue) { $0.append($1.kind.rawValue) } }
                        let rows = stored.blockRows ?? 0
                        notes.append("\(blocks.count) blocks of \(rows) row\(rows == 1 ? "" : "s"), \(kinds.joined(separator: " or "))")
                    }
                    notes.append(counts.map { $0.1 == 1 ? $0.0 : "\($0.1) \($0.0)" }.joined(separator: " + "))
                    if !codings.isEmpty { encoding += " (\(notes.joined(separator: ", ")))" }
                }
                kept = tensor.decodedFloats().filter { $0 != 0 }.count
            }
            let perEntry = { (bits: Int) in entries == 0 ? 0 : Double(bits) / Double(entries) }
            rows.append(
                .init(
                    tensor: tensor.name, layer: tensor.consumer?.name ?? "", elements: tensor.count, kept: kept, encoding: encoding,
                    entries: entries, fillers: fillers, weightBitsBefore: perEntry(bits.weights), weightBitsAfter: after.weightBitsPerEntry,
                    indexBitsBefore: perEntry(bits.indices + bits.rowPointers), indexBitsAfter: after.indexBitsPerEntry,
                    tableBytes: after.tableBytes, bytesBefore: (bits.total + 7) / 8, bytes: after.bytes,
                    denseBytes: tensor.dtype.storageBytes(count: tensor.count) ?? 0))
        }
        let tensorBytes = rows.reduce(0) { $0 + $1.bytes }
        return .init(fileBytes: contents.fileBytes, overheadBytes: contents.fileBytes - tensorBytes, rows: rows)
    }
}
