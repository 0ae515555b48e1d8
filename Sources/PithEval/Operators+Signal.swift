import Foundation
import PithIR

/// Signal processing: DFT, STFT, the Hann, Hamming and Blackman windows, and MelWeightMatrix.
///
/// Complex values travel as a last axis of 2 (real, imaginary); a real signal has a last axis of
/// 1. Transforms are computed in `Double` by `FourierPlan` (O(n log n) for every length) and
/// rounded to the input's type. Lengths read from inputs are checked before anything is
/// allocated.
extension Operators {
    // MARK: DFT

    /// DFT (opsets 17 and 20): the transform along one signal axis, of `dft_length` points (the
    /// signal cut or zero-padded to it). `onesided` keeps the ⌊n/2⌋ + 1 first bins of a real
    /// signal's transform; inverse and onesided together is the inverse of that (a real signal of
    /// n points, default 2 · (bins − 1), from the first ⌊n/2⌋ + 1 bins of a Hermitian spectrum:
    /// numpy's irfft, as onnx's reference computes it — onnxruntime 1.32 agrees for the default n
    /// only). The inverse divides by n.
    func dft(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        guard x.rank >= 2, let last = x.shape.last, last == 1 || last == 2 else {
            throw EvalError.invalid("input of shape \(x.shape): DFT needs [batch, signal…, 1] (real) or [batch, signal…, 2] (complex)")
        }
        let requestedAxis = opset >= 20 ? (inputs.count > 2 && inputs[2] != nil ? Int(try scalarInput(inputs, 2, name: "axis")) : -2) : int("axis", 1)
        let axis = requestedAxis < 0 ? requestedAxis + x.rank : requestedAxis
        guard axis >= 0, axis <= x.rank - 2 else {
            throw EvalError.invalid("axis \(requestedAxis) is not a signal axis of an input of rank \(x.rank) (the last axis holds the complex parts)")
        }
        let inverse = int("inverse", 0) != 0, onesided = int("onesided", 0) != 0
        if onesided && !inverse && last == 2 { throw EvalError.invalid("a one-sided DFT of a complex signal: onesided needs a real signal") }
        if onesided && inverse && last == 1 { throw EvalError.invalid("an inverse one-sided DFT of a real input: it needs a complex (one-sided) spectrum") }
        let size = x.shape[axis]
        var length = inverse && onesided ? 2 * (size - 1) : size
        if inputs.count > 1, inputs[1] != nil {
            let given = try scalarInput(inputs, 1, name: "dft_length")
            guard given >= 1, given <= Int64(maximumElements) else { throw EvalError.invalid("dft_length \(given) must be from 1 to \(maximumElements)") }
            length = Int(given)
        }
        guard length >= 1 else { throw EvalError.invalid("the signal axis has \(size) points; the DFT needs a dft_length of at least 1") }
        // Output bins along `axis`, and the complex (2) or real (1) last axis.
        let bins = onesided && !inverse ? length / 2 + 1 : length
        var shape = x.shape
        shape[axis] = bins
        shape[shape.count - 1] = inverse && onesided ? 1 : 2
        try checkSize(shape, op: "DFT")

        let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)..<(x.rank - 1)].reduce(1, *)
        let plan = FourierPlan(length: length, inverse: inverse)
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        var re = [Double](repeating: 0, count: length), im = re
        let used = Swift.min(size, inverse && onesided ? length / 2 + 1 : length)
        for o in 0..<outer {
            for i in 0..<inner {
                for k in 0..<length { re[k] = 0; im[k] = 0 }
                for k in 0..<used {
                    let e = ((o * size + k) * inner + i) * last
                    re[k] = Double(x.floats[e])
                    if last == 2 { im[k] = Double(x.floats[e + 1]) }
                }
                if inverse && onesided {
                    // The other side of the Hermitian spectrum: X[n − k] = conj(X[k]).
                    for k in stride(from: 1, to: (length + 1) / 2, by: 1) {
                        re[length - k] = re[k]
                        im[length - k] = -im[k]
                    }
                }
                plan.transform(&re, &im)
                let scale = inverse ? 1 / Double(length) : 1
                for k in 0..<bins {
                    if inverse && onesided {
                        out[(o * bins + k) * inner + i] = Float(re[k] * scale)
                    } else {
                        let e = ((o * bins + k) * inner + i) * 2
                        out[e] = Float(re[k] * scale)
                        out[e + 1] = Float(im[k] * scale)
                    }
                }
            }
        }
        return roundedValue(out, shape: shape, dtype: x.dtype)
    }

    // MARK: STFT

    /// STFT (opset 17): the DFT of each frame of `frame_length` samples, `frame_step` apart, of
    /// signal [batch, length, 1 or 2], each frame multiplied by the window (default all ones).
    /// Output [batch, frames, bins, 2]: frames = ⌊(length − frame_length) / frame_step⌋ + 1, bins
    /// frame_length, or ⌊frame_length / 2⌋ + 1 when `onesided` (the default; real signals only).
    func stft(_ inputs: [Value?]) throws -> Value {
        let x = try floatInput(inputs, 0)
        guard x.rank == 3, x.shape[2] == 1 || x.shape[2] == 2 else {
            throw EvalError.invalid("signal of shape \(x.shape): STFT needs [batch, length, 1] (real) or [batch, length, 2] (complex)")
        }
        let batch = x.shape[0], length = x.shape[1], parts = x.shape[2]
        let step = try scalarInput(inputs, 1, name: "frame_step")
        guard step >= 1 else { throw EvalError.invalid("frame_step \(step) must be at least 1") }
        let window = inputs.count > 2 ? inputs[2] : nil
        if let window {
            guard window.isFloat, window.rank == 1 else {
                throw EvalError.invalid("window of type \(window.dtype.rawValue) and shape \(window.shape): it must be 1-D floats")
            }
        }
        var frameLength = window?.count ?? length
        if inputs.count > 3, inputs[3] != nil {
            let given = try scalarInput(inputs, 3, name: "frame_length")
            guard given >= 1, given <= Int64(length) else { throw EvalError.invalid("frame_length \(given) must be from 1 to the signal's length, \(length)") }
            if let window, window.count != Int(given) { throw EvalError.invalid("frame_length \(given) and a window of \(window.count) values") }
            frameLength = Int(given)
        }
        guard frameLength >= 1, frameLength <= length else {
            throw EvalError.invalid("frames of \(frameLength) samples in a signal of \(length): frame_length must be from 1 to the signal's length")
        }
        let onesided = int("onesided", 1) != 0
        if onesided && parts == 2 { throw EvalError.invalid("a one-sided STFT of a complex signal: onesided needs a real signal") }
        let frames = (length - frameLength) / Int(step) + 1, bins = onesided ? frameLength / 2 + 1 : frameLength
        let shape = [batch, frames, bins, 2]
        try checkSize(shape, op: "STFT")
        let weights = window.map { $0.floats.map(Double.init) } ?? [Double](repeating: 1, count: frameLength)
        let plan = FourierPlan(length: frameLength, inverse: false)
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        var re = [Double](repeating: 0, count: frameLength), im = re
        for b in 0..<batch {
            for f in 0..<frames {
                for k in 0..<frameLength {
                    let e = (b * length + f * Int(step) + k) * parts
                    re[k] = Double(x.floats[e]) * weights[k]
                    im[k] = parts == 2 ? Double(x.floats[e + 1]) * weights[k] : 0
                }
                plan.transform(&re, &im)
                for k in 0..<bins {
                    let e = ((b * frames + f) * bins + k) * 2
                    out[e] = Float(re[k])
                    out[e + 1] = Float(im[k])
                }
            }
        }
        return roundedValue(out, shape: shape, dtype: x.dtype)
    }

    // MARK: Windows

    /// HannWindow, HammingWindow and BlackmanWindow (opset 17) of `size` points (input 0): the
    /// periodic window (default) divides by N, the symmetric one by N − 1 (so a symmetric window of
    /// one point is [NaN], as onnxruntime and onnx's reference make it). Hamming uses α = 25/46, as onnx defines it. The values are made in
    /// `Double` and converted to `output_datatype` (default float32).
    func window(_ inputs: [Value?]) throws -> Value {
        let size = try scalarInput(inputs, 0, name: "size")
        guard size >= 0, size <= Int64(maximumElements) else { throw EvalError.invalid("window size \(size) must be from 0 to \(maximumElements)") }
        let code = int("output_datatype", 1)
        guard let dtype = onnxType(code), dtype != .string else { throw EvalError.invalid("output_datatype \(code) is not a numeric type") }
        let n = Int(size)
        let denominator = Double(int("periodic", 1) != 0 ? n : n - 1)
        let values: [Float] = (0..<n).map { k in
            let phase = 2 * Double.pi * Double(k) / denominator
            switch node.opType {
            case "HannWindow": return Float(0.5 - 0.5 * cos(phase))
            case "HammingWindow": return Float(25.0 / 46.0 - 21.0 / 46.0 * cos(phase))
            default: return Float(0.42 - 0.5 * cos(phase) + 0.08 * cos(2 * phase))
            }
        }
        return try Value(floats: values, shape: [n]).cast(to: dtype)
    }

    // MARK: MelWeightMatrix

    /// MelWeightMatrix (opset 17): [⌊dft_length / 2⌋ + 1, num_mel_bins] triangular filters,
    /// evenly spaced on the mel scale (mel = 2595 log10(1 + f / 700)) between the lower and upper
    /// edge frequencies, each rising from its left neighbour's centre bin to its own and falling to
    /// its right neighbour's, as onnx's reference and onnxruntime compute them.
    func melWeightMatrix(_ inputs: [Value?]) throws -> Value {
        let melBins = try scalarInput(inputs, 0, name: "num_mel_bins")
        let dftLength = try scalarInput(inputs, 1, name: "dft_length")
        let sampleRate = try scalarInput(inputs, 2, name: "sample_rate")
        let lower = Double(try required(inputs, 3).asFloats.first ?? .nan), upper = Double(try required(inputs, 4).asFloats.first ?? .nan)
        guard melBins >= 1, dftLength >= 1, sampleRate >= 1, melBins <= Int64(maximumElements), dftLength <= Int64(maximumElements) else {
            throw EvalError.invalid("num_mel_bins \(melBins), dft_length \(dftLength) and sample_rate \(sampleRate) must each be at least 1")
        }
        guard lower.isFinite, upper.isFinite, lower >= 0, lower <= upper else {
            throw EvalError.invalid("edge frequencies \(lower) and \(upper) Hz: the lower must be at least 0 and at most the upper")
        }
        let code = int("output_datatype", 1)
        guard let dtype = onnxType(code), dtype != .string else { throw EvalError.invalid("output_datatype \(code) is not a numeric type") }
        let spectrogramBins = Int(dftLength) / 2 + 1, filters = Int(melBins)
        try checkSize([spectrogramBins, filters], op: "MelWeightMatrix")
        /// The spectrogram bin of a frequency.
        func bin(_ hertz: Double) -> Double { ((Double(dftLength) + 1) * hertz / Double(sampleRate)).rounded(.down) }
        guard bin(upper) < Double(spectrogramBins) else {
            throw EvalError.invalid("upper_edge_hertz \(upper) falls beyond the \(spectrogramBins) bins of a \(dftLength)-point DFT at \(sampleRate) Hz")
        }
        func mel(_ hertz: Double) -> Double { 2595 * log10(1 + hertz / 700) }
        let low = mel(lower), high = mel(upper), step = (high - low) / Double(filters + 2)
        // Between the edges' bins, which are within the spectrogram.
        let edges = (0..<(filters + 2)).map { i in
            Swift.min(spectrogramBins - 1, Int(Swift.max(0, bin(700 * (pow(10, (low + Double(i) * step) / 2595) - 1)))))
        }
        var out = [Float](repeating: 0, count: spectrogramBins * filters)
        for i in 0..<filters {
            let left = edges[i], centre = edges[i + 1], right = edges[i + 2]
            if centre == left {
                out[centre * filters + i] = 1
            } else {
                for j in left...centre { out[j * filters + i] = Float(Double(j - left) / Double(centre - left)) }
            }
            if right > centre {
                for j in centre..<right { out[j * filters + i] = Float(Double(right - j) / Double(right - centre)) }
            }
        }
        return try Value(floats: out, shape: [spectrogramBins, filters]).cast(to: dtype)
    }
}

/// A discrete Fourier transform of one length, its tables made once: X[k] = Σ x[j] e^(∓2πi jk/n),
/// the sign + for the inverse (which is not divided by n here). Powers of two use the iterative
/// radix-2 FFT; other lengths Bluestein's algorithm (jk = (j² + k² − (k − j)²) / 2 turns the
/// transform into a convolution with the chirp e^(∓πi j²/n), done by power-of-two FFTs of at
/// least 2n − 1 points). Every length costs O(n log n).
struct FourierPlan {
    let length: Int
    let inverse: Bool
    /// For a power of two: e^(∓2πi k/n), k < n/2. For Bluestein: those of the padded length.
    private let cosines: [Double], sines: [Double]
    /// Bluestein only: the padded length, the chirp c[j] = e^(∓πi j²/n), and the FFT of the
    /// convolution kernel conj(c) laid out circularly.
    private let padded: Int
    private let chirpRe: [Double], chirpIm: [Double]
    private let kernelRe: [Double], kernelIm: [Double]

    init(length: Int, inverse: Bool) {
        self.length = length
        self.inverse = inverse
        let sign: Double = inverse ? 1 : -1
        let isPowerOfTwo = length & (length - 1) == 0
        let m = isPowerOfTwo ? length : Self.powerOfTwo(atLeast: 2 * length - 1)
        padded = m
        cosines = (0..<(m / 2)).map { cos(2 * Double.pi * Double($0) / Double(m)) }
        sines = (0..<(m / 2)).map { sign * sin(2 * Double.pi * Double($0) / Double(m)) }
        guard !isPowerOfTwo else {
            chirpRe = []; chirpIm = []; kernelRe = []; kernelIm = []
            return
        }
        // j² mod 2n keeps the chirp's angle exact for large j.
        let angles = (0..<length).map { j in Double.pi * Double((j * j) % (2 * length)) / Double(length) }
        chirpRe = angles.map { cos($0) }
        chirpIm = angles.map { sign * sin($0) }
        var re = [Double](repeating: 0, count: m), im = re
        for j in 0..<length {
            re[j] = chirpRe[j]
            im[j] = -chirpIm[j]
            if j > 0 {
                re[m - j] = chirpRe[j]
                im[m - j] = -chirpIm[j]
            }
        }
        Self.radix2(&re, &im, cosines: cosines, sines: sines)
        kernelRe = re
        kernelIm = im
    }

    static func powerOfTwo(atLeast n: Int) -> Int {
        var m = 1
        while m < n { m <<= 1 }
        return m
    }

    /// Transforms `re` + i·`im` (each `length` long) in place.
    func transform(_ re: inout [Double], _ im: inout [Double]) {
        guard length > 1 else { return }
        if padded == length {
            Self.radix2(&re, &im, cosines: cosines, sines: sines)
            return
        }
        let m = padded
        var aRe = [Double](repeating: 0, count: m), aIm = aRe
        for j in 0..<length {
            aRe[j] = re[j] * chirpRe[j] - im[j] * chirpIm[j]
            aIm[j] = re[j] * chirpIm[j] + im[j] * chirpRe[j]
        }
        Self.radix2(&aRe, &aIm, cosines: cosines, sines: sines)
        // Pointwise product with the kernel's transform, then the inverse FFT by conjugation:
        // ifft(z) = conj(fft(conj(z))) / m (the tables hold the forward or inverse sign alike,
        // so the conjugation is taken relative to the plan's own direction).
        for k in 0..<m {
            let r = aRe[k] * kernelRe[k] - aIm[k] * kernelIm[k]
            let i = aRe[k] * kernelIm[k] + aIm[k] * kernelRe[k]
            aRe[k] = r
            aIm[k] = -i
        }
        Self.radix2(&aRe, &aIm, cosines: cosines, sines: sines)
        let scale = 1 / Double(m)
        for k in 0..<length {
            let r = aRe[k] * scale, i = -aIm[k] * scale
            re[k] = r * chirpRe[k] - i * chirpIm[k]
            im[k] = r * chirpIm[k] + i * chirpRe[k]
        }
    }

    /// The iterative radix-2 FFT of a power-of-two length, with the twiddles e^(±2πi k/n).
    private static func radix2(_ re: inout [Double], _ im: inout [Double], cosines: [Double], sines: [Double]) {
        let n = re.count
        guard n > 1 else { return }
        var j = 0
        for i in 1..<n {
            var bit = n >> 1
            while j & bit != 0 { j ^= bit; bit >>= 1 }
            j |= bit
            if i < j { re.swapAt(i, j); im.swapAt(i, j) }
        }
        var size = 2
        while size <= n {
            let half = size / 2, step = n / size
            for start in stride(from: 0, to: n, by: size) {
                for k in 0..<half {
                    let wr = cosines[k * step], wi = sines[k * step]
                    let a = start + k, b = a + half
                    let tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr
                    re[b] = re[a] - tr; im[b] = im[a] - ti
                    re[a] += tr; im[a] += ti
                }
            }
            size <<= 1
        }
    }
}
