import ArgumentParser
import Pith

@main
struct PithCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pith",
        abstract: "Convert, compress, inspect and validate trained neural-network model files.",
        discussion: """
            Reads ONNX (.onnx, with external data) and Keras HDF5 (Keras 2 .h5, Keras 3 .h5 and \
            .weights.h5) files, recognised by content.

            Exit codes: 0 success, 1 verify gate failed or --auto budget missed, 64 usage, 65 bad input data, 66 missing input, \
            69 unsupported feature, 73 cannot create the output (it exists, or its folder cannot be written), \
            74 I/O error.
            """,
        version: "0.1.0",
        subcommands: [
            Inspect.self, Compress.self, SensitivityCommand.self, Restore.self, Check.self, Dump.self, Eval.self, Verify.self, Report.self, Bench.self,
        ])
}

/// Runs `body`, turning library errors into a message on standard error and a sysexits code.
/// Standard input or output given as `-` is spooled through a temporary file, removed here; messages
/// name it `-` rather than the temporary path.
func reportingErrors(display: DisplayOptions? = nil, _ body: () throws -> Void) throws {
    Runtime.start()
    if let display { ProgressLine.install(display) }
    defer {
        ProgressLine.finish()
        StandardStreams.removeSpools()
    }
    do {
        try body()
    } catch let error as any ReportableError {
        printError("pith: error: \(PithError.bounded(StandardStreams.displayed(error.description)))")
        throw ExitCode(error.exitKind.rawValue)
    } catch let error as ExitCode {
        throw error
    } catch {
        // Every library error is a ReportableError; anything else still ends with the documented prefix
        // and a documented code (bad input data) rather than ArgumentParser's bare `Error:`.
        printError("pith: error: \(PithError.bounded("\(error)"))")
        throw ExitCode(ExitKind.data.rawValue)
    }
}
