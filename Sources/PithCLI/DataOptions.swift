import ArgumentParser

/// The data options `eval` and `verify` share.
struct DataOptions: ParsableArguments {
    @Option(help: "Input data (.npy, .npz, IDX).")
    var data: String?

    @Option(help: "Labels (.npy or IDX): one class index per sample; top-1 accuracy is reported.")
    var labels: String?

    @Option(help: "Multiply every input value by this (default: 1/255 for 8-bit IDX images, else 1).")
    var scale: Double?

    @Option(help: "Samples per batch; 0 runs all at once.")
    var batchSize: Int = 500

    func validate() throws {
        if batchSize < 0 { throw ValidationError("--batch-size must be 0 or more, got \(batchSize)") }
        if labels != nil, data == nil { throw ValidationError("--labels needs --data") }
    }
}
