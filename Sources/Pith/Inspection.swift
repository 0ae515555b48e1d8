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
            let contents = try PithError.translatingErrors { try ContainerReader.read(contentsOf: path) }
            return Inspector.inspect(contents.model, file: path, sort: sort, top: top, distinctCap: distinctCap,
                                     storedBytes: contents.tensorBytes, container: containerSummary(contents))
        }
        return Inspector.inspect(try ModelFile.load(path), file: path, sort: sort, top: top, distinctCap: distinctCap)
    }

    /// The Deep Compression accounting of a container: IR bits before entropy coding beside the
    /// bytes the container's streams take.
    static func containerSummary(_ contents: ContainerReader.Contents) -> InspectReport.ContainerSummary {
        let accounting = ContainerAccounting(manifest: contents.manifest, manifestBytes: contents.manifestBytes)
        var rows: [InspectReport.ContainerSummary.Row] = []
        for (tensor, after) in zip(contents.model.tensors, accounting.tensors) {
            let bits = tensor.storageBits
            var entries = tensor.count, fillers = 0, kept = tensor.count
            var encoding = "dense \(tensor.dtype.rawValue)"
            let encodingName = contents.manifest.tensors.first { $0.name == tensor.name }?.encoding.kind ?? "dense"
            switch tensor.storage {
            case .sparse(let sparse):
                entries = sparse.entries
                fillers = sparse.fillers
                kept = sparse.entries - sparse.fillers
                switch sparse.values {
                case .codebook(let c): encoding = "csr(\(sparse.indexBits)) + codebook(\(c.bits))"
                case .quantized(let q): encoding = "csr(\(sparse.indexBits)) + \(q.scales.isEmpty ? "float" : "int")\(q.codeBits)"
                case .dense: encoding = "csr(\(sparse.indexBits)) + \(tensor.dtype.rawValue)"
                }
            case .codebook(let c):
                encoding = "codebook(\(c.bits))"
                kept = c.indices.filter { $0 != 0 || !c.zeroIsReserved }.count
            case .quantized(let q): encoding = q.scales.isEmpty ? "float\(q.codeBits)" : "int\(q.codeBits)"
            case .factored(let f):
                switch f.method {
                case .lowRank(let r): encoding = "svd rank \(r)"
                case .tensorTrain(_, _, let ranks): encoding = "tt \(ranks.map(String.init).joined(separator: "-"))"
                case .circulant: encoding = "circulant"
                case .separable(let r): encoding = "separable \(r)"
                }
                kept = tensor.decodedFloats().filter { $0 != 0 }.count
            default:
                if encodingName != "dense" { encoding = "\(encodingName) \(tensor.dtype.rawValue)" }
                kept = tensor.decodedFloats().filter { $0 != 0 }.count
            }
            let perEntry = { (bits: Int) in entries == 0 ? 0 : Double(bits) / Double(entries) }
            rows.append(.init(
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
