import Foundation
import PithPasses
import PithIR
import PithInspect

extension CompressionReport {
    /// The report as JSON (`ReportJSON`): non-finite weight errors as `"inf"`, `"-inf"`, `"nan"`.
    public func renderJSON() -> String { ReportJSON.text(self) }

    /// The passes, then the per-tensor accounting in the layout of Deep Compression's Table 2.
    public func renderText(file: String) -> String {
        var out = "\(file): compression report (seed \(seed))\n"
        if let calibration {
            out += "calibration: \(calibration.data), \(TextTable.grouped(calibration.samples)) samples, damp \(calibration.damp)\n"
        }
        out += "\npasses:\n"
        let passRows = passes.map { row -> [String] in
            [
                String(row.step), row.action, row.tensor, TextTable.grouped(row.elements),
                TextTable.percent(row.elements == 0 ? 0 : Double(row.kept) / Double(row.elements)),
                String(format: "%.2f", row.bitsPerWeight), TextTable.grouped(row.bytesBefore), TextTable.grouped(row.bytesAfter),
                row.error.map { String(format: "%.3g", $0.maxAbs) } ?? "-", row.error.map { String(format: "%.3g", $0.rmse) } ?? "-",
                row.error.map { $0.snrDB.map { String(format: "%.1f", $0) } ?? "inf" } ?? "-", row.detail,
            ]
        }
        out += TextTable.render(
            header: ["#", "pass", "tensor", "elements", "kept", "bits/w", "bytes before", "after", "max |err|", "rmse", "snr dB", "detail"],
            rows: passRows, rightAligned: Set(3..<11))
        let aware = passes.filter { $0.layerError != nil }
        if !aware.isEmpty {
            out += "\nlayer output error of the data-aware passes, E‖(W − Ŵ)x + Δb‖² / E‖Wx‖² on the calibration data:\n"
            let rows = aware.map { row -> [String] in
                let e = row.layerError!
                return [
                    String(row.step), row.action + (e.measure == .meanShift ? " (mean shift²)" : ""), row.tensor, TextTable.grouped(e.rows),
                    String(format: "%.4g", e.before), String(format: "%.4g", e.dataFree),
                    String(format: "%.4g", e.after), e.dataFree > 0 ? String(format: "%.3f", e.after / e.dataFree) : "-",
                ]
            }
            out += TextTable.render(
                header: ["#", "pass", "tensor", "rows", "before", "data-free", "data-aware", "aware / free"], rows: rows, rightAligned: Set(3..<8))
        }
        if !skipped.isEmpty {
            out += "\nskipped:\n"
            for skip in skipped { out += "  pass \(skip.step) \(skip.action) `\(skip.target)`: \(skip.reason)\n" }
        }
        if !untouched.isEmpty {
            out += "\nleft alone:\n"
            let shown = 40
            for item in untouched.prefix(shown) { out += "  `\(item.tensor)`: \(item.reason)\n" }
            if untouched.count > shown { out += "  … and \(untouched.count - shown) more (every one in --format json)\n" }
        }
        if !factorizations.isEmpty {
            out += "\nfactorized (multiply-adds per input vector, or per output position of a convolution):\n"
            let rows = factorizations.map { f -> [String] in
                let factors =
                    f.rowFactors.isEmpty
                    ? "" : " (\(f.rowFactors.map(String.init).joined(separator: "·"))×\(f.columnFactors.map(String.init).joined(separator: "·")))"
                return [
                    f.tensor, f.layer.isEmpty ? "-" : f.layer, f.method + (f.randomized ? " (randomized)" : ""),
                    (f.ranks.isEmpty ? "-" : f.ranks.map(String.init).joined(separator: "-")) + factors,
                    TextTable.grouped(f.parametersBefore), TextTable.grouped(f.parametersAfter),
                    TextTable.grouped(f.multiplyAddsBefore), TextTable.grouped(f.multiplyAddsAfter),
                    String(format: "%.4f", f.relativeError),
                ]
            }
            out += TextTable.render(
                header: ["tensor", "layer", "method", "rank(s)", "params before", "after", "mult-adds before", "after", "rel. error"],
                rows: rows, rightAligned: Set(4..<9))
        }
        out += "\nper tensor (Deep Compression accounting, before entropy coding):\n"
        let rows = tensors.map { row -> [String] in
            [
                row.tensor, [row.op, row.layer].filter { !$0.isEmpty }.joined(separator: " "), Shape.describe(row.shape), TextTable.grouped(row.elements),
                TextTable.percent(row.keptFraction), row.encoding, String(row.weightBits), row.indexBits == 0 ? "-" : String(row.indexBits),
                TextTable.grouped(row.fillers), TextTable.grouped(row.bits.tables / 8), TextTable.grouped(row.originalBytes), TextTable.grouped(row.bytes),
                String(format: "%.1f×", row.bytes == 0 ? 0 : Double(row.originalBytes) / Double(row.bytes)),
                row.error.map { $0.snrDB.map { String(format: "%.1f", $0) } ?? "inf" } ?? "-",
            ]
        }
        out += TextTable.render(
            header: [
                "tensor", "feeds", "shape", "weights", "kept", "encoding", "weight bits", "index bits", "fillers",
                "table bytes", "bytes before", "after", "ratio", "snr dB",
            ],
            rows: rows, rightAligned: Set([3, 4, 6, 7, 8, 9, 10, 11, 12, 13]))
        out += "\ntotal: \(TextTable.grouped(totals.tensors)) tensors (\(totals.compressedTensors) compressed), "
        out += "\(TextTable.grouped(totals.kept)) of \(TextTable.grouped(totals.elements)) elements kept, "
        out += "\(TextTable.grouped(totals.originalBytes)) → \(TextTable.grouped(totals.bytes)) bytes (\(String(format: "%.2f", totals.ratio))×)\n"
        return out
    }
}
