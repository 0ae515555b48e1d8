import PithIR

/// Linear quantization or reduced-precision floats.
public struct QuantizeOptions: Sendable, Codable, Equatable {
    public enum Format: String, Sendable, Codable, CaseIterable {
        case int8, int4, fp16, bf16
    }

    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// `x ≈ scale · q`, scale = max|x| / qmax, codes in [−qmax, qmax]: zero is exact.
        case symmetric
        /// `x ≈ scale · (q − zeroPoint)` over [min, max]: uses every code.
        case affine
        /// The simple scheme x ↦ ⌊128·x/a⌋ with a = max|x|, clipped to [−128, 127] (int8 only;
        /// int4: ⌊8·x/a⌋ in [−8, 7]). Rounding is floor by definition.
        case simple
    }

    /// How a real value becomes a code.
    public enum Rounding: String, Sendable, Codable, CaseIterable {
        /// To nearest, ties to even: error at most half a step inside the clipping range.
        case nearest
        /// Toward −∞: error below one step.
        case floor
        /// GPTQ (Frantar et al. 2022): columns rounded in order to nearest, each one's error fed
        /// forward to the columns not yet rounded through the Cholesky factor of the damped inverse
        /// Hessian of the layer's calibration inputs, so that the layer's outputs change least.
        /// Data-aware: needs `--calibration`. Same grid (scales, zero points) as `nearest`.
        case gptq
    }

    public var format: Format
    public var granularity: Granularity?
    public var mode: Mode?
    public var rounding: Rounding?

    public init(format: Format, granularity: Granularity? = nil, mode: Mode? = nil, rounding: Rounding? = nil) {
        self.format = format
        self.granularity = granularity
        self.mode = mode
        self.rounding = rounding
    }

    func validate(_ label: String) throws {
        if format == .fp16 || format == .bf16 {
            if mode != nil || granularity != nil || rounding != nil {
                throw PassError(.invalidRecipe, "\(label): \(format.rawValue) takes no mode, granularity or rounding (it rounds to nearest even)")
            }
        }
        if mode == .simple, rounding == .nearest || rounding == .gptq {
            throw PassError(.invalidRecipe, "\(label): the simple scheme rounds down by definition; drop `rounding`")
        }
    }

    var isDataAware: Bool { rounding == .gptq }
}

extension QuantizeOptions: CompressionPass {
    static let action = "quantize"

    func run(selecting selector: TensorSelector, in run: inout CompressionRun, step: Int) throws {
        let ids = run.select(selector, step: step, action: Self.action)
        if rounding == .gptq {
            try GPTQ.quantize(ids, options: self, in: &run, step: step)
            return
        }
        try run.encodeEach(ids, action: Self.action, granularity: granularity, step: step) { _, values, layout, _ in
            let (quantized, detail) = Quantization.quantize(values, layout: layout, options: self)
            return (.quantized(quantized), detail)
        }
    }
}

/// Linear quantization and reduced-precision floats.
///
/// Integer formats: `value ≈ scale · (code − zeroPoint)`, one scale (and zero point) per tensor
/// or per output channel. Symmetric uses codes in [−qmax, qmax] (int8: ±127, int4: ±7)
/// with scale max|x| / qmax and no zero point; affine spreads [min(x, 0), max(x, 0)] over every
/// code (int8: −128…127) with an integer zero point, so zero stays exact in both; `simple` is
/// ⌊128·x / max|x|⌋ clipped to [−128, 127] (int4: ⌊8·x/a⌋ in [−8, 7]). Rounding is explicit:
/// to nearest even (the default; error ≤ half a step inside the range) or down.
enum Quantization {
    static func quantize(_ values: [Float], layout: ChannelLayout, options: QuantizeOptions) -> (QuantizedStorage, String) {
        let channels = layout.channels
        switch options.format {
        case .fp16:
            let codes = QuantizedCodes(uint16: values.map { FloatRounding.float16Bits($0) })
            return (QuantizedStorage(scheme: .float16, scales: [], zeroPoints: [], codes: codes), "float16, round to nearest even")
        case .bf16:
            let codes = QuantizedCodes(uint16: values.map { FloatRounding.bfloat16Bits($0) })
            return (QuantizedStorage(scheme: .bfloat16, scales: [], zeroPoints: [], codes: codes), "bfloat16, round to nearest even")
        case .int8, .int4:
            let grids = Quantization.grids(values, layout: layout, options: options)
            // int8 and int4 codes are in −128…127 (each grid clips to its range): one byte each.
            var codes = [Int8](repeating: 0, count: values.count)
            for channel in 0..<channels {
                let grid = grids[channel]
                for i in layout.elements(of: channel) { codes[i] = Int8(grid.code(values[i])) }
            }
            return (
                storage(grids, codes: QuantizedCodes(int8: codes), layout: layout, options: options), detail(grids, channels: channels, options: options)
            )
        }
    }

    /// One channel's integer grid: `value ≈ scale · (code − zeroPoint)`, codes in `low…high`.
    struct Grid: Sendable {
        var scale: Float
        var zeroPoint: Float
        var low: Float
        var high: Float
        var rounding: FloatingPointRoundingRule

        /// The code of `value`: rounded as the grid says and clipped (NaN → the zero point).
        func code(_ value: Float) -> Int32 {
            let q = (value / scale).rounded(rounding) + zeroPoint
            return Int32(Swift.min(high, Swift.max(low, q.isNaN ? zeroPoint : q)))
        }

        /// The value code `code` stands for.
        func value(_ code: Int32) -> Float { scale * (Float(code) - zeroPoint) }
    }

    /// Each channel's grid for `values` (the scales and zero points `quantize` uses).
    static func grids(_ values: [Float], layout: ChannelLayout, options: QuantizeOptions) -> [Grid] {
        let bits = options.format == .int8 ? 8 : 4
        let mode = options.mode ?? .symmetric
        let rounding: FloatingPointRoundingRule = (mode == .simple || options.rounding == .floor) ? .down : .toNearestOrEven
        let qmax = Float((1 << (bits - 1)) - 1)  // 127 or 7
        let qmin = -qmax - 1  // −128 or −8
        return (0..<layout.channels).map { channel in
            var low: Float = 0, high: Float = 0
            for i in layout.elements(of: channel) where values[i].isFinite {
                low = Swift.min(low, values[i])
                high = Swift.max(high, values[i])
            }
            let magnitude = Swift.max(-low, high)
            var scale: Float, zeroPoint: Float = 0, codeLow = -qmax
            switch mode {
            case .symmetric:
                scale = magnitude / qmax
            case .simple:
                scale = magnitude / (qmax + 1)
                codeLow = qmin
            case .affine:
                scale = (high - low) / (qmax - qmin)
                codeLow = qmin
                if scale > 0 { zeroPoint = Swift.min(qmax, Swift.max(qmin, (qmin - low / scale).rounded(.toNearestOrEven))) }
            }
            if !(scale > 0) || !scale.isFinite { scale = 1 }  // an all-zero slice: every code 0
            return Grid(scale: scale, zeroPoint: zeroPoint, low: codeLow, high: qmax, rounding: rounding)
        }
    }

    static func storage(_ grids: [Grid], codes: QuantizedCodes, layout: ChannelLayout, options: QuantizeOptions) -> QuantizedStorage {
        QuantizedStorage(
            scheme: .linear(bits: options.format == .int8 ? 8 : 4, signed: true), scales: grids.map(\.scale), zeroPoints: grids.map { Int32($0.zeroPoint) },
            axis: layout.axis, codes: codes)
    }

    static func detail(_ grids: [Grid], channels: Int, options: QuantizeOptions) -> String {
        let mode = options.mode ?? .symmetric
        let rounding = grids.first?.rounding == .down ? "down" : "to nearest even"
        return "\(options.format.rawValue) \(mode.rawValue)\(channels > 1 ? " per channel (\(channels))" : ", scale \(grids[0].scale)"), round \(rounding)"
    }
}
