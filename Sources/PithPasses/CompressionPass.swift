/// One kind of pass, as a recipe step names it. The pass's options type conforms, in the pass's
/// own file beside its kernel: `PruneOptions` (Pruning.swift), `StructuredOptions`
/// (StructuredPruning.swift), `ClusterOptions` (WeightSharing.swift), `QuantizeOptions`
/// (Quantization.swift), `EncodeOptions` (SparseEncoding.swift), `FactorizeOptions`
/// (Factorization.swift). `Compressor` runs them in recipe order.
protocol CompressionPass: Sendable {
    /// The recipe key and the report's name of the pass: `prune`, `cluster`, …
    static var action: String { get }

    /// Checks every option's range before anything runs; throws `PassError(.invalidRecipe)` whose
    /// message starts with `label` (`recipe pass 2`) and names the field.
    func validate(_ label: String) throws

    /// Applies the pass to what `selector` picks, recording its rows and skips in `run`.
    func run(selecting selector: TensorSelector, in run: inout CompressionRun, step: Int) throws

    /// Whether the pass runs the model on calibration data (GPTQ rounding, OBS pruning, refit, bias
    /// correction): a recipe with such a pass is refused without `--calibration`.
    var isDataAware: Bool { get }
}

extension CompressionPass {
    var isDataAware: Bool { false }
}
