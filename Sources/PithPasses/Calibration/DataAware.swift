import PithIR

/// The layer output error of a data-aware pass beside its data-free twin, each relative to the
/// layer's output energy: E‖(W − Ŵ)x + s·(b − b̂)‖² / E‖Wx‖² over the calibration rows x (samples, or
/// input patches of a convolution), computed from H = E[xxᵀ] and E[x] as
/// tr((W − Ŵ) H (W − Ŵ)ᵀ) + 2s·(b − b̂)ᵀ(W − Ŵ)E[x] + s²‖b − b̂‖² (s = beta / alpha of a `Gemm`, else 1).
public struct LayerError: Sendable, Codable, Equatable {
    public enum Measure: String, Sendable, Codable {
        /// E‖(W − Ŵ)x + s·(b − b̂)‖² / E‖Wx‖², as above.
        case output
        /// Bias correction: only the part of the output error a bias can change, the squared mean
        /// shift ‖E[y] − E[ŷ]‖² / E‖Wx‖², y from the original model (target `model`) or from the
        /// original weights on the same inputs (target `layer`).
        case meanShift = "mean_shift"
    }

    /// Calibration samples, and the rows they gave (× output positions for a convolution).
    public var samples: Int
    public var rows: Int
    /// Before the pass (the tensor as the earlier passes left it), against the original weights.
    public var before: Double
    /// After the data-free twin of the pass (rounding to nearest, nearest centroid, magnitude pruning
    /// without updates, no bias correction), on the same inputs.
    public var dataFree: Double
    /// After the data-aware pass.
    public var after: Double
    public var measure: Measure = .output
}

extension CompressionRun {
    /// The model as the passes have left it so far: every touched tensor holds its working values.
    func currentModel() -> Model {
        var current = model
        for (id, s) in working {
            current.tensors[id].storage = .dense(Tensor.encode(s.values, as: current.tensors[id].dtype))
        }
        return current
    }

    /// The statistics of `geometry`'s input, the model run as the passes have left it so far (so a
    /// layer sees the inputs its compressed predecessors give it).
    func statistics(_ geometry: LayerGeometry) throws -> LayerStatistics {
        guard let calibration else { preconditionFailure("data-aware passes are refused without calibration before they run") }
        var accumulator = HessianAccumulator(geometry)
        try calibration.capture(geometry.input, in: currentModel()) { values, shape in
            for v in values where !v.isFinite {
                throw PassError(.notApplicable, "layer `\(geometry.layer)`: its input `\(geometry.input)` is not finite on the calibration data")
            }
            try accumulator.add(values, shape: shape)
        }
        let statistics = accumulator.finish()
        guard statistics.rows > 0 else {
            throw PassError(.notApplicable, "layer `\(geometry.layer)`: calibration gave no rows of its input `\(geometry.input)`")
        }
        return statistics
    }

    /// The layers of the selected weights in graph order (each layer's inputs come from the ones
    /// before it), and the tensors the data-aware passes cannot calibrate, with the reason.
    func calibratedLayers(_ ids: [TensorID]) -> (layers: [LayerGeometry], others: [(TensorID, String)]) {
        var layers: [LayerGeometry] = [], others: [(TensorID, String)] = []
        for id in ids {
            switch LayerGeometry.make(id, in: self) {
            case .success(let geometry): layers.append(geometry)
            case .failure(let reason): others.append((id, reason.message))
            }
        }
        return (layers.sorted { $0.node < $1.node }, others)
    }

    /// The tensor's values in layer form before any pass, and the damping the recipe asks for.
    func originalLayerForm(_ geometry: LayerGeometry) -> [Float] {
        geometry.layerForm(originals[geometry.tensor] ?? model.tensors[geometry.tensor].decodedFloats())
    }

    /// The bias values before any pass, and as they are now.
    func biasValues(_ geometry: LayerGeometry) -> (original: [Float], current: [Float])? {
        guard let bias = geometry.bias else { return nil }
        let original = originals[bias] ?? model.tensors[bias].decodedFloats()
        return (original, working[bias]?.values ?? original)
    }

    /// Relative layer output error (see `LayerError`) of the layer-form weights `approximation`.
    func layerError(_ geometry: LayerGeometry, _ statistics: LayerStatistics, approximation: [Float], bias: [Float]? = nil) -> Double {
        let original = originalLayerForm(geometry)
        let k = geometry.columns
        var error = 0.0, energy = 0.0
        let scale = geometry.alpha == 0 ? 0 : Double(geometry.beta / geometry.alpha)
        let biases = biasValues(geometry)
        for g in 0..<geometry.groups {
            let rows = geometry.rows(ofGroup: g)
            let w = Array(original[rows.lowerBound * k..<rows.upperBound * k])
            let delta = zip(w, approximation[rows.lowerBound * k..<rows.upperBound * k]).map { $0 - $1 }
            error += ErrorFeedback.proxy(delta, rows: rows.count, columns: k, hessian: statistics.hessians[g])
            energy += ErrorFeedback.proxy(w, rows: rows.count, columns: k, hessian: statistics.hessians[g])
            if let biases {
                let current = bias ?? biases.current
                for (r, row) in rows.enumerated() {
                    let db = scale * Double(biases.original[row] - current[row])
                    error += Self.biasTerm(db, delta: delta[r * k..<(r + 1) * k], mean: statistics.means[g])
                }
            }
        }
        return energy > 0 ? Swift.max(0, error) / energy : 0
    }

    /// The bias's part of one row's output error: 2·Δb·(δ·E[x]) + Δb², with δ the row's weight change
    /// and Δb its bias change as the layer adds it.
    static func biasTerm(_ db: Double, delta: ArraySlice<Float>, mean: [Float]) -> Double {
        var shift = 0.0
        for (d, m) in zip(delta, mean) { shift += Double(d) * Double(m) }
        return 2 * db * shift + db * db
    }

    /// Row by row, the data-free twin's row wherever it has the lower output error on the calibration
    /// data than `w`'s (both in layer form, measured as `layerError` measures them, against the
    /// original weights and with the bias as it is now); returns how many rows were taken from the twin.
    /// A sweep feeds each rounding error forward through the damped inverse Hessian of the whole row,
    /// which is the best update for the damped problem, not always for the data: with few calibration
    /// rows against many inputs (a layer after a global pooling sees one row per sample), or a row left
    /// with few weights, a row can come out worse than rounding it alone. Callers pass a twin on the
    /// same grid, codebook or mask, so the storage does not change; the layer error can then only go down.
    func keepingBetterRows(_ w: inout [Float], twin: [Float], _ geometry: LayerGeometry, _ statistics: LayerStatistics) -> Int {
        let original = originalLayerForm(geometry)
        let k = geometry.columns
        let scale = geometry.alpha == 0 ? 0 : Double(geometry.beta / geometry.alpha)
        let biases = biasValues(geometry)
        var taken = 0
        for g in 0..<geometry.groups {
            let mean = statistics.means[g]
            for row in geometry.rows(ofGroup: g) {
                let span = row * k..<(row + 1) * k
                func error(_ candidate: [Float]) -> Double {
                    let delta = zip(original[span], candidate[span]).map { $0 - $1 }
                    let error = ErrorFeedback.proxy(delta, rows: 1, columns: k, hessian: statistics.hessians[g])
                    guard let biases else { return error }
                    return error + Self.biasTerm(scale * Double(biases.original[row] - biases.current[row]), delta: delta[...], mean: mean)
                }
                if error(twin) < error(w) {
                    w.replaceSubrange(span, with: twin[span])
                    taken += 1
                }
            }
        }
        return taken
    }

    /// Adds the layer error to the pass row just recorded.
    mutating func attach(_ error: LayerError) {
        passes[passes.count - 1].layerError = error
    }

    /// The damped inverse-Hessian factor of every group of a layer.
    func inverseFactors(_ geometry: LayerGeometry, _ statistics: LayerStatistics) throws -> [(factor: [Float], inverse: [Float], damp: Double)] {
        try statistics.hessians.map { try ErrorFeedback.inverseFactor($0, n: geometry.columns, damp: damp, layer: geometry.layer) }
    }

    /// Sweeps the layer-form matrix `w`, group by group, with each group's factor.
    func sweep(
        _ w: inout [Float], _ geometry: LayerGeometry, factors: [(factor: [Float], inverse: [Float], damp: Double)],
        quantize: @escaping @Sendable (_ row: Int, _ column: Int, _ value: Float) -> Float
    ) {
        let k = geometry.columns
        for g in 0..<geometry.groups {
            let rows = geometry.rows(ofGroup: g)
            var part = Array(w[rows.lowerBound * k..<rows.upperBound * k])
            let offset = rows.lowerBound
            ErrorFeedback.sweep(&part, rows: rows.count, columns: k, factor: factors[g].factor) { r, j, v in quantize(offset + r, j, v) }
            w.replaceSubrange(rows.lowerBound * k..<rows.upperBound * k, with: part)
        }
    }
}
