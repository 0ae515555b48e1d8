import ArgumentParser
import Pith

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Test a .pith container's integrity without writing anything.",
        discussion: """
            Checks the header and manifest checksums, decodes every stream of every tensor (on every \
            core, nothing kept) with its checksum, and for an ONNX container checks the graph's \
            tensor slots against the manifest (names, types, shapes). Exit 0 when the container is \
            whole, 65 at the first damage, naming the tensor or stream.
            """)

    @Argument(help: "The .pith container.")
    var file: String

    @OptionGroup var display: DisplayOptions

    func run() throws {
        try reportingErrors(display: display) {
            print(StandardStreams.displayed(try Checking.run(try StandardStreams.input(file)).renderText()), terminator: "")
        }
    }
}
