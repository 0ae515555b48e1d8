import PithIR

/// OBS pruning as SparseGPT sweeps it (Frantar and Alistarh 2023; Hassibi and Stork 1993): each
/// layer, in graph order and calibrated on the model as the earlier layers were left, loses as many
/// weights as the data-free rule takes from it (`sparsity` with one global threshold or per tensor,
/// `threshold`, `quality`), and its surviving weights are updated to make up for them.
///
/// The mask is the data-free one (`mask: magnitude`) or the weights of least OBS saliency
/// w² / [H⁻¹]ᵢᵢ (`mask: saliency`), the output error that removing one weight alone costs; the
/// update is the sweep of `ErrorFeedback` with the pruned weights snapped to zero. With H = I the
/// factor is I, nothing is fed forward, and the result is magnitude pruning.
enum OBSPruning {
    /// `magnitude` holds each tensor as the data-free rule pruned it (the twin, and the count per tensor).
    static func run(
        _ ids: [TensorID], magnitude: [Working], details: [String], before: [Int], options: PruneOptions, in run: inout CompressionRun, step: Int
    ) throws {
        let (layers, others) = run.calibratedLayers(ids)
        let position = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
        for (id, reason) in others {
            let i = position[id]!
            run.skipped.append(
                .init(step: step, action: PruneOptions.action, target: run.model.tensors[id].name, reason: "\(reason); pruned by magnitude instead"))
            _ = run.state(id)
            run.working[id] = magnitude[i]
            run.record(step: step, action: PruneOptions.action, id: id, before: before[i], after: magnitude[i], detail: details[i])
        }
        for geometry in layers {
            let id = geometry.tensor, i = position[id]!
            var s = run.state(id)
            let statistics = try run.statistics(geometry)
            let k = geometry.columns
            var w = geometry.layerForm(s.values)
            let twin = geometry.layerForm(magnitude[i].values)
            let count = twin.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
            let factors = try run.inverseFactors(geometry, statistics)
            let mask: [Bool]
            switch options.mask ?? .magnitude {
            case .magnitude:
                mask = twin.map { $0 == 0 }
            case .saliency:
                var scores = [Float](repeating: 0, count: w.count)
                for g in 0..<geometry.groups {
                    let inverse = factors[g].inverse
                    for r in geometry.rows(ofGroup: g) {
                        for j in 0..<k { scores[r * k + j] = w[r * k + j] * w[r * k + j] / inverse[j * k + j] }
                    }
                }
                mask = lowest(scores, count: count)
            }
            let startError = run.layerError(geometry, statistics, approximation: w)
            run.sweep(&w, geometry, factors: factors) { r, j, v in mask[r * k + j] ? 0 : v }
            // With the twin's own mask, a row the update made worse is left as magnitude pruning left it.
            let kept = options.mask == .saliency ? 0 : run.keepingBetterRows(&w, twin: twin, geometry, statistics)
            s.values = geometry.storedOrder(w)
            run.working[id] = s
            run.record(
                step: step, action: PruneOptions.action, id: id, before: before[i], after: s,
                detail: "obs, \((options.mask ?? .magnitude).rawValue) mask of \(count) (\(details[i])), damp \(factors.map(\.damp).max() ?? run.damp)"
                    + GPTQ.rowsKept(kept, as: "magnitude pruning left them"))
            run.attach(
                LayerError(
                    samples: statistics.samples, rows: statistics.rows, before: startError,
                    dataFree: run.layerError(geometry, statistics, approximation: twin), after: run.layerError(geometry, statistics, approximation: w)))
        }
    }

    /// True for the `count` smallest scores (ties by position).
    static func lowest(_ scores: [Float], count: Int) -> [Bool] {
        let order = scores.indices.sorted { (scores[$0], $0) < (scores[$1], $1) }
        var mask = [Bool](repeating: false, count: scores.count)
        for i in order.prefix(count) { mask[i] = true }
        return mask
    }
}
