import Foundation
import PithContainer
import PithInspect

extension ContainerAccounting {
    /// The after-entropy-coding columns per tensor, then every byte of the file accounted for.
    /// `compressedOnly` limits the rows to those tensors (others are summed in one line).
    public func renderText(compressedOnly names: Set<String>?) -> String {
        if let whole = storedWhole {
            return "\nstored whole: the source file (\(TextTable.grouped(whole.sourceBytes)) bytes) as \(whole.framing), "
                + "smaller than the per-tensor container: \(TextTable.grouped(fileBytes - headerBytes)) + \(headerBytes) header = \(TextTable.grouped(fileBytes)) bytes\n"
        }
        var out = "\nstored (after entropy coding):\n"
        let shown = tensors.filter { names?.contains($0.tensor) ?? true }
        let rows = shown.map { row -> [String] in
            [
                row.tensor, TextTable.grouped(row.entries), String(format: "%.2f", row.weightBitsPerEntry),
                row.indexBytes == 0 ? "-" : String(format: "%.2f", row.indexBitsPerEntry),
                TextTable.grouped(row.weightBytes), TextTable.grouped(row.indexBytes), TextTable.grouped(row.tableBytes), TextTable.grouped(row.bytes),
            ]
        }
        out += TextTable.render(
            header: ["tensor", "entries", "weight bits", "index bits", "weight bytes", "index bytes", "table bytes", "bytes"],
            rows: rows, rightAligned: Set(1..<8))
        let others = tensors.filter { !(names?.contains($0.tensor) ?? true) }
        let othersBytes = others.reduce(0) { $0 + $1.bytes }
        if !others.isEmpty { out += "other \(others.count) tensors: \(TextTable.grouped(othersBytes)) bytes\n" }
        out += "file: \(TextTable.grouped(shown.reduce(0) { $0 + $1.bytes })) + \(TextTable.grouped(othersBytes)) tensor bytes"
        out +=
            skeletonInManifest
            ? " + \(TextTable.grouped(manifestBytes)) manifest and skeleton + \(headerBytes) header"
            : " + \(TextTable.grouped(skeletonBytes)) skeleton + \(TextTable.grouped(manifestBytes)) manifest + \(headerBytes) header"
        out += " + \(TextTable.grouped(paddingBytes)) alignment = \(TextTable.grouped(fileBytes)) bytes\n"
        return out
    }
}
