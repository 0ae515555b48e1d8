/// The geometry of a 2-D convolution on one image, and the loops that need no GEMM: the direct
/// depthwise convolution and the unfolding (im2col) of a band of output rows.
struct ConvGeometry2D: Sendable {
    var height: Int, width: Int
    var outHeight: Int, outWidth: Int
    var kernelHeight: Int, kernelWidth: Int
    var strideY: Int, strideX: Int
    var dilationY: Int, dilationX: Int
    /// Padding before the first row and column.
    var top: Int, left: Int

    var kernelCount: Int { kernelHeight * kernelWidth }
    var inCount: Int { height * width }
    var outCount: Int { outHeight * outWidth }

    /// A 1×1 kernel with unit strides and no padding: the image is its own unfolding.
    var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideY == 1 && strideX == 1 && top == 0 && left == 0 && outHeight == height && outWidth == width
    }

    /// The output columns `ox` whose input column `ox · strideX + offset` lies inside the image.
    @inline(__always)
    func columns(offset: Int) -> Range<Int> {
        let low = offset >= 0 ? 0 : min(outWidth, (-offset + strideX - 1) / strideX)
        let last = width - 1 - offset
        let high = last < 0 ? 0 : min(outWidth, last / strideX + 1)
        return low..<max(low, high)
    }

    /// out[oy, ox] = Σ w[ky, kx] · image[oy·sy − top + ky·dy, ox·sx − left + kx·dx] + bias: one
    /// channel of a depthwise convolution, computed directly (no unfolding, no GEMM). Where every
    /// tap of a row lies inside the image, eight outputs at a time are summed in registers over all
    /// taps and stored once; the border columns take the checked scalar path.
    func depthwise(_ image: UnsafePointer<Float>, _ w: UnsafePointer<Float>, bias: Float, into out: UnsafeMutablePointer<Float>) {
        // Output columns whose taps all lie inside a row: ox·sx − left ≥ 0 and ox·sx − left + (kw − 1)·dx ≤ width − 1.
        let reach = (kernelWidth - 1) * dilationX
        let interiorStart = min(outWidth, (left + strideX - 1) / strideX)
        let lastStart = width - 1 - reach + left
        var interiorEnd = lastStart < 0 ? 0 : min(outWidth, lastStart / strideX + 1)
        interiorEnd = max(interiorEnd, interiorStart)
        let vectorizable = strideX == 1 || strideX == 2
        for oy in 0..<outHeight {
            let row = out + oy * outWidth
            let firstY = max(0, (top - oy * strideY + dilationY - 1) / dilationY)
            let lastY = min(kernelHeight, (height - 1 - oy * strideY + top) / dilationY + 1)
            guard firstY < lastY, oy * strideY - top + (lastY - 1) * dilationY < height else {
                row.initialize(repeating: bias, count: outWidth)
                continue
            }
            @inline(__always) func scalar(_ ox: Int) {
                var sum = bias
                for ky in firstY..<lastY {
                    let source = image + (oy * strideY - top + ky * dilationY) * width
                    for kx in 0..<kernelWidth {
                        let ix = ox * strideX - left + kx * dilationX
                        if ix >= 0 && ix < width { sum += w[ky * kernelWidth + kx] * source[ix] }
                    }
                }
                row[ox] = sum
            }
            for ox in 0..<interiorStart { scalar(ox) }
            var ox = interiorStart
            if vectorizable {
                // Stride 2 loads sixteen columns from 2·ox − left + kx·dx: the last, 2·ox − left + reach + 15, must be in the row.
                let spare = width - 16 - reach + left
                let limit = strideX == 1 ? interiorEnd : spare < 0 ? interiorStart : min(interiorEnd, spare / 2 + 8)
                while ox &+ 8 <= limit {
                    var sum = SIMD8<Float>(repeating: bias)
                    for ky in firstY..<lastY {
                        let source = image + (oy * strideY - top + ky * dilationY) * width + ox * strideX - left
                        let taps = w + ky * kernelWidth
                        for kx in 0..<kernelWidth {
                            let at = source + kx * dilationX
                            let x = strideX == 1 ? VectorLoops.load(at) : UnsafeRawPointer(at).loadUnaligned(as: SIMD16<Float>.self).evenHalf
                            sum += SIMD8<Float>(repeating: taps[kx]) * x
                        }
                    }
                    VectorLoops.store(sum, row + ox)
                    ox &+= 8
                }
            }
            while ox < outWidth {
                scalar(ox)
                ox &+= 1
            }
        }
    }

    /// Floats of scratch `depthwisePadded` needs.
    var paddedCount: Int {
        let vectorWidth = (outWidth + 7) / 8 * 8
        let paddedWidth = strideX * vectorWidth + (kernelWidth - 1) * dilationX
        let paddedHeight = (outHeight - 1) * strideY + (kernelHeight - 1) * dilationY + 1
        return paddedWidth * paddedHeight + vectorWidth
    }

    /// `depthwise` for column strides 1 and 2, with the image first copied into `scratch` with its
    /// zero padding made explicit (and widened to whole vectors), so that every output is summed
    /// eight at a time in registers with no bounds checks, and `epilogue` (the channel's steps)
    /// applied to each output row while it is in cache. `splat` holds the channel's weights each
    /// repeated over a vector (`kernelCount` of them, row by row). With unit row stride and
    /// dilation, two output rows are summed at once, each input row loaded once for both, sixteen
    /// columns at a time (`PaddedSums`; 3×3 and 5×5 kernels with their tap loops unrolled: on
    /// PP-OCRv4 rec, batch 8, its 5×5 layers took about a fifth less CPU time than with eight
    /// columns and loops over the taps).
    func depthwisePadded(
        _ image: UnsafePointer<Float>, splat: UnsafePointer<SIMD8<Float>>, bias: Float,
        epilogue: ChannelSteps = ChannelSteps(start: nil, count: 0), into out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let vectorWidth = (outWidth + 7) / 8 * 8
        let paddedWidth = strideX * vectorWidth + (kernelWidth - 1) * dilationX
        let paddedHeight = (outHeight - 1) * strideY + (kernelHeight - 1) * dilationY + 1
        let padded = scratch, spill = scratch + paddedWidth * paddedHeight
        // The image's rows at `left`, zeros around them (only the padding is cleared).
        let first = max(0, -left), last = min(width, paddedWidth - left)
        for r in 0..<paddedHeight {
            let target = padded + r * paddedWidth
            let iy = r - top
            guard iy >= 0, iy < height, first < last else {
                target.initialize(repeating: 0, count: paddedWidth)
                continue
            }
            let start = left + first, end = left + last
            target.initialize(repeating: 0, count: start)
            (target + start).initialize(from: image + iy * width + first, count: last - first)
            (target + end).initialize(repeating: 0, count: paddedWidth - end)
        }
        let sums = PaddedSums(
            padded: UnsafePointer(padded), paddedWidth: paddedWidth, splat: splat, bias: bias, epilogue: epilogue, out: out, spill: spill, outWidth: outWidth,
            outHeight: outHeight)
        // The common shapes with their loops unrolled (constant kernel size, stride and dilation
        // once inlined); any other shape takes the same loops with its numbers as variables.
        switch (kernelHeight, kernelWidth, strideX, dilationX, dilationY) {
        case (3, 3, 1, 1, 1): sums.run(kernelHeight: 3, kernelWidth: 3, strideX: 1, dilationX: 1, strideY: strideY, dilationY: 1)
        case (5, 5, 1, 1, 1): sums.run(kernelHeight: 5, kernelWidth: 5, strideX: 1, dilationX: 1, strideY: strideY, dilationY: 1)
        case (3, 3, 2, 1, 1): sums.run(kernelHeight: 3, kernelWidth: 3, strideX: 2, dilationX: 1, strideY: strideY, dilationY: 1)
        case (5, 5, 2, 1, 1): sums.run(kernelHeight: 5, kernelWidth: 5, strideX: 2, dilationX: 1, strideY: strideY, dilationY: 1)
        default:
            sums.run(kernelHeight: kernelHeight, kernelWidth: kernelWidth, strideX: strideX, dilationX: dilationX, strideY: strideY, dilationY: dilationY)
        }
    }

    /// columns[(c·K + t), (oy − rows.lowerBound)·outWidth + ox] = image[c, source of tap t at (oy, ox)],
    /// 0 in the padding: the unfolding of output rows `rows` for `channels` channels.
    func unfold(_ image: UnsafePointer<Float>, channels: Int, rows: Range<Int>, into unfolded: UnsafeMutablePointer<Float>) {
        let band = rows.count * outWidth
        // Unit strides and rows as wide as the input's ("same" padding): a tap's source rows follow
        // one another in the image as its target rows do in the band, so they are copied in one
        // piece and the border columns cleared after.
        let whole = strideX == 1 && strideY == 1 && width == outWidth
        for c in 0..<channels {
            let plane = image + c * inCount
            for ky in 0..<kernelHeight {
                for kx in 0..<kernelWidth {
                    let row = unfolded + ((c * kernelHeight + ky) * kernelWidth + kx) * band
                    let offset = kx * dilationX - left
                    let range = columns(offset: offset)
                    if whole {
                        // Output rows whose input row iy = oy − top + ky·dy lies in the image.
                        let low = min(rows.upperBound, max(rows.lowerBound, top - ky * dilationY))
                        let high = max(low, min(rows.upperBound, height + top - ky * dilationY))
                        let t0 = (low - rows.lowerBound) * outWidth, n = (high - low) * outWidth
                        row.initialize(repeating: 0, count: t0)
                        (row + t0 + n).initialize(repeating: 0, count: band - t0 - n)
                        guard n > 0 else { continue }
                        // Target t0 + j reads plane[s0 + j]; only indices inside the plane are read
                        // (the others are border columns, cleared below).
                        let s0 = (low - top + ky * dilationY) * width + offset
                        let first = min(n, max(0, -s0)), last = max(first, min(n, inCount - s0))
                        (row + t0).initialize(repeating: 0, count: first)
                        (row + t0 + first).initialize(from: plane + s0 + first, count: last - first)
                        (row + t0 + last).initialize(repeating: 0, count: n - last)
                        if range.lowerBound > 0 || range.upperBound < outWidth {
                            for oy in low..<high {
                                let target = row + (oy - rows.lowerBound) * outWidth
                                target.update(repeating: 0, count: range.lowerBound)
                                (target + range.upperBound).update(repeating: 0, count: outWidth - range.upperBound)
                            }
                        }
                        continue
                    }
                    for oy in rows {
                        let target = row + (oy - rows.lowerBound) * outWidth
                        let iy = oy * strideY - top + ky * dilationY
                        guard iy >= 0, iy < height else {
                            target.initialize(repeating: 0, count: outWidth)
                            continue
                        }
                        let source = plane + iy * width + offset
                        target.initialize(repeating: 0, count: range.lowerBound)
                        if strideX == 1 {
                            (target + range.lowerBound).initialize(from: source + range.lowerBound, count: range.count)
                        } else {
                            for ox in range { target[ox] = source[ox * strideX] }
                        }
                        (target + range.upperBound).initialize(repeating: 0, count: outWidth - range.upperBound)
                    }
                }
            }
        }
    }
}

/// The sums of `ConvGeometry2D.depthwisePadded` over an image already padded: sixteen outputs of
/// a row at a time in registers (then eight for the rest), two output rows at once when rows
/// follow one another (unit row stride and dilation: each input row is loaded once for both), so
/// that four independent sums overlap their additions; the channel's epilogue applied to each row
/// while it is in cache.
private struct PaddedSums {
    let padded: UnsafePointer<Float>
    let paddedWidth: Int
    let splat: UnsafePointer<SIMD8<Float>>
    let bias: Float
    let epilogue: ChannelSteps
    let out: UnsafeMutablePointer<Float>
    /// Eight floats, for the last vector of a row that ends inside it.
    let spill: UnsafeMutablePointer<Float>
    let outWidth: Int, outHeight: Int

    /// Written to be inlined with constant arguments, so that the tap loops unroll.
    @inline(__always)
    func run(kernelHeight: Int, kernelWidth: Int, strideX: Int, dilationX: Int, strideY: Int, dilationY: Int) {
        @inline(__always) func load(_ at: UnsafePointer<Float>) -> SIMD8<Float> {
            strideX == 1 ? VectorLoops.load(at) : UnsafeRawPointer(at).loadUnaligned(as: SIMD16<Float>.self).evenHalf
        }
        @inline(__always) func store(_ sum: SIMD8<Float>, _ row: UnsafeMutablePointer<Float>, _ ox: Int) {
            if ox &+ 8 <= outWidth {
                VectorLoops.store(sum, row + ox)
            } else {
                VectorLoops.store(sum, spill)
                (row + ox).update(from: spill, count: outWidth &- ox)
            }
        }
        let vb = SIMD8<Float>(repeating: bias)
        let pairs = strideY == 1 && dilationY == 1 ? outHeight / 2 : 0
        for pair in 0..<pairs {
            // Output rows oy and oy + 1 read input rows oy … oy + kernelHeight: row r adds to the
            // first with kernel row r, to the second with kernel row r − 1.
            let oy = 2 &* pair
            let row0 = out + oy &* outWidth, row1 = row0 + outWidth
            var ox = 0
            // Sixteen columns of both rows: four independent sums, so that the additions overlap.
            while ox &+ 16 <= outWidth {
                var s0 = vb, s1 = vb, t0 = vb, t1 = vb
                let base = padded + (oy &* paddedWidth &+ ox &* strideX), next = 8 &* strideX
                for kx in 0..<kernelWidth {
                    s0 += load(base + kx &* dilationX) * splat[kx]
                    t0 += load(base + (kx &* dilationX &+ next)) * splat[kx]
                }
                for r in 1..<kernelHeight {
                    let source = base + r &* paddedWidth
                    let w0 = splat + r &* kernelWidth, w1 = w0 - kernelWidth
                    for kx in 0..<kernelWidth {
                        let x = load(source + kx &* dilationX), y = load(source + (kx &* dilationX &+ next))
                        s0 += x * w0[kx]
                        s1 += x * w1[kx]
                        t0 += y * w0[kx]
                        t1 += y * w1[kx]
                    }
                }
                let source = base + kernelHeight &* paddedWidth, w1 = splat + (kernelHeight &- 1) &* kernelWidth
                for kx in 0..<kernelWidth {
                    s1 += load(source + kx &* dilationX) * w1[kx]
                    t1 += load(source + (kx &* dilationX &+ next)) * w1[kx]
                }
                VectorLoops.store(s0, row0 + ox)
                VectorLoops.store(t0, row0 + (ox &+ 8))
                VectorLoops.store(s1, row1 + ox)
                VectorLoops.store(t1, row1 + (ox &+ 8))
                ox &+= 16
            }
            while ox < outWidth {
                var s0 = vb, s1 = vb
                let base = padded + (oy &* paddedWidth &+ ox &* strideX)
                for kx in 0..<kernelWidth { s0 += load(base + kx &* dilationX) * splat[kx] }
                for r in 1..<kernelHeight {
                    let source = base + r &* paddedWidth
                    let w0 = splat + r &* kernelWidth, w1 = w0 - kernelWidth
                    for kx in 0..<kernelWidth {
                        let x = load(source + kx &* dilationX)
                        s0 += x * w0[kx]
                        s1 += x * w1[kx]
                    }
                }
                let source = base + kernelHeight &* paddedWidth, w1 = splat + (kernelHeight &- 1) &* kernelWidth
                for kx in 0..<kernelWidth { s1 += load(source + kx &* dilationX) * w1[kx] }
                store(s0, row0, ox)
                store(s1, row1, ox)
                ox &+= 8
            }
            if epilogue.count > 0 {
                epilogue.apply(row0, count: outWidth)
                epilogue.apply(row1, count: outWidth)
            }
        }
        for oy in 2 &* pairs..<outHeight {
            let row = out + oy &* outWidth
            var ox = 0
            while ox < outWidth {
                var sum = vb
                for ky in 0..<kernelHeight {
                    let source = padded + ((oy &* strideY &+ ky &* dilationY) &* paddedWidth &+ ox &* strideX)
                    let taps = splat + ky &* kernelWidth
                    for kx in 0..<kernelWidth { sum += load(source + kx &* dilationX) * taps[kx] }
                }
                store(sum, row, ox)
                ox &+= 8
            }
            if epilogue.count > 0 { epilogue.apply(row, count: outWidth) }
        }
    }
}

/// A pointer handed to the workers of a parallel loop, each of which writes its own part.
struct SharedPointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
    init(_ pointer: UnsafePointer<T>) { self.pointer = UnsafeMutablePointer(mutating: pointer) }
}

/// Scratch memory one worker of a parallel loop reuses from item to item.
final class Scratch {
    private(set) var pointer: UnsafeMutablePointer<Float>?
    private var capacity = 0

    /// At least `count` floats (contents undefined).
    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer?.deallocate()
            pointer = .allocate(capacity: count)
            capacity = count
        }
        return pointer!
    }

    deinit { pointer?.deallocate() }
}
