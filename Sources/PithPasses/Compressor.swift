public import PithIR

/// Runs a recipe over a model: the passes rewrite the selected tensors' storage in place.
///
/// Each selected tensor is worked on as `Float` values; the model keeps its original tensors until
/// the end, so errors are always measured against the original, and then each changed tensor gets
/// its final storage (codebook, quantized codes or dense values, in CSR when that is smaller or
/// asked for). Memory stays near one copy of the model: a tensor of 4 MiB or more is decoded where
/// it is used rather than kept decoded (`Originals`), and a clustered or quantized tensor holds its
/// codes alone (`Working`).
public enum Compressor {
    /// `calibration` is the data the data-aware passes (GPTQ rounding, OBS pruning, codebook refit, bias
    /// correction) run the model on; a recipe with such a pass is refused without it.
    public static func run(_ recipe: Recipe, on model: inout Model, calibration: (any CalibrationSource)? = nil) throws -> CompressionReport {
        try run(recipe, on: &model, calibration: calibration, originalsKeptBelow: Originals.keptBelow)
    }

    /// As `run`, keeping the original values of tensors under `originalsKeptBelow` bytes decoded
    /// (`Originals`); tests run both ways and compare.
    static func run(
        _ recipe: Recipe, on model: inout Model, calibration: (any CalibrationSource)?, originalsKeptBelow: Int
    ) throws -> CompressionReport {
        try recipe.validate()
        if calibration == nil, let index = recipe.steps.firstIndex(where: { $0.pass?.isDataAware == true }) {
            throw PassError(
                .invalidRecipe, "recipe pass \(index + 1): \(recipe.steps[index].action) is data-aware and needs calibration data (--calibration FILE)")
        }
        var run = CompressionRun(model: model, seed: recipe.seed, originalsKeptBelow: originalsKeptBelow)
        run.calibration = calibration
        run.damp = recipe.damp ?? ErrorFeedback.defaultDamp
        for (index, step) in recipe.steps.enumerated() {
            guard let pass = step.pass else { preconditionFailure("a validated step has exactly one action") }
            ProgressReport.report("compress (\(step.action))", done: index, total: recipe.steps.count, unit: "passes")
            run.keepsUnencoded = recipe.steps[(index + 1)...].contains { $0.refit != nil }
            try pass.run(selecting: step.select ?? TensorSelector(), in: &run, step: index + 1)
        }
        ProgressReport.report("compress", done: recipe.steps.count, total: recipe.steps.count, unit: "passes")
        run.settleStorage()
        var report = run.report()
        report.untouched = run.untouched(recipe)
        if let calibration, recipe.isDataAware {
            report.calibration = .init(data: calibration.name, samples: calibration.samples, damp: run.damp)
        }
        model = run.model
        return report
    }
}

extension CompressionRun {
    /// The report once every changed tensor has its final storage: a row per tensor in the order
    /// the passes first touched them, and totals over the whole model.
    func report() -> CompressionReport {
        var rows: [CompressionReport.TensorRow] = []
        for id in order {
            guard let s = working[id] else { continue }
            let tensor = model.tensors[id]
            var indexBits = 0, fillers = 0, weightBits: Int
            switch tensor.storage {
            case .sparse(let sparse):
                indexBits = sparse.indexBits
                fillers = sparse.fillers
                switch sparse.values {
                case .dense: weightBits = tensor.dtype.bitWidth
                case .codebook(let c): weightBits = c.bits
                case .quantized(let q): weightBits = q.codeBits
                }
            case .codebook(let c): weightBits = c.bits
            case .quantized(let q): weightBits = q.codeBits
            case .factored(let factored):
                // Stored factors: the widest code of any factor; float32 factors otherwise.
                weightBits =
                    factored.encodings?.map { storage -> Int in
                        switch storage {
                        case .quantized(let q): return q.codeBits
                        case .codebook(let c): return c.bits
                        case .sparse(let sparse):
                            switch sparse.values {
                            case .quantized(let q): return q.codeBits
                            case .codebook(let c): return c.bits
                            case .dense: return 32
                            }
                        default: return 32
                        }
                    }.max() ?? 32
            default: weightBits = tensor.dtype.bitWidth
            }
            let measured = s.measure(against: originals.pieces(id))
            let kept = measured.nonzero
            rows.append(
                .init(
                    tensor: tensor.name, layer: tensor.consumer?.name ?? "", op: tensor.consumer?.op ?? "", role: roles[id].kind.rawValue, shape: tensor.shape,
                    elements: tensor.count, kept: kept, keptFraction: tensor.count == 0 ? 0 : Double(kept) / Double(tensor.count),
                    encoding: tensor.storageLabel, weightBits: weightBits, indexBits: indexBits, fillers: fillers, bits: tensor.storageBits,
                    originalBytes: initialBytes[id], bytes: tensor.storedBytes,
                    error: measured.error))
        }
        // Totals count the model's weights; optimizer state (kept exactly) is counted apart, as in `inspect`.
        let weights = model.tensors.indices.filter { !model.tensors[$0].isOptimizerState }
        let originalTotal = weights.reduce(0) { $0 + initialBytes[$1] }
        let total = weights.reduce(0) { $0 + model.tensors[$1].storedBytes }
        let kept = weights.reduce(0) { sum, id in
            sum + (working[id]?.nonzero ?? model.tensors[id].count)
        }
        return CompressionReport(
            seed: seed, passes: passes, factorizations: factorizations, skipped: skipped, tensors: rows,
            totals: .init(
                tensors: weights.count, compressedTensors: rows.count,
                elements: weights.reduce(0) { $0 + model.tensors[$1].count }, kept: kept,
                originalBytes: originalTotal, bytes: total, ratio: total == 0 ? 0 : Double(originalTotal) / Double(total)))
    }
}

extension CompressionRun {
    /// Every tensor no pass touched, with the reason: the first step's selection that left it out
    /// (its role, type or size), or, when every step selected it, that the passes left it unchanged.
    func untouched(_ recipe: Recipe) -> [CompressionReport.Untouched] {
        model.tensors.indices.compactMap { id in
            guard working[id] == nil else { return nil }
            let tensor = model.tensors[id]
            let reasons = recipe.steps.compactMap { ($0.select ?? TensorSelector()).exclusion(tensor, role: roles[id]) }
            let reason = reasons.count == recipe.steps.count ? reasons[0] : "selected, but no pass changed it (see skipped)"
            return .init(tensor: tensor.name, role: roles[id].kind.rawValue, reason: reason)
        }
    }
}
