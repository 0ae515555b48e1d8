import ArgumentParser
import Foundation
import Pith

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// The data options `eval` and `verify` share.
struct DataOptions: ParsableArguments {
    @Option(help: "Input data (.npy, .npz, IDX).")
    var data: String?

    @Option(help: "Labels (.npy or IDX): one class index per sample; top-1 accuracy is reported.")
    var labels: String?

    @Option(help: "Multiply every input value by this (default: 1/255 for 8-bit IDX images, else 1).")
    var scale: Double?

    @Option(help: "Samples per batch; 0 runs all at once.")
    var batchSize: Int = 500

    func validate() throws {
        if batchSize < 0 { throw ValidationError("--batch-size must be 0 or more, got \(batchSize)") }
        if labels != nil, data == nil { throw ValidationError("--labels needs --data") }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on data with Pith's reference evaluator; with labels, report top-1 accuracy.",
        discussion: """
            MODEL is an ONNX file, a Keras .h5 with its model configuration, or a .pith container of \
            either. DATA is a .npy, a .npz (arrays matched to the model's inputs by name, else in \
            order) or an IDX file such as MNIST's (gzip or not). 8-bit IDX images are scaled by 1/255 \
            unless --scale says otherwise; each sample is reshaped to the model's input shape when the \
            sizes agree (28×28 images for a 784-wide input). Batches run on every core.
            """)

    @Argument(help: "The model file.")
    var model: String

    @OptionGroup var input: DataOptions

    @Option(help: "Write the model's outputs to this .npz file.")
    var saveOutputs: String?

    @Option(help: "Output format: text, json.")
    var format: ReportFormat = .text

    func validate() throws {
        if input.data == nil { throw ValidationError("give the input data with --data") }
    }

    func run() throws {
        try reportingErrors {
            let (report, outputs) = try Validation.evaluate(model: model, data: input.data ?? "", labels: input.labels, batchSize: input.batchSize, scale: input.scale)
            if let saveOutputs {
                let names = (0..<outputs.count).map { "output_\($0)" }
                try AtomicFile.write(DataFiles.npz(Array(zip(names, outputs)).map { (name: $0.0, value: $0.1) }), to: saveOutputs)
            }
            print(format == .json ? report.renderJSON() : report.renderText(), terminator: "")
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two models tensor by tensor and, with data, output by output; gate on thresholds.",
        discussion: """
            Tensors are matched by name: per tensor the max absolute error, RMSE, SNR, cosine \
            similarity and whether it is bit-exact; tensors missing or reshaped on either side are \
            named (and fail the weight gates). With --data, both models run on the data: top-1 agreement, \
            the largest and mean output difference, and with --labels the accuracy of each. \
            Exit status 1 when a gate fails (--max-rmse, --min-snr, --require-exact, --min-agreement).
            """)

    @Argument(help: "The original model.")
    var original: String

    @Argument(help: "The candidate (compressed or restored) model.")
    var candidate: String

    @OptionGroup var input: DataOptions

    @Option(help: "Fail when a tensor's RMSE is above this.")
    var maxRmse: Double?

    @Option(help: "Fail when a tensor that is not bit-exact has an SNR below this many dB.")
    var minSnr: Double?

    @Flag(help: "Fail unless every tensor is bit-exact.")
    var requireExact = false

    @Option(help: "Fail when the top-1 agreement on --data is below this fraction.")
    var minAgreement: Double?

    @Option(help: "Output format: text, json.")
    var format: ReportFormat = .text

    func validate() throws {
        if minAgreement != nil, input.data == nil { throw ValidationError("--min-agreement needs --data") }
    }

    func run() throws {
        var failed = false
        try reportingErrors {
            let report = try Validation.verify(
                original: original, candidate: candidate, data: input.data, labels: input.labels, batchSize: input.batchSize, scale: input.scale,
                thresholds: .init(maxRMSE: maxRmse, minSNR: minSnr, requireExact: requireExact, minAgreement: minAgreement))
            print(format == .json ? report.renderJSON() : report.renderText(), terminator: "")
            failed = !report.failures.isEmpty
        }
        if failed { throw ExitCode(1) }
    }
}
