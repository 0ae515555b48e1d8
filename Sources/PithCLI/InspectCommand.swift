import ArgumentParser
import Pith

extension InspectSort: ExpressibleByArgument {}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every weight tensor of a model: shape, type, sparsity, distinct values, bits, bytes, statistics.",
        discussion: """
            One row per tensor, then totals and a per-layer summary. Distinct values are counted \
            exactly up to --distinct-cap, then shown as ≥cap. Optimizer state in Keras files is \
            counted separately, never as model weights.
            """)

    @Argument(help: "The model file (.onnx, .h5, .hdf5, .weights.h5).")
    var file: String

    @Option(help: "Output format: text, json, csv.")
    var format: ReportFormat = .text

    @Option(help: "Row order: file (as stored), size (largest first), name.")
    var sort: InspectSort = .file

    @Option(help: "Show only the first N rows (totals still cover every tensor).")
    var top: Int?

    @Option(help: "Count distinct values exactly up to this many per tensor.")
    var distinctCap: Int = Inspector.defaultDistinctCap

    func validate() throws {
        if let top, top < 0 { throw ValidationError("--top must be 0 or more, got \(top)") }
        if distinctCap < 1 { throw ValidationError("--distinct-cap must be at least 1, got \(distinctCap)") }
    }

    func run() throws {
        try reportingErrors {
            let report = try Inspection.run(file, sort: sort, top: top, distinctCap: distinctCap)
            switch format {
            case .text: print(report.renderText(), terminator: "")
            case .json: print(report.renderJSON(), terminator: "")
            case .csv: print(report.renderCSV(), terminator: "")
            }
        }
    }
}
