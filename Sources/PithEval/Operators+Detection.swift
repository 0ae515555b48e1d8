import Foundation
import PithIR

/// Object detection: NonMaxSuppression and RoiAlign. Both follow onnxruntime's arithmetic (in
/// `Float`), which onnx's reference copies.
extension Operators {
    // MARK: NonMaxSuppression

    /// NonMaxSuppression: per batch and class, the boxes in decreasing score (equal scores in box
    /// order) whose score passes `score_threshold` (strictly above it, when given), each kept
    /// unless its intersection over union with a box already kept exceeds `iou_threshold`, at most
    /// `max_output_boxes_per_class` of them (absent: none); a NaN score is never kept. Boxes are
    /// [y1, x1, y2, x2] corners in either order, or with `center_point_box` 1 [x centre, y centre,
    /// width, height]. Output [selected, 3] int64 rows of (batch, class, box).
    func nonMaxSuppression(_ inputs: [Value?]) throws -> Value {
        let boxes = try floatInput(inputs, 0), scores = try floatInput(inputs, 1)
        guard boxes.rank == 3, boxes.shape[2] == 4, scores.rank == 3, scores.shape[0] == boxes.shape[0], scores.shape[2] == boxes.shape[1] else {
            throw EvalError.invalid(
                "boxes of shape \(boxes.shape) and scores of shape \(scores.shape): they must be [batches, boxes, 4] and [batches, classes, boxes]")
        }
        /// An optional one-value input; an empty tensor counts as absent, as onnxruntime reads it.
        func optionalScalar(_ index: Int, name: String) throws -> Value? {
            guard index < inputs.count, let v = inputs[index], v.count > 0 else { return nil }
            guard v.count == 1, !v.isString else { throw EvalError.invalid("\(name) must hold one value, not \(v.shape)") }
            return v
        }
        let maxPerClass = Swift.max(try optionalScalar(2, name: "max_output_boxes_per_class")?.asInts[0] ?? 0, 0)
        let iouThreshold = try optionalScalar(3, name: "iou_threshold")?.asFloats[0] ?? 0
        let scoreThreshold = try optionalScalar(4, name: "score_threshold")?.asFloats[0]
        guard iouThreshold >= 0, iouThreshold <= 1 else { throw EvalError.invalid("iou_threshold \(iouThreshold) is outside [0, 1]") }
        let centerPointBox = int("center_point_box", 0)
        guard centerPointBox == 0 || centerPointBox == 1 else { throw EvalError.invalid("center_point_box \(centerPointBox) is not 0 or 1") }

        let batches = boxes.shape[0], classes = scores.shape[1], count = boxes.shape[1]
        /// The box whose four values start at `base`, as (x min, y min, x max, y max).
        func corners(_ base: Int) -> (Float, Float, Float, Float) {
            let v = boxes.floats
            if centerPointBox == 1 {
                let halfWidth = v[base + 2] / 2, halfHeight = v[base + 3] / 2
                return (v[base] - halfWidth, v[base + 1] - halfHeight, v[base] + halfWidth, v[base + 1] + halfHeight)
            }
            return (Swift.min(v[base + 1], v[base + 3]), Swift.min(v[base], v[base + 2]), Swift.max(v[base + 1], v[base + 3]), Swift.max(v[base], v[base + 2]))
        }
        /// Whether boxes a and b overlap by more than the threshold.
        func suppresses(_ a: (Float, Float, Float, Float), _ b: (Float, Float, Float, Float)) -> Bool {
            let left = Swift.max(a.0, b.0), right = Swift.min(a.2, b.2)
            guard right > left else { return false }
            let top = Swift.max(a.1, b.1), bottom = Swift.min(a.3, b.3)
            guard bottom > top else { return false }
            let intersection = (right - left) * (bottom - top)
            let areaA = (a.2 - a.0) * (a.3 - a.1), areaB = (b.2 - b.0) * (b.3 - b.1)
            let union = areaA + areaB - intersection
            guard intersection > 0, areaA > 0, areaB > 0, union > 0 else { return false }
            return intersection / union > iouThreshold
        }
        var selected: [Int64] = []
        for b in 0..<batches {
            let boxCorners = (0..<count).map { corners((b * count + $0) * 4) }
            for c in 0..<classes {
                let base = (b * classes + c) * count
                var candidates = (0..<count).filter { i in
                    let s = scores.floats[base + i]
                    return !s.isNaN && scoreThreshold.map { s > $0 } ?? true
                }
                candidates.sort { scores.floats[base + $0] != scores.floats[base + $1] ? scores.floats[base + $0] > scores.floats[base + $1] : $0 < $1 }
                var kept: [Int] = []
                for i in candidates where Int64(kept.count) < maxPerClass {
                    if kept.contains(where: { suppresses(boxCorners[i], boxCorners[$0]) }) { continue }
                    kept.append(i)
                    selected += [Int64(b), Int64(c), Int64(i)]
                }
            }
        }
        return Value(ints: selected, shape: [selected.count / 3, 3])
    }

    // MARK: RoiAlign

    /// RoiAlign (opsets 10 and 16): for each region [x1, y1, x2, y2] (scaled by `spatial_scale`)
    /// of image `batch_indices[r]` of X [N, C, H, W], an output_height × output_width grid of bins,
    /// each the average ("avg") or maximum ("max") of sampling_ratio² bilinear samples (0: ⌈bin
    /// size⌉ per axis). "half_pixel" (the default from opset 16) shifts the region by −0.5;
    /// "output_half_pixel" (opset 10's behaviour) does not and makes regions at least 1 × 1.
    /// The maximum is taken over the weighted corner values, as onnxruntime does.
    func roiAlign(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0), rois = try floatInput(inputs, 1), batchIndices = try integerIndices(inputs, 2)
        guard x.rank == 4 else { throw EvalError.invalid("X of shape \(x.shape): RoiAlign needs [N, C, H, W]") }
        guard rois.rank == 2, rois.shape[1] == 4, batchIndices.shape == [rois.shape[0]] else {
            throw EvalError.invalid("rois of shape \(rois.shape) and batch_indices of shape \(batchIndices.shape): they must be [regions, 4] and [regions]")
        }
        let mode = string("mode", "avg")
        guard mode == "avg" || mode == "max" else { throw EvalError.invalid("mode `\(mode)` is not avg or max") }
        let transform = opset >= 16 ? string("coordinate_transformation_mode", "half_pixel") : "output_half_pixel"
        guard transform == "half_pixel" || transform == "output_half_pixel" else {
            throw EvalError.invalid("coordinate_transformation_mode `\(transform)` is not half_pixel or output_half_pixel")
        }
        let pooledHeight = int("output_height", 1), pooledWidth = int("output_width", 1), samplingRatio = int("sampling_ratio", 0)
        let spatialScale = float("spatial_scale", 1)
        guard pooledHeight >= 1, pooledWidth >= 1, samplingRatio >= 0 else {
            throw EvalError.invalid(
                "output_height \(pooledHeight) and output_width \(pooledWidth) must be at least 1, sampling_ratio \(samplingRatio) at least 0")
        }
        let regions = rois.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3]
        let shape = [regions, channels, pooledHeight, pooledWidth]
        try checkSize(shape, op: "RoiAlign")
        guard regions == 0 || channels == 0 || (height >= 1 && width >= 1) else { throw EvalError.invalid("X of shape \(x.shape) has no elements to sample") }
        let halfPixel = transform == "half_pixel"
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        for r in 0..<regions {
            let image = try checkedIndex(batchIndices.ints[r], x.shape[0], axis: 0)
            let offset: Float = halfPixel ? 0.5 : 0
            let coordinates = (0..<4).map { rois.floats[r * 4 + $0] * spatialScale - offset }
            guard coordinates.allSatisfy(\.isFinite) else {
                throw EvalError.invalid("region \(r) has coordinates \(Array(rois.floats[(r * 4)..<(r * 4 + 4)]))")
            }
            let startW = coordinates[0], startH = coordinates[1]
            var roiWidth = coordinates[2] - startW, roiHeight = coordinates[3] - startH
            if !halfPixel {
                roiWidth = Swift.max(roiWidth, 1)
                roiHeight = Swift.max(roiHeight, 1)
            }
            let binHeight = roiHeight / Float(pooledHeight), binWidth = roiWidth / Float(pooledWidth)
            let gridH = samplingRatio > 0 ? samplingRatio : Int(Swift.max(0, (roiHeight / Float(pooledHeight)).rounded(.up)))
            let gridW = samplingRatio > 0 ? samplingRatio : Int(Swift.max(0, (roiWidth / Float(pooledWidth)).rounded(.up)))
            let (samples, overflow) = (gridH * gridW).multipliedReportingOverflow(by: pooledHeight * pooledWidth * Swift.max(channels, 1))
            guard gridH <= 1 << 20, gridW <= 1 << 20, !overflow, samples <= maximumElements else {
                throw EvalError.invalid("region \(r) needs \(gridH) × \(gridW) samples per bin, more than the evaluator computes")
            }
            let count = Float(Swift.max(gridH * gridW, 1))
            // The bilinear taps of each sample, shared by every channel: (offsets, weights).
            var taps: [(Int, Int, Int, Int, Float, Float, Float, Float)] = []
            taps.reserveCapacity(pooledHeight * pooledWidth * gridH * gridW)
            for ph in 0..<pooledHeight {
                for pw in 0..<pooledWidth {
                    for iy in 0..<gridH {
                        let sampleY = startH + Float(ph) * binHeight + (Float(iy) + 0.5) * binHeight / Float(gridH)
                        for ix in 0..<gridW {
                            let sampleX = startW + Float(pw) * binWidth + (Float(ix) + 0.5) * binWidth / Float(gridW)
                            taps.append(bilinearTaps(y: sampleY, x: sampleX, height: height, width: width))
                        }
                    }
                }
            }
            let perBin = gridH * gridW
            for c in 0..<channels {
                let plane = (image * channels + c) * height * width
                for bin in 0..<(pooledHeight * pooledWidth) {
                    var value: Float = 0
                    for s in 0..<perBin {
                        let t = taps[bin * perBin + s]
                        let a = t.4 * x.floats[plane + t.0], b = t.5 * x.floats[plane + t.1]
                        let cc = t.6 * x.floats[plane + t.2], d = t.7 * x.floats[plane + t.3]
                        if mode == "avg" { value += a + b + cc + d } else { value = s == 0 ? Swift.max(a, b, cc, d) : Swift.max(value, a, b, cc, d) }
                    }
                    out[(r * channels + c) * pooledHeight * pooledWidth + bin] = mode == "avg" ? value / count : value
                }
            }
        }
        return roundedValue(out, shape: shape, dtype: x.dtype)
    }

    /// The four corners of the bilinear sample at (y, x) of an H × W plane, as offsets and
    /// weights; a sample more than one element outside the plane reads nothing.
    private func bilinearTaps(y sampleY: Float, x sampleX: Float, height: Int, width: Int) -> (Int, Int, Int, Int, Float, Float, Float, Float) {
        if sampleY < -1 || sampleY > Float(height) || sampleX < -1 || sampleX > Float(width) { return (0, 0, 0, 0, 0, 0, 0, 0) }
        var y = Swift.max(sampleY, 0), x = Swift.max(sampleX, 0)
        var yLow = Int(y), xLow = Int(x), yHigh = yLow + 1, xHigh = xLow + 1
        if yLow >= height - 1 {
            yLow = height - 1
            yHigh = yLow
            y = Float(yLow)
        }
        if xLow >= width - 1 {
            xLow = width - 1
            xHigh = xLow
            x = Float(xLow)
        }
        let ly = y - Float(yLow), lx = x - Float(xLow), hy = 1 - ly, hx = 1 - lx
        return (yLow * width + xLow, yLow * width + xHigh, yHigh * width + xLow, yHigh * width + xHigh, hy * hx, hy * lx, ly * hx, ly * lx)
    }
}
