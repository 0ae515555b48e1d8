import Foundation
import PithContainer

/// `pith report`: one self-contained HTML page about a model and, with `compare`, its compressed
/// twin — the model summary, bytes and bits per layer, weight histograms with the codebook or the
/// quantization grid, the outputs compared on data, and the sensitivity curves and size-versus-metric
/// frontier of `pith sensitivity` / `pith compress --auto` when their JSON reports are given.
///
/// `run` gathers the numbers (`ModelReport`); `ModelReport.renderHTML()` draws them.
public enum Reporting {
    public struct Request: Sendable {
        /// The model (ONNX, HDF5, or a `.pith` container reported alone).
        public var model: String
        /// The compressed model: a `.pith` container (with its accounting) or any model file.
        public var compare: String?
        /// Data to run both models on (needs `compare`), with optional labels.
        public var data: String?
        public var labels: String?
        public var scale: Double?
        public var batchSize: Int
        /// A `pith sensitivity --format json` report.
        public var sensitivity: String?
        /// A `pith compress --auto --format json` report.
        public var autoReport: String?
        /// Weight histograms for the largest this many weights.
        public var histograms: Int
        /// Every tensor in the per-layer bars and a histogram for every floating-point tensor.
        public var all: Bool

        public init(
            model: String, compare: String? = nil, data: String? = nil, labels: String? = nil, scale: Double? = nil, batchSize: Int = 500,
            sensitivity: String? = nil, autoReport: String? = nil, histograms: Int = defaultHistograms, all: Bool = false
        ) {
            self.model = model
            self.compare = compare
            self.data = data
            self.labels = labels
            self.scale = scale
            self.batchSize = batchSize
            self.sensitivity = sensitivity
            self.autoReport = autoReport
            self.histograms = histograms
            self.all = all
        }
    }

    /// Histograms drawn by default: the largest weights.
    public static let defaultHistograms = 12
    /// Weights drawn in the size bars without `all`: the largest, in file order.
    public static let layerRowLimit = 40
    /// Bins of every weight histogram.
    public static let histogramBins = 96

    /// The roles `pith inspect` lists as weights: learned values a layer multiplies by (and the
    /// tensors of files without a graph, whose role is unknown).
    static let weightRoles: Set<String> = ["weight", "embedding", "unknown", ""]

    /// Reads the model (and the compressed one), measures every tensor, compares them, and reads the
    /// sensitivity and `--auto` reports; refuses `data` without `compare` (usage, 64).
    public static func run(_ request: Request, progress: ((String) -> Void)? = nil) throws -> ModelReport {
        if request.data != nil, request.compare == nil {
            throw PithError(.usage, "--data compares the outputs of two models: give the compressed one with --compare")
        }
        // The JSON inputs first: a wrong file is refused before any model is read.
        let sensitivity = try request.sensitivity.map { try ModelReport.Sensitivity.read($0) }
        let search = try request.autoReport.map { try ModelReport.Search.read($0) }

        progress?("report: reading \(request.model)")
        let original = try Loaded(request.model)
        let statistics = Inspector.inspect(original.model, file: request.model, storedBytes: original.storedBytes, container: original.container)
        var report = ModelReport(file: request.model, fileBytes: fileSize(request.model), inspect: statistics)
        report.sensitivity = sensitivity
        report.search = search

        var compared: Loaded?
        if let path = request.compare {
            progress?("report: reading \(path)")
            let loaded = try Loaded(path)
            compared = loaded
            report.comparison = .init(
                file: path, fileBytes: fileSize(path), container: loaded.container, recipe: recipeNote(beside: path),
                statistics: Inspector.measure(loaded.model.tensors))
            progress?(request.data.map { "report: comparing the weights and the outputs on \($0)" } ?? "report: comparing the weights")
            report.verify = try Verification.run(
                original: request.model, candidate: path, data: request.data, labels: request.labels, batchSize: request.batchSize,
                scale: request.scale, thresholds: .init())
        } else if original.container != nil {
            // A container alone: its own accounting is the "after".
            compared = original
            report.containerAlone = true
            report.comparison = .init(
                file: request.model, fileBytes: report.fileBytes, container: original.container, recipe: recipeNote(beside: request.model),
                statistics: statistics.tensors)
        }
        report.weightCount = statistics.tensors.filter { weightRoles.contains($0.role) }.count
        report.layers = layerRows(report, all: request.all)
        progress?("report: weight histograms")
        report.histograms = histograms(
            original.model, compared: compared?.model, roles: statistics.tensors.map(\.role), count: request.histograms, all: request.all)
        return report
    }

    /// A model read for the report: a container keeps its compressed tensors and its accounting.
    struct Loaded {
        var model: Model
        var storedBytes: [Int]?
        var container: InspectReport.ContainerSummary?

        init(_ path: String) throws {
            if try ModelFile.detectFormat(of: path) != .pith {
                model = try ModelFile.load(path)
            } else if let stored = try StoredWhole.source(of: path) {
                model = try StoredWhole.load(stored, container: path).model
                container = stored.summary
            } else {
                let contents = try PithError.translatingErrors { try ContainerReader.read(contentsOf: path) }
                model = contents.model
                storedBytes = contents.tensorBytes
                container = Inspection.containerSummary(contents)
            }
        }
    }

    /// The size of the file at `path`, following symbolic links (a linked model is measured, not its link).
    static func fileSize(_ path: String) -> Int {
        ModelFile.fileSize(path)
    }

    /// The header comments of the recipe `--auto` wrote beside `container` (`OUT.recipe.yaml`), when there is one.
    static func recipeNote(beside container: String) -> ModelReport.RecipeNote? {
        let path = AutoCompression.recipePath(for: container)
        guard path != container, let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        let comments = text.split(separator: "\n").prefix { $0.hasPrefix("#") }.map { String($0.dropFirst().drop { $0 == " " }) }
        return .init(path: path, lines: Array(comments.prefix(200)))
    }

    /// One row per weight (every tensor with `all`), in file order; the rest summed in `others`.
    static func layerRows(_ report: ModelReport, all: Bool) -> [ModelReport.LayerRow] {
        let after = report.comparison.map { comparison in
            Dictionary(comparison.statistics.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        }
        let accounting = report.comparison?.container.map { summary in
            Dictionary(summary.rows.map { ($0.tensor, $0) }, uniquingKeysWith: { first, _ in first })
        }
        let snr = report.verify.map { verify in
            Dictionary(verify.weights.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        }
        var rows: [ModelReport.LayerRow] = []
        for tensor in report.inspect.tensors where all || weightRoles.contains(tensor.role) {
            var row = ModelReport.LayerRow(
                tensor: tensor.name, layer: tensor.layer, op: tensor.op, shape: tensor.shape, elements: tensor.count, bytesBefore: tensor.bytes,
                bitsBefore: tensor.bitsPerWeight, sparsityBefore: tensor.sparsity)
            if let stored = after?[tensor.name] {
                row.bytesAfter = stored.bytes
                row.bitsAfter = stored.bitsPerWeight
                row.sparsityAfter = stored.sparsity
                row.encoding = stored.dtype.rawValue
            }
            if let entry = accounting?[tensor.name], report.containerAlone {
                row.bytesBefore = entry.denseBytes
                row.bitsBefore = entry.elements == 0 ? 0 : Double(entry.denseBytes * 8) / Double(entry.elements)
            }
            if let entry = accounting?[tensor.name] {
                row.bytesAfter = entry.bytes
                row.bitsAfter = entry.elements == 0 ? 0 : Double(entry.bytes * 8) / Double(entry.elements)
                row.encoding = entry.encoding
            }
            if let compared = snr?[tensor.name] {
                row.weightSNR = compared.bitExact ? .infinity : compared.snrDB
            }
            rows.append(row)
        }
        guard !all, rows.count > layerRowLimit else { return rows }
        let largest = Set(rows.indices.sorted { (rows[$0].bytesBefore, $1) > (rows[$1].bytesBefore, $0) }.prefix(layerRowLimit))
        return rows.indices.filter { largest.contains($0) }.map { rows[$0] }
    }

    /// Histograms of the largest `count` weights (every floating-point tensor with `all`), the
    /// compressed values' codebook or grid marked.
    static func histograms(_ model: Model, compared: Model?, roles: [String], count: Int, all: Bool) -> [ModelReport.Histogram] {
        var chosen = model.tensors.indices.filter { i in
            model.tensors[i].dtype.isFloatingPoint && model.tensors[i].count > 1 && (all || weightRoles.contains(i < roles.count ? roles[i] : ""))
        }
        if !all {
            chosen = Array(chosen.sorted { (model.tensors[$0].count, $1) > (model.tensors[$1].count, $0) }.prefix(max(0, count))).sorted()
        }
        var byName: [String: Tensor] = [:]
        for tensor in compared?.tensors ?? [] where byName[tensor.name] == nil { byName[tensor.name] = tensor }
        let twins = byName
        return Parallel.map(chosen) { i in
            let tensor = model.tensors[i]
            return ModelReport.Histogram(tensor, compressed: twins[tensor.name], bins: histogramBins)
        }
    }
}
