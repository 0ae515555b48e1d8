import ArgumentParser
import Pith

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
        try format.check(allowed: [.text, .json])
        if minAgreement != nil, input.data == nil { throw ValidationError("--min-agreement needs --data") }
    }

    func run() throws {
        var failed = false
        try reportingErrors {
            let report = try Verification.run(
                original: original, candidate: candidate, data: input.data, labels: input.labels, batchSize: input.batchSize, scale: input.scale,
                thresholds: .init(maxRMSE: maxRmse, minSNR: minSnr, requireExact: requireExact, minAgreement: minAgreement))
            print(format == .json ? report.renderJSON() : report.renderText(), terminator: "")
            failed = !report.failures.isEmpty
        }
        if failed { throw ExitCode(1) }
    }
}
