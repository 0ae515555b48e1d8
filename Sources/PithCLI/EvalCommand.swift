import ArgumentParser
import Pith

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on data with Pith's reference evaluator; with labels, report top-1 accuracy.",
        discussion: """
            MODEL is an ONNX file, a Keras .h5 with its model configuration, or a .pith container of \
            either. DATA is a .npy, a .npz (arrays matched to the model's inputs by name, else in \
            order) or an IDX file such as MNIST's (gzip or not). 8-bit IDX images are scaled by 1/255 \
            unless --scale says otherwise; each sample is reshaped to the model's input shape when the \
            sizes agree (28×28 images for a 784-wide input). Batches run on every core. Only the nodes \
            the requested outputs need are run; an output that needs an operator the evaluator lacks is \
            skipped and named, unless it was asked for with --outputs.
            """)

    @Argument(help: "The model file.")
    var model: String

    @OptionGroup var display: DisplayOptions

    @OptionGroup var input: DataOptions

    @Option(
        parsing: .upToNextOption,
        help: "Compute only these values (graph outputs, or any value of the main graph); default: every output that can be computed.")
    var outputs: [String] = []

    @Option(help: "Write the outputs to this .npz file, each under its name in the model.")
    var saveOutputs: String?

    @Option(help: "Output format: text, json.")
    var format: ReportFormat = .text

    func validate() throws {
        try format.check(allowed: [.text, .json])
        if input.data == nil { throw ValidationError("give the input data with --data") }
    }

    func run() throws {
        try reportingErrors(display: display) {
            let (report, _) = try Evaluation.run(
                model: try StandardStreams.input(model), data: input.data ?? "", labels: input.labels, batchSize: input.batchSize, scale: input.scale,
                outputs: outputs.isEmpty ? nil : outputs, saveOutputs: saveOutputs)
            print(format == .json ? report.renderJSON() : report.renderText(), terminator: "")
        }
    }
}
