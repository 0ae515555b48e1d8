import ArgumentParser
import Foundation
import Pith

extension PruneOptions.Scope: ExpressibleByArgument {}
extension StructuredOptions.Criterion: ExpressibleByArgument {}
extension KMeansInit: ExpressibleByArgument {}
extension Granularity: ExpressibleByArgument {}
extension ClusterOptions.Mode: ExpressibleByArgument {}
extension FactorizeOptions.Method: ExpressibleByArgument {}
extension PruneOptions.Mask: ExpressibleByArgument {}

/// `--quantize` values: a format and its granularity in one word.
enum QuantizeFlag: String, ExpressibleByArgument, CaseIterable {
    case int8, int8Channel = "int8-channel", int4, int4Channel = "int4-channel", fp16, bf16

    var options: QuantizeOptions {
        switch self {
        case .int8: return QuantizeOptions(format: .int8)
        case .int8Channel: return QuantizeOptions(format: .int8, granularity: .channel)
        case .int4: return QuantizeOptions(format: .int4)
        case .int4Channel: return QuantizeOptions(format: .int4, granularity: .channel)
        case .fp16: return QuantizeOptions(format: .fp16)
        case .bf16: return QuantizeOptions(format: .bf16)
        }
    }
}

struct Compress: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compress a model's weights: pruning, weight sharing, quantization, sparse encoding.",
        discussion: """
            Either a recipe file (--recipe, YAML; see docs/recipes.md) or flags, which build the recipe \
            structured → prune → cluster or quantize → encode. Every run with the same --seed gives the \
            same result. A report lists each pass per tensor (elements kept, bits, bytes, weight error) \
            and the final Deep Compression accounting. The compressed model is written \
            to a .pith container (-o); without any pass the container is lossless.

            --auto chooses a setting per layer (OBS pruning steps × GPTQ-rounded k-means bits, int8, \
            int4, entropy-constrained quantization of the weight or of a whitened low-rank split, fp16, \
            or none) for the smallest container that keeps a budget on --data: \
            --max-accuracy-drop POINTS (with --labels), --min-agreement F or --min-output-snr DB. \
            Every model it checks is compressed for real and run with the evaluator; it prints the \
            size-versus-metric frontier it explored and writes the chosen recipe beside the output \
            (OUT.recipe.yaml), which --recipe repeats without search. A budget no model meets still \
            writes the best model found and exits with status 1.
            """)

    @Argument(help: "The model file (.onnx, .h5, .weights.h5).")
    var file: String

    @OptionGroup var display: DisplayOptions

    @Option(name: .shortAndLong, help: "Output file (.pith).")
    var output: String?

    @Option(help: "Also write the compressed model as a compact ONNX file (what `pith restore --compact` writes; ONNX sources only).")
    var export: String?

    @Flag(help: "Only report what the passes would do; write nothing.")
    var dryRun = false

    @Flag(help: "Replace OUT if it exists.")
    var force = false

    @Option(help: "A recipe file (YAML). Excludes the pass flags below.")
    var recipe: String?

    @Option(help: "Magnitude pruning: fraction of the selected weights to zero (0…1).")
    var prune: Double?

    @Option(help: "With --prune: one global threshold (default) or each tensor on its own.")
    var pruneScope: PruneOptions.Scope?

    @Option(help: "Magnitude pruning: zero weights with |w| below this.")
    var pruneThreshold: Double?

    @Option(help: "Magnitude pruning (Han et al.): zero weights below QUALITY × std of each tensor.")
    var pruneQuality: Double?

    @Option(help: "Structured pruning: fraction of neurons / filters to remove from each prunable layer.")
    var structured: Double?

    @Option(help: "Structured pruning criterion: l1, l2, merge (Srinivas & Babu) or obs (data-aware: needs --calibration; the consumer is updated).")
    var structuredCriterion: StructuredOptions.Criterion?

    @Option(help: "Weight sharing: bits per index (1…8), 2^BITS centroids.")
    var cluster: Int?

    @Option(help: "k-means initialisation: linear, density, forgy, kmeans++.")
    var `init`: KMeansInit?

    @Option(help: "k-means per tensor (default) or per output channel.")
    var clusterGranularity: Granularity?

    @Option(help: "k-means mode: lloyd (default) or optimal (exact, dynamic programming).")
    var clusterMode: ClusterOptions.Mode?

    @Option(help: "Quantization: int8, int8-channel, int4, int4-channel, fp16, bf16.")
    var quantize: QuantizeFlag?

    @Option(
        help: ArgumentHelp(
            "Data-aware entropy-constrained quantization: codes chosen by rate and output error in the GPTQ sweep; LAMBDA (0…1] is what a bit is worth (e.g. 0.005). After --factorize svd --whiten it quantizes the factors.",
            valueName: "LAMBDA"))
    var entropyQuantize: Double?

    @Option(help: "CSR gap bits for pruned tensors: auto (search 2…8) or 1…16.")
    var indexBits: String?

    @Option(help: "Factorization: svd (default with --rank, --energy, --param-ratio), tt, circulant, separable.")
    var factorize: FactorizeOptions.Method?

    @Option(help: "svd: the rank of the split; separable: terms per filter.")
    var rank: Int?

    @Option(help: "svd: the smallest rank keeping this fraction of Σσ² (e.g. 0.95).")
    var energy: Double?

    @Option(help: "svd: the rank giving at most this fraction of the parameters (e.g. 0.25).")
    var paramRatio: Double?

    @Option(help: "tt: cap on every TT rank.")
    var ttRank: Int?

    @Option(help: "tt: bound on the relative Frobenius error (default 0.1 without --tt-rank).")
    var ttError: Double?

    @Option(help: "tt: number of cores (default 3).")
    var ttCores: Int?

    @Option(name: .customLong("only"), help: "Apply the flag passes only to tensors whose name matches this glob (repeatable).")
    var only: [String] = []

    @Flag(help: "Leave out the optimizer state of a Keras file (optimizer_weights, optimizer): kept exactly otherwise.")
    var dropOptimizer = false

    @Flag(help: "Lossless: store every tensor on its own even where storing the small model file whole is smaller (inspect then accounts each tensor).")
    var perTensor = false

    @Flag(help: "Write the container even when the passes compress no tensor (a selection that matches nothing is an error otherwise).")
    var allowEmpty = false

    @Option(help: "Seed of every random choice.")
    var seed: UInt64 = 0

    @Option(help: "Calibration data for the data-aware passes (.npy, .npz, IDX; unlabeled samples).")
    var calibration: String?

    @Option(help: "Calibration: use the first N samples (default 1024).")
    var calibrationSamples: Int?

    @Option(help: "Calibration: multiply every value by this (default 1/255 for 8-bit IDX images, else 1).")
    var calibrationScale: Double?

    @Flag(help: "Data-aware rounding (GPTQ) for --quantize int8/int4 and --cluster (with diag(H)-weighted k-means).")
    var gptq = false

    @Flag(help: "Data-aware pruning: --prune as OBS / SparseGPT, the surviving weights updated.")
    var obs = false

    @Option(help: "With --obs: which weights go, magnitude (default, the data-free mask) or saliency (w²/[H⁻¹]ᵢᵢ).")
    var pruneMask: PruneOptions.Mask?

    @Option(help: "Data-aware codebook refit after --cluster: rounds of closed-form centroids and reassignment.")
    var refit: Int?

    @Flag(help: "Data-aware bias correction after the other passes: each layer's mean output shift goes into its bias.")
    var biasCorrection = false

    @Flag(help: "Data-aware SVD: truncate in the whitened basis of each layer's calibration inputs.")
    var whiten = false

    @Option(help: "Data-aware passes: damping as a fraction of the mean of diag(H) (default 0.01).")
    var damp: Double?

    var hasDataAwareFlags: Bool { gptq || obs || refit != nil || biasCorrection || whiten || entropyQuantize != nil }

    @Flag(help: "Choose a setting per layer for the smallest model that keeps a budget on --data (needs --calibration and one budget).")
    var auto = false

    @Option(help: "--auto: the validation data each model is checked on (.npy, .npz, IDX).")
    var data: String?

    @Option(help: "--auto: labels of --data (.npy or IDX), one class index per sample.")
    var labels: String?

    @Option(help: "--auto: multiply every --data value by this (default 1/255 for 8-bit IDX images, else 1).")
    var scale: Double?

    @Option(help: "--auto: --data samples per batch of the evaluator; 0 runs all at once.")
    var batchSize: Int = 500

    @Option(help: "--auto: top-1 accuracy on --data may fall by at most this many points (needs --labels).")
    var maxAccuracyDrop: Double?

    @Option(help: "--auto: at least this share (0…1) of --data samples keep the original model's top-1 class.")
    var minAgreement: Double?

    @Option(help: "--auto: every floating-point output on --data keeps at least this SNR (dB).")
    var minOutputSnr: Double?

    @Option(help: "--auto: check no further model after this many seconds (the best so far is written).")
    var timeBudget: Double?

    @Option(help: "--auto: the settings each layer may take, comma-separated (keep, pruneS, fp16, int8, int4, kmeansB, ecqL, svdR+ecqL, pruneS+ENCODING).")
    var settings: String?

    @Flag(help: "--auto: keep every neuron (by default up to half of each layer's neurons may go first, by OBS, within a third of the budget).")
    var noStructured = false

    var budget: AutoBudget? {
        if let maxAccuracyDrop { return .maxAccuracyDrop(maxAccuracyDrop) }
        if let minAgreement { return .minAgreement(minAgreement) }
        if let minOutputSnr { return .minOutputSNR(minOutputSnr) }
        return nil
    }

    @Option(help: "Report format: text or json.")
    var format: ReportFormat = .text

    var hasPassFlags: Bool {
        prune != nil || pruneThreshold != nil || pruneQuality != nil || structured != nil || cluster != nil || quantize != nil || indexBits != nil
            || factorizeMethod != nil || refit != nil || biasCorrection || entropyQuantize != nil
    }

    func validate() throws {
        let budgets = [maxAccuracyDrop, minAgreement, minOutputSnr].compactMap { $0 }
        if batchSize < 0 { throw ValidationError("--batch-size must be 0 or more, got \(batchSize)") }
        if auto {
            if recipe != nil || hasPassFlags || hasDataAwareFlags {
                throw ValidationError("--auto chooses the passes; it excludes --recipe and the pass flags (--prune, --cluster, --gptq, …)")
            }
            if calibration == nil { throw ValidationError("--auto needs --calibration FILE (the data the layers are calibrated on)") }
            if data == nil { throw ValidationError("--auto needs --data FILE (the validation data each model is checked on)") }
            if budgets.count != 1 { throw ValidationError("--auto needs one budget: --max-accuracy-drop POINTS, --min-agreement F or --min-output-snr DB") }
            if maxAccuracyDrop != nil, labels == nil { throw ValidationError("--max-accuracy-drop needs --labels") }
            if let minAgreement, !(minAgreement > 0 && minAgreement <= 1) { throw ValidationError("--min-agreement must be in (0, 1], got \(minAgreement)") }
            if let value = maxAccuracyDrop ?? minOutputSnr, !value.isFinite { throw ValidationError("the budget must be a finite number") }
            if let timeBudget, !(timeBudget >= 0) { throw ValidationError("--time-budget must be 0 or more seconds") }
            if dropOptimizer { throw ValidationError("--drop-optimizer belongs to the flag and recipe passes, not --auto") }
            if dryRun || output == nil { throw ValidationError("--auto writes the chosen model: give -o OUT.pith (the recipe goes beside it)") }
            if let calibrationSamples, calibrationSamples < 1 { throw ValidationError("--calibration-samples must be at least 1") }
            if let damp, !(damp > 0 && damp <= 10) { throw ValidationError("--damp must be in (0, 10], got \(damp)") }
            try format.check(allowed: [.text, .json])
            return
        }
        if !budgets.isEmpty || timeBudget != nil || settings != nil || noStructured {
            throw ValidationError("--max-accuracy-drop, --min-agreement, --min-output-snr, --time-budget, --settings and --no-structured belong to --auto")
        }
        if data != nil || labels != nil || scale != nil { throw ValidationError("--data, --labels and --scale are the validation data of --auto") }
        if recipe != nil, hasPassFlags { throw ValidationError("--recipe excludes the pass flags (--prune, --cluster, --quantize, …)") }
        if recipe == nil, !hasPassFlags, dryRun {
            throw ValidationError("nothing to report: a dry run needs --recipe or a pass flag (--prune, --cluster, --quantize, …)")
        }
        if cluster != nil, quantize != nil { throw ValidationError("--cluster and --quantize both set a tensor's encoding; choose one") }
        if entropyQuantize != nil, cluster != nil || quantize != nil {
            throw ValidationError("--entropy-quantize and --cluster / --quantize both set a tensor's encoding; choose one")
        }
        if let entropyQuantize, !(entropyQuantize > 0 && entropyQuantize <= 1) {
            throw ValidationError("--entropy-quantize must be in (0, 1], got \(entropyQuantize)")
        }
        if factorizeMethod != nil, cluster != nil || quantize != nil {
            throw ValidationError("--factorize and --cluster / --quantize both set a tensor's encoding; use a recipe to give them different tensors")
        }
        if factorizeMethod == nil, rank != nil || ttRank != nil || ttError != nil || ttCores != nil {
            throw ValidationError("--rank and the --tt-* options need --factorize (or --energy / --param-ratio for svd)")
        }
        if [prune != nil, pruneThreshold != nil, pruneQuality != nil].filter({ $0 }).count > 1 {
            throw ValidationError("choose one of --prune, --prune-threshold, --prune-quality")
        }
        if let indexBits, indexBits != "auto", Int(indexBits) == nil { throw ValidationError("--index-bits is auto or a number, not \(indexBits)") }
        if hasDataAwareFlags, calibration == nil {
            throw ValidationError("--gptq, --obs, --refit, --bias-correction, --whiten and --entropy-quantize need --calibration FILE")
        }
        if gptq, cluster == nil, quantize == nil { throw ValidationError("--gptq rounds --quantize int8/int4 or --cluster; give one") }
        if obs, prune == nil, pruneThreshold == nil, pruneQuality == nil {
            throw ValidationError("--obs prunes: give --prune (or --prune-threshold, --prune-quality)")
        }
        if pruneMask != nil, !obs { throw ValidationError("--prune-mask applies to --obs") }
        if refit != nil, cluster == nil { throw ValidationError("--refit refits the codebooks of --cluster") }
        if whiten, factorizeMethod != .svd { throw ValidationError("--whiten applies to svd factorization (--rank, --energy, --param-ratio)") }
        if let calibrationSamples, calibrationSamples < 1 { throw ValidationError("--calibration-samples must be at least 1") }
        try format.check(allowed: [.text, .json])
        if dryRun, export != nil { throw ValidationError("--dry-run writes nothing; drop --export") }
        if !dryRun, output == nil, export == nil { throw ValidationError("give -o OUT.pith (and/or --export OUT.onnx), or --dry-run for the report only") }
    }

    /// The factorization the flags ask for: `--factorize`, or svd when only --energy / --param-ratio is given.
    var factorizeMethod: FactorizeOptions.Method? {
        factorize ?? (energy != nil || paramRatio != nil ? .svd : nil)
    }

    /// The recipe the flags describe.
    func flagRecipe() -> Recipe {
        var recipe = flagSteps()
        if !only.isEmpty {
            for i in recipe.steps.indices { recipe.steps[i].select = TensorSelector(names: only) }
        }
        return recipe
    }

    func flagSteps() -> Recipe { flagStepsWithLabels().recipe }

    /// The flag passes in order, each with the flags it came from (`--cluster 12`), which name it
    /// in errors.
    func flagStepsWithLabels() -> (recipe: Recipe, labels: [String]) {
        var steps: [Recipe.Step] = []
        if let structured { steps.append(.init(structured: StructuredOptions(fraction: structured, criterion: structuredCriterion))) }
        if let prune { steps.append(.init(prune: PruneOptions(sparsity: prune, scope: pruneScope))) }
        if let pruneThreshold { steps.append(.init(prune: PruneOptions(threshold: pruneThreshold))) }
        if let pruneQuality { steps.append(.init(prune: PruneOptions(quality: pruneQuality))) }
        if obs, let last = steps.indices.last, steps[last].prune != nil {
            steps[last].prune?.method = .obs
            steps[last].prune?.mask = pruneMask
        }
        if let cluster {
            steps.append(
                .init(
                    cluster: ClusterOptions(
                        bits: cluster, initialization: `init`, granularity: clusterGranularity, mode: clusterMode, assign: gptq ? .gptq : nil,
                        weighting: gptq ? .hessian : nil)))
        }
        if let refit { steps.append(.init(refit: RefitOptions(iterations: refit))) }
        if let method = factorizeMethod {
            steps.append(
                .init(
                    factorize: FactorizeOptions(
                        method: method, rank: rank, energy: energy, ratio: paramRatio, ttRank: ttRank, ttError: ttError, cores: ttCores,
                        whiten: whiten ? true : nil)))
        }
        if let entropyQuantize { steps.append(.init(entropyQuantize: EntropyQuantizeOptions(lambda: entropyQuantize))) }
        if let quantize {
            var options = quantize.options
            if gptq { options.rounding = .gptq }
            steps.append(.init(quantize: options))
        }
        if biasCorrection { steps.append(.init(biasCorrection: BiasCorrectionOptions())) }
        if let indexBits { steps.append(.init(encode: EncodeOptions(indexBits: Int(indexBits)))) }
        var labels: [String] = []
        if let structured { labels.append("--structured \(structured)") }
        if let prune { labels.append("--prune \(prune)") }
        if let pruneThreshold { labels.append("--prune-threshold \(pruneThreshold)") }
        if let pruneQuality { labels.append("--prune-quality \(pruneQuality)") }
        if let cluster { labels.append("--cluster \(cluster)") }
        if let refit { labels.append("--refit \(refit)") }
        if let method = factorizeMethod { labels.append("--factorize \(method.rawValue)") }
        if let quantize { labels.append("--quantize \(quantize.rawValue)") }
        if biasCorrection { labels.append("--bias-correction") }
        if let indexBits { labels.append("--index-bits \(indexBits)") }
        return (Recipe(seed: seed, steps: steps, damp: damp), labels.count == steps.count ? labels : [])
    }

    func run() throws {
        if auto { return try runAuto() }
        try reportingErrors(display: display) {
            // `-`: the model from standard input, the container to standard output (the report then
            // goes to standard error).
            let file = try StandardStreams.input(self.file)
            let toStandardOutput = self.output == "-"
            let output = try self.output.map { try StandardStreams.output($0, suffix: "pith") }
            let force = force || toStandardOutput
            func say(_ text: String, terminator: String = "\n") {
                let text = StandardStreams.displayed(text)
                if toStandardOutput {
                    printError(String(text.dropLast(text.hasSuffix("\n") && terminator.isEmpty ? 1 : 0)))
                } else {
                    print(text, terminator: terminator)
                }
            }
            let recipe = try self.recipe.map(Compression.loadRecipe) ?? flagRecipe()
            if self.recipe == nil, !recipe.steps.isEmpty {
                do { try recipe.validate(labels: flagStepsWithLabels().labels) } catch let error as PassError { throw PithError(.usage, error.message) }
            }
            if !dryRun, let output { try AtomicFile.checkWritable(output, input: file, force: force) }
            if let export {
                try Compression.checkExportable(file)
                try AtomicFile.checkWritable(export, input: file, force: force)
            }
            if let calibration, !recipe.isDataAware {
                throw PithError(
                    .usage,
                    "--calibration \(calibration): the recipe has no data-aware pass "
                        + "(--gptq, --obs, --refit, --bias-correction, --entropy-quantize, --structured-criterion obs)")
            }
            let request = calibration.map { Calibration.Request(path: $0, samples: calibrationSamples, scale: calibrationScale) }
            let compressed = try Compression.run(recipe, on: file, calibration: request, dropOptimizer: dropOptimizer)
            let report = compressed.report
            if let report, report.tensors.isEmpty, report.passes.isEmpty, !allowEmpty {
                let what =
                    only.isEmpty
                    ? "the passes selected no tensor" : "--only \(only.joined(separator: " ")) matches no tensor the passes compress"
                throw PithError(
                    .usage,
                    "\(file): \(what) (`pith inspect \(file)` lists the tensors and `--dry-run` says why each was left alone); "
                        + "nothing was written: --allow-empty writes the container anyway")
            }
            var containerBytes: Int?
            if let report {
                say(format == .json ? report.renderJSON() : report.renderText(file: file), terminator: "")
            }
            // Written first: a container that stores the file whole makes the note that restore will
            // not write the whole file back untrue.
            let accounting = try dryRun ? nil : output.map { try Compression.writeContainer(compressed, to: $0, force: force, perTensor: perTensor) }
            for note in compressed.notes where !(accounting?.storedWhole != nil && note == compressed.gapNote) {
                if format == .json { printError(StandardStreams.displayed(note)) } else { say(note) }
            }
            if let output, let accounting {
                let inputSize = ModelFile.fileSize(file)
                if format == .text {
                    say(accounting.renderText(compressedOnly: report.map { Set($0.tensors.map(\.tensor)) }), terminator: "")
                }
                let summary =
                    "wrote \(self.output ?? output): \(accounting.fileBytes) bytes (\(file): \(inputSize) bytes, \(String(format: "%.2f", Double(inputSize) / Double(max(1, accounting.fileBytes))))×)"
                if format == .json, report != nil { printError(StandardStreams.displayed(summary)) } else { say(summary) }
                containerBytes = accounting.fileBytes
                try StandardStreams.finish(self.output ?? output, spooled: output)
            }
            if let export {
                let text = try Compression.exportCompact(compressed, to: export, force: force).renderText(output: export, containerBytes: containerBytes)
                if format == .json, report != nil { printError(String(text.dropLast())) } else { say(text, terminator: "") }
            }
        }
    }
}

extension Compress {
    /// `--auto`: the search, then the container and its recipe beside it; exit 1 when the budget is missed.
    func runAuto() throws {
        var missed: String?
        try reportingErrors(display: display) {
            guard let output, let budget else { return }
            let recipePath = AutoCompression.recipePath(for: output)
            try AtomicFile.checkWritable(output, input: file, force: force)
            try AtomicFile.checkWritable(recipePath, input: file, force: force)
            if let export {
                try Compression.checkExportable(file)
                try AtomicFile.checkWritable(export, input: file, force: force)
            }
            let request = AutoCompression.Request(
                model: file, calibration: Calibration.Request(path: calibration ?? "", samples: calibrationSamples, scale: calibrationScale),
                data: data ?? "", labels: labels, scale: scale, batchSize: batchSize, budget: budget,
                settings: try settings.map { try parseSettings($0) }, only: only, seed: seed, damp: damp, timeBudget: timeBudget,
                neuronRemoval: !noStructured)
            let result = try AutoCompression.run(request) { printError($0) }
            print(format == .json ? result.report.renderJSON() : result.report.renderText(), terminator: "")
            let accounting = try Compression.writeContainer(result.compressed, to: output, force: force)
            let summary = String(
                format: "wrote %@: %d bytes (%@: %d bytes, %.2f×)", output, accounting.fileBytes, file, result.report.sourceBytes,
                Double(result.report.sourceBytes) / Double(max(1, accounting.fileBytes)))
            if result.recipe.steps.isEmpty {
                printError("no layer is compressed: the container is lossless and there is no recipe to write")
            } else {
                try AtomicFile.write(Array(try AutoCompression.recipeYAML(result, request: request, output: output).utf8), to: recipePath)
            }
            if format == .json { printError(summary) } else { print(summary) }
            if !result.recipe.steps.isEmpty {
                if format == .json { printError("wrote \(recipePath)") } else { print("wrote \(recipePath): the chosen recipe (--recipe repeats it)") }
            }
            if let export {
                let text = try Compression.exportCompact(result.compressed, to: export, force: force).renderText(
                    output: export, containerBytes: accounting.fileBytes)
                if format == .json { printError(String(text.dropLast())) } else { print(text, terminator: "") }
            }
            missed = result.report.missed
        }
        if let missed {
            printError("pith: \(missed)")
            throw ExitCode(1)
        }
    }
}
