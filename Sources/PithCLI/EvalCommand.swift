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
        try format.check(allowed: [.text, .json])
        if input.data == nil { throw ValidationError("give the input data with --data") }
    }

    func run() throws {
        try reportingErrors {
            let (report, outputs) = try Evaluation.run(
                model: model, data: input.data ?? "", labels: input.labels, batchSize: input.batchSize, scale: input.scale)
            if let saveOutputs {
                let names = (0..<outputs.count).map { "output_\($0)" }
                try AtomicFile.write(DataFiles.npz(Array(zip(names, outputs)).map { (name: $0.0, value: $0.1) }), to: saveOutputs)
            }
            print(format == .json ? report.renderJSON() : report.renderText(), terminator: "")
        }
    }
}
