import ArgumentParser
import Pith

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two models tensor by tensor and, with data, output by output; gate on thresholds.",
        discussion: """
            Tensors are matched by name: per tensor the max absolute error, RMSE, SNR, cosine \
            similarity and whether it is bit-exact; tensors missing or reshaped on either side are \
            named (and fail the weight gates). With --data, both models run on the data and every \
            output is compared: max |error|, relative L2 error, cosine, SNR, the share of elements \
            within --rtol/--atol, and for class-score outputs (rank 2 or 3, scores on the last axis) \
            the argmax agreement; with --labels the accuracy of each. Exit status 1 when a gate fails \
            (--max-rmse, --min-snr, --require-exact, --min-agreement, --min-output-snr, --min-cosine, \
            --max-output-error), or when nothing was compared (no tensor in common and no --data).
            """)

    @Argument(help: "The original model.")
    var original: String

    @OptionGroup var display: DisplayOptions

    @Argument(help: "The candidate (compressed or restored) model.")
    var candidate: String

    @OptionGroup var input: DataOptions

    @Option(help: "Fail when a tensor's RMSE is above this.")
    var maxRmse: Double?

    @Option(help: "Fail when a tensor that is not bit-exact has an SNR below this many dB.")
    var minSnr: Double?

    @Flag(help: "Fail unless every tensor is bit-exact.")
    var requireExact = false

    @Option(help: "Fail when the argmax agreement of a class-score output (or top-1 with --labels) on --data is below this fraction.")
    var minAgreement: Double?

    @Option(help: "Fail when an output's SNR on --data is below this many dB.")
    var minOutputSnr: Double?

    @Option(help: "Fail when an output's cosine similarity on --data is below this.")
    var minCosine: Double?

    @Option(help: "Fail when any output element on --data differs by more than this.")
    var maxOutputError: Double?

    @Option(help: "Relative tolerance of the outputs' 'within tol' share: |b − a| ≤ atol + rtol·|a|.")
    var rtol: Double = 1e-3

    @Option(help: "Absolute tolerance of the outputs' 'within tol' share.")
    var atol: Double = 1e-5

    @Option(help: "Output format: text, json.")
    var format: ReportFormat = .text

    func validate() throws {
        try format.check(allowed: [.text, .json])
        for (flag, value) in [
            ("--min-agreement", minAgreement), ("--min-output-snr", minOutputSnr), ("--min-cosine", minCosine), ("--max-output-error", maxOutputError),
        ]
        where value != nil && input.data == nil {
            throw ValidationError("\(flag) needs --data")
        }
        if rtol < 0 || atol < 0 || !rtol.isFinite || !atol.isFinite { throw ValidationError("--rtol and --atol must be finite and 0 or more") }
    }

    func run() throws {
        var failed = false
        try reportingErrors(display: display) {
            let report = try Verification.run(
                original: original, candidate: candidate, data: input.data, labels: input.labels, batchSize: input.batchSize, scale: input.scale,
                thresholds: .init(
                    maxRMSE: maxRmse, minSNR: minSnr, requireExact: requireExact, minAgreement: minAgreement, minOutputSNR: minOutputSnr,
                    minCosine: minCosine, maxOutputError: maxOutputError, rtol: rtol, atol: atol))
            print(format == .json ? report.renderJSON() : report.renderText(), terminator: "")
            failed = !report.failures.isEmpty
        }
        if failed { throw ExitCode(1) }
    }
}
