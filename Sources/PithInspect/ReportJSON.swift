import Foundation

/// The one JSON form of every report Pith prints (inspect, compress, eval, verify, bench):
/// snake_case keys, sorted, pretty-printed, slashes unescaped, and non-finite numbers as the strings
/// `"inf"`, `"-inf"` and `"nan"` (a weight error can be infinite; JSON has no such numbers), so
/// encoding never fails. The container's manifest is a file format, not a report: it has its own
/// encoder in PithContainer.
public enum ReportJSON {
    /// `value` as JSON text, ending in a newline.
    public static func text<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
        } catch {
            // Only a type whose encode(to:) throws can get here (the reports' types do not); even
            // then the output is JSON naming the failure, never a trap.
            let message = String(decoding: (try? JSONEncoder().encode("cannot encode the report as JSON: \(error)")) ?? Data("\"\"".utf8), as: UTF8.self)
            return "{\"error\": \(message)}\n"
        }
    }
}
