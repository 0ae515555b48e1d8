import Foundation
import PithContainer
import PithEval

/// What `pith sensitivity` measured: for each layer and setting, the model with only that layer
/// compressed, run on the validation data.
public struct SensitivityReport: Sendable, Codable {
    public struct Row: Sendable, Codable {
        /// The setting (`prune0.8+kmeans3`; see `LayerSetting`).
        public var setting: String
        /// The weight's bytes in a container (after entropy coding), and the fp32 weight's over them.
        public var bytes: Int
        public var ratio: Double
        /// The layer output error on the calibration data, E‖(W − Ŵ)x + Δb‖² / E‖Wx‖².
        public var proxy: Double
        public var metrics: ModelMetrics
        /// (original accuracy − accuracy) × 100, with labels.
        public var accuracyDrop: Double?
    }

    public struct Layer: Sendable, Codable {
        public var tensor: String
        public var layer: String
        public var op: String
        public var elements: Int
        /// The uncompressed weight's bytes in a container.
        public var bytes: Int
        public var rows: [Row]
        /// Settings that do not apply to the layer (a factorization that would not be smaller).
        public var notApplicable: [String]
    }

    public struct Skipped: Sendable, Codable {
        public var tensor: String
        public var reason: String
    }

    public var model: String
    public var calibration: String
    public var calibrationSamples: Int
    public var data: String
    public var samples: Int
    public var labels: String?
    public var seed: UInt64
    /// The uncompressed model on the data.
    public var original: ModelMetrics
    public var layers: [Layer]
    /// Weights the default selection (or `--only`) takes that cannot be calibrated, with the reason.
    public var skipped: [Skipped]
    public var seconds: Double

    public func renderJSON() -> String { ReportJSON.text(self) }

    /// One line per layer and setting (RFC 4180), numbers in full.
    public func renderCSV() -> String {
        var lines = ["tensor,layer,op,setting,bytes,ratio,proxy,accuracy,accuracy_drop,agreement,output_snr_db"]
        for layer in layers {
            for row in layer.rows {
                let fields = [
                    layer.tensor, layer.layer, layer.op, row.setting, String(row.bytes), String(row.ratio), String(row.proxy),
                    row.metrics.accuracy.map { String($0) } ?? "", row.accuracyDrop.map { String($0) } ?? "",
                    row.metrics.agreement.map { String($0) } ?? "", String(row.metrics.outputSNR),
                ]
                lines.append(fields.map(Self.csvField).joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public func renderText() -> String {
        var out = "\(model): sensitivity of each layer alone on \(data) (\(TextTable.grouped(samples)) samples)\n"
        out += "calibration: \(calibration), \(TextTable.grouped(calibrationSamples)) samples\n"
        if let accuracy = original.accuracy {
            out += "original: top-1 accuracy \(TextTable.percent(accuracy)) (error \(TextTable.percent(1 - accuracy)))\n"
        }
        for layer in layers {
            out += "\n\(layer.tensor) (\(layer.op) \(layer.layer), \(TextTable.grouped(layer.elements)) weights, \(TextTable.grouped(layer.bytes)) bytes):\n"
            var header = ["setting", "bytes", "ratio", "layer error"]
            if original.accuracy != nil { header += ["error", "Δ points"] }
            if layer.rows.contains(where: { $0.metrics.agreement != nil }) { header.append("top-1 agree") }
            header.append("output snr dB")
            let rows = layer.rows.map { row -> [String] in
                var cells = [row.setting, TextTable.grouped(row.bytes), String(format: "%.1f×", row.ratio), String(format: "%.3g", row.proxy)]
                if let accuracy = row.metrics.accuracy {
                    cells += [TextTable.percent(1 - accuracy), String(format: "%+.2f", row.accuracyDrop ?? 0)]
                }
                if header.contains("top-1 agree") { cells.append(row.metrics.agreement.map { TextTable.percent($0) } ?? "-") }
                cells.append(row.metrics.outputSNR.isFinite ? String(format: "%.1f", row.metrics.outputSNR) : "exact")
                return cells
            }
            out += TextTable.render(header: header, rows: rows, rightAligned: Set(1..<header.count))
            if !layer.notApplicable.isEmpty { out += "  not applicable: \(layer.notApplicable.joined(separator: ", "))\n" }
        }
        for skip in skipped { out += "\nleft alone: \(skip.tensor): \(skip.reason)\n" }
        out += "\n(layer error: E‖(W − Ŵ)x + Δb‖² / E‖Wx‖² on the calibration data; error and agreement on the validation data, "
        out += "only the named layer compressed; time \(String(format: "%.1f", seconds)) s)\n"
        return out
    }

    static func csvField(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// `pith sensitivity`: each layer compressed alone at each setting, checked with the evaluator.
public enum Sensitivity {
    /// What the command asks for.
    public struct Request: Sendable {
        public var model: String
        public var calibration: Calibration.Request
        public var data: String
        public var labels: String?
        public var scale: Double?
        public var batchSize: Int
        /// Nil: `LayerSetting.sensitivityDefaults`.
        public var settings: [LayerSetting]?
        /// Glob patterns on weight names; empty: the default selection.
        public var only: [String]
        public var seed: UInt64
        public var damp: Double?

        public init(
            model: String, calibration: Calibration.Request, data: String, labels: String? = nil, scale: Double? = nil, batchSize: Int = 500,
            settings: [LayerSetting]? = nil, only: [String] = [], seed: UInt64 = 0, damp: Double? = nil
        ) {
            self.model = model
            self.calibration = calibration
            self.data = data
            self.labels = labels
            self.scale = scale
            self.batchSize = batchSize
            self.settings = settings
            self.only = only
            self.seed = seed
            self.damp = damp
        }
    }

    /// Calibration samples below which the layer errors that rank settings say little.
    public static let minimumCalibrationSamples = 16
    /// Bytes of captured layer inputs kept for reuse while candidates are measured.
    static let captureCacheBytes = 512 << 20

    public static func run(_ request: Request, progress: ((String) -> Void)? = nil) throws -> SensitivityReport {
        let start = DispatchTime.now().uptimeNanoseconds
        let model = try ModelFile.load(request.model)
        let (layers, others) = try calibratedLayers(model, only: request.only, file: request.model)
        let (calibration, validation) = try prepare(
            model, calibration: request.calibration, data: request.data, labels: request.labels, scale: request.scale, batchSize: request.batchSize)
        let settings = request.settings ?? LayerSetting.sensitivityDefaults
        progress?("sensitivity: \(settings.count) settings on \(layers.count) layers")
        let measured = try translating(request.model) {
            try LayerCandidates.measure(model, layers: layers, settings: settings, calibration: calibration, seed: request.seed, damp: request.damp)
        }
        var report = SensitivityReport(
            model: request.model, calibration: calibration.name, calibrationSamples: calibration.samples, data: request.data, samples: validation.samples,
            labels: request.labels, seed: request.seed, original: validation.original, layers: [],
            skipped: others.map { .init(tensor: $0.tensor, reason: $0.reason) },
            seconds: 0)
        let index = Dictionary(uniqueKeysWithValues: model.tensors.enumerated().map { ($1.name, $0) })
        for (layer, candidates) in zip(layers, measured) {
            let full = try containerBytes(of: model.tensors[index[layer.tensor]!], format: model.format)
            var entry = SensitivityReport.Layer(
                tensor: layer.tensor, layer: layer.layer, op: layer.op, elements: layer.elements, bytes: full, rows: [], notApplicable: [])
            for (setting, candidate) in zip(settings, candidates) {
                guard let candidate else {
                    entry.notApplicable.append(setting.description)
                    continue
                }
                var variant = model
                for tensor in candidate.tensors { variant.tensors[index[tensor.name]!] = tensor }
                let metrics = try validation.measure(variant)
                let bytes = try containerBytes(of: candidate.tensors[0], format: model.format)
                entry.rows.append(
                    .init(
                        setting: setting.description, bytes: bytes, ratio: Double(full) / Double(Swift.max(1, bytes)), proxy: candidate.proxy, metrics: metrics,
                        accuracyDrop: accuracyDrop(validation.original, metrics)))
            }
            report.layers.append(entry)
            progress?("sensitivity: \(layer.tensor) done (\(report.layers.count) of \(layers.count))")
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return report
    }

    /// (original − candidate accuracy) in points, with labels.
    static func accuracyDrop(_ original: ModelMetrics, _ metrics: ModelMetrics) -> Double? {
        guard let a = original.accuracy, let b = metrics.accuracy else { return nil }
        return (a - b) * 100
    }

    /// The calibration data (captures kept for reuse) and the validation data with the original
    /// model's outputs on it. Refused: fewer than `minimumCalibrationSamples` calibration samples, and
    /// everything `Calibration.load` and `ValidationSet.load` refuse.
    static func prepare(
        _ model: Model, calibration request: Calibration.Request, data: String, labels: String?, scale: Double?, batchSize: Int
    ) throws -> (Calibration, ValidationSet) {
        let calibration = try Calibration.load(request, for: model, cacheBytes: captureCacheBytes)
        guard calibration.samples >= minimumCalibrationSamples else {
            throw PithError(
                .data,
                "calibration data: \(calibration.name): \(calibration.samples) samples; the layer errors that rank the settings need at least \(minimumCalibrationSamples)"
            )
        }
        let validation = try ValidationSet.load(data: data, labels: labels, scale: scale, batchSize: batchSize, for: model)
        return (calibration, validation)
    }

    /// The weights to measure: the default selection's (or those `only` names) that the data-aware
    /// passes can calibrate, and the others with the reason; refused when there are none.
    static func calibratedLayers(_ model: Model, only: [String], file: String) throws -> (layers: [CalibratedLayer], others: [(tensor: String, reason: String)])
    {
        let selector = only.isEmpty ? TensorSelector() : TensorSelector(names: only, roles: [.weight])
        let (layers, others) = LayerCandidates.layers(of: model, selector: selector)
        guard !layers.isEmpty else {
            let why = others.first.map { ": `\($0.tensor)`: \($0.reason)" } ?? (only.isEmpty ? "" : ": no weight matches \(only.joined(separator: ", "))")
            throw PithError(.unsupported, "\(file): no layer the data-aware passes can calibrate\(why)")
        }
        return (layers, others)
    }

    /// The bytes `tensor` takes in a container (entropy-coded streams and tables).
    static func containerBytes(of tensor: Tensor, format: SourceFormat) throws -> Int {
        do {
            let accounting = try ContainerWriter.encodeWithAccounting(Model(format: format, tensors: [tensor])).accounting
            return accounting.tensors.first?.bytes ?? 0
        } catch {
            throw PithError(.data, "tensor `\(tensor.name)`: \(error)")
        }
    }

    /// Runs `body`, giving a pass error the model's file name.
    static func translating<T>(_ file: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as PassError { throw PithError(error.exitKind, "\(file): \(error.message)") }
    }
}
