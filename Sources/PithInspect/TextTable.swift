import Foundation

/// Plain-text tables and number formats shared by every report Pith prints.
public enum TextTable {
    /// The longest cell a table prints: longer ones (a tensor name of a million characters, which a
    /// file may well hold) keep their start and end around an ellipsis, so that no column is padded
    /// to them. JSON reports keep every name whole.
    public static let cellLimit = 120

    /// `text` itself when it has at most `limit` characters; else its first and last characters
    /// around `…`, `limit` characters in all.
    public static func bounded(_ text: String, limit: Int = cellLimit) -> String {
        guard limit >= 3, text.count > limit else { return text }
        let tail = (limit - 1) / 3
        return text.prefix(limit - 1 - tail) + "…" + text.suffix(tail)
    }

    /// Columns padded to their widest cell, two spaces apart, trailing spaces trimmed; each cell
    /// `bounded`.
    public static func render(header: [String], rows: [[String]], rightAligned: Set<Int>) -> String {
        let rows = rows.map { $0.map { bounded($0) } }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            let text = cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ")
            return String(text.reversed().drop { $0 == " " }.reversed())
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
    }

    /// `1234567` → `1,234,567`.
    public static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var result = ""
        for (i, character) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { result += "," }
            result.append(character)
        }
        return (value < 0 ? "-" : "") + result
    }

    /// A fraction as a percentage with two decimals.
    public static func percent(_ fraction: Double) -> String { String(format: "%.2f%%", fraction * 100) }
}
