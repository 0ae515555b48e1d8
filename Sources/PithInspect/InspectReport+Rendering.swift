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

    /// How much `renderText` shows.
    public struct TextDetail: Sendable {
        /// Every tensor (and every container row), not only the largest weights.
        public var all: Bool
        /// The per-layer table.
        public var layers: Bool
        /// Weight rows shown by default (the largest, in report order).
        public var weightRows: Int

        public init(all: Bool = false, layers: Bool = false, weightRows: Int = 20) {
            self.all = all
            self.layers = layers
            self.weightRows = weightRows
        }
    }

    /// Aligned tables for a terminal: the model first (format, opsets, inputs and outputs, operators,
    /// parameters per operator), then its weights — the largest `detail.weightRows` unless
    /// `detail.all` — with the other tensors (biases, normalization parameters, shape constants,
    /// scalars) in one line unless `detail.all`, then totals, the container's accounting, and the
    /// per-layer table with `detail.layers`.
    public func renderText(_ detail: TextDetail = TextDetail()) -> String {
        var out = headline() + "\n"
        if let summary { out += Self.renderSummary(summary, totalBytes: totals.bytes) }

        let weightRoles: Set<String> = ["weight", "embedding", "unknown", ""]
        var shown = tensors
        var hidden: [TensorStatistics] = []
        if !detail.all {
            let weights = tensors.filter { weightRoles.contains($0.role) }
            hidden = tensors.filter { !weightRoles.contains($0.role) }
            shown = weights
            if weights.count > detail.weightRows {
                let largest = Set(weights.indices.sorted { (weights[$0].bytes, $1) > (weights[$1].bytes, $0) }.prefix(detail.weightRows))
                shown = weights.indices.filter { largest.contains($0) }.map { weights[$0] }
            }
        }
        out += "\n"
        if !detail.all {
            let weightCount = tensors.count - hidden.count
            out += shown.count < weightCount ? "weights (the \(shown.count) largest of \(weightCount)):\n" : "weights:\n"
        }
        out += Self.tensorTable(shown)
        if tensors.count < totals.tensors { out += "(showing \(tensors.count) of \(totals.tensors) tensors)\n" }
        if !detail.all {
            let weightCount = tensors.count - hidden.count
            if shown.count < weightCount { out += "… and \(weightCount - shown.count) more weights; --all lists every tensor\n" }
            if !hidden.isEmpty {
                var kinds: [String: Int] = [:]
                for row in hidden { kinds[row.role, default: 0] += 1 }
                let list = kinds.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.value) \(Self.rolePhrase($0.key))" }.joined(separator: ", ")
                let elements = hidden.reduce(0) { $0 + $1.count }, bytes = hidden.reduce(0) { $0 + $1.bytes }
                out += "other tensors: \(hidden.count) (\(list)), \(TextTable.grouped(elements)) elements, "
                out += "\(TextTable.grouped(bytes)) bytes; --all lists them\n"
            }
        }
        out += "\ntotal: \(TextTable.grouped(totals.tensors)) tensors, \(TextTable.grouped(totals.count)) elements, "
        out += "\(TextTable.grouped(totals.nonzero)) nonzero (\(TextTable.percent(totals.sparsity)) sparse), "
        out += "\(TextTable.grouped(totals.bytes)) bytes (\(Self.humanBytes(totals.bytes)))\n"
        if let optimizerState {
            out += "optimizer state (not counted above): \(TextTable.grouped(optimizerState.tensors)) tensors, "
            out += "\(TextTable.grouped(optimizerState.count)) elements, \(TextTable.grouped(optimizerState.bytes)) bytes\n"
        }
        if let container, let whole = container.storedWhole {
            out += "\nstored whole: the source file (\(TextTable.grouped(whole.sourceBytes)) bytes) as \(whole.framing) "
            out += "= \(TextTable.grouped(container.fileBytes)) bytes "
            out += "(\(String(format: "%.2f", Double(whole.sourceBytes) / Double(max(1, container.fileBytes))))×); restore gives back its bytes\n"
        } else if let container {
            out += "\nDeep Compression accounting (bits per stored entry, before → after entropy coding):\n"
            let names = Set(shown.map(\.name))
            let listed = detail.all ? container.rows : container.rows.filter { names.contains($0.tensor) }
            let rows = listed.map { row -> [String] in
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
            if listed.count < container.rows.count {
                let rest = container.rows.filter { !names.contains($0.tensor) }
                out += "… and \(rest.count) more tensors, \(TextTable.grouped(rest.reduce(0) { $0 + $1.bytes })) bytes; --all lists them\n"
            }
            let tensorBytes = container.rows.reduce(0) { $0 + $1.bytes }, dense = container.rows.reduce(0) { $0 + $1.denseBytes }
            out +=
                "total: \(TextTable.grouped(dense)) bytes dense → \(TextTable.grouped(tensorBytes)) bytes of tensors + \(TextTable.grouped(container.overheadBytes)) of header, manifest, graph and alignment = \(TextTable.grouped(container.fileBytes)) bytes (\(String(format: "%.2f", Double(dense) / Double(max(1, container.fileBytes))))×)\n"
        }
        if detail.layers || detail.all {
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
        } else {
            out += "(--layers adds the per-layer table)\n"
        }
        return out
    }

    /// `FILE: ONNX model (IR 7; ai.onnx 12), produced by paddle2onnx 1.0.0`.
    func headline() -> String {
        let kind: String
        switch format {
        case .onnx: kind = "ONNX model"
        case .keras2: kind = "Keras 2 HDF5 model"
        case .keras3Legacy: kind = "Keras 3 legacy HDF5 model"
        case .keras3Weights: kind = "Keras 3 weights file"
        case .hdf5: kind = "HDF5 file (no Keras structure)"
        }
        var details: [String] = []
        if let ir = summary?.irVersion { details.append("IR \(ir)") }
        if let opsets = summary?.opsets, !opsets.isEmpty { details.append("opset " + opsets.joined(separator: ", ")) }
        var line = "\(file): \(kind)" + (details.isEmpty ? "" : " (\(details.joined(separator: "; ")))")
        if !producer.isEmpty { line += ", produced by \(TextTable.bounded(producer))" }
        if container != nil { line += ", in a .pith container" }
        return line
    }

    static func renderSummary(_ summary: ModelSummary, totalBytes: Int) -> String {
        var out = ""
        // Symbolic dimensions with long names (`p2o.DynamicDimension.0`) are shown by a short
        // letter — N for the first axis, H and W for the last two of an NCHW image — and named once
        // below.
        var letters: [String: String] = [:], legend: [String] = []
        func short(_ name: String, axis: Int, shape: [String]) -> String {
            if name.count <= 10 { return name }
            if let letter = letters[name] { return letter }
            let image = shape.count == 4 && Int(shape[1]) != nil
            var letter = axis == 0 ? "N" : image && axis == 2 ? "H" : image && axis == 3 ? "W" : "d\(axis)"
            while letters.values.contains(letter) { letter += "'" }
            letters[name] = letter
            legend.append("\(letter) = \(TextTable.bounded(name, limit: 40))")
            return letter
        }
        func describe(_ v: ModelSummary.Value) -> String {
            guard let shape = v.shape else { return "rank unknown" }
            return "[" + shape.enumerated().map { Int($1) != nil || $1 == "?" ? $1 : short($1, axis: $0, shape: shape) }.joined(separator: ", ") + "]"
        }
        func values(_ title: String, _ list: [ModelSummary.Value]) {
            guard !list.isEmpty else { return }
            out += "\n\(title):\n"
            let rows = list.prefix(20).map { v in ["  " + v.name, v.dtype ?? "?", describe(v)] }
            out += TextTable.render(header: ["", "", ""], rows: Array(rows), rightAligned: []).drop { $0 == "\n" }.description
            if list.count > 20 { out += "  … and \(list.count - 20) more\n" }
        }
        values("inputs", summary.inputs)
        values("outputs", summary.outputs)
        if !legend.isEmpty { out += "  symbolic dimensions: " + Self.wrapped(legend, start: 23, indent: 4) }
        if let nodes = summary.nodes {
            out += "\noperators (\(TextTable.grouped(nodes)) nodes): "
            out += Self.wrapped(summary.operators.map { "\($0.op) \($0.count)" }, indent: 2)
        }
        if !summary.parameters.isEmpty {
            out += "\nparameters by operator:\n"
            let top = summary.parameters.prefix(8)
            var rows = top.map { p in
                [
                    "  " + p.op, TextTable.grouped(p.tensors), TextTable.grouped(p.elements), TextTable.grouped(p.bytes),
                    TextTable.percent(totalBytes == 0 ? 0 : Double(p.bytes) / Double(totalBytes)),
                ]
            }
            let rest = summary.parameters.dropFirst(8)
            if !rest.isEmpty {
                let bytes = rest.reduce(0) { $0 + $1.bytes }
                rows.append([
                    "  \(rest.count) more", TextTable.grouped(rest.reduce(0) { $0 + $1.tensors }), TextTable.grouped(rest.reduce(0) { $0 + $1.elements }),
                    TextTable.grouped(bytes), TextTable.percent(totalBytes == 0 ? 0 : Double(bytes) / Double(totalBytes)),
                ])
            }
            out += TextTable.render(header: ["  op", "tensors", "elements", "bytes", "share"], rows: rows, rightAligned: [1, 2, 3, 4])
        }
        return out
    }

    /// Items joined by commas, broken into lines of at most about 100 columns (the first line
    /// starting at column `start`), later lines indented by `indent`.
    static func wrapped(_ items: [String], start: Int = 30, indent: Int) -> String {
        var lines: [String] = [], line = "", column = start
        for (i, item) in items.enumerated() {
            let piece = item + (i + 1 < items.count ? "," : "")
            if !line.isEmpty && column + piece.count + 1 > 100 {
                lines.append(line)
                line = String(repeating: " ", count: indent)
                column = indent
            } else if !line.isEmpty {
                line += " "
                column += 1
            }
            line += piece
            column += piece.count
        }
        lines.append(line)
        return lines.joined(separator: "\n") + "\n"
    }

    static func rolePhrase(_ role: String) -> String {
        switch role {
        case "bias": return "biases"
        case "normalization": return "normalization parameters"
        case "shape": return "shape and index constants"
        case "other": return "scalars and other constants"
        default: return role
        }
    }

    /// The tensor table.
    static func tensorTable(_ rows: [TensorStatistics]) -> String {
        let header = [
            "tensor", "feeds", "shape", "dtype", "elements", "nonzero", "sparse", "distinct",
            "bits", "bytes", "min", "max", "mean", "std",
        ]
        let cells = rows.map { row -> [String] in
            let feeds = [row.op, row.layer].filter { !$0.isEmpty }.joined(separator: " ")
            return [
                row.name, feeds.isEmpty ? "-" : feeds, Shape.describe(row.shape), row.dtype.rawValue,
                TextTable.grouped(row.count), TextTable.grouped(row.nonzero), TextTable.percent(row.sparsity),
                (row.distinctCapped ? "≥" : "") + TextTable.grouped(row.distinct),
                short(row.bitsPerWeight), TextTable.grouped(row.bytes),
                row.min.map(short) ?? "-", row.max.map(short) ?? "-",
                row.mean.map(short) ?? "-", row.std.map(short) ?? "-",
            ]
        }
        return TextTable.render(header: header, rows: cells, rightAligned: Set(4..<14))
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
