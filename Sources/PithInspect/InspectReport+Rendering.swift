import Foundation
import PithIR

extension InspectReport {
    /// The report as JSON (see `ReportJSON`; `Schemas/inspect-report.schema.json`).
    public func renderJSON() -> String { ReportJSON.text(self) }

    /// One header line and one line per tensor row (RFC 4180 quoting).
    public func renderCSV() -> String {
        var lines = ["name,layer,op,shape,dtype,count,nonzero,sparsity,distinct,bits_per_weight,bytes,min,max,mean,std"]
        for row in tensors {
            let fields: [String] = [
                row.name, row.layer, row.op, row.shape.map(String.init).joined(separator: "x"), row.dtype.rawValue,
                String(row.count), String(row.nonzero), Self.plain(row.sparsity),
                row.distinctCapped ? ">=\(row.distinct)" : String(row.distinct),
                Self.plain(row.bitsPerWeight), String(row.bytes),
                row.min.map(Self.plain) ?? "", row.max.map(Self.plain) ?? "",
                row.mean.map(Self.plain) ?? "", row.std.map(Self.plain) ?? "",
            ]
            lines.append(fields.map(Self.csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Aligned tables for a terminal: tensors, totals, layers.
    public func renderText() -> String {
        var out = "\(file): \(format.rawValue)"
        if !producer.isEmpty { out += ", produced by \(producer)" }
        out += "\n\n"
        let header = [
            "tensor", "feeds", "shape", "dtype", "elements", "nonzero", "sparse", "distinct",
            "bits", "bytes", "min", "max", "mean", "std",
        ]
        var rows: [[String]] = []
        for row in tensors {
            let feeds = [row.op, row.layer].filter { !$0.isEmpty }.joined(separator: " ")
            rows.append([
                row.name, feeds.isEmpty ? "-" : feeds, Shape.describe(row.shape), row.dtype.rawValue,
                TextTable.grouped(row.count), TextTable.grouped(row.nonzero), TextTable.percent(row.sparsity),
                (row.distinctCapped ? "≥" : "") + TextTable.grouped(row.distinct),
                Self.short(row.bitsPerWeight), TextTable.grouped(row.bytes),
                row.min.map(Self.short) ?? "-", row.max.map(Self.short) ?? "-",
                row.mean.map(Self.short) ?? "-", row.std.map(Self.short) ?? "-",
            ])
        }
        out += TextTable.render(header: header, rows: rows, rightAligned: Set(4..<14))
        if tensors.count < totals.tensors { out += "(showing \(tensors.count) of \(totals.tensors) tensors)\n" }
        out += "\ntotal: \(TextTable.grouped(totals.tensors)) tensors, \(TextTable.grouped(totals.count)) elements, "
        out += "\(TextTable.grouped(totals.nonzero)) nonzero (\(TextTable.percent(totals.sparsity)) sparse), "
        out += "\(TextTable.grouped(totals.bytes)) bytes (\(Self.humanBytes(totals.bytes)))\n"
        if let optimizerState {
            out += "optimizer state (not counted above): \(TextTable.grouped(optimizerState.tensors)) tensors, "
            out += "\(TextTable.grouped(optimizerState.count)) elements, \(TextTable.grouped(optimizerState.bytes)) bytes\n"
        }
        if let container {
            out += "\nDeep Compression accounting (bits per stored entry, before → after entropy coding):\n"
            let rows = container.rows.map { row -> [String] in
                [
                    row.tensor, TextTable.grouped(row.elements), TextTable.percent(row.elements == 0 ? 0 : Double(row.kept) / Double(row.elements)),
                    row.encoding, String(format: "%.2f → %.2f", row.weightBitsBefore, row.weightBitsAfter),
                    row.indexBitsBefore == 0 ? "-" : String(format: "%.2f → %.2f", row.indexBitsBefore, row.indexBitsAfter),
                    TextTable.grouped(row.fillers), TextTable.grouped(row.tableBytes),
                    TextTable.grouped(row.bytesBefore) + " → " + TextTable.grouped(row.bytes),
                    String(format: "%.1f×", row.bytes == 0 ? 0 : Double(row.denseBytes) / Double(row.bytes)),
                ]
            }
            out += TextTable.render(
                header: ["tensor", "weights", "kept", "encoding", "weight bits", "index bits", "fillers", "table bytes", "bytes", "ratio"],
                rows: rows, rightAligned: [1, 2, 4, 5, 6, 7, 8, 9])
            let tensorBytes = container.rows.reduce(0) { $0 + $1.bytes }, dense = container.rows.reduce(0) { $0 + $1.denseBytes }
            out +=
                "total: \(TextTable.grouped(dense)) bytes dense → \(TextTable.grouped(tensorBytes)) bytes of tensors + \(TextTable.grouped(container.overheadBytes)) of header, manifest, graph and alignment = \(TextTable.grouped(container.fileBytes)) bytes (\(String(format: "%.2f", Double(dense) / Double(max(1, container.fileBytes))))×)\n"
        }
        out += "\nper layer:\n"
        let layerRows = layers.map { layer -> [String] in
            [
                layer.layer.isEmpty ? "-" : layer.layer, layer.op.isEmpty ? "-" : layer.op, String(layer.tensors),
                TextTable.grouped(layer.count), TextTable.grouped(layer.nonzero),
                TextTable.percent(layer.count == 0 ? 0 : Double(layer.count - layer.nonzero) / Double(layer.count)),
                TextTable.grouped(layer.bytes), TextTable.percent(totals.bytes == 0 ? 0 : Double(layer.bytes) / Double(totals.bytes)),
            ]
        }
        out += TextTable.render(
            header: ["layer", "op", "tensors", "elements", "nonzero", "sparse", "bytes", "share"],
            rows: layerRows, rightAligned: Set(2..<8))
        return out
    }

    // MARK: Formatting helpers

    /// Four significant digits, for statistics in a table.
    static func short(_ value: Double) -> String { String(format: "%.4g", value) }

    /// Round-trippable shortest form, for CSV.
    static func plain(_ value: Double) -> String { "\(value)" }

    static func humanBytes(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) B" : String(format: "%.2f", value) + " " + units[unit]
    }

    static func csvField(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
