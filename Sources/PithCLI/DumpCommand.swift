import ArgumentParser
import Pith

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write every tensor of a model or container to .npz or .safetensors, or describe one tensor.",
        discussion: """
            With -o OUT.npz or -o OUT.safetensors, every tensor is written under its name: dense \
            values (a compressed tensor as the values its compression chose), in its own type where \
            the format has it and widened otherwise (int4 → int8; in .npz bfloat16 and float8 → \
            float32); string and complex tensors are left out with a note. With --stored, each \
            compressed tensor of a container is written as it is stored instead — NAME.codebook and \
            NAME.indices, NAME.codes / NAME.scales / NAME.zero_points, NAME.row_starts / NAME.gaps / \
            NAME.values (CSR), NAME.factor0… — with a JSON description of each (the `__pith__` member \
            of an .npz, the `__metadata__` of a .safetensors). With --tensor NAME, prints that \
            tensor's shape, type, storage, statistics, a histogram and its first values.
            """)

    @Argument(help: "The model file or .pith container.")
    var file: String

    @OptionGroup var display: DisplayOptions

    @Option(name: .shortAndLong, help: "The output file: .npz or .safetensors.")
    var output: String?

    @Flag(help: "Replace OUTPUT if it exists.")
    var force = false

    @Flag(help: "Write compressed tensors as stored (codes, codebooks, scales, CSR arrays, factors).")
    var stored = false

    @Option(help: "Describe this tensor instead of writing a file.")
    var tensor: String?

    func validate() throws {
        if tensor == nil, output == nil { throw ValidationError("give -o OUT.npz / OUT.safetensors, or --tensor NAME") }
        if tensor != nil, output != nil { throw ValidationError("--tensor describes one tensor on the terminal; give it without -o") }
    }

    func run() throws {
        try reportingErrors(display: display) {
            if let tensor {
                print(try Dumping.describe(file, tensor: tensor), terminator: "")
            } else if let output {
                print(try Dumping.run(file, to: output, stored: stored, force: force).renderText(), terminator: "")
            }
        }
    }
}
