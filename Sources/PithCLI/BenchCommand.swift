import ArgumentParser
import Foundation
import Pith
import PithBench

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time Pith's own work on a model file (median of several runs).",
        discussion: """
            Side-by-side comparisons with other tools (numpy + onnx/h5py, zstd, …) are made by \
            the scripts in scripts/ and recorded in docs/benchmarks.md.
            """,
        subcommands: [BenchInspect.self, BenchLossless.self, BenchKMeans.self, BenchHuffman.self, BenchEval.self, BenchSVD.self])
}

struct BenchInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Time reading a model and computing every inspect statistic.")

    @Argument(help: "The model file.")
    var file: String

    @OptionGroup var timing: BenchRuns

    @Option(help: "Output format: text or json.")
    var format: ReportFormat = .text

    func validate() throws {
        try format.check(allowed: [.text, .json])
    }

    func run() throws {
        try reportingErrors {
            let result = try InspectBenchmark.measure(file, runs: timing.runs)
            if format == .json {
                printJSON(result)
                return
            }
            let megabytes = Double(result.tensorBytes) / 1_000_000
            print("\(file): \(String(format: "%.1f", megabytes)) MB of tensors, median of \(timing.runs) runs")
            print(String(format: "  load        %8.3f s  (%6.0f MB/s)", result.loadSeconds, megabytes / result.loadSeconds))
            print(String(format: "  statistics  %8.3f s  (%6.0f MB/s)", result.statisticsSeconds, megabytes / result.statisticsSeconds))
            print(String(format: "  total       %8.3f s", result.totalSeconds))
        }
    }
}

struct BenchKMeans: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmeans", abstract: "Time 1-D k-means (weight sharing) on raw little-endian float32 values.")

    @Argument(help: "A file of little-endian float32 values.")
    var file: String

    @Option(help: "Bits per index: 2^BITS clusters.")
    var bits: Int = 5

    @Option(help: "Initialisation: linear, density, forgy, kmeans++.")
    var `init`: KMeansInit = .linear

    @OptionGroup var timing: BenchRuns

    @Option(help: "Seed for forgy and kmeans++.")
    var seed: UInt64 = 0

    func validate() throws {
        if !(1...8).contains(bits) { throw ValidationError("--bits must be 1…8, got \(bits)") }
    }

    func run() throws {
        try reportingErrors {
            printJSON(try KMeansBenchmark.measure(file, bits: bits, initialization: `init`, runs: timing.runs, seed: seed))
        }
    }
}

struct BenchHuffman: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "huffman", abstract: "Time canonical Huffman encoding and decoding of a file's bytes as symbols.")

    @Argument(help: "Any file: each byte is one symbol.")
    var file: String

    @OptionGroup var timing: BenchRuns

    func run() throws {
        try reportingErrors {
            printJSON(try HuffmanBenchmark.measure(file, runs: timing.runs))
        }
    }
}

struct BenchLossless: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lossless",
        abstract: "Time lossless compression of a model in one process: reading it and encoding the container in memory (JSON).")

    @Argument(help: "The model file.")
    var file: String

    @OptionGroup var timing: BenchRuns

    func run() throws {
        try reportingErrors { printJSON(try LosslessBenchmark.measure(file, runs: timing.runs)) }
    }
}

struct BenchEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Time the reference evaluator on a model and data (loaded once, median of several runs).")

    @Argument(help: "The model file.")
    var model: String

    @OptionGroup var input: DataOptions

    @OptionGroup var timing: BenchRuns

    func validate() throws {
        if input.data == nil { throw ValidationError("give the input data with --data") }
    }

    func run() throws {
        try reportingErrors {
            printJSON(try EvalBenchmark.measure(model: model, data: input.data ?? "", batchSize: input.batchSize, scale: input.scale, runs: timing.runs))
        }
    }
}

struct BenchSVD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svd", abstract: "Time the randomized truncated SVD against the full LAPACK SVD on a matrix (.npy), with their errors.")

    @Argument(help: "A 2-D float32 .npy file.")
    var file: String

    @Option(help: "The rank of the approximation.")
    var rank: Int = 256

    @Option(help: "Number of runs; the median is reported.")
    var runs: Int = 3

    @Option(help: "Extra columns of the random sketch.")
    var oversampling: Int = 32

    @Option(help: "Rounds of power iteration.")
    var powerIterations: Int = 3

    func validate() throws {
        if rank < 1 { throw ValidationError("--rank must be at least 1, got \(rank)") }
        if oversampling < 0 || powerIterations < 0 { throw ValidationError("--oversampling and --power-iterations must be 0 or more") }
    }

    func run() throws {
        try reportingErrors {
            printJSON(try SVDBenchmark.measure(file, rank: rank, runs: runs, oversampling: oversampling, powerIterations: powerIterations))
        }
    }
}

/// Pretty, sorted, snake_case JSON on standard output: the form of every machine-readable benchmark.
func printJSON<T: Encodable>(_ value: T) {
    print(ReportJSON.text(value), terminator: "")
}

/// `--runs`, shared by the benchmarks that report a median of 5 runs by default.
struct BenchRuns: ParsableArguments {
    @Option(help: "Number of runs; the median is reported.")
    var runs: Int = 5

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1, got \(runs)") }
    }
}
