import PithIR
import PithLinearAlgebra

/// A Conv node made ready once, when the graph is built: its weights and bias as plain float
/// arrays (with any BatchNormalization or constant scale and shift folded in by
/// `ConvBatchNormFusion`), the activations fused after it (`ActivationFusion`), and the choice of
/// loop: a direct loop for depthwise convolutions, a plain GEMM on the image for 1×1 convolutions,
/// and GEMM on bands of unfolded rows (into reused scratch) otherwise. The work of one call is
/// split over the cores by image, group and band of output rows, with BLAS single-threaded.
///
/// `Operators.conv` makes one on the fly for a Conv whose weights are not constants.
struct ConvKernel: PreparedKernel {
    let node: Node
    let opset: Int
    /// [M, C/group, kernel…], row-major: row f of the GEMM's left matrix is filter f.
    let weights: [Float]
    let weightShape: [Int]
    /// One per filter (zeros when the node has none).
    let bias: [Float]
    let epilogue: [EpilogueStep]
    /// `epilogue` with each filter's numbers picked out.
    let resolvedEpilogue: ResolvedEpilogue
    let group: Int
    /// For a depthwise convolution (one channel per group): each weight repeated over a vector,
    /// as the padded depthwise loop reads them; else empty.
    let depthwiseWeights: [SIMD8<Float>]

    init(node: Node, opset: Int, weights: [Float], weightShape: [Int], bias: [Float]?, epilogue: [EpilogueStep] = []) throws {
        let group = Operators(node: node, opset: opset).int("group", 1)
        guard weightShape.count >= 3, group >= 1, weightShape[0] % group == 0 else {
            throw EvalError.invalid("W \(weightShape) with group \(group) must be [M, C/group, kernel…]")
        }
        if let bias, bias.count != weightShape[0] { throw EvalError.invalid("bias of \(bias.count) for \(weightShape[0]) filters") }
        self.node = node
        self.opset = opset
        self.weights = weights
        self.weightShape = weightShape
        self.bias = bias ?? [Float](repeating: 0, count: weightShape[0])
        self.epilogue = epilogue
        resolvedEpilogue = ResolvedEpilogue(epilogue, channels: weightShape[0])
        self.group = group
        depthwiseWeights = weightShape[1] == 1 && group == weightShape[0] ? weights.map { SIMD8(repeating: $0) } : []
    }

    func run(_ inputs: inout [Value?], _ operators: Operators) throws -> [Value] {
        guard let x = inputs.first ?? nil else { throw EvalError.invalid("input 0 is required") }
        return [try run(x)]
    }

    func run(_ x: Value) throws -> Value {
        guard x.isFloat else { throw EvalError.unsupported("input 0 of type \(x.dtype.rawValue); this operator is computed for floating-point inputs") }
        guard x.rank >= 3, weightShape.count == x.rank else {
            throw EvalError.invalid("X \(x.shape) and W \(weightShape) must be [N, C, spatial…] and [M, C/group, kernel…]")
        }
        let operators = Operators(node: node, opset: opset)
        let spatial = x.rank - 2
        let batch = x.shape[0], channels = x.shape[1], filters = weightShape[0]
        let kernelShape = Array(weightShape[2...])
        guard channels % group == 0, weightShape[1] * group == channels else {
            throw EvalError.invalid("X has \(channels) channels, W \(weightShape) with group \(group)")
        }
        let dilations = try operators.spatialInts("dilations", spatial, default: 1, minimum: 1)
        let strides = try operators.spatialInts("strides", spatial, default: 1, minimum: 1)
        let dilated = (0..<spatial).map { (kernelShape[$0] - 1) * dilations[$0] + 1 }
        let inSpatial = Array(x.shape[2...])
        let (begin, _, outSpatial) = try operators.window(input: inSpatial, kernel: dilated, strides: strides)
        try checkSize([batch, filters] + outSpatial, op: "Conv")
        try checkSize([channels / group] + kernelShape + outSpatial, op: "Conv (unfolded input)")
        let outCount = outSpatial.reduce(1, *)
        let total = batch * filters * outCount
        var out = [Float](unsafeUninitializedCapacity: total) { _, count in count = total }
        guard total > 0 else { return Value(floats: out, shape: [batch, filters] + outSpatial, dtype: x.dtype) }
        if spatial <= 2 {
            // A 1-D convolution is a 2-D one of height 1.
            let last = spatial - 1
            let geometry = ConvGeometry2D(
                height: spatial == 2 ? inSpatial[0] : 1, width: inSpatial[last], outHeight: spatial == 2 ? outSpatial[0] : 1,
                outWidth: outSpatial[last], kernelHeight: spatial == 2 ? kernelShape[0] : 1, kernelWidth: kernelShape[last],
                strideY: spatial == 2 ? strides[0] : 1, strideX: strides[last], dilationY: spatial == 2 ? dilations[0] : 1,
                dilationX: dilations[last], top: spatial == 2 ? begin[0] : 0, left: begin[last])
            x.floats.withUnsafeBufferPointer { px in
                out.withUnsafeMutableBufferPointer { po in
                    run2D(SharedPointer(px.baseAddress!), batch: batch, channels: channels, geometry, into: SharedPointer(po.baseAddress!))
                }
            }
        } else {
            runUnfolded(
                x, inSpatial: inSpatial, outSpatial: outSpatial, kernelShape: kernelShape, strides: strides, dilations: dilations, begin: begin, into: &out)
        }
        return Value(floats: out, shape: [batch, filters] + outSpatial, dtype: x.dtype)
    }

    /// The 2-D (and 1-D) convolution, split over the cores.
    private func run2D(_ x: SharedPointer<Float>, batch: Int, channels: Int, _ g: ConvGeometry2D, into out: SharedPointer<Float>) {
        let filters = weightShape[0], cg = channels / group, mg = filters / group
        let kernelCount = g.kernelCount, rows = cg * kernelCount
        resolvedEpilogue.withSteps { steps in
            weights.withUnsafeBufferPointer { pw in
                let w = SharedPointer(pw.baseAddress!)
                if cg == 1 && mg == 1 {
                    // Depthwise: one direct loop per plane, planes shared out in chunks.
                    let planes = batch * filters
                    let chunk = max(1, planes / (8 * Parallel.cores))
                    let items = (planes + chunk - 1) / chunk
                    let padded = g.strideX <= 2 && depthwiseWeights.count == filters * kernelCount
                    depthwiseWeights.withUnsafeBufferPointer { dw in
                        let splats = dw.baseAddress.map { SharedPointer($0) }
                        _ = Parallel.map(count: items, makeWorker: { Scratch() }) { (scratch: inout Scratch, item: Int) in
                            for plane in item * chunk..<min(planes, (item + 1) * chunk) {
                                let f = plane % filters
                                let target = out.pointer + plane * g.outCount
                                if padded, let splats {
                                    g.depthwisePadded(
                                        x.pointer + plane * g.inCount, splat: splats.pointer + f * kernelCount, bias: bias[f], epilogue: steps[f], into: target,
                                        scratch: scratch.floats(g.paddedCount))
                                } else {
                                    g.depthwise(x.pointer + plane * g.inCount, w.pointer + f * kernelCount, bias: bias[f], into: target)
                                    if steps[f].count > 0 { steps[f].apply(target, count: g.outCount) }
                                }
                            }
                        }
                    }
                    return
                }
                if g.isPointwise && g.inCount == 1 && group == 1 {
                    // A 1×1 convolution of 1×1 images (squeeze-and-excitation): one product for the
                    // batch, out [N, M] = X [N, C] · Wᵀ [C, M].
                    LinearAlgebra.gemm(
                        transposeA: false, transposeB: true, m: batch, n: filters, k: channels, x.pointer, lda: channels, w.pointer, ldb: channels, out.pointer,
                        ldc: filters)
                    for n in 0..<batch {
                        for f in 0..<filters { steps[f].finish(out.pointer + n * filters + f, count: 1, bias: bias[f]) }
                    }
                    return
                }
                // Bands of output rows: enough items to keep every core busy, and unfolded bands of at
                // most about a megabyte.
                let images = batch * group
                var bands = max(1, (4 * Parallel.cores + images - 1) / images)
                if !g.isPointwise { bands = max(bands, (rows * g.outCount + (1 << 18) - 1) / (1 << 18)) }
                bands = min(bands, g.outHeight)
                let bandRows = (g.outHeight + bands - 1) / bands
                let bandCount = (g.outHeight + bandRows - 1) / bandRows
                _ = Parallel.map(count: images * bandCount, makeWorker: { Scratch() }) { (scratch: inout Scratch, item: Int) in
                    let image = item / bandCount, band = item % bandCount
                    let n = image / group, gi = image % group
                    let rowRange = band * bandRows..<min(g.outHeight, (band + 1) * bandRows)
                    let columns = rowRange.count * g.outWidth
                    let source = x.pointer + (n * channels + gi * cg) * g.inCount
                    let b: UnsafePointer<Float>, ldb: Int
                    if g.isPointwise {
                        b = UnsafePointer(source + rowRange.lowerBound * g.width)
                        ldb = g.inCount
                    } else {
                        let buffer = scratch.floats(rows * columns)
                        g.unfold(source, channels: cg, rows: rowRange, into: buffer)
                        b = UnsafePointer(buffer)
                        ldb = columns
                    }
                    let c = out.pointer + (n * filters + gi * mg) * g.outCount + rowRange.lowerBound * g.outWidth
                    LinearAlgebra.gemm(
                        transposeA: false, transposeB: false, m: mg, n: columns, k: rows, w.pointer + gi * mg * rows, lda: rows, b, ldb: ldb,
                        c, ldc: g.outCount)
                    for f in 0..<mg { steps[gi * mg + f].finish(c + f * g.outCount, count: columns, bias: bias[gi * mg + f]) }
                }
            }
        }
    }

    /// Convolutions of three or more spatial axes: GEMM on the whole unfolded image.
    private func runUnfolded(
        _ x: Value, inSpatial: [Int], outSpatial: [Int], kernelShape: [Int], strides: [Int], dilations: [Int], begin: [Int], into out: inout [Float]
    ) {
        let batch = x.shape[0], channels = x.shape[1], filters = weightShape[0]
        let outCount = outSpatial.reduce(1, *), inCount = inSpatial.reduce(1, *), kernelCount = kernelShape.reduce(1, *)
        let cg = channels / group, mg = filters / group, rows = cg * kernelCount
        let plan = Im2Col(inSpatial: inSpatial, outSpatial: outSpatial, kernel: kernelShape, strides: strides, dilations: dilations, begin: begin)
        var columns = [Float](repeating: 0, count: plan.isIdentity ? 0 : rows * outCount)
        resolvedEpilogue.withSteps { steps in
            x.floats.withUnsafeBufferPointer { px in
                weights.withUnsafeBufferPointer { pw in
                    out.withUnsafeMutableBufferPointer { po in
                        columns.withUnsafeMutableBufferPointer { pc in
                            for n in 0..<batch {
                                for g in 0..<group {
                                    let image = px.baseAddress! + (n * channels + g * cg) * inCount
                                    let source: UnsafePointer<Float>
                                    if plan.isIdentity {
                                        source = image
                                    } else {
                                        plan.fill(pc.baseAddress!, from: image, channels: cg)
                                        source = UnsafePointer(pc.baseAddress!)
                                    }
                                    let c = po.baseAddress! + (n * filters + g * mg) * outCount
                                    LinearAlgebra.gemm(
                                        transposeA: false, transposeB: false, m: mg, n: outCount, k: rows,
                                        pw.baseAddress! + g * mg * rows, lda: rows, source, ldb: outCount, c, ldc: outCount)
                                    for f in 0..<mg { steps[g * mg + f].finish(c + f * outCount, count: outCount, bias: bias[g * mg + f]) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
