import ArgumentParser
import Pith

extension InspectSort: ExpressibleByArgument {}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a model is and where its bytes are: inputs, outputs, operators, then its weights.",
        discussion: """
            First the model: format, opsets and producer, the graph's inputs and outputs with their \
            types and shapes, operator counts and the parameters each operator type holds. Then the \
            weights (the 20 largest; --all lists every tensor, biases and constants too) with shape, \
            type, sparsity, distinct values, bits, bytes and statistics, the other tensors in one \
            line, and totals; --layers adds the per-layer table. Distinct values are counted exactly \
            up to --distinct-cap, then shown as ≥cap. Optimizer state in Keras files is counted \
            separately, never as model weights. JSON (--format json) always holds everything.
            """)

    @Argument(help: "The model file (.onnx, .h5, .hdf5, .weights.h5).")
    var file: String

    @OptionGroup var display: DisplayOptions

    @Option(help: "Output format: text, json, csv.")
    var format: ReportFormat = .text

    @Option(help: "Row order: file (as stored), size (largest first), name.")
    var sort: InspectSort = .file

    @Option(help: "Show only the first N rows (totals still cover every tensor).")
    var top: Int?

    @Flag(help: "List every tensor (biases, normalization parameters, shape constants too), not only the largest weights.")
    var all = false

    @Flag(help: "Add the per-layer table.")
    var layers = false

    @Option(help: "Count distinct values exactly up to this many per tensor.")
    var distinctCap: Int = Inspector.defaultDistinctCap

    func validate() throws {
        if let top, top < 0 { throw ValidationError("--top must be 0 or more, got \(top)") }
        if distinctCap < 1 { throw ValidationError("--distinct-cap must be at least 1, got \(distinctCap)") }
    }

    func run() throws {
        try reportingErrors(display: display) {
            let report = try Inspection.run(try StandardStreams.input(file), sort: sort, top: top, distinctCap: distinctCap)
            switch format {
            case .text: print(StandardStreams.displayed(report.renderText(.init(all: all || top != nil, layers: layers))), terminator: "")
            case .json: print(StandardStreams.displayed(report.renderJSON()), terminator: "")
            case .csv: print(StandardStreams.displayed(report.renderCSV()), terminator: "")
            }
        }
    }
}
