import ArgumentParser
import Pith

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a .pith container back to its source format (ONNX or Keras HDF5), every tensor dense.",
        discussion: """
            Compressed tensors become the values the compression chose (pruned weights zero, \
            clustered weights their centroids, quantized weights dequantized), in the tensor's own \
            dtype; the graph, attributes and metadata are those of the source file. The output is \
            written atomically and replaces an existing file only with --force.
            """)

    @Argument(help: "The .pith container.")
    var file: String

    @Option(name: .shortAndLong, help: "The output model file.")
    var output: String

    @Flag(help: "Replace OUTPUT if it exists.")
    var force = false

    func run() throws {
        try reportingErrors {
            let size = try Compression.restore(file, to: output, force: force)
            print("wrote \(output): \(size) bytes")
        }
    }
}
