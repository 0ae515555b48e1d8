import Foundation
import PithIR
import PithLinearAlgebra

/// Matrix products, convolutions, pooling and normalization.
extension Operators {
    func gemm(_ inputs: [Value?]) throws -> Value {
        let a = try floatInput(inputs, 0), b = try floatInput(inputs, 1)
        guard a.rank == 2, b.rank == 2 else { throw EvalError.invalid("A \(a.shape) and B \(b.shape) must be matrices") }
        let transA = int("transA", 0) != 0, transB = int("transB", 0) != 0
        let alpha = float("alpha", 1), beta = float("beta", 1)
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let kB = transB ? b.shape[1] : b.shape[0], n = transB ? b.shape[0] : b.shape[1]
        guard k == kB else { throw EvalError.invalid("A \(a.shape) and B \(b.shape) do not multiply (transA \(transA), transB \(transB))") }
        var out = [Float](repeating: 0, count: m * n)
        var betaUsed: Float = 0
        if inputs.count > 2, let c = inputs[2], beta != 0 {
            let shape = try broadcastShape(c.shape, [m, n], op: "Gemm")
            guard shape == [m, n] else { throw EvalError.invalid("C \(c.shape) does not broadcast to [\(m), \(n)]") }
            let values = c.asFloats
            let index = broadcastIndices(from: c.shape, to: [m, n])
            for i in 0..<(m * n) { out[i] = values[index[i]] }
            betaUsed = beta
        }
        a.floats.withUnsafeBufferPointer { pa in
            b.floats.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    LinearAlgebra.gemm(
                        transposeA: transA, transposeB: transB, m: m, n: n, k: k, alpha: alpha,
                        pa.baseAddress!, lda: a.shape[1], pb.baseAddress!, ldb: b.shape[1], beta: betaUsed, pc.baseAddress!, ldc: n)
                }
            }
        }
        return Value(floats: out, shape: [m, n], dtype: a.dtype)
    }

    func matMul(_ inputs: [Value?]) throws -> Value {
        var a = try floatInput(inputs, 0), b = try floatInput(inputs, 1)
        guard a.rank >= 1, b.rank >= 1 else { throw EvalError.invalid("MatMul needs inputs of rank 1 or more, not \(a.shape) and \(b.shape)") }
        let aVector = a.rank == 1, bVector = b.rank == 1
        if aVector { a = a.reshaped([1, a.shape[0]]) }
        if bVector { b = b.reshaped([b.shape[0], 1]) }
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], kB = b.shape[b.rank - 2], n = b.shape[b.rank - 1]
        guard k == kB else { throw EvalError.invalid("shapes \(a.shape) and \(b.shape) do not multiply") }
        let batch = try broadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), op: "MatMul")
        let batches = batch.reduce(1, *)
        let ia = broadcastIndices(from: Array(a.shape.dropLast(2)), to: batch), ib = broadcastIndices(from: Array(b.shape.dropLast(2)), to: batch)
        // Every row of every product is written below (GEMM with β = 0 sets C, `LinearAlgebra.gemm`
        // clears it when k = 0), so the result is not cleared first: on PP-OCRv4 rec, batch 8, that
        // was a pass over 8.5 MB of fresh memory on one core before the product.
        let total = batches * m * n
        var out = [Float](unsafeUninitializedCapacity: total) { _, count in count = total }
        a.floats.withUnsafeBufferPointer { pa in
            b.floats.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    guard let aBase = pa.baseAddress, let bBase = pb.baseAddress, let cBase = pc.baseAddress else { return }
                    let sa = SharedPointer(aBase), sb = SharedPointer(bBase), sc = SharedPointer(cBase)
                    // Products over the cores: one item per matrix of the batch, or bands of rows of a
                    // single large product.
                    // A stack of matrices times one matrix is one product of all their rows.
                    let stacked = b.rank == 2 && batches > 1 && ia == Array(0..<batches)
                    let products = stacked ? 1 : batches, rowsEach = stacked ? batches * m : m
                    let bands = products == 1 && rowsEach * n * k >= 1 << 20 ? min(rowsEach, 4 * Parallel.cores) : 1
                    let rowsPerBand = (rowsEach + bands - 1) / bands
                    let work = batches * m * n * k
                    _ = Parallel.map(count: products * bands, workers: work < 1 << 18 ? 1 : Parallel.cores, makeWorker: {}) { (_: inout Void, item: Int) in
                        // The last bands may be empty when there are fewer rows than bands.
                        let first = min(rowsEach, (item % bands) * rowsPerBand)
                        let t = item / bands, rows = first..<min(rowsEach, first + rowsPerBand)
                        guard !rows.isEmpty else { return }
                        LinearAlgebra.gemm(
                            transposeA: false, transposeB: false, m: rows.count, n: n, k: k,
                            sa.pointer + ia[t] * m * k + rows.lowerBound * k, lda: k, sb.pointer + ib[t] * k * n, ldb: n,
                            sc.pointer + t * m * n + rows.lowerBound * n, ldc: n)
                    }
                }
            }
        }
        var shape = batch + [m, n]
        if bVector { shape.removeLast() }
        if aVector { shape.remove(at: shape.count - (bVector ? 1 : 2)) }
        return Value(floats: out, shape: shape, dtype: a.dtype)
    }

    /// A per-axis attribute (strides, dilations, output_padding): `count` values, each at least
    /// `minimum`, or `default` everywhere when absent.
    func spatialInts(_ name: String, _ count: Int, default value: Int, minimum: Int) throws -> [Int] {
        guard let values = ints(name) else { return [Int](repeating: value, count: count) }
        guard values.count == count, values.allSatisfy({ $0 >= minimum && $0 <= 1 << 20 }) else {
            throw EvalError.invalid("\(name) \(values) must be \(count) values of at least \(minimum)")
        }
        return values
    }

    /// Begin and end padding per spatial axis, and the output sizes, of a convolution or pooling
    /// window with `kernel` (already dilated) over `input`.
    func window(input: [Int], kernel: [Int], strides: [Int], ceil ceilMode: Bool = false) throws -> (begin: [Int], end: [Int], output: [Int]) {
        let k = input.count
        var begin = [Int](repeating: 0, count: k), end = begin, output = begin
        let autoPad = string("auto_pad", "NOTSET")
        if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            for i in 0..<k {
                output[i] = (input[i] + strides[i] - 1) / strides[i]
                let total = max(0, (output[i] - 1) * strides[i] + kernel[i] - input[i])
                begin[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end[i] = total - begin[i]
            }
            return (begin, end, output)
        }
        if autoPad != "VALID", let pads = ints("pads") {
            guard pads.count == 2 * k, pads.allSatisfy({ $0 >= 0 }) else { throw EvalError.invalid("pads \(pads) must be \(2 * k) sizes of at least 0") }
            begin = Array(pads[..<k])
            end = Array(pads[k...])
        }
        for i in 0..<k {
            let span = input[i] + begin[i] + end[i] - kernel[i]
            guard span >= 0 else { throw EvalError.invalid("window \(kernel[i]) is larger than padded input \(input[i] + begin[i] + end[i])") }
            output[i] = (ceilMode ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1
            // With ceil_mode the last window must start inside the input or its begin padding.
            if ceilMode, (output[i] - 1) * strides[i] >= input[i] + begin[i] { output[i] -= 1 }
        }
        return (begin, end, output)
    }

    /// Conv with weights known only now: a `ConvKernel` made for this call (the build step makes
    /// one once for constant weights).
    func conv(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0), w = try floatInput(inputs, 1)
        guard x.rank >= 3, w.rank == x.rank else { throw EvalError.invalid("X \(x.shape) and W \(w.shape) must be [N, C, spatial…] and [M, C/group, kernel…]") }
        let bias = inputs.count > 2 ? inputs[2]?.asFloats : nil
        return try ConvKernel(node: node, opset: opset, weights: w.floats, weightShape: w.shape, bias: bias).run(x)
    }

    func convTranspose(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0), w = try floatInput(inputs, 1)
        guard x.rank >= 3, w.rank == x.rank else { throw EvalError.invalid("X \(x.shape) and W \(w.shape) must be [N, C, spatial…] and [C, M/group, kernel…]") }
        let spatial = x.rank - 2
        let group = int("group", 1)
        let batch = x.shape[0], channels = x.shape[1]
        guard w.shape[0] == channels, channels % group == 0 else { throw EvalError.invalid("X has \(channels) channels, W \(w.shape) with group \(group)") }
        let mg = w.shape[1], filters = mg * group, cg = channels / group
        let kernelShape = Array(w.shape[2...])
        let dilations = try spatialInts("dilations", spatial, default: 1, minimum: 1)
        let stride = try spatialInts("strides", spatial, default: 1, minimum: 1)
        let outputPadding = try spatialInts("output_padding", spatial, default: 0, minimum: 0)
        let inSpatial = Array(x.shape[2...])
        let dilated = (0..<spatial).map { (kernelShape[$0] - 1) * dilations[$0] + 1 }
        var begin = [Int](repeating: 0, count: spatial), end = begin, outSpatial = begin
        let autoPad = string("auto_pad", "NOTSET")
        let natural: [Int] = (0..<spatial).map { i in
            let span: Int = stride[i] * (inSpatial[i] - 1)
            return span + outputPadding[i] + dilated[i]
        }
        if let requested = ints("output_shape") {
            guard requested.count >= spatial, requested.allSatisfy({ $0 >= 0 }) else {
                throw EvalError.invalid("output_shape \(requested) must give \(spatial) sizes")
            }
            let wanted = Array(requested.suffix(spatial))
            for i in 0..<spatial {
                // Floor division, as the ONNX reference computes it: a negative total pads the end.
                let total = natural[i] - wanted[i]
                let half = Int((Double(total) / 2).rounded(.down))
                if autoPad == "SAME_UPPER" { begin[i] = half; end[i] = total - half } else { begin[i] = total - half; end[i] = half }
                outSpatial[i] = wanted[i]
            }
        } else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            for i in 0..<spatial {
                outSpatial[i] = inSpatial[i] * stride[i]
                let total = max(0, natural[i] - outSpatial[i])
                if autoPad == "SAME_UPPER" { begin[i] = total / 2; end[i] = total - total / 2 } else { begin[i] = total - total / 2; end[i] = total / 2 }
            }
        } else {
            if autoPad != "VALID", let pads = ints("pads") {
                guard pads.count == 2 * spatial else { throw EvalError.invalid("\(pads.count) pads for \(spatial) spatial axes") }
                begin = Array(pads[..<spatial])
                end = Array(pads[spatial...])
            }
            for i in 0..<spatial { outSpatial[i] = natural[i] - begin[i] - end[i] }
        }
        try checkSize([batch, filters] + outSpatial, op: "ConvTranspose")
        let outCount = outSpatial.reduce(1, *), inCount = inSpatial.reduce(1, *), kernelCount = kernelShape.reduce(1, *)
        var out = [Float](repeating: 0, count: batch * filters * outCount)
        let rows = mg * kernelCount
        // The output positions each (kernel offset, input position) pair lands on: col2im of the
        // transposed product, the plan of a convolution read backwards.
        let plan = Im2Col(inSpatial: outSpatial, outSpatial: inSpatial, kernel: kernelShape, strides: stride, dilations: dilations, begin: begin)
        let bias = inputs.count > 2 ? inputs[2]?.asFloats : nil
        if let bias, bias.count != filters { throw EvalError.invalid("bias of \(bias.count) for \(filters) filters") }
        x.floats.withUnsafeBufferPointer { px in
            w.floats.withUnsafeBufferPointer { pw in
                out.withUnsafeMutableBufferPointer { po in
                    guard let xBase = px.baseAddress, let wBase = pw.baseAddress, let oBase = po.baseAddress else { return }
                    let xs = SharedPointer(xBase), ws = SharedPointer(wBase), os = SharedPointer(oBase)
                    // One image and group per item, over the cores, each worker with its own columns.
                    _ = Parallel.map(count: batch * group, makeWorker: { Scratch() }) { (scratch: inout Scratch, item: Int) in
                        let n = item / group, g = item % group
                        let columns = scratch.floats(rows * inCount)
                        // columns[mg·K, in] = W_gᵀ [mg·K, cg] · X_g [cg, in]
                        LinearAlgebra.gemm(
                            transposeA: true, transposeB: false, m: rows, n: inCount, k: cg,
                            ws.pointer + g * cg * rows, lda: rows, xs.pointer + (n * channels + g * cg) * inCount, ldb: inCount, columns, ldc: inCount)
                        let target = os.pointer + (n * filters + g * mg) * outCount
                        plan.scatter(UnsafePointer(columns), into: target, channels: mg)
                        if let bias {
                            for f in 0..<mg { ChannelSteps(start: nil, count: 0).finish(target + f * outCount, count: outCount, bias: bias[g * mg + f]) }
                        }
                    }
                }
            }
        }
        return Value(floats: out, shape: [batch, filters] + outSpatial, dtype: x.dtype)
    }

    func pool(_ inputs: [Value?], max isMax: Bool) throws -> [Value] {
        let x = try required(inputs, 0)
        guard x.rank >= 3 else { throw EvalError.invalid("X \(x.shape) must be [N, C, spatial…]") }
        let columnMajor = int("storage_order", 0) != 0
        let values = x.asFloats
        let spatial = x.rank - 2
        guard let kernel = ints("kernel_shape"), kernel.count == spatial, kernel.allSatisfy({ $0 >= 1 }) else {
            throw EvalError.invalid("kernel_shape must give \(spatial) sizes of at least 1")
        }
        let stride = try spatialInts("strides", spatial, default: 1, minimum: 1)
        let dilations = try spatialInts("dilations", spatial, default: 1, minimum: 1)
        let dilated = (0..<spatial).map { (kernel[$0] - 1) * dilations[$0] + 1 }
        let inSpatial = Array(x.shape[2...])
        let (begin, end, outSpatial) = try window(input: inSpatial, kernel: dilated, strides: stride, ceil: int("ceil_mode", 0) != 0)
        try checkSize(Array(x.shape[..<2]) + outSpatial, op: node.opType)
        let includePad = int("count_include_pad", 0) != 0
        let planes = x.shape[0] * x.shape[1], inCount = inSpatial.reduce(1, *), outCount = outSpatial.reduce(1, *)
        // The window's in-bounds taps, as a convolution unfolds its input.
        let taps = Im2Col(inSpatial: inSpatial, outSpatial: outSpatial, kernel: kernel, strides: stride, dilations: dilations, begin: begin)
        var out = [Float](repeating: 0, count: planes * outCount)
        var argmax = [Int64](repeating: 0, count: isMax ? planes * outCount : 0)
        // Each output position's window: its in-bounds taps, and how many taps count for the
        // average with count_include_pad.
        var position = [Int](repeating: 0, count: spatial)
        let windows = (0..<outCount).map { o -> (offsets: [Int], padded: Int) in
            var rest = o
            for a in (0..<spatial).reversed() { position[a] = rest % outSpatial[a]; rest /= outSpatial[a] }
            let offsets = (0..<taps.kernelCount).compactMap { t in
                let k = taps.sources[t * outCount + o]
                return k >= 0 ? Int(k) : nil
            }
            var padded = 1
            for a in 0..<spatial {
                let startA = position[a] * stride[a] - begin[a]
                let endA = min(startA + dilated[a], inSpatial[a] + end[a])
                padded *= (endA - startA + dilations[a] - 1) / dilations[a]
            }
            return (offsets, padded)
        }
        // Planes shared out over the cores in chunks.
        let chunk = max(1, min(planes, (1 << 16) / max(1, outCount * taps.kernelCount)))
        let chunks = (planes + chunk - 1) / chunk
        values.withUnsafeBufferPointer { pv in
            out.withUnsafeMutableBufferPointer { po in
                argmax.withUnsafeMutableBufferPointer { pa in
                    guard let vBase = pv.baseAddress, let oBase = po.baseAddress else { return }
                    let source = SharedPointer(vBase), target = SharedPointer(oBase), indices = pa.baseAddress.map { SharedPointer($0) }
                    _ = Parallel.map(count: chunks, workers: chunks == 1 ? 1 : Parallel.cores, makeWorker: {}) { (_: inout Void, item: Int) in
                        for plane in item * chunk..<min(planes, (item + 1) * chunk) {
                            let base = plane * inCount
                            for (o, window) in windows.enumerated() {
                                let offsets = window.offsets
                                if isMax {
                                    var best = -Float.infinity, bestIndex = offsets.first ?? 0
                                    for offset in offsets where source.pointer[base + offset] > best {
                                        best = source.pointer[base + offset]
                                        bestIndex = offset
                                    }
                                    target.pointer[plane * outCount + o] = best
                                    indices!.pointer[plane * outCount + o] = Int64(base + (columnMajor ? Self.columnMajor(bestIndex, inSpatial) : bestIndex))
                                } else {
                                    var sum: Float = 0
                                    for offset in offsets { sum += source.pointer[base + offset] }
                                    let divisor = includePad ? window.padded : offsets.count
                                    target.pointer[plane * outCount + o] = divisor == 0 ? 0 : sum / Float(divisor)
                                }
                            }
                        }
                    }
                }
            }
        }
        let shape = Array(x.shape[..<2]) + outSpatial
        var result = Value(floats: out, shape: shape, dtype: x.isFloat ? x.dtype : .float32)
        if !x.isFloat { result = try result.cast(to: x.dtype) }
        return isMax && node.outputs.count > 1 ? [result, Value(ints: argmax, shape: shape)] : [result]
    }

    /// The column-major offset of the element at row-major `offset` in a tensor of `shape`.
    static func columnMajor(_ offset: Int, _ shape: [Int]) -> Int {
        var rest = offset, result = 0, step = 1
        var coordinates = [Int](repeating: 0, count: shape.count)
        for a in shape.indices.reversed() { coordinates[a] = rest % shape[a]; rest /= shape[a] }
        for a in shape.indices { result += coordinates[a] * step; step *= shape[a] }
        return result
    }

    func globalAveragePool(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        guard x.rank >= 3 else { throw EvalError.invalid("X \(x.shape) must be [N, C, spatial…]") }
        let planes = x.shape[0] * x.shape[1], inner = x.count / max(planes, 1)
        let out = x.floats.withUnsafeBufferPointer { p in
            let source = SharedPointer(p.baseAddress ?? UnsafePointer(bitPattern: 8)!)
            return Parallel.map(count: planes, workers: x.count < 1 << 17 ? 1 : Parallel.cores, makeWorker: {}) { (_: inout Void, plane: Int) -> Float in
                let start = source.pointer + plane * inner
                var sums = SIMD8<Float>(repeating: 0), i = 0
                while i &+ 8 <= inner {
                    sums += VectorLoops.load(start + i)
                    i &+= 8
                }
                var sum = sums.sum()
                while i < inner {
                    sum += start[i]
                    i &+= 1
                }
                return sum / Float(inner)
            }
        }
        return Value(floats: out, shape: Array(x.shape[..<2]) + [Int](repeating: 1, count: x.rank - 2), dtype: x.dtype)
    }

    func batchNormalization(_ inputs: [Value?]) throws -> [Value] {
        let x = try floatInput(inputs, 0)
        guard x.rank >= 2 else { throw EvalError.invalid("X \(x.shape) must be [N, C, …]") }
        let scale = try required(inputs, 1).asFloats, bias = try required(inputs, 2).asFloats
        var mean = try required(inputs, 3).asFloats, variance = try required(inputs, 4).asFloats
        let epsilon = float("epsilon", 1e-5), momentum = float("momentum", 0.9)
        let channels = x.rank > 1 ? x.shape[1] : 1
        guard [scale.count, bias.count, mean.count, variance.count].allSatisfy({ $0 == channels }) else {
            throw EvalError.invalid("scale, B, mean and var must each hold \(channels) values")
        }
        let inner = x.shape.dropFirst(2).reduce(1, *), batch = x.shape[0]
        let training = opset >= 14 && int("training_mode", 0) != 0
        var runningMean = mean, runningVariance = variance
        if training {
            let n = Double(batch * inner)
            for c in 0..<channels {
                var sum = 0.0, squares = 0.0
                for b in 0..<batch { for i in 0..<inner { let v = Double(x.floats[(b * channels + c) * inner + i]); sum += v; squares += v * v } }
                let m = sum / n
                let v = squares / n - m * m
                runningMean[c] = mean[c] * momentum + Float(m) * (1 - momentum)
                runningVariance[c] = variance[c] * momentum + Float(v) * (1 - momentum)
                mean[c] = Float(m)
                variance[c] = Float(v)
            }
        }
        var out = x
        for b in 0..<batch {
            for c in 0..<channels {
                let k = scale[c] / (variance[c] + epsilon).squareRoot(), shift = bias[c] - mean[c] * k
                for i in 0..<inner { out.floats[(b * channels + c) * inner + i] = x.floats[(b * channels + c) * inner + i] * k + shift }
            }
        }
        if training, node.outputs.count > 1 {
            return [out, Value(floats: runningMean, shape: [channels], dtype: x.dtype), Value(floats: runningVariance, shape: [channels], dtype: x.dtype)]
        }
        return [out]
    }
}

/// Where each column of a convolution's unfolded input comes from: for every (kernel offset,
/// output position) the input position, or none when it falls in the padding.
struct Im2Col {
    /// For each kernel offset, for each output position, the input offset or -1.
    let sources: [Int32]
    let kernelCount: Int
    let outCount: Int
    let inCount: Int
    /// A 1×1 kernel with unit strides and no padding: the input is its own unfolding.
    let isIdentity: Bool

    init(inSpatial: [Int], outSpatial: [Int], kernel: [Int], strides: [Int], dilations: [Int], begin: [Int]) {
        let spatial = inSpatial.count
        kernelCount = kernel.reduce(1, *)
        outCount = outSpatial.reduce(1, *)
        inCount = inSpatial.reduce(1, *)
        isIdentity = kernelCount == 1 && strides.allSatisfy { $0 == 1 } && begin.allSatisfy { $0 == 0 } && inSpatial == outSpatial
        let inStrides = PithEval.strides(inSpatial)
        var sources = [Int32](repeating: -1, count: kernelCount * outCount)
        var tap = [Int](repeating: 0, count: spatial)
        for t in 0..<kernelCount {
            var position = [Int](repeating: 0, count: spatial)
            for o in 0..<outCount {
                var offset = 0, inside = true
                for a in 0..<spatial {
                    let p = position[a] * strides[a] - begin[a] + tap[a] * dilations[a]
                    if p < 0 || p >= inSpatial[a] { inside = false; break }
                    offset += p * inStrides[a]
                }
                if inside { sources[t * outCount + o] = Int32(offset) }
                var a = spatial - 1
                while a >= 0 { position[a] += 1; if position[a] < outSpatial[a] { break }; position[a] = 0; a -= 1 }
            }
            var a = spatial - 1
            while a >= 0 { tap[a] += 1; if tap[a] < kernel[a] { break }; tap[a] = 0; a -= 1 }
        }
        self.sources = sources
    }

    /// columns[c·K + t, o] = input[c, source(t, o)] (0 in the padding).
    func fill(_ columns: UnsafeMutablePointer<Float>, from input: UnsafePointer<Float>, channels: Int) {
        sources.withUnsafeBufferPointer { s in
            for c in 0..<channels {
                let image = input + c * inCount
                for t in 0..<kernelCount {
                    let row = columns + (c * kernelCount + t) * outCount
                    let map = s.baseAddress! + t * outCount
                    for o in 0..<outCount {
                        let k = Int(map[o])
                        row[o] = k >= 0 ? image[k] : 0
                    }
                }
            }
        }
    }

    /// The adjoint of `fill`: output[c, source(t, o)] += columns[c·K + t, o].
    func scatter(_ columns: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, channels: Int) {
        sources.withUnsafeBufferPointer { s in
            for c in 0..<channels {
                let image = output + c * inCount
                for t in 0..<kernelCount {
                    let row = columns + (c * kernelCount + t) * outCount
                    let map = s.baseAddress! + t * outCount
                    for o in 0..<outCount {
                        let k = Int(map[o])
                        if k >= 0 { image[k] += row[o] }
                    }
                }
            }
        }
    }
}
