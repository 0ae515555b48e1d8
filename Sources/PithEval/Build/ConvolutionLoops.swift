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
    /// channel of a depthwise convolution, computed directly (no unfolding, no GEMM).
    func depthwise(_ image: UnsafePointer<Float>, _ w: UnsafePointer<Float>, bias: Float, into out: UnsafeMutablePointer<Float>) {
        for oy in 0..<outHeight {
            let row = out + oy * outWidth
            row.initialize(repeating: bias, count: outWidth)
            for ky in 0..<kernelHeight {
                let iy = oy * strideY - top + ky * dilationY
                guard iy >= 0, iy < height else { continue }
                let source = image + iy * width
                for kx in 0..<kernelWidth {
                    let weight = w[ky * kernelWidth + kx]
                    let offset = kx * dilationX - left
                    let range = columns(offset: offset)
                    if strideX == 1 {
                        let s = source + offset
                        for ox in range { row[ox] += weight * s[ox] }
                    } else {
                        for ox in range { row[ox] += weight * source[ox * strideX + offset] }
                    }
                }
            }
        }
    }

    /// columns[(c·K + t), (oy − rows.lowerBound)·outWidth + ox] = image[c, source of tap t at (oy, ox)],
    /// 0 in the padding: the unfolding of output rows `rows` for `channels` channels.
    func unfold(_ image: UnsafePointer<Float>, channels: Int, rows: Range<Int>, into unfolded: UnsafeMutablePointer<Float>) {
        let band = rows.count * outWidth
        for c in 0..<channels {
            let plane = image + c * inCount
            for ky in 0..<kernelHeight {
                for kx in 0..<kernelWidth {
                    let row = unfolded + ((c * kernelHeight + ky) * kernelWidth + kx) * band
                    let offset = kx * dilationX - left
                    let range = columns(offset: offset)
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
