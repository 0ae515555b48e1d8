import ArgumentParser
import Pith

struct SensitivityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensitivity",
        abstract: "How much each layer alone costs the model at each compression setting, measured on data.",
        discussion: """
            For every weight the data-aware passes can calibrate (Gemm, MatMul, Conv), and every \
            setting, only that layer is compressed — OBS pruning, then GPTQ-rounded int8 / int4 per \
            channel, k-means with GPTQ assignment, fp16 or a truncated SVD, then bias correction — \
            and the model is run on --data with the reference evaluator. Each row gives the weight's \
            bytes in a container, its layer output error on the calibration data, and the model's \
            top-1 error (with --labels), top-1 agreement with the original model and output SNR. \
            Settings: keep, pruneS, fp16, int8, int4, kmeansB, svdR, or pruneS+ENCODING \
            (e.g. prune0.8+kmeans3), comma-separated.
            """)

    @Argument(help: "The model file (ONNX).")
    var model: String

    @OptionGroup var display: DisplayOptions

    @Option(help: "Calibration data for the data-aware passes (.npy, .npz, IDX; unlabeled samples).")
    var calibration: String

    @Option(help: "Calibration: use the first N samples (default 1024).")
    var calibrationSamples: Int?

    @Option(help: "Calibration: multiply every value by this (default 1/255 for 8-bit IDX images, else 1).")
    var calibrationScale: Double?

    @OptionGroup var input: DataOptions

    @Option(help: "The settings to try, comma-separated (default: fp16,int8,int4,kmeans2…6,prune0.5…0.95,svd0.5,0.25,0.125,ecq0.002…0.02,svd0.3+ecq0.01).")
    var settings: String?

    @Option(name: .customLong("only"), help: "Only the weights whose name matches this glob (repeatable).")
    var only: [String] = []

    @Option(help: "Seed of every random choice.")
    var seed: UInt64 = 0

    @Option(help: "Data-aware passes: damping as a fraction of the mean of diag(H) (default 0.01).")
    var damp: Double?

    @Option(help: "Report format: text, json or csv.")
    var format: ReportFormat = .text

    func validate() throws {
        if input.data == nil { throw ValidationError("give the validation data with --data") }
        if let calibrationSamples, calibrationSamples < 1 { throw ValidationError("--calibration-samples must be at least 1") }
        if let damp, !(damp > 0 && damp <= 10) { throw ValidationError("--damp must be in (0, 10], got \(damp)") }
    }

    func run() throws {
        try reportingErrors(display: display) {
            let request = Sensitivity.Request(
                model: model, calibration: Calibration.Request(path: calibration, samples: calibrationSamples, scale: calibrationScale),
                data: input.data ?? "", labels: input.labels, scale: input.scale, batchSize: input.batchSize,
                settings: try settings.map { try parseSettings($0) }, only: only, seed: seed, damp: damp)
            let report = try Sensitivity.run(request) { printError($0) }
            switch format {
            case .text: print(report.renderText(), terminator: "")
            case .json: print(report.renderJSON(), terminator: "")
            case .csv: print(report.renderCSV(), terminator: "")
            }
        }
    }
}

/// `--settings`: a comma-separated list of `LayerSetting`s; a bad one is a usage error.
func parseSettings(_ text: String) throws -> [LayerSetting] {
    do { return try LayerSetting.list(parsing: text) } catch let error as PassError { throw PithError(.usage, "--settings: \(error.message)") }
}
