import Foundation
import PithContainer
import PithEval
import Yams

/// What `pith compress --auto` must keep on the validation data, against the original model.
public enum AutoBudget: Sendable, Equatable, CustomStringConvertible {
    /// Top-1 accuracy may fall by at most this many points (needs labels).
    case maxAccuracyDrop(Double)
    /// At least this share (0…1) of samples keep the original model's top-1 class.
    case minAgreement(Double)
    /// Every floating-point output keeps at least this SNR in dB.
    case minOutputSNR(Double)

    /// The flag that sets it: `--max-accuracy-drop 0.1`.
    public var description: String {
        switch self {
        case .maxAccuracyDrop(let points): return "--max-accuracy-drop \(points)"
        case .minAgreement(let fraction): return "--min-agreement \(fraction)"
        case .minOutputSNR(let decibels): return "--min-output-snr \(decibels)"
        }
    }

    /// How far `metrics` falls short of the budget, in the budget's unit (points, fraction, dB):
    /// 0 or less when it holds.
    func shortfall(_ metrics: ModelMetrics, original: ModelMetrics) -> Double {
        switch self {
        case .maxAccuracyDrop(let points): return (Sensitivity.accuracyDrop(original, metrics) ?? .infinity) - points
        case .minAgreement(let fraction): return fraction - (metrics.agreement ?? 0)
        case .minOutputSNR(let decibels): return decibels - metrics.outputSNR
        }
    }

    /// Whether `metrics` uses at most `share` of the room the budget leaves: a drop of at most
    /// share · points, a loss of agreement of at most share · (1 − F), an output error power of at most
    /// share of what the SNR budget allows (SNR ≥ DB − 10·log10(share)).
    func within(_ share: Double, _ metrics: ModelMetrics, original: ModelMetrics) -> Bool {
        switch self {
        case .maxAccuracyDrop(let points): return (Sensitivity.accuracyDrop(original, metrics) ?? .infinity) <= share * points + 1e-9
        case .minAgreement(let fraction): return 1 - (metrics.agreement ?? 0) <= share * (1 - fraction) + 1e-9
        case .minOutputSNR(let decibels): return metrics.outputSNR >= decibels - 10 * log10(share) - 1e-9
        }
    }

    /// Whether `metrics` meets the budget (a margin of 1e-9 absorbs rounding).
    func holds(_ metrics: ModelMetrics, original: ModelMetrics) -> Bool { shortfall(metrics, original: original) <= 1e-9 }

    /// What the budget measures of `metrics`, in words: `drops 0.35 points (error 1.68% → 2.03%)`.
    func describe(_ metrics: ModelMetrics, original: ModelMetrics) -> String {
        switch self {
        case .maxAccuracyDrop:
            guard let a = original.accuracy, let b = metrics.accuracy else { return "has no accuracy" }
            return String(format: "drops %.2f points (error %.2f%% → %.2f%%)", (a - b) * 100, (1 - a) * 100, (1 - b) * 100)
        case .minAgreement: return String(format: "agrees on %.2f%% of top-1 classes", (metrics.agreement ?? 0) * 100)
        case .minOutputSNR:
            return metrics.outputSNR.isFinite ? String(format: "keeps an output SNR of %.2f dB", metrics.outputSNR) : "keeps the outputs exactly"
        }
    }

    /// The shortfall in words: `0.25 points`, `0.40 percentage points of agreement`, `2.1 dB`.
    func amount(_ shortfall: Double) -> String {
        switch self {
        case .maxAccuracyDrop: return String(format: "%.2f points", shortfall)
        case .minAgreement: return String(format: "%.2f percentage points of agreement", shortfall * 100)
        case .minOutputSNR: return String(format: "%.2f dB", shortfall)
        }
    }
}

/// What `pith compress --auto` explored and chose.
public struct AutoReport: Sendable, Codable {
    /// One model checked with the evaluator: a setting per layer, compressed in sequence.
    public struct Probe: Sendable, Codable {
        /// The setting of each layer, in the order of `layers`.
        public var settings: [String]
        /// The container's size in bytes, and the source file's over it.
        public var bytes: Int
        public var ratio: Double
        /// The summed output errors the choice was made on (each layer measured alone: see `Layer.proxy`).
        public var proxy: Double
        public var metrics: ModelMetrics
        public var accuracyDrop: Double?
        public var meets: Bool
        public var seconds: Double
    }

    public struct Layer: Sendable, Codable {
        public var tensor: String
        public var elements: Int
        /// The chosen setting, and what it measured alone: container bytes of the weight, the model's
        /// output error Σ(ŷ − y)² / Σy² on the calibration data with only this layer compressed, and
        /// the layer's own output error E‖(W − Ŵ)x‖² / E‖Wx‖².
        public var setting: String
        public var bytes: Int
        public var proxy: Double
        public var layerError: Double
        /// Settings on the layer's own size-versus-error frontier (the others are never chosen).
        public var frontierSettings: Int
    }

    /// Neuron removal before the search (`structured` with `criterion: obs` on every layer that can
    /// lose neurons), each fraction checked in float32 with the evaluator.
    public struct Width: Sendable, Codable {
        public struct Check: Sendable, Codable {
            public var fraction: Double
            public var metrics: ModelMetrics
            public var accuracyDrop: Double?
            /// The metrics in the budget's terms (`drops 0.03 points (error 1.68% → 1.71%)`).
            public var described: String
            /// It uses at most `share` of the budget.
            public var within: Bool
            /// What was removed, per layer (the pass's detail).
            public var removed: [String]
        }

        /// The share of the budget neuron removal may use.
        public var share: Double
        public var checks: [Check]
        /// The fraction the written model was searched at; nil when none (no layer can lose neurons,
        /// none fits the share, or the search at it missed the budget and the full width did better).
        public var fraction: Double?
        /// Why the model written keeps every neuron, when a fraction was tried.
        public var note: String?
    }

    public var model: String
    public var sourceBytes: Int
    public var budget: String
    public var width: Width?
    public var calibration: String
    public var calibrationSamples: Int
    public var data: String
    public var samples: Int
    public var seed: UInt64
    public var original: ModelMetrics
    /// Settings measured on each layer.
    public var settingsPerLayer: Int
    public var layers: [Layer]
    /// Weights left alone (not calibratable), with the reason.
    public var skipped: [SensitivityReport.Skipped]
    /// Points of the summed-proxy frontier (the multiple-choice knapsack's solutions).
    public var frontierPoints: Int
    /// Every model checked, smallest first.
    public var probes: [Probe]
    /// The model written: the smallest that meets the budget, else the one that misses it least.
    public var chosen: Probe
    /// Why the budget is not met, when it is not.
    public var missed: String?
    /// The search stopped at `--time-budget`.
    public var stoppedByTime: Bool
    public var candidateSeconds: Double
    public var searchSeconds: Double

    public func renderJSON() -> String { ReportJSON.text(self) }

    public func renderText() -> String {
        var out = "\(model): --auto \(budget) on \(data) (\(TextTable.grouped(samples)) samples)\n"
        out +=
            "calibration: \(calibration), \(TextTable.grouped(calibrationSamples)) samples; \(settingsPerLayer) settings measured on each of \(layers.count) layers "
        out += String(format: "in %.1f s; %d models checked in %.1f s", candidateSeconds, probes.count, searchSeconds)
        out += stoppedByTime ? " (stopped by --time-budget)\n" : "\n"
        if let accuracy = original.accuracy { out += "original: top-1 accuracy \(TextTable.percent(accuracy)) (error \(TextTable.percent(1 - accuracy)))\n" }
        if let width {
            let share = width.share == 1.0 / 3 ? "a third" : String(format: "%.2g", width.share)
            out += "neuron removal (structured, criterion obs; float32, may use at most \(share) of the budget):\n"
            for check in width.checks {
                out += String(format: "  %2.0f%%: ", check.fraction * 100) + check.described + (check.within ? ", within" : ", over") + "\n"
            }
            if let fraction = width.fraction, let check = width.checks.first(where: { $0.fraction == fraction }) {
                out += String(format: "  searched at %.0f%%: ", fraction * 100) + check.removed.joined(separator: "; ") + "\n"
            }
            if let note = width.note { out += "  \(note)\n" }
            if width.checks.isEmpty { out += "  no layer can lose neurons\n" }
        }
        out += "\nexplored (size against \(budget.split(separator: " ").first ?? "")), smallest first; * the model written:\n"
        var header = ["", "bytes", "ratio", "output errors"]
        if original.accuracy != nil { header += ["error", "Δ points"] }
        if original.agreement != nil { header.append("top-1 agree") }
        header += ["output snr dB", "budget"] + layers.map(\.tensor)
        let rows = probes.map { p -> [String] in
            var cells = [
                p.settings == chosen.settings ? "*" : "", TextTable.grouped(p.bytes), String(format: "%.2f×", p.ratio), String(format: "%.3g", p.proxy),
            ]
            if let accuracy = p.metrics.accuracy { cells += [TextTable.percent(1 - accuracy), String(format: "%+.2f", p.accuracyDrop ?? 0)] }
            if original.agreement != nil { cells.append(p.metrics.agreement.map { TextTable.percent($0) } ?? "-") }
            cells += [p.metrics.outputSNR.isFinite ? String(format: "%.1f", p.metrics.outputSNR) : "exact", p.meets ? "meets" : "misses"] + p.settings
            return cells
        }
        out += TextTable.render(header: header, rows: rows, rightAligned: Set(1..<(header.count - layers.count - 1)))
        out += "\nchosen per layer:\n"
        out += TextTable.render(
            header: ["tensor", "weights", "setting", "bytes alone", "output error alone", "layer error alone"],
            rows: layers.map {
                [
                    $0.tensor, TextTable.grouped($0.elements), $0.setting, TextTable.grouped($0.bytes), String(format: "%.3g", $0.proxy),
                    String(format: "%.3g", $0.layerError),
                ]
            },
            rightAligned: [1, 3, 4, 5])
        for skip in skipped { out += "left alone: \(skip.tensor): \(skip.reason)\n" }
        return out
    }
}

/// `pith compress --auto`: a setting per layer chosen for the smallest model that keeps a budget.
///
/// 1. Every candidate setting is measured on every layer alone (`LayerCandidates.measure`): its
///    container bytes, its layer output error on the calibration data, and then, with only that layer
///    compressed, the model's output error on the calibration data (the proxy, `outputErrors`).
/// 2. The multiple-choice knapsack over bytes: for each summed-proxy target, the smallest choice of one
///    setting per layer whose proxies sum to at most the target. Its solutions for every target form
///    a frontier (bytes up, summed proxy down), found by merging the layers' own frontiers.
/// 3. The target is swept by bisection along that frontier: each model tried is compressed for real
///    (the layers in sequence, each calibrated on the model as the ones before it were left, as
///    `--recipe` would) and checked with the evaluator on the validation data.
/// 4. From the smallest model that keeps the budget, each layer in turn is narrowed one step on its own
///    frontier while the budget holds; from the largest model that misses it, the layer with the
///    worst output error is widened until the budget holds. Every model checked is kept in the report.
/// Deterministic for a seed; `timeBudget` stops the search (not the measuring) early.
public enum AutoCompression {
    public struct Request: Sendable {
        public var model: String
        public var calibration: Calibration.Request
        public var data: String
        public var labels: String?
        public var scale: Double?
        public var batchSize: Int
        public var budget: AutoBudget
        /// Nil: `LayerSetting.searchDefaults`.
        public var settings: [LayerSetting]?
        public var only: [String]
        public var seed: UInt64
        public var damp: Double?
        /// Seconds after which no further model is checked.
        public var timeBudget: Double?
        /// Models checked at most.
        public var maxProbes: Int
        /// Whether neurons may be removed before the search (`--no-structured` turns it off).
        public var neuronRemoval: Bool

        public init(
            model: String, calibration: Calibration.Request, data: String, labels: String? = nil, scale: Double? = nil, batchSize: Int = 500,
            budget: AutoBudget, settings: [LayerSetting]? = nil, only: [String] = [], seed: UInt64 = 0, damp: Double? = nil, timeBudget: Double? = nil,
            maxProbes: Int = 200, neuronRemoval: Bool = true
        ) {
            self.neuronRemoval = neuronRemoval
            self.model = model
            self.calibration = calibration
            self.data = data
            self.labels = labels
            self.scale = scale
            self.batchSize = batchSize
            self.budget = budget
            self.settings = settings
            self.only = only
            self.seed = seed
            self.damp = damp
            self.timeBudget = timeBudget
            self.maxProbes = maxProbes
        }
    }

    public struct Result: Sendable {
        /// The model written: the smallest that meets the budget, else the one that misses it least.
        public var compressed: Compression.Compressed
        /// The recipe that compresses it without search (empty when no layer is compressed).
        public var recipe: Recipe
        public var report: AutoReport
    }

    /// Points kept on the merged frontier; more are thinned evenly by size.
    static let frontierCap = 4096

    public static func run(_ request: Request, progress: ((String) -> Void)? = nil) throws -> Result {
        let clock = Stopwatch()
        let (model, skeleton, _) = try ModelFile.loadWithSkeleton(request.model)
        let (layers, _) = try Sensitivity.calibratedLayers(model, only: request.only, file: request.model)
        let (calibration, validation) = try Sensitivity.prepare(
            model, calibration: request.calibration, data: request.data, labels: request.labels, scale: request.scale, batchSize: request.batchSize)
        try check(request.budget, validation)
        let sourceBytes = ModelFile.fileSize(request.model)

        var width: AutoReport.Width?
        var narrowed: Narrowed?
        if request.neuronRemoval {
            (width, narrowed) = try removeNeurons(model, layers: layers, calibration: calibration, validation: validation, request: request, progress: progress)
        }
        var outcome = try search(
            narrowed?.model ?? model, original: model, skeleton: skeleton, prefix: narrowed?.step, sourceBytes: sourceBytes, calibration: calibration,
            validation: validation, request: request, clock: clock, progress: progress)
        if let narrowed, outcome.search.best?.probe.meets != true, !outcome.search.stoppedByTime {
            progress?(String(format: "auto: the search at %.0f%% neuron removal misses the budget; searching again with every neuron", narrowed.fraction * 100))
            let full = try search(
                model, original: model, skeleton: skeleton, prefix: nil, sourceBytes: sourceBytes, calibration: calibration, validation: validation,
                request: request, clock: clock, progress: progress)
            if let a = full.search.best, let b = outcome.search.best,
                a.probe.meets || (a.shortfall, a.probe.bytes) < (b.shortfall, b.probe.bytes)
            {
                outcome = full
                width?.fraction = nil
                width?.note = String(
                    format: "the search at %.0f%% missed the budget by %@; the model written keeps every neuron", narrowed.fraction * 100,
                    request.budget.amount(b.shortfall))
            }
        }
        let search = outcome.search
        guard let best = search.best else { preconditionFailure("AutoCompression: the search checks at least one model") }
        let recipe = search.recipe(best.choice)

        // The model written is the recipe's, from the source: with neuron removal, its passes and
        // report include the structured step the search started from.
        var compressed = best.compressed
        if outcome.prefix != nil {
            var written = model
            let report = try Sensitivity.translating(request.model) { try Compressor.run(recipe, on: &written, calibration: calibration) }
            compressed = Compression.Compressed(
                model: written, report: report, skeleton: try Compression.adaptedSkeleton(skeleton, from: model, to: written, file: request.model),
                source: request.model)
        }

        let probes = search.probes.values.map(\.probe).sorted { ($0.bytes, $0.proxy) < ($1.bytes, $1.proxy) }
        let chosen = best.probe
        var missed: String?
        if !chosen.meets {
            let shortfall = request.budget.shortfall(chosen.metrics, original: validation.original)
            missed =
                "budget \(request.budget) missed by \(request.budget.amount(shortfall)): the best model found (\(TextTable.grouped(chosen.bytes)) bytes, "
                + String(format: "%.2f×", chosen.ratio) + ") \(request.budget.describe(chosen.metrics, original: validation.original))"
                + (search.stoppedByTime ? " when --time-budget ended the search" : "")
        }
        let report = AutoReport(
            model: request.model, sourceBytes: sourceBytes, budget: request.budget.description, width: width, calibration: calibration.name,
            calibrationSamples: calibration.samples, data: request.data, samples: validation.samples, seed: request.seed, original: validation.original,
            settingsPerLayer: search.settings.count,
            layers: search.layers.enumerated().map { l, layer in
                let option = search.options[l][best.choice[l]]
                return AutoReport.Layer(
                    tensor: layer.tensor, elements: layer.elements, setting: search.settings[option.setting].description, bytes: option.bytes,
                    proxy: option.proxy, layerError: option.layerError, frontierSettings: search.options[l].count)
            },
            skipped: outcome.others.map { .init(tensor: $0.tensor, reason: $0.reason) }, frontierPoints: outcome.frontierPoints, probes: probes,
            chosen: chosen, missed: missed, stoppedByTime: search.stoppedByTime, candidateSeconds: outcome.candidateSeconds,
            searchSeconds: clock.seconds - outcome.candidateSeconds)
        return Result(compressed: compressed, recipe: recipe, report: report)
    }

    /// The model after neuron removal, and the recipe step that removes them from the source.
    struct Narrowed {
        var fraction: Double
        var model: Model
        var step: Recipe.Step
    }

    /// Fractions of each layer's neurons `--auto` tries removing, in order, and the share of the
    /// budget the removal may use (the rest is left to the per-layer settings).
    static let widthFractions = [0.1, 0.2, 0.3, 0.4, 0.5]
    static let widthShare = 1.0 / 3

    /// Neuron removal before the search: `structured` with `criterion: obs` on every calibrated layer
    /// that can lose neurons (`StructuredPruning` says which), at growing fractions, each model checked
    /// in float32 on the validation data; the largest fraction that uses at most `widthShare` of the
    /// budget (stopping at the first that uses more). Removing a neuron saves its weights in two
    /// layers at once, and OBS moves what it carried into the layer after it.
    static func removeNeurons(
        _ model: Model, layers: [CalibratedLayer], calibration: Calibration, validation: ValidationSet, request: Request,
        progress: ((String) -> Void)?
    ) throws -> (AutoReport.Width, Narrowed?) {
        var width = AutoReport.Width(share: widthShare, checks: [], fraction: nil, note: nil)
        var chosen: Narrowed?
        let names = layers.map(\.tensor)
        guard !names.isEmpty else { return (width, nil) }
        for fraction in widthFractions {
            let step = Recipe.Step(select: TensorSelector(names: names), structured: StructuredOptions(fraction: fraction, criterion: .obs))
            var narrowed = model
            let report = try Sensitivity.translating(request.model) {
                try Compressor.run(Recipe(seed: request.seed, steps: [step], damp: request.damp), on: &narrowed, calibration: calibration)
            }
            let removed = report.passes.filter { $0.action == "structured" }.map(\.detail)
            if removed.isEmpty { break }
            let metrics = try validation.measure(narrowed)
            let within = request.budget.within(widthShare, metrics, original: validation.original)
            let described = request.budget.describe(metrics, original: validation.original)
            width.checks.append(
                .init(
                    fraction: fraction, metrics: metrics, accuracyDrop: Sensitivity.accuracyDrop(validation.original, metrics), described: described,
                    within: within, removed: removed))
            progress?(
                String(format: "auto: %.0f%% of the neurons removed (obs): ", fraction * 100) + described + (within ? ", within" : ", over")
                    + " a third of the budget")
            if !within { break }
            chosen = Narrowed(fraction: fraction, model: narrowed, step: step)
            width.fraction = fraction
        }
        return (width, chosen)
    }

    /// One search and what it was run on.
    struct Outcome {
        var search: Search
        var others: [(tensor: String, reason: String)]
        var frontierPoints: Int
        var candidateSeconds: Double
        var prefix: Recipe.Step?
    }

    /// Measures every setting on every layer of `base` (the source, or the source after neuron
    /// removal by `prefix`), then searches the frontier for the smallest model that keeps the budget.
    static func search(
        _ base: Model, original: Model, skeleton: [UInt8]?, prefix: Recipe.Step?, sourceBytes: Int, calibration: Calibration,
        validation: ValidationSet, request: Request, clock: Stopwatch, progress: ((String) -> Void)?
    ) throws -> Outcome {
        let (layers, others) = try Sensitivity.calibratedLayers(base, only: request.only, file: request.model)
        // `keep` is always a choice: a layer can be left as it is (reverted).
        var settings = request.settings ?? LayerSetting.searchDefaults
        if !settings.contains(.keep) { settings.insert(.keep, at: 0) }
        progress?("auto: measuring \(settings.count) settings on each of \(layers.count) layers")
        let started = clock.seconds
        let measured = try Sensitivity.translating(request.model) {
            try LayerCandidates.measure(base, layers: layers, settings: settings, calibration: calibration, seed: request.seed, damp: request.damp) {
                layer, done, total in
                progress?(String(format: "auto: %@ measured (%d of %d, %.1f s)", layer.tensor, done, total, clock.seconds))
            }
        }
        let outputErrors = try Self.outputErrors(
            base, layers: layers, measured: measured, calibration: calibration, batchSize: request.batchSize, file: request.model
        ) { layer, done, total in
            progress?(String(format: "auto: %@: output errors measured (%d of %d, %.1f s)", layer.tensor, done, total, clock.seconds))
        }
        // Each layer's own frontier: its settings by container bytes, keeping only those with a lower error than every smaller one.
        var options: [[Option]] = []
        for (candidates, errors) in zip(measured, outputErrors) {
            var all: [Option] = []
            for (index, (candidate, error)) in zip(candidates, errors).enumerated() {
                guard let candidate, let error else { continue }
                all.append(
                    Option(
                        setting: index, bytes: try Sensitivity.containerBytes(of: candidate.tensors[0], format: base.format), proxy: error,
                        layerError: candidate.proxy))
            }
            options.append(Self.paretoFront(all))
        }
        let candidateSeconds = clock.seconds - started
        let frontier = Self.mergedFront(options, cap: frontierCap)
        progress?("auto: \(frontier.count) points on the size-versus-output-error frontier")
        let baseSkeleton = try Compression.adaptedSkeleton(skeleton, from: original, to: base, file: request.model)
        var search = Search(
            model: base, skeleton: baseSkeleton, source: request.model, sourceBytes: sourceBytes, layers: layers, options: options, settings: settings,
            prefix: prefix, calibration: calibration, validation: validation, budget: request.budget, seed: request.seed, damp: request.damp,
            clock: clock, timeBudget: request.timeBudget, maxProbes: request.maxProbes, progress: progress)
        try search.run(frontier)
        return Outcome(search: search, others: others, frontierPoints: frontier.count, candidateSeconds: candidateSeconds, prefix: prefix)
    }

    /// Calibration samples each candidate's output error is measured on (the first ones).
    static let outputErrorSamples = 256

    /// What each candidate does to the whole model: with only its layer compressed, the relative
    /// squared error Σ(ŷ − y)² / Σy² of the model's outputs (the largest over its floating-point
    /// outputs) on the first `outputErrorSamples` calibration samples; nil where the candidate is.
    /// This is what the search adds up and ranks settings by. A layer's own output error says how well
    /// its weights were approximated, not how much the model's outputs care: on PP-OCRv4 rec, models of
    /// one summed layer error and within 1 KB of each other agreed on 99.6% or 98.5% of the steps,
    /// depending on one small layer. Summing the layers' effects on the outputs assumes they add up, as
    /// independent small errors do (ZeroQ and HAWQ choose mixed precision the same way).
    static func outputErrors(
        _ base: Model, layers: [CalibratedLayer], measured: [[LayerCandidate?]], calibration: Calibration, batchSize: Int, file: String,
        progress: ((_ layer: CalibratedLayer, _ done: Int, _ total: Int) -> Void)? = nil
    ) throws -> [[Double?]] {
        let samples = Swift.min(calibration.samples, outputErrorSamples)
        let inputs = calibration.inputs.map { Calibration.rows($0, 0..<samples) }
        let evaluator = try PithError.translatingErrors { try Evaluator(model: base) }
        let reference = try ValidationSet.prepared(
            inputs: inputs, path: "calibration data: \(file)", batchSize: Swift.max(1, batchSize), evaluator: evaluator)
        let index = Dictionary(base.tensors.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        var result: [[Double?]] = []
        for (number, (layer, candidates)) in zip(layers, measured).enumerated() {
            var row: [Double?] = []
            for candidate in candidates {
                guard let candidate else {
                    row.append(nil)
                    continue
                }
                if candidate.setting.isKeep {
                    row.append(0)
                    continue
                }
                var variant = base
                for tensor in candidate.tensors {
                    guard let at = index[tensor.name] else { preconditionFailure("AutoCompression.outputErrors: `\(tensor.name)` is not in the model") }
                    variant.tensors[at] = tensor
                }
                let snr = try reference.measure(variant).outputSNR
                row.append(snr.isFinite ? pow(10, -snr / 10) : 0)
            }
            result.append(row)
            progress?(layer, number + 1, layers.count)
        }
        return result
    }

    /// Refuses a budget the validation data cannot measure or resolve.
    static func check(_ budget: AutoBudget, _ validation: ValidationSet) throws {
        let samples = validation.samples
        switch budget {
        case .maxAccuracyDrop(let points):
            guard validation.labels != nil else { throw PithError(.usage, "--max-accuracy-drop needs --labels") }
            // One sample is 100/n points: a budget finer than that cannot be told from noise of one sample.
            let needed = points > 0 ? Int((100 / points).rounded(.up)) : 0
            if samples < needed {
                throw PithError(
                    .data,
                    "validation data (--data): \(validation.path): \(TextTable.grouped(samples)) samples, one sample is \(String(format: "%.3g", 100 / Double(samples))) points, "
                        + "coarser than --max-accuracy-drop \(points); give at least \(TextTable.grouped(needed)) samples")
            }
        case .minAgreement(let fraction):
            guard validation.original.agreement != nil else {
                throw PithError(
                    .usage,
                    "--min-agreement: the model's first output `\(validation.names[0])` holds no class scores (\(Shape.describe(validation.reference[0].shape))) and no --labels were given; use --min-output-snr"
                )
            }
            let needed = fraction < 1 ? Int((1 / (1 - fraction)).rounded(.up)) : 0
            if samples < needed {
                throw PithError(
                    .data,
                    "validation data (--data): \(validation.path): \(TextTable.grouped(samples)) samples cannot resolve --min-agreement \(fraction) (one sample is \(String(format: "%.3g", 1 / Double(samples)))); give at least \(TextTable.grouped(needed)) samples"
                )
            }
        case .minOutputSNR: break
        }
    }

    /// Where `--auto` writes the recipe beside the container `output`: `lenet.pith` → `lenet.recipe.yaml`.
    public static func recipePath(for output: String) -> String {
        (output.hasSuffix(".pith") ? String(output.dropLast(5)) : output) + ".recipe.yaml"
    }

    /// The recipe as YAML for `--recipe`, after comment lines that say where it came from and the
    /// command that repeats it without search.
    public static func recipeYAML(_ result: Result, request: Request, output: String) throws -> String {
        let body = try yaml(result.recipe)
        var command = "pith compress \(request.model) --recipe \(recipePath(for: output)) --calibration \(request.calibration.path)"
        command += " --calibration-samples \(result.report.calibrationSamples)"
        if let scale = request.calibration.scale { command += " --calibration-scale \(scale)" }
        command += " --force -o \(output)"
        let chosen = result.report.chosen
        var lines = [
            "# Chosen by `pith compress --auto \(request.budget)` for \(request.model): \(chosen.bytes) bytes (\(String(format: "%.2f", chosen.ratio))×),",
            "# on \(request.data): \(request.budget.describe(chosen.metrics, original: result.report.original)).",
            "# The same container, without search:",
            "#   \(command)",
        ]
        for layer in result.report.layers { lines.append("#   \(layer.tensor): \(layer.setting)") }
        return lines.joined(separator: "\n") + "\n" + body
    }

    /// `recipe` as YAML that `Compression.loadRecipe` reads back as the same recipe. Numbers Yams
    /// writes in scientific form (`7e-1`) are written as Swift prints them (`0.7`), the same value.
    public static func yaml(_ recipe: Recipe) throws -> String {
        let text: String
        do { text = try YAMLEncoder().encode(recipe) } catch { throw PithError(.data, "cannot write the recipe as YAML: \(error)") }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard let colon = line.range(of: ": ") else { return String(line) }
            let value = line[colon.upperBound...]
            guard value.contains("e"), value.first?.isNumber == true || value.first == "-", let number = Double(value) else { return String(line) }
            return line[..<colon.upperBound] + "\(number)"
        }.joined(separator: "\n")
    }

    // MARK: Frontiers

    /// One setting of one layer: its index in the settings, container bytes, the model's output error
    /// with only this layer compressed (what the search sums), and the layer's own output error.
    struct Option: Sendable, Equatable {
        var setting: Int
        var bytes: Int
        var proxy: Double
        var layerError: Double = 0
    }

    /// `options` by bytes, keeping each one with a lower error than every smaller (or equal) one.
    static func paretoFront(_ options: [Option]) -> [Option] {
        var front: [Option] = []
        for option in options.sorted(by: { ($0.bytes, $0.proxy, $0.setting) < ($1.bytes, $1.proxy, $1.setting) })
        where front.last.map({ option.proxy < $0.proxy }) ?? true {
            front.append(option)
        }
        return front
    }

    /// One point of the merged frontier: total bytes, summed layer error, and each layer's option.
    struct Point: Sendable {
        var bytes: Int
        var proxy: Double
        var choice: [Int]
    }

    /// The multiple-choice knapsack's solutions: every combination of one option per layer that no
    /// other beats in both bytes and summed error, smallest first, merged one layer at a time (at most
    /// `cap` points kept after each layer, thinned evenly by bytes).
    static func mergedFront(_ layers: [[Option]], cap: Int) -> [Point] {
        struct Partial {
            var bytes: Int
            var proxy: Double
            var parent: Int
            var option: Int
        }
        var stages: [[Partial]] = [[Partial(bytes: 0, proxy: 0, parent: -1, option: -1)]]
        for options in layers {
            var next: [Partial] = []
            next.reserveCapacity(stages.last!.count * options.count)
            for (p, partial) in stages.last!.enumerated() {
                for (o, option) in options.enumerated() {
                    next.append(Partial(bytes: partial.bytes + option.bytes, proxy: partial.proxy + option.proxy, parent: p, option: o))
                }
            }
            next.sort { ($0.bytes, $0.proxy, $0.parent, $0.option) < ($1.bytes, $1.proxy, $1.parent, $1.option) }
            var front: [Partial] = []
            for partial in next where front.last.map({ partial.proxy < $0.proxy }) ?? true { front.append(partial) }
            if front.count > cap {
                let step = Double(front.count - 1) / Double(cap - 1)
                front = (0..<cap).map { front[Int((Double($0) * step).rounded())] }
            }
            stages.append(front)
        }
        return stages.last!.indices.map { index in
            var choice = [Int](repeating: 0, count: layers.count)
            var at = index
            for stage in stride(from: layers.count, to: 0, by: -1) {
                let partial = stages[stage][at]
                choice[stage - 1] = partial.option
                at = partial.parent
            }
            let last = stages.last![index]
            return Point(bytes: last.bytes, proxy: last.proxy, choice: choice)
        }
    }

    // MARK: Search

    /// Seconds since creation.
    struct Stopwatch: Sendable {
        let start = DispatchTime.now().uptimeNanoseconds
        var seconds: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    }

    /// A model checked: the probe's numbers and, for the best so far, the model itself.
    struct Checked {
        var choice: [Int]
        var probe: AutoReport.Probe
        var shortfall: Double
    }

    struct Best {
        var choice: [Int]
        var probe: AutoReport.Probe
        var shortfall: Double
        var compressed: Compression.Compressed
    }

    struct Search {
        let model: Model
        let skeleton: [UInt8]?
        let source: String
        let sourceBytes: Int
        let layers: [CalibratedLayer]
        let options: [[Option]]
        let settings: [LayerSetting]
        /// The structured step that made `model` from the source, first in the written recipe.
        let prefix: Recipe.Step?
        let calibration: Calibration
        let validation: ValidationSet
        let budget: AutoBudget
        let seed: UInt64
        let damp: Double?
        let clock: Stopwatch
        let timeBudget: Double?
        let maxProbes: Int
        let progress: ((String) -> Void)?

        var probes: [[Int]: Checked] = [:]
        var best: Best?
        var stoppedByTime = false
        /// Frontier points the scans checked so far.
        var scanned = 0
        /// Models `widen` started from or passed through.
        var widened: Set<[Int]> = []
        var widenStarts = 0

        /// No further model is checked: the time budget is spent or the probe cap reached (one model is always checked).
        mutating func exhausted() -> Bool {
            guard !probes.isEmpty else { return false }
            if let timeBudget, clock.seconds >= timeBudget {
                stoppedByTime = true
                return true
            }
            return probes.count >= maxProbes
        }

        /// The recipe that compresses the source with `choice`; `layerRecipe` leaves out the prefix
        /// (what the search runs on `model`).
        func recipe(_ choice: [Int]) -> Recipe {
            var recipe = layerRecipe(choice)
            if let prefix { recipe.steps.insert(prefix, at: 0) }
            return recipe
        }

        func layerRecipe(_ choice: [Int]) -> Recipe {
            LayerSetting.recipe(
                zip(layers, choice.enumerated()).map { layer, entry in (layer.tensor, settings[options[entry.offset][entry.element].setting]) }, seed: seed,
                damp: damp)
        }

        /// Compresses the model with `choice` (as `--recipe` would), measures it and keeps it if it is
        /// the best so far: the smallest that meets the budget, else the one that misses it least.
        @discardableResult
        mutating func check(_ choice: [Int]) throws -> Checked {
            if let done = probes[choice] { return done }
            let started = clock.seconds
            let recipe = layerRecipe(choice)
            var compressed = model
            var report: CompressionReport?
            if !recipe.steps.isEmpty {
                report = try Sensitivity.translating(source) { try Compressor.run(recipe, on: &compressed, calibration: calibration) }
            }
            let bytes: Int
            do { bytes = try ContainerWriter.encodeWithAccounting(compressed, skeleton: skeleton).accounting.fileBytes } catch {
                throw PithError(.data, "\(source): \(error)")
            }
            let metrics = try validation.measure(compressed)
            let shortfall = budget.shortfall(metrics, original: validation.original)
            let probe = AutoReport.Probe(
                settings: choice.enumerated().map { settings[options[$0.offset][$0.element].setting].description }, bytes: bytes,
                ratio: Double(sourceBytes) / Double(Swift.max(1, bytes)), proxy: zip(options, choice).reduce(0) { $0 + $1.0[$1.1].proxy },
                metrics: metrics, accuracyDrop: Sensitivity.accuracyDrop(validation.original, metrics), meets: shortfall <= 1e-9,
                seconds: clock.seconds - started)
            let checked = Checked(choice: choice, probe: probe, shortfall: shortfall)
            probes[choice] = checked
            let better: Bool
            if let best {
                if probe.meets != best.probe.meets {
                    better = probe.meets
                } else if probe.meets {
                    better = (probe.bytes, probe.proxy) < (best.probe.bytes, best.probe.proxy)
                } else {
                    better = (shortfall, probe.bytes) < (best.shortfall, best.probe.bytes)
                }
            } else {
                better = true
            }
            if better {
                best = Best(
                    choice: choice, probe: probe, shortfall: shortfall,
                    compressed: Compression.Compressed(model: compressed, report: report, skeleton: skeleton, source: source))
            }
            progress?(
                String(format: "auto: model %d: %@ bytes (%.2f×), output errors %.3g: ", probes.count, TextTable.grouped(bytes), probe.ratio, probe.proxy)
                    + budget.describe(metrics, original: validation.original) + (probe.meets ? ", meets the budget" : ", misses the budget")
                    + String(format: " (%.1f s)", clock.seconds))
            return checked
        }

        /// Bisection along the frontier, then narrowing and widening one layer at a time.
        mutating func run(_ frontier: [Point]) throws {
            // Bisection: the smallest frontier point that meets the budget, taking the last (no
            // compression or the least) to meet it until it is checked.
            var low = -1, high = frontier.count - 1
            while high - low > 1, !exhausted() {
                let middle = (low + high) / 2
                if try check(frontier[middle].choice).probe.meets { high = middle } else { low = middle }
            }
            if best?.probe.meets != true, !exhausted() || probes.isEmpty { try check(frontier[high].choice) }
            // Local moves until neither finds a smaller model that meets the budget; then a scan of the
            // frontier below the best, and local moves again from what it found.
            var improved = true
            while improved, best?.probe.meets == true, !exhausted() {
                improved = try narrow() || widen()
                if !improved { improved = try scan(frontier) }
            }
        }

        /// The frontier points smaller than the best model (by their layers' bytes, down to
        /// `scanWindow` of it) not checked yet, largest first, at most `scanLimit` in the whole search:
        /// the bisection and the local moves
        /// judge each model by one measurement on --data, whose noise (a 10,000-sample test resolves
        /// about ±0.07 point) can put models of nearly the same size on either side of the budget. A
        /// point that differs from a checked model only in layers holding less than `sameDraw` of the
        /// weights is passed over: it would be nearly the same measurement again. True when one of them
        /// became the best.
        mutating func scan(_ frontier: [Point]) throws -> Bool {
            guard let start = best?.choice, best?.probe.meets == true else { return false }
            let total = Double(Swift.max(1, layers.reduce(0) { $0 + $1.elements }))
            var improved = false
            for point in frontier.reversed() where point.bytes < estimatedBytes(best?.choice ?? start) && probes[point.choice] == nil {
                if scanned >= Self.scanLimit || exhausted() { break }
                if Double(point.bytes) < Self.scanWindow * Double(estimatedBytes(best?.choice ?? start)) { break }
                let repeated = probes.keys.contains { checked in
                    let differing = layers.indices.filter { checked[$0] != point.choice[$0] }.reduce(0) { $0 + layers[$1].elements }
                    return Double(differing) < Self.sameDraw * total
                }
                if repeated { continue }
                scanned += 1
                if try check(point.choice).probe.meets, best?.choice == point.choice { improved = true }
            }
            return improved
        }

        /// Frontier points the scans of one search check at most, and how far below the best they go
        /// (a fraction of its layers' bytes).
        static let scanLimit = 16
        static let scanWindow = 0.8
        /// The share of the weights below which two models count as one measurement in a scan.
        static let sameDraw = 0.01

        /// The sum of the layers' bytes of a choice (what the frontier is sorted by).
        func estimatedBytes(_ choice: [Int]) -> Int {
            zip(options, choice).reduce(0) { $0 + $1.0[$1.1].bytes }
        }

        /// From the best model, each layer one step smaller on its own frontier, the layers that save
        /// most first; the first that keeps the budget becomes the best.
        mutating func narrow() throws -> Bool {
            guard let start = best?.choice else { return false }
            let order = layers.indices.filter { start[$0] > 0 }.sorted { a, b in
                let saveA = options[a][start[a]].bytes - options[a][start[a] - 1].bytes
                let saveB = options[b][start[b]].bytes - options[b][start[b] - 1].bytes
                return (saveA, b) > (saveB, a)
            }
            for l in order {
                if exhausted() { return false }
                var choice = start
                choice[l] -= 1
                // An improvement only if it became the best: a narrower layer can still give a larger
                // container, and a model checked before is not new (the search would go round).
                if try check(choice).probe.meets, best?.choice == choice { return true }
            }
            return false
        }

        /// From a model checked that misses the budget and is smaller than the best, the layer with
        /// the largest output error widened one step at a time until the budget holds or the model is no
        /// smaller than the best. The start is the miss nearest the budget (the largest model among
        /// equal shortfalls), each model at most once: the summed output error orders the families of
        /// settings only roughly, so a small model that misses by a hair is often a step from one
        /// that holds, where the largest miss can be a family that never does.
        mutating func widen() throws -> Bool {
            guard let limit = best?.probe.bytes else { return false }
            while widenStarts < Self.widenLimit, !exhausted() {
                guard
                    var choice = probes.values.filter({ !$0.probe.meets && $0.probe.bytes < limit && !widened.contains($0.choice) }).min(by: {
                        ($0.shortfall, $1.probe.bytes, $0.probe.proxy) < ($1.shortfall, $0.probe.bytes, $1.probe.proxy)
                    })?.choice
                else { return false }
                widenStarts += 1
                widened.insert(choice)
                walk: while !exhausted() {
                    let widenable = layers.indices.filter { choice[$0] < options[$0].count - 1 }
                    guard let worst = widenable.max(by: { (options[$0][choice[$0]].proxy, $1) < (options[$1][choice[$1]].proxy, $0) }) else {
                        break walk
                    }
                    choice[worst] += 1
                    let checked = try check(choice)
                    if checked.probe.bytes >= limit { break walk }
                    if checked.probe.meets {
                        if best?.choice == choice { return true }
                        break walk
                    }
                    widened.insert(choice)
                }
            }
            return false
        }

        /// Starts `widen` takes at most in one search.
        static let widenLimit = 6
    }
}
