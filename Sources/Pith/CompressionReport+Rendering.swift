import Foundation
import PithPasses
import PithIR
import PithInspect

/// The JSON form of Pith's reports: snake_case keys, sorted, pretty-printed, slashes unescaped, and
/// the numbers JSON has no literal for — infinities and NaN, as a weight error is when a weight
/// overflows fp16 or was not finite to begin with — as the strings `"inf"`, `"-inf"` and `"nan"`
/// (Python's `float()` reads them back), so encoding never fails. A field that is absent or `null`
/// means what the report type says (an SNR of `null`: no error at all), never "not finite".
public enum ReportJSON {
    /// How non-finite numbers are written: `"inf"`, `"-inf"`, `"nan"`.
    public static let nonFiniteNumbers = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")

    /// An encoder configured as above.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = nonFiniteNumbers
        return encoder
    }

    /// `value` as JSON text ending in a newline. With every number given a form, encoding a
    /// report cannot fail; should a conformance throw anyway, the text is `{"error": "…"}`
    /// naming the failure, never a trap.
    public static func text<T: Encodable>(_ value: T) -> String {
        do {
            return String(decoding: try encoder().encode(value), as: UTF8.self) + "\n"
        } catch {
            let message = String(decoding: (try? JSONEncoder().encode("cannot encode the report as JSON: \(error)")) ?? Data("\"\"".utf8), as: UTF8.self)
            return "{\"error\": \(message)}\n"
        }
    }
}

extension CompressionReport {
    /// The report as JSON (`ReportJSON`): non-finite weight errors as `"inf"`, `"-inf"`, `"nan"`.
    public func renderJSON() -> String { ReportJSON.text(self) }

    /// The passes, then the per-tensor accounting in the layout of Deep Compression's Table 2.
    public func renderText(file: String) -> String {
        var out = "\(file): compression report (seed \(seed))\n\npasses:\n"
        let passRows = passes.map { row -> [String] in
            [String(row.step), row.action, row.tensor, TextTable.grouped(row.elements), TextTable.percent(row.elements == 0 ? 0 : Double(row.kept) / Double(row.elements)),
             String(format: "%.2f", row.bitsPerWeight), TextTable.grouped(row.bytesBefore), TextTable.grouped(row.bytesAfter),
             row.error.map { String(format: "%.3g", $0.maxAbs) } ?? "-", row.error.map { String(format: "%.3g", $0.rmse) } ?? "-",
             row.error.map { $0.snrDB.map { String(format: "%.1f", $0) } ?? "inf" } ?? "-", row.detail]
        }
        out += TextTable.render(header: ["#", "pass", "tensor", "elements", "kept", "bits/w", "bytes before", "after", "max |err|", "rmse", "snr dB", "detail"],
                          rows: passRows, rightAligned: Set(3..<11))
        if !skipped.isEmpty {
            out += "\nskipped:\n"
            for skip in skipped { out += "  pass \(skip.step) \(skip.action) `\(skip.target)`: \(skip.reason)\n" }
        }
        if !factorizations.isEmpty {
            out += "\nfactorized (multiply-adds per input vector, or per output position of a convolution):\n"
            let rows = factorizations.map { f -> [String] in
                let factors = f.rowFactors.isEmpty ? "" : " (\(f.rowFactors.map(String.init).joined(separator: "·"))×\(f.columnFactors.map(String.init).joined(separator: "·")))"
                return [f.tensor, f.layer.isEmpty ? "-" : f.layer, f.method + (f.randomized ? " (randomized)" : ""),
                        (f.ranks.isEmpty ? "-" : f.ranks.map(String.init).joined(separator: "-")) + factors,
                        TextTable.grouped(f.parametersBefore), TextTable.grouped(f.parametersAfter),
                        TextTable.grouped(f.multiplyAddsBefore), TextTable.grouped(f.multiplyAddsAfter),
                        String(format: "%.4f", f.relativeError)]
            }
            out += TextTable.render(header: ["tensor", "layer", "method", "rank(s)", "params before", "after", "mult-adds before", "after", "rel. error"],
                                    rows: rows, rightAligned: Set(4..<9))
        }
        out += "\nper tensor (Deep Compression accounting, before entropy coding):\n"
        let rows = tensors.map { row -> [String] in
            [row.tensor, [row.op, row.layer].filter { !$0.isEmpty }.joined(separator: " "), Shape.describe(row.shape), TextTable.grouped(row.elements),
             TextTable.percent(row.keptFraction), row.encoding, String(row.weightBits), row.indexBits == 0 ? "-" : String(row.indexBits),
             TextTable.grouped(row.fillers), TextTable.grouped(row.bits.tables / 8), TextTable.grouped(row.originalBytes), TextTable.grouped(row.bytes),
             String(format: "%.1f×", row.bytes == 0 ? 0 : Double(row.originalBytes) / Double(row.bytes)),
             row.error.map { $0.snrDB.map { String(format: "%.1f", $0) } ?? "inf" } ?? "-"]
        }
        out += TextTable.render(header: ["tensor", "feeds", "shape", "weights", "kept", "encoding", "weight bits", "index bits", "fillers",
                                   "table bytes", "bytes before", "after", "ratio", "snr dB"],
                          rows: rows, rightAligned: Set([3, 4, 6, 7, 8, 9, 10, 11, 12, 13]))
        out += "\ntotal: \(TextTable.grouped(totals.tensors)) tensors (\(totals.compressedTensors) compressed), "
        out += "\(TextTable.grouped(totals.kept)) of \(TextTable.grouped(totals.elements)) elements kept, "
        out += "\(TextTable.grouped(totals.originalBytes)) → \(TextTable.grouped(totals.bytes)) bytes (\(String(format: "%.2f", totals.ratio))×)\n"
        return out
    }
}
