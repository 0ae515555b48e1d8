import Foundation

extension ModelReport {
    /// The report as one self-contained HTML page: inline CSS and SVG, no request to the network, no
    /// font to fetch. A few lines of inline script add a name filter; the page reads the same without
    /// them. Every name from a model file is bounded (`TextTable.bounded`) and escaped.
    public func renderHTML() -> String {
        var out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        out += "<meta name=\"generator\" content=\"pith report\">\n"
        out += "<title>Pith report: \(HTMLText.name(Self.baseName(file)))</title>\n"
        out += "<style>\n\(Self.css)</style>\n</head>\n<body>\n<main>\n"
        out += header()
        out += modelSection()
        if let verify { out += verifySection(verify) }
        out += layerSection()
        out += histogramSection()
        if let note = comparison?.recipe { out += recipeSection(note) }
        if search != nil || sensitivity != nil { out += searchSection() }
        out += "<footer>Made by <code>pith report</code>. Sizes in powers of 1000 (1 KB = 1,000 bytes); hover a bar or a point for its numbers.</footer>\n"
        out += "</main>\n<script>\n\(Self.script)</script>\n</body>\n</html>\n"
        return out
    }

    static func baseName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

    // MARK: Header and model

    func header() -> String {
        var out = "<header>\n<h1>\(HTMLText.name(Self.baseName(file)))"
        if let comparison, !containerAlone { out += " <span class=\"vs\">and</span> \(HTMLText.name(Self.baseName(comparison.file)))" }
        out += "</h1>\n"
        var facts = [inspect.format.rawValue]
        if !inspect.producer.isEmpty { facts.append("made by \(inspect.producer)") }
        if let summary = inspect.summary {
            if let ir = summary.irVersion { facts.append("IR \(ir)") }
            if !summary.opsets.isEmpty { facts.append("opset " + summary.opsets.joined(separator: ", ")) }
            if let nodes = summary.nodes { facts.append("\(TextTable.grouped(nodes)) nodes") }
        }
        out += "<p class=\"facts\">\(HTMLText.name(facts.joined(separator: " · "), limit: 240))</p>\n<div class=\"cards\">\n"
        func card(_ value: String, _ label: String, _ cssClass: String = "") {
            out += "<div class=\"card \(cssClass)\"><b>\(value)</b><span>\(label)</span></div>\n"
        }
        card(TextTable.grouped(inspect.totals.count), "parameters in \(TextTable.grouped(inspect.totals.tensors)) tensors")
        if let container = comparison?.container, containerAlone {
            let dense = container.rows.reduce(0) { $0 + $1.denseBytes }
            card(HTMLText.bytes(dense), "the tensors dense")
            card(HTMLText.bytes(fileBytes), "container", "accent")
            if fileBytes > 0 { card(String(format: "%.1f×", Double(dense) / Double(fileBytes)), "smaller than the dense tensors", "accent") }
            card(TextTable.percent(inspect.totals.sparsity), "zeros")
        } else if let comparison {
            card(HTMLText.bytes(fileBytes), "model file")
            card(HTMLText.bytes(comparison.fileBytes), comparison.container != nil ? "container" : "compressed model", "accent")
            if comparison.fileBytes > 0, fileBytes > 0 {
                card(String(format: "%.1f×", Double(fileBytes) / Double(comparison.fileBytes)), "smaller", "accent")
            }
            let after = comparison.statistics.reduce(into: (0, 0)) {
                $0.0 += $1.count; $0.1 += $1.nonzero
            }
            if after.0 > 0 {
                card(TextTable.percent(Double(after.0 - after.1) / Double(after.0)), "zeros after (before: \(TextTable.percent(inspect.totals.sparsity)))")
            }
        } else {
            card(HTMLText.bytes(fileBytes), "model file")
            card(TextTable.percent(inspect.totals.sparsity), "zeros")
        }
        if let outputs = verify?.outputs {
            if let a = outputs.originalAccuracy, let b = outputs.candidateAccuracy {
                card("\(Self.percent(a)) → \(Self.percent(b))", "top-1 accuracy on \(TextTable.grouped(outputs.samples)) samples")
            }
            if let agreement = outputs.top1Agreement { card(Self.percent(agreement), "top-1 agreement with the original") }
            if let worst = outputs.compared.compactMap(\.snrDB).min() { card(String(format: "%.1f dB", worst), "lowest output SNR") }
        }
        out += "</div>\n<nav>"
        var links = [("model", "Model")]
        if verify != nil { links.append(("verify", "Outputs and weights compared")) }
        links += [("layers", "Size per layer"), ("weights", "Weight histograms")]
        if comparison?.recipe != nil { links.append(("recipe", "Recipe")) }
        if search != nil || sensitivity != nil { links.append(("sensitivity", "Sensitivity and frontier")) }
        out += links.map { "<a href=\"#\($0.0)\">\($0.1)</a>" }.joined(separator: " · ")
        out += "</nav>\n</header>\n"
        return out
    }

    func modelSection() -> String {
        var out = "<section id=\"model\">\n<h2>Model</h2>\n"
        out += "<p class=\"path\">\(HTMLText.name(file, limit: 240))"
        if let comparison, !containerAlone { out += "<br>compared with \(HTMLText.name(comparison.file, limit: 240))" }
        out += "</p>\n"
        guard let summary = inspect.summary else { return out + "</section>\n" }
        if !summary.inputs.isEmpty || !summary.outputs.isEmpty {
            out += "<table class=\"values\">\n<tr><th></th><th>name</th><th>type</th><th>shape</th></tr>\n"
            for (kind, values) in [("input", summary.inputs), ("output", summary.outputs)] {
                for value in values.prefix(64) {
                    let shape = value.shape.map { "[" + $0.map { TextTable.bounded($0, limit: 24) }.joined(separator: ", ") + "]" } ?? "unknown rank"
                    out += "<tr><td>\(kind)</td><td><code>\(HTMLText.name(value.name))</code></td><td>\(HTMLText.name(value.dtype ?? "?"))</td>"
                    out += "<td><code>\(HTMLText.name(shape, limit: 160))</code></td></tr>\n"
                }
                if values.count > 64 { out += "<tr><td>\(kind)</td><td colspan=\"3\">… and \(values.count - 64) more</td></tr>\n" }
            }
            out += "</table>\n"
        }
        out += "<div class=\"columns\">\n"
        if !summary.operators.isEmpty {
            out += "<div><h3>Operators</h3>\n" + operatorChart(summary.operators) + "</div>\n"
        }
        if !summary.parameters.isEmpty {
            out +=
                "<div><h3>Parameters per operator</h3>\n<table>\n<tr><th>operator</th><th class=\"num\">tensors</th><th class=\"num\">elements</th><th class=\"num\">bytes</th></tr>\n"
            for row in summary.parameters.prefix(16) {
                out += "<tr><td>\(HTMLText.name(row.op))</td><td class=\"num\">\(TextTable.grouped(row.tensors))</td>"
                out += "<td class=\"num\">\(TextTable.grouped(row.elements))</td><td class=\"num\">\(HTMLText.bytes(row.bytes))</td></tr>\n"
            }
            if summary.parameters.count > 16 { out += "<tr><td colspan=\"4\">… and \(summary.parameters.count - 16) more</td></tr>\n" }
            out += "</table>\n</div>\n"
        }
        out += "</div>\n</section>\n"
        return out
    }

    /// Horizontal bars: how many nodes of each operator type (the 16 most frequent, the rest in one bar).
    func operatorChart(_ operators: [ModelSummary.OperatorCount]) -> String {
        var rows = operators.prefix(16).map { ($0.op, $0.count) }
        if operators.count > 16 { rows.append(("\(operators.count - 16) other types", operators.dropFirst(16).reduce(0) { $0 + $1.count })) }
        let rowHeight = 18.0, width = 520.0, labelWidth = 170.0
        var svg = SVGDrawing(width: width, height: Double(rows.count) * rowHeight + 4)
        let most = Double(rows.map(\.1).max() ?? 1)
        let x = ChartScale(domain: (0, most), range: (labelWidth, width - 50))
        for (i, (op, count)) in rows.enumerated() {
            let y = Double(i) * rowHeight + 2
            svg.text(TextTable.bounded(op, limit: 26), x: labelWidth - 6, y: y + 12.5, anchor: "end")
            svg.rect(
                x: labelWidth, y: y + 2, width: max(1, x(Double(count)) - labelWidth), height: rowHeight - 5, cssClass: "op",
                title: "\(TextTable.bounded(op)): \(count)")
            svg.text(TextTable.grouped(count), x: x(Double(count)) + 4, y: y + 12.5)
        }
        return svg.render(label: "Nodes per operator type") + "\n"
    }

    // MARK: Verify

    func verifySection(_ verify: VerifyReport) -> String {
        var out = "<section id=\"verify\">\n<h2>Outputs and weights compared</h2>\n"
        if let o = verify.outputs {
            out += "<p>Both models run on <code>\(HTMLText.name(o.data, limit: 160))</code> (\(TextTable.grouped(o.samples)) samples)"
            if let a = o.originalAccuracy, let b = o.candidateAccuracy {
                out += String(format: ": top-1 accuracy %@ → %@ (%+.2f points)", Self.percent(a), Self.percent(b), (b - a) * 100)
            }
            if let agreement = o.top1Agreement { out += "; the top-1 class agrees on \(Self.percent(agreement)) of samples" }
            out += ".</p>\n<table>\n<tr><th>output</th><th>shape</th><th class=\"num\">SNR dB</th><th class=\"num\">cosine</th>"
            out +=
                "<th class=\"num\">relative error</th><th class=\"num\">max |error|</th><th class=\"num\">within tolerance</th><th class=\"num\">argmax agreement</th></tr>\n"
            for c in o.compared.prefix(64) {
                let snr = c.snrDB.map { String(format: "%.1f", $0) } ?? (c.maxAbsError == 0 ? "exact" : "–")
                out += "<tr><td><code>\(HTMLText.name(c.name))</code></td><td>\(HTMLText.escape(Shape.describe(c.shape)))</td>"
                out += "<td class=\"num\">\(snr)</td><td class=\"num\">\(c.cosine.map { String(format: "%.6f", $0) } ?? "–")</td>"
                out += "<td class=\"num\">\(c.relativeL2Error.map { String(format: "%.3g", $0) } ?? "–")</td>"
                out += "<td class=\"num\">\(HTMLText.escape(WeightComparison.number(c.maxAbsError)))</td>"
                out +=
                    "<td class=\"num\">\(TextTable.percent(c.withinTolerance))</td><td class=\"num\">\(c.agreement.map { Self.percent($0) } ?? "–")</td></tr>\n"
            }
            if o.compared.count > 64 { out += "<tr><td colspan=\"8\">… and \(o.compared.count - 64) more outputs</td></tr>\n" }
            out += "</table>\n<p class=\"note\">SNR = 10·log₁₀(‖a‖² / ‖b − a‖²) and relative error ‖b − a‖ / ‖a‖ over every element; "
            out += "within tolerance: |b − a| ≤ \(o.atol) + \(o.rtol)·|a|; argmax agreement for class scores only.</p>\n"
        } else {
            out += "<p class=\"note\">No <code>--data</code>: the outputs were not compared. Give data (and <code>--labels</code>) to run both models.</p>\n"
        }
        let w = verify.weights
        let exact = w.tensors.filter(\.bitExact).count
        out += "<p>Weights: \(TextTable.grouped(w.tensors.count)) tensors compared by name, \(TextTable.grouped(exact)) bit-exact"
        if let worst = w.tensors.filter({ !$0.bitExact && $0.snrDB != nil }).min(by: { $0.snrDB! < $1.snrDB! }) {
            out += String(format: "; the lowest SNR is %.1f dB", worst.snrDB!) + " (<code>\(HTMLText.name(worst.name))</code>)"
        }
        if !w.missingInCandidate.isEmpty { out += "; \(w.missingInCandidate.count) missing in the compressed model" }
        if !w.reshaped.isEmpty { out += "; \(w.reshaped.count) reshaped" }
        out += ". Each weight's SNR is in the last column of the sizes below.</p>\n</section>\n"
        return out
    }

    // MARK: Sizes per layer

    func layerSection() -> String {
        var out = "<section id=\"layers\">\n<h2>Size per layer</h2>\n"
        guard !layers.isEmpty else { return out + "<p class=\"note\">The model has no weights.</p>\n</section>\n" }
        let compared = comparison != nil
        out += "<p class=\"legend\">"
        if compared {
            out += "<span class=\"swatch before\"></span> " + (containerAlone ? "dense" : "before") + " <span class=\"swatch after\"></span> after"
            if let container = comparison?.container {
                out += " (bytes in the container after entropy coding; \(HTMLText.bytes(container.overheadBytes)) of header, manifest and graph not in any row)"
            }
        } else {
            out += "<span class=\"swatch after\"></span> bytes as stored in the file"
        }
        out += ". Bits per weight: stored bits over elements; zeros: the share of elements that are 0"
        out += layers.count < weightCount ? "; the \(layers.count) largest of \(weightCount) weights.</p>\n" : ".</p>\n"
        out += layerChart(compared: compared)
        if let container = comparison?.container { out += encodingTable(container) }
        // What the rows leave out, so the bars add up to the files.
        let shownBefore = layers.reduce(0) { $0 + $1.bytesBefore }, shownAfter = layers.reduce(0) { $0 + ($1.bytesAfter ?? 0) }
        let others = inspect.totals.tensors - layers.count
        if others > 0 {
            out +=
                "<p class=\"note\">\(TextTable.grouped(others)) other tensors (\(layers.count < weightCount ? "smaller weights, " : "")biases, normalization, constants; <code>--all</code> draws them): "
            let beforeTotal = containerAlone ? (comparison?.container?.rows.reduce(0) { $0 + $1.denseBytes } ?? 0) : inspect.totals.bytes
            out += HTMLText.bytes(max(0, beforeTotal - shownBefore))
            if let comparison {
                let afterTotal = comparison.container.map { $0.rows.reduce(0) { $0 + $1.bytes } } ?? comparison.statistics.reduce(0) { $0 + $1.bytes }
                out += " → \(HTMLText.bytes(max(0, afterTotal - shownAfter)))"
            }
            out += ".</p>\n"
        }
        return out + "</section>\n"
    }

    /// The container's tensors grouped by how they are stored, largest share first.
    func encodingTable(_ container: InspectReport.ContainerSummary) -> String {
        var groups: [String: (tensors: Int, elements: Int, before: Int, after: Int)] = [:]
        let original = Dictionary(inspect.tensors.map { ($0.name, $0.bytes) }, uniquingKeysWith: { first, _ in first })
        for row in container.rows {
            var group = groups[row.encoding] ?? (0, 0, 0, 0)
            group.tensors += 1
            group.elements += row.elements
            group.before += containerAlone ? row.denseBytes : original[row.tensor] ?? row.denseBytes
            group.after += row.bytes
            groups[row.encoding] = group
        }
        let sorted = groups.sorted { ($0.value.after, $1.key) > ($1.value.after, $0.key) }
        var out = "<h3>How the container stores them</h3>\n<table>\n<tr><th>stored as</th><th class=\"num\">tensors</th><th class=\"num\">elements</th>"
        out += "<th class=\"num\">before</th><th class=\"num\">after</th><th class=\"num\">bits per element</th></tr>\n"
        for (encoding, group) in sorted.prefix(24) {
            out +=
                "<tr><td>\(HTMLText.name(encoding))</td><td class=\"num\">\(TextTable.grouped(group.tensors))</td><td class=\"num\">\(TextTable.grouped(group.elements))</td>"
            out += "<td class=\"num\">\(HTMLText.bytes(group.before))</td><td class=\"num\">\(HTMLText.bytes(group.after))</td>"
            out += "<td class=\"num\">" + String(format: "%.2f", group.elements == 0 ? 0 : Double(group.after * 8) / Double(group.elements)) + "</td></tr>\n"
        }
        if sorted.count > 24 { out += "<tr><td colspan=\"6\">… and \(sorted.count - 24) more encodings</td></tr>\n" }
        return out + "</table>\n"
    }

    func layerChart(compared: Bool) -> String {
        let rowHeight = 20.0, top = 34.0
        let label = (0.0, 236.0), bars = (240.0, 560.0), bytesText = 566.0, bits = (712.0, 842.0), zeros = (925.0, 1045.0), snrText = 1156.0
        let width = 1160.0
        var svg = SVGDrawing(width: width, height: top + Double(layers.count) * rowHeight + 6)
        let largest = Double(layers.map { max($0.bytesBefore, $0.bytesAfter ?? 0) }.max() ?? 1)
        let byteScale = ChartScale(domain: (0, max(1, largest)), range: bars)
        let mostBits = max(8, layers.map { max($0.bitsBefore, $0.bitsAfter ?? 0) }.max() ?? 32)
        let bitScale = ChartScale(domain: (0, mostBits), range: bits)
        let zeroScale = ChartScale(domain: (0, 1), range: zeros)
        svg.text("tensor", x: label.0, y: 12, cssClass: "head")
        svg.text("bytes", x: bars.0, y: 12, cssClass: "head")
        svg.text("bits per weight", x: bits.0, y: 12, cssClass: "head")
        svg.text("zeros", x: zeros.0, y: 12, cssClass: "head")
        if compared, verify != nil { svg.text("weight SNR", x: snrText, y: 12, anchor: "end", cssClass: "head") }
        for (scale, ticks, format) in [
            (byteScale, byteScale.ticks(4), { HTMLText.bytes(Int($0)) }), (bitScale, bitScale.ticks(3), { HTMLText.axis($0) }),
            (zeroScale, [0, 0.5, 1], { "\(Int($0 * 100))%" }),
        ] as [(ChartScale, [Double], (Double) -> String)] {
            for tick in ticks {
                svg.line(x1: scale(tick), y1: top - 6, x2: scale(tick), y2: svg.height - 4, cssClass: "gridline")
                svg.text(format(tick), x: scale(tick), y: top - 9, anchor: "middle", cssClass: "tick")
            }
        }
        for (i, row) in layers.enumerated() {
            let y = top + Double(i) * rowHeight
            if i % 2 == 1 { svg.rect(x: 0, y: y, width: width, height: rowHeight, cssClass: "stripe") }
            svg.text(TextTable.bounded(row.tensor, limit: 36), x: label.0, y: y + 14)
            let before = byteScale(Double(row.bytesBefore)) - bars.0
            if let after = row.bytesAfter {
                svg.rect(x: bars.0, y: y + 3, width: max(1, before), height: rowHeight - 6, cssClass: "before")
                svg.rect(x: bars.0, y: y + 6, width: max(1, byteScale(Double(after)) - bars.0), height: rowHeight - 12, cssClass: "after")
                svg.text("\(HTMLText.bytes(row.bytesBefore)) → \(HTMLText.bytes(after))", x: bytesText, y: y + 14, cssClass: "value")
            } else {
                svg.rect(x: bars.0, y: y + 4, width: max(1, before), height: rowHeight - 8, cssClass: "after")
                svg.text(HTMLText.bytes(row.bytesBefore), x: bytesText, y: y + 14, cssClass: "value")
            }
            if let after = row.bitsAfter {
                svg.rect(x: bits.0, y: y + 3, width: max(1, bitScale(row.bitsBefore) - bits.0), height: rowHeight - 6, cssClass: "before")
                svg.rect(x: bits.0, y: y + 6, width: max(1, bitScale(after) - bits.0), height: rowHeight - 12, cssClass: "bits")
                svg.text(String(format: "%.2g → %.2g", row.bitsBefore, after), x: bits.1 + 3, y: y + 14, cssClass: "value small")
            } else {
                svg.rect(x: bits.0, y: y + 4, width: max(1, bitScale(row.bitsBefore) - bits.0), height: rowHeight - 8, cssClass: "bits")
                svg.text(String(format: "%.2g", row.bitsBefore), x: bits.1 + 3, y: y + 14, cssClass: "value small")
            }
            let zerosAfter = row.sparsityAfter ?? row.sparsityBefore
            svg.rect(x: zeros.0, y: y + 3, width: zeroScale(row.sparsityBefore) - zeros.0, height: rowHeight - 6, cssClass: "before")
            svg.rect(x: zeros.0, y: y + 6, width: zeroScale(zerosAfter) - zeros.0, height: rowHeight - 12, cssClass: "zeros")
            svg.text(String(format: "%.0f%%", zerosAfter * 100), x: zeros.1 + 3, y: y + 14, cssClass: "value small")
            if let snr = row.weightSNR {
                svg.text(snr.isFinite ? String(format: "%.1f dB", snr) : "exact", x: snrText, y: y + 14, anchor: "end", cssClass: "value")
            }
            var title = "\(TextTable.bounded(row.tensor, limit: 200))\n\(row.op) \(TextTable.bounded(row.layer, limit: 120)), \(Shape.describe(row.shape)), "
            title += "\(TextTable.grouped(row.elements)) elements\n\(TextTable.grouped(row.bytesBefore)) bytes, "
            title += String(format: "%.3g bits per weight, %.2f%% zeros", row.bitsBefore, row.sparsityBefore * 100)
            if let after = row.bytesAfter {
                title += "\nafter: \(TextTable.grouped(after)) bytes"
                if let bits = row.bitsAfter { title += String(format: ", %.3g bits per weight", bits) }
                if let sparsity = row.sparsityAfter { title += String(format: ", %.2f%% zeros", sparsity * 100) }
                if let encoding = row.encoding { title += "\nstored as \(TextTable.bounded(encoding, limit: 120))" }
            }
            svg.rect(x: 0, y: y, width: width, height: rowHeight, cssClass: "hit", title: title)
        }
        return "<div class=\"scroll\">" + svg.render(label: "Bytes, bits per weight and zeros per tensor") + "</div>\n"
    }

    // MARK: Histograms

    func histogramSection() -> String {
        var out = "<section id=\"weights\">\n<h2>Weight histograms</h2>\n"
        guard !histograms.isEmpty else { return out + "<p class=\"note\">No floating-point weight to draw.</p>\n</section>\n" }
        let weights = weightCount
        out += "<p class=\"legend\"><span class=\"swatch hist\"></span> original values"
        if comparison != nil {
            out +=
                " <span class=\"swatch line-after\"></span> compressed nonzero values <span class=\"swatch line-mark\"></span> codebook centroids or quantization grid"
            out += " <span class=\"swatch pruned\"></span> values pruned to zero"
        }
        out += ". \(Reporting.histogramBins) bins over each tensor's range"
        if histograms.count < weights { out += "; the \(histograms.count) largest of \(weights) weights (<code>--all</code> draws every tensor)" }
        out +=
            ".</p>\n<p class=\"filter\" hidden><label>Filter by name <input id=\"filter\" type=\"search\" placeholder=\"part of a tensor name\"></label></p>\n"
        out += "<div class=\"grid\">\n"
        for histogram in histograms { out += histogramFigure(histogram) }
        return out + "</div>\n</section>\n"
    }

    func histogramFigure(_ h: Histogram) -> String {
        let width = 372.0, height = 190.0, plot = (left: 44.0, right: 362.0, top: 10.0, bottom: 160.0)
        var svg = SVGDrawing(width: width, height: height)
        let x = ChartScale(domain: (h.low, h.high), range: (plot.left, plot.right))
        // A bin far above the others (the zeros of a pruned model) is clipped so the rest stays
        // readable; counts over orders of magnitude are drawn on a logarithmic axis instead.
        let all = (h.counts + (h.compressedCounts ?? [])).sorted(by: >)
        var ceiling = Double(all.first ?? 1)
        if !h.logCounts, all.count > 1, Double(all[0]) > 2.5 * Double(all[1]), all[1] > 0 { ceiling = 1.25 * Double(all[1]) }
        let scale = ChartScale(domain: (0, h.logCounts ? log10(1 + max(1, ceiling)) : max(1, ceiling)), range: (plot.bottom, plot.top))
        let y = { (count: Double) in scale(h.logCounts ? log10(1 + count) : count) }
        if let band = h.prunedBelow {
            let a = x(max(h.low, -band)), b = x(min(h.high, band))
            svg.rect(
                x: a, y: plot.top, width: max(1, b - a), height: plot.bottom - plot.top, cssClass: "pruned", title: String(format: "pruned: |w| ≤ %.3g", band))
        }
        let yTicks = h.logCounts ? ChartScale(domain: (1, max(10, ceiling)), range: (0, 1), logarithmic: true).ticks(4) : scale.ticks(3)
        for tick in yTicks where tick > 0 {
            svg.line(x1: plot.left, y1: y(tick), x2: plot.right, y2: y(tick), cssClass: "gridline")
            svg.text(HTMLText.axis(tick), x: plot.left - 4, y: y(tick) + 3.5, anchor: "end", cssClass: "tick")
        }
        if h.logCounts { svg.text("count (log)", x: plot.left - 40, y: plot.bottom + 28, cssClass: "tick") }
        let bins = h.counts.count
        let binWidth = (h.high - h.low) / Double(max(1, bins))
        func steps(_ counts: [Int]) -> [(Double, Double)] {
            var points: [(Double, Double)] = [(plot.left, plot.bottom)]
            for (i, count) in counts.enumerated() {
                let top = y(min(Double(count), ceiling))
                points.append((x(h.low + Double(i) * binWidth), top))
                points.append((x(h.low + Double(i + 1) * binWidth), top))
            }
            points.append((plot.right, plot.bottom))
            return points
        }
        svg.path(steps(h.counts), cssClass: "hist", closed: true)
        if let after = h.compressedCounts { svg.path(steps(after), cssClass: "line-after") }
        for (i, count) in h.counts.enumerated() where Double(count) > ceiling {
            let middle = x(h.low + (Double(i) + 0.5) * binWidth)
            svg.text(
                "↑ \(TextTable.grouped(count))", x: min(plot.right - 30, max(plot.left + 30, middle)), y: plot.top + 10, anchor: "middle", cssClass: "tick")
        }
        if h.rug {
            svg.ticks(at: h.markValues.map { x($0) }, y1: plot.bottom + 1, y2: plot.bottom + 6, cssClass: "line-mark thin")
        } else {
            for value in h.markValues {
                let title = (h.marks == .centroids ? "centroid " : "grid value ") + String(format: "%.4g", value)
                svg.line(x1: x(value), y1: plot.top, x2: x(value), y2: plot.bottom, cssClass: "line-mark", title: title)
            }
        }
        svg.line(x1: plot.left, y1: plot.bottom, x2: plot.right, y2: plot.bottom, cssClass: "axis")
        for tick in x.ticks(6) {
            svg.line(x1: x(tick), y1: plot.bottom, x2: x(tick), y2: plot.bottom + 4, cssClass: "axis")
            svg.text(HTMLText.axis(tick), x: x(tick), y: plot.bottom + (h.rug ? 17 : 15), anchor: "middle", cssClass: "tick")
        }
        svg.text("value", x: plot.right, y: height - 4, anchor: "end", cssClass: "tick")
        let name = TextTable.bounded(h.tensor, limit: 48)
        var out = "<figure data-name=\"\(HTMLText.escape(name.lowercased()))\">\n<figcaption><code>\(HTMLText.escape(name))</code> "
        out += "\(HTMLText.escape(Shape.describe(h.shape))), \(TextTable.grouped(h.elements)) values</figcaption>\n"
        out += svg.render(label: "Histogram of \(name)") + "\n"
        var words = h.caption
        if h.nonFinite > 0 { words += (words.isEmpty ? "" : "; ") + "\(TextTable.grouped(h.nonFinite)) not finite (not drawn)" }
        if !words.isEmpty { out += "<p class=\"caption\">\(HTMLText.escape(words))</p>\n" }
        return out + "</figure>\n"
    }

    // MARK: Recipe, sensitivity and the frontier

    func recipeSection(_ note: RecipeNote) -> String {
        var out = "<section id=\"recipe\">\n<h2>Recipe chosen by <code>--auto</code></h2>\n"
        out += "<p class=\"path\">\(HTMLText.name(note.path, limit: 240))</p>\n<pre>"
        out += note.lines.map { HTMLText.name($0, limit: 240) }.joined(separator: "\n")
        return out + "</pre>\n</section>\n"
    }

    /// How the JSON reports' model metrics are drawn: top-1 error with labels, else agreement, else SNR.
    struct Metric {
        enum Kind { case error, agreement, snr }
        var kind: Kind

        init(_ original: Metrics) {
            kind = original.accuracy != nil ? .error : original.agreement != nil ? .agreement : .snr
        }

        var label: String {
            switch kind {
            case .error: return "top-1 error %"
            case .agreement: return "top-1 agreement with the original %"
            case .snr: return "lowest output SNR dB"
            }
        }

        var lowerIsBetter: Bool { kind == .error }

        func value(_ m: Metrics) -> Double? {
            switch kind {
            case .error: return m.accuracy.map { (1 - $0) * 100 }
            case .agreement: return m.agreement.map { $0 * 100 }
            case .snr: return m.outputSNR.flatMap { $0.isFinite ? $0 : nil }
            }
        }

        /// `a` is better than `b`.
        func better(_ a: Double, _ b: Double) -> Bool { lowerIsBetter ? a < b : a > b }

        /// The budget's line, from `--max-accuracy-drop 0.3` and the original's value.
        func budgetLine(_ budget: String, original: Double?) -> Double? {
            let parts = budget.split(separator: " ")
            guard parts.count == 2, let number = Double(parts[1]) else { return nil }
            switch (kind, parts[0]) {
            case (.error, "--max-accuracy-drop"): return original.map { $0 + number }
            case (.agreement, "--min-agreement"): return number * 100
            case (.snr, "--min-output-snr"): return number
            default: return nil
            }
        }
    }

    func searchSection() -> String {
        var out = "<section id=\"sensitivity\">\n<h2>Sensitivity and the size-versus-metric frontier</h2>\n"
        if let search { out += frontierFigure(search) }
        if let sensitivity { out += sensitivityFigures(sensitivity) }
        return out + "</section>\n"
    }

    /// Every model `--auto` checked: container bytes against the budget's metric, the written one ringed.
    func frontierFigure(_ search: Search) -> String {
        let metric = Metric(search.original)
        var out = "<h3>Models <code>--auto</code> checked (\(HTMLText.name(search.budget)))</h3>\n"
        out += "<p>\(TextTable.grouped(search.probes.count)) models compressed and run on <code>\(HTMLText.name(search.data, limit: 160))</code> "
        out += "(\(TextTable.grouped(search.samples)) samples); the one written is ringed"
        out += String(
            format: ": %@, %.1f× smaller than the %@ source.", HTMLText.bytes(search.chosen.bytes),
            Double(search.sourceBytes) / Double(max(1, search.chosen.bytes)), HTMLText.bytes(search.sourceBytes))
        if let missed = search.missed { out += " <strong>\(HTMLText.name(missed, limit: 400))</strong>" }
        out += "</p>\n"
        let points = search.probes.compactMap { probe in metric.value(probe.metrics).map { (probe, $0) } }
        guard !points.isEmpty else { return out + "<p class=\"note\">The report holds no \(metric.label) to draw.</p>\n" }
        let width = 760.0, height = 320.0, plot = (left: 64.0, right: 740.0, top: 16.0, bottom: 270.0)
        var svg = SVGDrawing(width: width, height: height)
        let sizes = points.map { Double($0.0.bytes) }
        let x = ChartScale(domain: (sizes.min()! * 0.9, max(sizes.max()! * 1.1, sizes.min()! * 2)), range: (plot.left, plot.right), logarithmic: true)
        let original = metric.value(search.original)
        let budget = metric.budgetLine(search.budget, original: original)
        var values = points.map(\.1)
        if let original { values.append(original) }
        if let budget { values.append(budget) }
        let (low, high) = (values.min()!, values.max()!)
        let pad = max(1e-6, (high - low) * 0.08)
        let y = ChartScale(domain: (low - pad, high + pad), range: (plot.bottom, plot.top))
        axes(&svg, x: x, y: y, plot: plot, xLabel: "container bytes (log scale)", yLabel: metric.label, xFormat: { HTMLText.bytes(Int($0)) })
        if let original {
            svg.line(
                x1: plot.left, y1: y(original), x2: plot.right, y2: y(original), cssClass: "reference",
                title: String(format: "the original model: %.4g", original))
            svg.text("original", x: plot.right - 2, y: y(original) - 4, anchor: "end", cssClass: "tick")
        }
        if let budget {
            svg.line(x1: plot.left, y1: y(budget), x2: plot.right, y2: y(budget), cssClass: "budget", title: "budget \(search.budget)")
            svg.text("budget", x: plot.right - 2, y: y(budget) - 4, anchor: "end", cssClass: "tick")
        }
        // The frontier of what was checked: each model better than every smaller one.
        var front: [(Double, Double)] = []
        for (probe, value) in points.sorted(by: { ($0.0.bytes, $0.1) < ($1.0.bytes, $1.1) }) where front.last.map({ metric.better(value, $0.1) }) ?? true {
            front.append((Double(probe.bytes), value))
        }
        svg.path(front.map { (x($0.0), y($0.1)) }, cssClass: "frontier")
        for (probe, value) in points {
            let title =
                "\(TextTable.grouped(probe.bytes)) bytes, " + String(format: "%.4g", value) + (probe.meets ? ", meets the budget" : ", misses the budget")
                + "\n" + TextTable.bounded(probe.settings.joined(separator: ", "), limit: 400)
            svg.circle(x: x(Double(probe.bytes)), y: y(value), radius: 4, cssClass: probe.meets ? "meets" : "misses", title: title)
        }
        if let chosen = metric.value(search.chosen.metrics) {
            svg.circle(x: x(Double(search.chosen.bytes)), y: y(chosen), radius: 9, cssClass: "chosen")
            svg.text("written", x: x(Double(search.chosen.bytes)) + 12, y: y(chosen) + 4, cssClass: "label")
        }
        out += svg.render(label: "Models checked by --auto: size against \(metric.label)") + "\n"
        out +=
            "<p class=\"legend\"><span class=\"swatch meets\"></span> meets the budget <span class=\"swatch misses\"></span> misses it; the line joins the models no smaller model beats.</p>\n"
        if !search.layers.isEmpty {
            out += "<table>\n<tr><th>tensor</th><th>setting chosen</th><th class=\"num\">bytes alone</th></tr>\n"
            for layer in search.layers.prefix(200) {
                out +=
                    "<tr><td><code>\(HTMLText.name(layer.tensor))</code></td><td>\(HTMLText.name(layer.setting))</td><td class=\"num\">\(HTMLText.bytes(layer.bytes))</td></tr>\n"
            }
            out += "</table>\n"
        }
        if let width = search.width, let fraction = width.fraction, let check = width.checks.first(where: { $0.fraction == fraction }) {
            let percent = Int((fraction * 100).rounded())
            let removed = HTMLText.name(check.removed.joined(separator: "; "), limit: 4000)
            out += "<p>Before the search, \(percent)% of the neurons of each layer that can lose them were removed "
            out += "(structured pruning, criterion <code>obs</code>): \(removed). In float32 that model \(HTMLText.name(check.described)).</p>\n"
        } else if let note = search.width?.note {
            out += "<p>\(HTMLText.name(note)).</p>\n"
        }
        return out
    }

    /// One small chart per layer: each setting's bits per weight against the model's metric with only
    /// that layer compressed; the layer's own frontier joined, the setting `--auto` chose ringed.
    func sensitivityFigures(_ report: Sensitivity) -> String {
        let metric = Metric(report.original)
        let original = metric.value(report.original)
        var chosen: [String: String] = [:]
        for layer in search?.layers ?? [] { chosen[layer.tensor] = layer.setting }
        var out = "<h3>Each layer alone</h3>\n<p>From <code>\(HTMLText.name(report.file, limit: 160))</code>: every setting applied to one layer at a time, "
        out += "the model run on <code>\(HTMLText.name(report.data, limit: 160))</code> (\(TextTable.grouped(report.samples)) samples). "
        out += "Filled points are the layer's frontier (no smaller setting does better)"
        out += search != nil ? "; the setting <code>--auto</code> chose is ringed.</p>\n" : ".</p>\n"
        out += "<div class=\"grid\">\n"
        for layer in report.layers.prefix(512) {
            let points = layer.rows.compactMap { row in metric.value(row.metrics).map { (row, Double(row.bytes * 8) / Double(max(1, layer.elements)), $0) } }
            let name = TextTable.bounded(layer.tensor, limit: 48)
            out += "<figure data-name=\"\(HTMLText.escape(name.lowercased()))\">\n<figcaption><code>\(HTMLText.escape(name))</code> "
            out += "\(TextTable.grouped(layer.elements)) weights, \(HTMLText.bytes(layer.bytes)) uncompressed</figcaption>\n"
            guard !points.isEmpty else {
                out += "<p class=\"note\">No setting measured.</p>\n</figure>\n"
                continue
            }
            let width = 372.0, height = 210.0, plot = (left: 48.0, right: 360.0, top: 12.0, bottom: 170.0)
            var svg = SVGDrawing(width: width, height: height)
            let bits = points.map(\.1).filter { $0 > 0 }
            let x = ChartScale(
                domain: ((bits.min() ?? 0.1) * 0.8, max((bits.max() ?? 32) * 1.25, (bits.min() ?? 0.1) * 2)), range: (plot.left, plot.right), logarithmic: true)
            var values = points.map(\.2)
            if let original { values.append(original) }
            let (low, high) = (values.min()!, values.max()!)
            let pad = max(1e-6, (high - low) * 0.08)
            let y = ChartScale(domain: (low - pad, high + pad), range: (plot.bottom, plot.top))
            axes(&svg, x: x, y: y, plot: plot, xLabel: "bits per weight (log scale)", yLabel: metric.label, xFormat: { HTMLText.axis($0) })
            if let original {
                svg.line(
                    x1: plot.left, y1: y(original), x2: plot.right, y2: y(original), cssClass: "reference",
                    title: String(format: "the original model: %.4g", original))
            }
            let sorted = points.sorted { ($0.1, $0.2) < ($1.1, $1.2) }
            var front: [(Row, Double, Double)] = []
            for point in sorted where front.last.map({ metric.better(point.2, $0.2) }) ?? true { front.append(point) }
            svg.path(front.map { (x($0.1), y($0.2)) }, cssClass: "frontier")
            let onFront = Set(front.map(\.0.setting))
            for (row, bitsPerWeight, value) in points {
                let title =
                    "\(TextTable.bounded(row.setting)): \(TextTable.grouped(row.bytes)) bytes ("
                    + String(format: "%.3g bits per weight), %.4g", bitsPerWeight, value)
                svg.circle(x: x(bitsPerWeight), y: y(value), radius: 3.5, cssClass: onFront.contains(row.setting) ? "point" : "dominated", title: title)
                if chosen[layer.tensor] == row.setting { svg.circle(x: x(bitsPerWeight), y: y(value), radius: 8, cssClass: "chosen") }
            }
            for (row, bitsPerWeight, value) in front.suffix(8) {
                svg.text(TextTable.bounded(row.setting, limit: 18), x: x(bitsPerWeight) + 5, y: y(value) - 5, cssClass: "tick")
            }
            out += svg.render(label: "Sensitivity of \(name)") + "\n</figure>\n"
        }
        if report.layers.count > 512 { out += "<p class=\"note\">… and \(report.layers.count - 512) more layers.</p>\n" }
        return out + "</div>\n"
    }

    typealias Row = Sensitivity.Row

    /// Axes, ticks, grid lines and labels of a scatter chart.
    func axes(
        _ svg: inout SVGDrawing, x: ChartScale, y: ChartScale, plot: (left: Double, right: Double, top: Double, bottom: Double), xLabel: String,
        yLabel: String, xFormat: (Double) -> String
    ) {
        for tick in y.ticks(4) {
            svg.line(x1: plot.left, y1: y(tick), x2: plot.right, y2: y(tick), cssClass: "gridline")
            svg.text(HTMLText.axis(tick), x: plot.left - 5, y: y(tick) + 3.5, anchor: "end", cssClass: "tick")
        }
        for tick in x.ticks(6) {
            svg.line(x1: x(tick), y1: plot.top, x2: x(tick), y2: plot.bottom, cssClass: "gridline")
            svg.text(xFormat(tick), x: x(tick), y: plot.bottom + 15, anchor: "middle", cssClass: "tick")
        }
        svg.line(x1: plot.left, y1: plot.bottom, x2: plot.right, y2: plot.bottom, cssClass: "axis")
        svg.line(x1: plot.left, y1: plot.top, x2: plot.left, y2: plot.bottom, cssClass: "axis")
        svg.text(xLabel, x: plot.right, y: plot.bottom + 32, anchor: "end", cssClass: "tick")
        svg.text(yLabel, x: plot.left, y: plot.top - 2 < 10 ? 10 : plot.top - 2, cssClass: "tick")
    }

    static func percent(_ fraction: Double) -> String { String(format: "%.2f%%", fraction * 100) }

    // MARK: Style and script

    static let css = """
        :root { --fg: #1d2330; --muted: #5c6577; --line: #dde2ea; --before: #c9d3e3; --after: #2563c9; --bits: #d9822b;
          --zeros: #2f9e6b; --mark: #d33f49; --pruned: #fbe1e3; --hist: #a9c1ea; --meets: #2f9e6b; --misses: #b8bfcb; }
        * { box-sizing: border-box; }
        body { margin: 0; background: #f4f6f9; color: var(--fg);
          font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", sans-serif; }
        main { max-width: 1220px; margin: 0 auto; padding: 20px 24px 40px; }
        header { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 18px 22px; border-top: 5px solid var(--after); }
        h1 { font-size: 24px; margin: 0 0 4px; overflow-wrap: anywhere; }
        h1 .vs { color: var(--muted); font-weight: 400; font-size: 18px; }
        h2 { font-size: 19px; margin: 0 0 10px; }
        h3 { font-size: 15px; margin: 14px 0 6px; }
        .facts, .path, .note, .legend, .caption, footer { color: var(--muted); }
        .path { overflow-wrap: anywhere; font-size: 12px; }
        .cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
        .card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 150px; background: #fbfcfe; }
        .card b { display: block; font-size: 20px; font-variant-numeric: tabular-nums; }
        .card span { color: var(--muted); font-size: 12px; }
        .card.accent b { color: var(--after); }
        nav a { color: var(--after); text-decoration: none; } nav a:hover { text-decoration: underline; }
        section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 22px; margin: 16px 0; }
        table { border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; }
        th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
        th { color: var(--muted); font-weight: 600; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        code { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 12px; overflow-wrap: anywhere; }
        pre { background: #f6f8fb; border: 1px solid var(--line); border-radius: 6px; padding: 10px; overflow-x: auto; font-size: 12px; }
        .columns { display: flex; flex-wrap: wrap; gap: 28px; }
        .scroll { overflow-x: auto; }
        .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 12px; }
        .grid svg { width: 100%; }
        figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
        figcaption { font-size: 12px; color: var(--muted); margin-bottom: 2px; overflow-wrap: anywhere; }
        .caption { font-size: 12px; margin: 2px 0 0; }
        .swatch { display: inline-block; width: 14px; height: 10px; border-radius: 2px; vertical-align: baseline; margin-left: 8px; }
        .swatch.before { background: var(--before); } .swatch.after { background: var(--after); } .swatch.hist { background: var(--hist); }
        .swatch.line-after { height: 3px; background: var(--bits); } .swatch.line-mark { width: 3px; background: var(--mark); }
        .swatch.pruned { background: var(--pruned); border: 1px solid #f0b8bd; }
        .swatch.meets { background: var(--meets); border-radius: 7px; width: 10px; } .swatch.misses { background: var(--misses); border-radius: 7px; width: 10px; }
        svg { max-width: 100%; height: auto; display: block; }
        svg text { font-size: 11px; fill: var(--fg); }
        svg .head { font-weight: 600; fill: var(--muted); }
        svg .tick, svg .small { font-size: 10px; fill: var(--muted); }
        svg .value { font-size: 11px; font-variant-numeric: tabular-nums; }
        svg .gridline { stroke: #edf0f4; stroke-width: 1; }
        svg .axis { stroke: #8a93a3; stroke-width: 1; }
        svg .stripe { fill: #f7f9fc; }
        svg .hit { fill: transparent; }
        svg .hit:hover { fill: rgba(37, 99, 201, 0.07); }
        svg .before { fill: var(--before); } svg .after { fill: var(--after); } svg .bits { fill: var(--bits); }
        svg .zeros { fill: var(--zeros); } svg .op { fill: #7b93c4; }
        svg .hist { fill: var(--hist); stroke: #5f86cc; stroke-width: 0.8; }
        svg .line-after { fill: none; stroke: var(--bits); stroke-width: 1.4; }
        svg .line-mark { stroke: var(--mark); stroke-width: 1.2; }
        svg .line-mark.thin { stroke-width: 0.6; }
        svg .pruned { fill: var(--pruned); }
        svg .reference { stroke: #5c6577; stroke-dasharray: 4 3; }
        svg .budget { stroke: var(--mark); stroke-dasharray: 6 3; }
        svg .frontier { fill: none; stroke: var(--after); stroke-width: 1.5; }
        svg .meets { fill: var(--meets); } svg .misses { fill: var(--misses); }
        svg .point { fill: var(--after); } svg .dominated { fill: #fff; stroke: #8a93a3; }
        svg .chosen { fill: none; stroke: var(--mark); stroke-width: 2; }
        footer { font-size: 12px; margin-top: 20px; }

        """

    /// The only script: shows the name filter and applies it. The page reads the same without it.
    static let script = """
        (function () {
          var input = document.getElementById('filter');
          if (input) {
            input.closest('.filter').hidden = false;
            input.addEventListener('input', function () {
              var text = input.value.trim().toLowerCase();
              document.querySelectorAll('figure[data-name]').forEach(function (figure) {
                figure.hidden = text !== '' && figure.getAttribute('data-name').indexOf(text) < 0;
              });
            });
          }
          document.body.setAttribute('data-ready', 'yes');
        })();

        """
}
