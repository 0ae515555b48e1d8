import PithIR
import PithLinearAlgebra

/// GPTQ (Frantar et al. 2022) for Pith's two value encodings: linear quantization (`quantize` with
/// `rounding: gptq`) and k-means codebooks (`cluster` with `assign: gptq`, optionally with
/// `weighting: hessian`). Each layer, in graph order, is calibrated on the model as the earlier
/// layers were left; its grid (scales, zero points) or centroids are those of the data-free twin
/// (`weighting: hessian` moves the centroids first), and only the rounding changes: the sweep of
/// `ErrorFeedback`. Pruned weights (exact zeros) stay zero. Tensors the passes cannot calibrate
/// (Keras models, weights outside Gemm / MatMul / Conv) are encoded the data-free way, and listed.
enum GPTQ {
    static func quantize(_ ids: [TensorID], options: QuantizeOptions, in run: inout CompressionRun, step: Int) throws {
        var nearest = options
        nearest.rounding = .nearest
        let (layers, others) = run.calibratedLayers(ids)
        try fallBack(others, action: QuantizeOptions.action, what: "rounded to nearest", in: &run, step: step) { ids, run in
            try nearest.run(selecting: TensorSelector(names: ids.map { run.model.tensors[$0].name }), in: &run, step: step)
        }
        for geometry in layers {
            let id = geometry.tensor
            var s = try unencoded(id, in: &run)
            let tensor = run.model.tensors[id], before = run.bytesNow(id)
            let statistics = try run.statistics(geometry)
            let layout = ChannelLayout(shape: tensor.shape, axis: run.outputAxis(id), perTensor: (options.granularity ?? .tensor) == .tensor)
            let grids = Quantization.grids(s.values, layout: layout, options: nearest)
            let perTensor = layout.channels == 1
            // The data-free twin: the same grid, rounded to nearest.
            let (twin, _) = Quantization.quantize(s.values, layout: layout, options: nearest)
            let twinValues = decode(.quantized(twin), like: tensor)
            var w = geometry.layerForm(s.values)
            let k = geometry.columns
            let mask = w.map { $0 == 0 }
            let factors = try run.inverseFactors(geometry, statistics)
            let startError = run.layerError(geometry, statistics, approximation: w)
            run.sweep(&w, geometry, factors: factors) { r, j, v in
                if mask[r * k + j] { return 0 }
                let grid = grids[perTensor ? 0 : r]
                return grid.value(grid.code(v))
            }
            let twinForm = geometry.layerForm(twinValues)
            let kept = run.keepingBetterRows(&w, twin: twinForm, geometry, statistics)
            var codes = [Int32](repeating: 0, count: w.count)
            for r in 0..<geometry.outputs {
                let grid = grids[perTensor ? 0 : r]
                for j in 0..<k { codes[geometry.storedIndex(row: r, column: j)] = grid.code(w[r * k + j]) }
            }
            let storage = Quantization.storage(grids, codes: QuantizedCodes(codes), layout: layout, options: nearest)
            s.quantized = storage
            s.unencoded = s.values
            s.values = decode(.quantized(storage), like: tensor)
            run.working[id] = s
            run.record(
                step: step, action: QuantizeOptions.action, id: id, before: before, after: s,
                detail: Quantization.detail(grids, channels: layout.channels, options: nearest).replacingOccurrences(of: "round to nearest even", with: "gptq")
                    + ", damp \(factors.map(\.damp).max() ?? run.damp)" + rowsKept(kept, as: "rounded to nearest"))
            run.attach(
                LayerError(
                    samples: statistics.samples, rows: statistics.rows, before: startError,
                    dataFree: run.layerError(geometry, statistics, approximation: twinForm),
                    after: run.layerError(geometry, statistics, approximation: w)))
        }
    }

    static func cluster(_ ids: [TensorID], options: ClusterOptions, in run: inout CompressionRun, step: Int) throws {
        var plain = options
        plain.assign = nil
        plain.weighting = nil
        let (layers, others) = run.calibratedLayers(ids)
        try fallBack(others, action: ClusterOptions.action, what: "clustered data-free", in: &run, step: step) { ids, run in
            try plain.run(selecting: TensorSelector(names: ids.map { run.model.tensors[$0].name }), in: &run, step: step)
        }
        for geometry in layers {
            let id = geometry.tensor
            var s = try unencoded(id, in: &run)
            let tensor = run.model.tensors[id], before = run.bytesNow(id)
            let statistics = try run.statistics(geometry)
            let layout = ChannelLayout(shape: tensor.shape, axis: run.outputAxis(id), perTensor: (options.granularity ?? .tensor) == .tensor)
            // The data-free twin: k-means and nearest centroids.
            let (twin, twinDetail) = try WeightSharing.cluster(s.values, layout: layout, options: plain, seed: run.seed &+ UInt64(id), tensor: tensor.name)
            let twinValues = decode(.codebook(twin), like: tensor)
            var tables = CodebookTables(twin)
            let perTensor = layout.channels == 1
            let k = geometry.columns
            let target = geometry.layerForm(s.values)
            let mask = target.map { $0 == 0 && twin.zeroIsReserved }
            if options.weighting == .hessian {
                // Each weight counts by diag(H) of its input (damped, so none counts zero).
                let diagonal = statistics.hessians.map { h in (0..<k).map { h[$0 * k + $0] } }
                let floor = run.damp * Double(diagonal.flatMap { $0 }.reduce(0, +)) / Double(Swift.max(1, diagonal.count * k))
                for t in tables.tables.indices {
                    var values: [Float] = [], weights: [Float] = []
                    for r in 0..<geometry.outputs where perTensor || r == t {
                        let g = r / (geometry.outputs / geometry.groups)
                        for j in 0..<k where !mask[r * k + j] {
                            values.append(target[r * k + j])
                            weights.append(diagonal[g][j] + Float(floor))
                        }
                    }
                    tables.tables[t] = CodebookRefit.weightedLloyd(values, weights: weights, initial: tables.tables[t])
                }
            }
            let frozen = tables
            let factors = try run.inverseFactors(geometry, statistics)
            let startError = run.layerError(geometry, statistics, approximation: target)
            var w = target
            let snap: @Sendable (Int, Int, Float) -> Float = { r, j, v in
                let t = perTensor ? 0 : r
                return mask[r * k + j] ? 0 : frozen.tables[t][frozen.nearest(t, v)]
            }
            let twinForm = geometry.layerForm(twinValues)
            var kept = 0
            if options.assign == .gptq {
                run.sweep(&w, geometry, factors: factors, quantize: snap)
                // The twin shares the codebook unless diag(H) moved it.
                if options.weighting != .hessian { kept = run.keepingBetterRows(&w, twin: twinForm, geometry, statistics) }
            } else {
                for i in w.indices { w[i] = snap(i / k, i % k, w[i]) }
            }
            var stored = [Int32](repeating: -1, count: w.count)
            for r in 0..<geometry.outputs {
                for j in 0..<k where !mask[r * k + j] {
                    stored[geometry.storedIndex(row: r, column: j)] = Int32(frozen.nearest(perTensor ? 0 : r, w[r * k + j]))
                }
            }
            s.codebook = frozen.storage(stored)
            s.unencoded = s.values
            s.values = geometry.storedOrder(w)
            run.working[id] = s
            let how = [options.weighting == .hessian ? "diag(H)-weighted centroids" : nil, options.assign == .gptq ? "gptq assignment" : nil]
            run.record(
                step: step, action: ClusterOptions.action, id: id, before: before, after: s,
                detail: twinDetail + "; " + how.compactMap { $0 }.joined(separator: ", ") + ", damp \(factors.map(\.damp).max() ?? run.damp)"
                    + rowsKept(kept, as: "nearest centroids give them"))
            run.attach(
                LayerError(
                    samples: statistics.samples, rows: statistics.rows, before: startError,
                    dataFree: run.layerError(geometry, statistics, approximation: twinForm),
                    after: run.layerError(geometry, statistics, approximation: w)))
        }
    }

    /// The detail's note of rows a sweep made worse and that were kept as the data-free rule gives them.
    static func rowsKept(_ rows: Int, as how: String) -> String {
        rows == 0 ? "" : ", \(rows) row\(rows == 1 ? "" : "s") as \(how) (lower layer error)"
    }

    /// The tensor's working state, refused if it is already encoded.
    static func unencoded(_ id: TensorID, in run: inout CompressionRun) throws -> Working {
        let s = run.state(id)
        run.working[id] = s
        if s.quantized != nil || s.codebook != nil || s.factored != nil {
            throw PassError(
                .notApplicable,
                "tensor `\(run.model.tensors[id].name)`: already \(s.factored != nil ? "factorized" : s.codebook != nil ? "clustered" : "quantized"); a tensor is clustered, quantized or factorized once"
            )
        }
        return s
    }

    /// Tensors the data-aware pass cannot calibrate get the data-free pass, each listed with why.
    static func fallBack(
        _ others: [(TensorID, String)], action: String, what: String, in run: inout CompressionRun, step: Int,
        _ body: ([TensorID], inout CompressionRun) throws -> Void
    ) throws {
        guard !others.isEmpty else { return }
        for (id, reason) in others {
            run.skipped.append(.init(step: step, action: action, target: run.model.tensors[id].name, reason: "\(reason); \(what) instead"))
        }
        try body(others.map(\.0), &run)
    }

    /// The values `storage` holds, for a tensor shaped like `tensor`.
    static func decode(_ storage: TensorStorage, like tensor: Tensor) -> [Float] {
        Tensor(name: tensor.name, dtype: .float32, shape: tensor.shape, storage: storage, origin: tensor.origin).decodedFloats()
    }
}
