import Foundation

/// The few drawing tools `pith report` needs, written out as inline SVG: no charting library, no
/// script. Every piece of text goes through `HTMLText.escape` (names from a model file are untrusted).
struct SVGDrawing {
    let width: Double
    let height: Double
    private(set) var body = ""

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// The `<svg>` element, scaling with its container up to its natural width; `label` for screen readers.
    func render(label: String, cssClass: String = "chart") -> String {
        "<svg class=\"\(cssClass)\" viewBox=\"0 0 \(Self.n(width)) \(Self.n(height))\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" role=\"img\" aria-label=\"\(HTMLText.escape(label))\" xmlns=\"http://www.w3.org/2000/svg\">"
            + body + "</svg>"
    }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, cssClass: String, title: String? = nil) {
        guard width > 0, height > 0 else { return }
        let element = "<rect class=\"\(cssClass)\" x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\""
        body += title.map { element + "><title>\(HTMLText.escape($0))</title></rect>" } ?? element + "/>"
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, cssClass: String, title: String? = nil) {
        let element = "<line class=\"\(cssClass)\" x1=\"\(Self.n(x1))\" y1=\"\(Self.n(y1))\" x2=\"\(Self.n(x2))\" y2=\"\(Self.n(y2))\""
        body += title.map { element + "><title>\(HTMLText.escape($0))</title></line>" } ?? element + "/>"
    }

    mutating func text(_ text: String, x: Double, y: Double, anchor: String = "start", cssClass: String = "label") {
        body += "<text class=\"\(cssClass)\" x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" text-anchor=\"\(anchor)\">\(HTMLText.escape(text))</text>"
    }

    /// A path through `points`, closed and filled with `closed`.
    mutating func path(_ points: [(Double, Double)], cssClass: String, closed: Bool = false) {
        guard let first = points.first else { return }
        var d = "M\(Self.n(first.0)) \(Self.n(first.1))"
        for point in points.dropFirst() { d += "L\(Self.n(point.0)) \(Self.n(point.1))" }
        if closed { d += "Z" }
        body += "<path class=\"\(cssClass)\" d=\"\(d)\"/>"
    }

    /// Vertical ticks from `y1` to `y2` at every x of `xs`, as one path (a rug of hundreds stays small).
    mutating func ticks(at xs: [Double], y1: Double, y2: Double, cssClass: String) {
        guard !xs.isEmpty else { return }
        body += "<path class=\"\(cssClass)\" d=\"" + xs.map { "M\(Self.n($0)) \(Self.n(y1))V\(Self.n(y2))" }.joined() + "\"/>"
    }

    mutating func circle(x: Double, y: Double, radius: Double, cssClass: String, title: String? = nil) {
        let element = "<circle class=\"\(cssClass)\" cx=\"\(Self.n(x))\" cy=\"\(Self.n(y))\" r=\"\(Self.n(radius))\""
        body += title.map { element + "><title>\(HTMLText.escape($0))</title></circle>" } ?? element + "/>"
    }

    /// A number as SVG wants it: at most two decimals, no exponent.
    static func n(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 100).rounded() / 100
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(format: "%.2f", rounded)
    }
}

/// A map from data to pixels: linear, or logarithmic (base 10) for positive data.
struct ChartScale {
    var domain: (Double, Double)
    var range: (Double, Double)
    var logarithmic = false

    func callAsFunction(_ value: Double) -> Double {
        let (a, b) = logarithmic ? (log10(domain.0), log10(domain.1)) : domain
        let v = logarithmic ? log10(max(value, domain.0)) : value
        guard b != a else { return (range.0 + range.1) / 2 }
        return range.0 + (v - a) / (b - a) * (range.1 - range.0)
    }

    /// Round values across the domain: 1, 2, 5 × 10ⁿ steps (linear), powers of ten (logarithmic).
    func ticks(_ wanted: Int = 5) -> [Double] {
        let (a, b) = (min(domain.0, domain.1), max(domain.0, domain.1))
        if logarithmic, a > 0 {
            // Powers of ten; then 1, 2, 5 × 10ⁿ; then every digit × 10ⁿ, until at least three fall inside.
            let first = Int(floor(log10(a))), last = Int(ceil(log10(b)))
            for mantissas in [[1.0], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]] {
                var inside: [Double] = []
                for power in first...last {
                    let decade = pow(10, Double(power))
                    for mantissa in mantissas {
                        let value = mantissa * decade
                        if value >= a * (1 - 1e-9), value <= b * (1 + 1e-9) { inside.append(value) }
                    }
                }
                if inside.count >= 3 || (mantissas.count == 9 && inside.count >= 2) {
                    let every = max(1, Int((Double(inside.count) / Double(max(1, wanted + 2))).rounded(.up)))
                    return stride(from: 0, to: inside.count, by: every).map { inside[$0] }
                }
            }
            return ChartScale(domain: (a, b), range: range).ticks(wanted)
        }
        guard b > a else { return [a] }
        let raw = (b - a) / Double(max(1, wanted))
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var ticks: [Double] = []
        var tick = ceil(a / step - 1e-9) * step
        while tick <= b + step * 1e-9 {
            ticks.append(abs(tick) < step * 1e-9 ? 0 : tick)
            tick += step
        }
        return ticks
    }
}

/// Text for HTML: escaped, and names bounded as the text tables bound them.
enum HTMLText {
    /// `&`, `<`, `>`, `"` and `'` as entities, and control characters (which HTML forbids) as `�`.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || (0xFDD0...0xFDEF).contains(scalar.value)
                    || scalar.value & 0xFFFE == 0xFFFE
                {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A name from the model file: bounded to `limit` characters (`TextTable.bounded`), then escaped.
    static func name(_ text: String, limit: Int = TextTable.cellLimit) -> String { escape(TextTable.bounded(text, limit: limit)) }

    /// `1,070,000` bytes → `1.07 MB` (powers of 1000, three significant digits).
    static func bytes(_ count: Int) -> String {
        let value = Double(count)
        for (unit, size) in [("GB", 1e9), ("MB", 1e6), ("KB", 1e3)] where value >= size {
            let scaled = value / size
            return String(format: scaled >= 100 ? "%.0f %@" : scaled >= 10 ? "%.1f %@" : "%.2f %@", scaled, unit)
        }
        return "\(count) B"
    }

    /// A compact number for an axis: `0.05`, `1.2e-3`, `250k`.
    static func axis(_ value: Double) -> String {
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude >= 1e6 { return String(format: "%gM", value / 1e6) }
        if magnitude >= 1e4 { return String(format: "%gk", value / 1e3) }
        if magnitude >= 1e-2 { return String(format: "%g", (value * 1000).rounded() / 1000) }
        return String(format: "%.1e", value)
    }
}
