import ArgumentParser
import Pith

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a .pith container back to its source format (ONNX or Keras HDF5), every tensor dense.",
        discussion: """
            Compressed tensors become the values the compression chose (pruned weights zero, \
            clustered weights their centroids, quantized weights dequantized, factors multiplied \
            back), in the tensor's own dtype — or with --factored, low-rank and tensor-train weights \
            stay factored: an ONNX layer becomes two Gemm / MatMul / Conv nodes or a chain of \
            Reshape / Transpose / MatMul nodes, a Keras Dense layer two Dense layers; the graph, attributes and metadata are those of the source file. \
            With --compact (ONNX only) every compressed weight stays compressed where the graph can decode it: \
            int8/int4 codes with DequantizeLinear (below opset 21, 4-bit codes packed two per byte with Cast, \
            Gather and Reshape), codebook indices with Gather, float16/bfloat16 with Cast, \
            pruned tensors as sparse Constants where smaller, factored layers as with --factored; the opset is \
            raised only as far as these need and only when every node stays valid. \
            An ONNX model whose source kept tensors in external data files is restored with the same \
            layout: the same data files beside the output (names, offsets, lengths), the same tensors \
            inline; with --external-data FILE every tensor of at least 1,024 bytes goes to FILE beside \
            the output instead, and a model that would pass protobuf's 2 GiB limit inline puts its \
            large tensors in OUTPUT.data. Data file names must stay in the output's folder. The output \
            (and every data file) is written atomically and replaces an existing file only with --force.
            """)

    @Argument(help: "The .pith container.")
    var file: String

    @OptionGroup var display: DisplayOptions

    @Option(name: .shortAndLong, help: "The output model file.")
    var output: String

    @Flag(help: "Replace OUTPUT if it exists.")
    var force = false

    @Flag(help: "Write low-rank and tensor-train weights as their factors, with the nodes or layers that use them.")
    var factored = false

    @Flag(help: "ONNX: keep compressed weights compressed (integer codes, codebooks, float16, sparse, factors) with the nodes that decode them.")
    var compact = false

    @Option(
        name: .customLong("external-data"),
        help: ArgumentHelp(
            "ONNX: write every tensor of at least 1,024 bytes to this one file beside OUTPUT (a name relative to its folder).", valueName: "FILE"))
    var externalData: String?

    func validate() throws {
        if externalData != nil, compact || factored {
            throw ValidationError("--external-data applies to the dense restore; --compact and --factored write every tensor inline")
        }
        if externalData != nil, output == "-" { throw ValidationError("--external-data writes a file beside OUTPUT; it cannot be used with -o -") }
        if compact, factored { throw ValidationError("--compact already writes factored layers as --factored does; give only --compact") }
    }

    func run() throws {
        try reportingErrors(display: display) {
            // `-`: the container from standard input, the model to standard output (the report then
            // goes to standard error).
            let file = try StandardStreams.input(self.file)
            let spooled = try StandardStreams.output(output, suffix: "out")
            let result = try Restoration.run(
                file, to: spooled, force: force || output == "-", form: compact ? .compact : factored ? .factored : .dense,
                externalData: output == "-" ? .inline : externalData.map { .oneFile($0) } ?? .source)
            try StandardStreams.finish(output, spooled: spooled)
            let text = StandardStreams.displayed(result.renderText(output: output))
            if output == "-" { printError(String(text.dropLast())) } else { print(text, terminator: "") }
        }
    }
}
