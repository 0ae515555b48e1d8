import ArgumentParser
import Pith

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one self-contained HTML page about a model and, with --compare, its compressed twin.",
        discussion: """
            The page has the model summary (format, opsets, inputs and outputs with shapes, operator \
            counts), bars of bytes and bits per weight and zeros for every weight (before and after \
            with --compare), histograms of the largest weights (--histograms N, --all for every \
            tensor) with the codebook centroids or the quantization grid of the compressed model \
            marked, and with --data the outputs of both models compared (SNR, cosine, relative \
            error, top-1 agreement; accuracy with --labels). A recipe that `compress --auto` wrote \
            beside the container (OUT.recipe.yaml) is shown; --sensitivity (the JSON of `pith \
            sensitivity --format json`) adds each layer's sensitivity curve, and --auto-report (the \
            JSON of `pith compress --auto --format json`) the models the search checked, size \
            against the budget's metric. Inline SVG and CSS only: nothing is fetched when the page \
            is opened, and it reads the same with scripts off.
            """)

    @Argument(help: "The model file (.onnx, .h5, or a .pith container on its own).")
    var model: String

    @Option(help: "The compressed model to compare with (a .pith container, or any model file).")
    var compare: String?

    @OptionGroup var input: DataOptions

    @Option(help: "A `pith sensitivity --format json` report: each layer's sensitivity curve.")
    var sensitivity: String?

    @Option(help: "A `pith compress --auto --format json` report: the models the search checked.")
    var autoReport: String?

    @Option(help: "Histograms of the largest N weights.")
    var histograms: Int = Reporting.defaultHistograms

    @Flag(help: "Every tensor in the size bars and a histogram of every floating-point tensor.")
    var all = false

    @Option(name: .shortAndLong, help: "The HTML file to write.")
    var output: String

    @Flag(help: "Replace the output file if it exists.")
    var force = false

    func validate() throws {
        if histograms < 0 { throw ValidationError("--histograms must be 0 or more, got \(histograms)") }
        if input.data != nil, compare == nil { throw ValidationError("--data compares two models' outputs: give the compressed model with --compare") }
    }

    func run() throws {
        try reportingErrors {
            try AtomicFile.checkWritable(output, input: model, force: force)
            if let compare { try AtomicFile.checkWritable(output, input: compare, force: force) }
            let report = try Reporting.run(
                .init(
                    model: model, compare: compare, data: input.data, labels: input.labels, scale: input.scale, batchSize: input.batchSize,
                    sensitivity: sensitivity, autoReport: autoReport, histograms: histograms, all: all))
            let html = report.renderHTML()
            try AtomicFile.write(Array(html.utf8), to: output)
            print("wrote \(output): \(html.utf8.count) bytes")
        }
    }
}
