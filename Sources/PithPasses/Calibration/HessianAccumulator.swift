public import PithIR
import PithLinearAlgebra

/// Calibration data the data-aware passes run the model on: `pith compress --calibration FILE`.
/// The umbrella module implements it with the evaluator (`Calibration` in `Sources/Pith`), which the
/// passes may not import.
public protocol CalibrationSource: Sendable {
    /// How many samples every capture runs.
    var samples: Int { get }
    /// The data's name for reports and messages (its file).
    var name: String { get }
    /// Runs `model` on every sample and hands the value named `value` (any value of the main graph)
    /// to `body` a batch of samples at a time, the samples along axis 0, so that no more than a batch
    /// of activations is held at once.
    func capture(_ value: String, in model: Model, _ body: (_ values: [Float], _ shape: [Int]) throws -> Void) throws
}

/// What calibration measured at one layer's input, per group of a grouped convolution (one group
/// otherwise): H = E[x·xᵀ] over every row x the layer multiplies by its weight (a sample of a dense
/// layer, an input patch of a convolution) and the mean E[x].
struct LayerStatistics: Sendable {
    var columns: Int
    /// Per group, columns × columns, row-major, both triangles.
    var hessians: [[Float]]
    var means: [[Float]]
    /// Rows accumulated: samples, times output positions for a convolution.
    var rows: Int
    var samples: Int
}

/// Accumulates H = XᵀX and the column sums of X over batches of a layer's captured input, without
/// keeping them (`add_batch` of the GPTQ reference): a dense layer's input is X with one row per
/// sample (and per position of any leading axes, as `MatMul` broadcasts); a convolution's input is
/// unfolded into its patches (im2col), each group's columns apart, a bounded number of rows at a time.
/// H is summed with BLAS (`ssyrk`) on the upper triangle and divided by the row count at the end.
struct HessianAccumulator {
    let geometry: LayerGeometry
    private var sums: [[Float]]
    private var columnSums: [[Double]]
    private(set) var rows = 0
    private(set) var samples = 0
    /// Patch rows unfolded at once: about 16 MB of patches.
    static let patchBudget = 1 << 22

    init(_ geometry: LayerGeometry) {
        self.geometry = geometry
        let k = geometry.columns
        sums = Array(repeating: [Float](repeating: 0, count: k * k), count: geometry.groups)
        columnSums = Array(repeating: [Double](repeating: 0, count: k), count: geometry.groups)
    }

    /// Adds a batch of the layer's input (samples along axis 0).
    mutating func add(_ values: [Float], shape: [Int]) throws {
        guard let batch = shape.first, values.count == shape.reduce(1, *) else { return }
        samples += batch
        if let convolution = geometry.convolution {
            try addPatches(values, shape: shape, convolution)
        } else {
            let k = geometry.columns
            guard shape.count >= 2, shape[shape.count - 1] == k else {
                throw PassError(
                    .notApplicable,
                    "layer `\(geometry.layer)`: its input `\(geometry.input)` has shape \(Shape.describe(shape)), the weight takes \(k) inputs")
            }
            let n = values.count / k
            values.withUnsafeBufferPointer { x in add(rows: n, x.baseAddress!, group: 0) }
        }
    }

    private mutating func add(rows n: Int, _ x: UnsafePointer<Float>, group: Int) {
        let k = geometry.columns
        sums[group].withUnsafeMutableBufferPointer { h in LinearAlgebra.accumulateGram(rows: n, columns: k, x, lda: k, into: h.baseAddress!) }
        columnSums[group].withUnsafeMutableBufferPointer { s in
            for r in 0..<n {
                let row = x + r * k
                for j in 0..<k { s[j] += Double(row[j]) }
            }
        }
        if group == 0 { rows += n }
    }

    /// The statistics so far: H = XᵀX / rows and E[x], per group.
    func finish() -> LayerStatistics {
        let k = geometry.columns, scale = rows == 0 ? 0 : 1 / Float(rows)
        let hessians = sums.map { sum -> [Float] in
            var h = sum.map { $0 * scale }
            LinearAlgebra.symmetrizeUpper(&h, n: k)
            return h
        }
        let means = columnSums.map { $0.map { Float($0 / Double(Swift.max(rows, 1))) } }
        return LayerStatistics(columns: k, hessians: hessians, means: means, rows: rows, samples: samples)
    }

    // MARK: Convolutions

    /// Output positions along each spatial axis, and the padding before, for an input of `size`.
    static func window(_ c: LayerGeometry.Convolution, size: [Int]) -> (outputs: [Int], padsBegin: [Int]) {
        var outputs: [Int] = [], begins: [Int] = []
        for d in size.indices {
            let extent = c.dilations[d] * (c.kernel[d] - 1) + 1
            var begin = c.padsBegin[d], end = c.padsEnd[d]
            switch c.autoPad {
            case "VALID":
                begin = 0
                end = 0
            case "SAME_UPPER", "SAME_LOWER":
                let out = (size[d] + c.strides[d] - 1) / c.strides[d]
                let total = Swift.max(0, (out - 1) * c.strides[d] + extent - size[d])
                begin = c.autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end = total - begin
            default: break
            }
            outputs.append(Swift.max(0, (size[d] + begin + end - extent) / c.strides[d] + 1))
            begins.append(begin)
        }
        return (outputs, begins)
    }

    private mutating func addPatches(_ values: [Float], shape: [Int], _ c: LayerGeometry.Convolution) throws {
        let spatial = c.kernel.count
        guard shape.count == spatial + 2, shape[1] == c.channels else {
            throw PassError(
                .notApplicable,
                "layer `\(geometry.layer)`: its input `\(geometry.input)` has shape \(Shape.describe(shape)), the convolution takes \(c.channels) channels and \(spatial) spatial axes"
            )
        }
        let size = Array(shape[2...])
        let (outputs, begins) = Self.window(c, size: size)
        let positions = outputs.reduce(1, *), pixels = size.reduce(1, *)
        let channelsPerGroup = c.channels / c.groups, taps = c.kernel.reduce(1, *)
        let k = geometry.columns
        let batch = shape[0], total = batch * positions
        guard total > 0 else { return }
        let chunk = Swift.max(1, Swift.min(total, Self.patchBudget / Swift.max(k, 1)))
        var patches = [Float](repeating: 0, count: chunk * k)
        // Strides of the input's spatial axes (row-major) and of the output and kernel positions.
        var inputStride = [Int](repeating: 1, count: spatial), outputStride = inputStride, kernelStride = inputStride
        for d in stride(from: spatial - 2, through: 0, by: -1) {
            inputStride[d] = inputStride[d + 1] * size[d + 1]
            outputStride[d] = outputStride[d + 1] * outputs[d + 1]
            kernelStride[d] = kernelStride[d + 1] * c.kernel[d + 1]
        }
        var coordinate = [Int](repeating: 0, count: spatial)
        for group in 0..<c.groups {
            var start = 0
            while start < total {
                let n = Swift.min(chunk, total - start)
                values.withUnsafeBufferPointer { x in
                    patches.withUnsafeMutableBufferPointer { p in
                        for r in 0..<n {
                            let flat = start + r, sample = flat / positions, position = flat % positions
                            let row = p.baseAddress! + r * k
                            for channel in 0..<channelsPerGroup {
                                let plane = x.baseAddress! + (sample * c.channels + group * channelsPerGroup + channel) * pixels
                                for tap in 0..<taps {
                                    var offset = 0, inside = true
                                    for d in 0..<spatial {
                                        let o = (position / outputStride[d]) % outputs[d]
                                        let a = (tap / kernelStride[d]) % c.kernel[d]
                                        coordinate[d] = o * c.strides[d] - begins[d] + a * c.dilations[d]
                                        if coordinate[d] < 0 || coordinate[d] >= size[d] { inside = false }
                                        offset += coordinate[d] * inputStride[d]
                                    }
                                    row[channel * taps + tap] = inside ? plane[offset] : 0
                                }
                            }
                        }
                    }
                }
                patches.withUnsafeBufferPointer { p in add(rows: n, p.baseAddress!, group: group) }
                start += n
            }
        }
    }
}
