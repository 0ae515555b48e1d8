/// Where the bits of a tensor's storage go, before any entropy coding: the accounting of
/// Deep Compression's tables.
public struct StorageBits: Sendable, Equatable, Codable {
    /// Bits of the weights themselves: dense values, codebook indices or quantized codes.
    public var weights: Int
    /// Bits of sparse column gaps (the paper's "index bits").
    public var indices: Int
    /// Bits of CSR row pointers (each `⌈log2(entries + 1)⌉` bits wide).
    public var rowPointers: Int
    /// Bits of codebook tables (32 per centroid) and quantization scales / zero points (32 each).
    public var tables: Int

    public init(weights: Int = 0, indices: Int = 0, rowPointers: Int = 0, tables: Int = 0) {
        self.weights = weights
        self.indices = indices
        self.rowPointers = rowPointers
        self.tables = tables
    }

    public var total: Int { weights + indices + rowPointers + tables }
}

extension Tensor {
    /// The bit accounting of this tensor's storage.
    public var storageBits: StorageBits {
        switch storage {
        case .dense(let buffer): return StorageBits(weights: buffer.count * 8)
        case .strings(let values): return StorageBits(weights: values.reduce(0) { $0 + $1.count } * 8)
        case .codebook(let codebook): return Self.bits(codebook)
        case .quantized(let quantized): return Self.bits(quantized)
        case .factored(let factored):
            guard let encodings = factored.encodings else { return StorageBits(weights: factored.parameters * 32) }
            // Each factor's own accounting, summed.
            let shapes = factored.factorShapes(tensorShape: shape)
            return zip(encodings, shapes).reduce(StorageBits()) { total, pair in
                let bits = Tensor(name: name, dtype: .float32, shape: pair.1, storage: pair.0, origin: origin).storageBits
                return StorageBits(
                    weights: total.weights + bits.weights, indices: total.indices + bits.indices, rowPointers: total.rowPointers + bits.rowPointers,
                    tables: total.tables + bits.tables)
            }
        case .sparse(let sparse):
            var bits: StorageBits
            switch sparse.values {
            case .dense(let buffer): bits = StorageBits(weights: buffer.count * 8)
            case .codebook(let codebook): bits = Self.bits(codebook)
            case .quantized(let quantized): bits = Self.bits(quantized)
            }
            bits.indices = sparse.entries * sparse.indexBits
            bits.rowPointers = (sparse.rows + 1) * Self.bitsToCount(sparse.entries)
            return bits
        }
    }

    static func bits(_ codebook: CodebookStorage) -> StorageBits {
        StorageBits(weights: codebook.indices.count * codebook.bits, tables: codebook.centroids.count * 32)
    }

    static func bits(_ quantized: QuantizedStorage) -> StorageBits {
        let parameters = quantized.scales.count + (quantized.isSymmetric ? 0 : quantized.zeroPoints.count)
        return StorageBits(weights: quantized.codes.count * quantized.codeBits, tables: parameters * 32)
    }

    /// Bits needed to write any number in `0...value`.
    static func bitsToCount(_ value: Int) -> Int {
        value <= 0 ? 1 : (Int.bitWidth - value.leadingZeroBitCount)
    }

    /// The number of rows of the 2-D view sparse storage uses: the first dimension, or 1 for
    /// scalars and vectors.
    public var rowCount: Int { shape.count >= 2 ? shape[0] : 1 }

    /// The channel of element `index` (row-major) when channels run along `axis`.
    public func channel(ofElement index: Int, axis: Int) -> Int {
        guard axis < shape.count else { return 0 }
        let inner = shape[(axis + 1)...].reduce(1, *)
        return (index / Swift.max(1, inner)) % Swift.max(1, shape[axis])
    }

    /// Every element as `Float`, whatever the storage: dense values are decoded (exact when
    /// `dtype.convertsExactlyToFloat32`), compressed storage is expanded. Empty for non-real dtypes.
    public func decodedFloats() -> [Float] {
        switch storage {
        case .dense, .strings: return floatValues()
        case .codebook(let codebook): return decodedFloats(elements: 0..<codebook.indices.count)
        case .quantized(let quantized): return decodedFloats(elements: 0..<quantized.codes.count)
        case .factored(let factored): return factored.expand(tensorShape: shape)
        case .sparse(let sparse):
            // Where every stored entry sits in the row-major tensor.
            var positions = [Int](repeating: 0, count: sparse.entries)
            for row in 0..<sparse.rows {
                var column = -1
                for entry in sparse.rowStarts[row]..<sparse.rowStarts[row + 1] {
                    column += Int(sparse.gaps[entry]) + 1
                    positions[entry] = row * sparse.columns + column
                }
            }
            let entryValues: [Float]
            switch sparse.values {
            case .dense(let buffer):
                entryValues = Tensor(name: name, dtype: dtype, shape: [sparse.entries], storage: .dense(buffer), origin: origin).floatValues()
            case .codebook(let codebook): entryValues = expand(codebook, positions: positions)
            case .quantized(let quantized): entryValues = expand(quantized, positions: positions)
            }
            var result = [Float](repeating: 0, count: count)
            for (entry, position) in positions.enumerated() { result[position] = entryValues[entry] }
            return result
        }
    }

    /// Elements `range` of the tensor as `Float`: what `decodedFloats()[range]` holds. Codebook,
    /// quantized and dense float32 storage decode those elements alone, so a caller can go through
    /// a large tensor a piece at a time; other storage is decoded whole first.
    public func decodedFloats(elements range: Range<Int>) -> [Float] {
        // Element i's channel along `axis` is (i / inner) % extent, as `channel(ofElement:axis:)` gives.
        func stride(_ axis: Int) -> (inner: Int, extent: Int) {
            guard axis < shape.count else { return (Int.max, 1) }
            return (Swift.max(1, shape[(axis + 1)...].reduce(1, *)), Swift.max(1, shape[axis]))
        }
        switch storage {
        case .codebook(let codebook):
            let perChannel = codebook.centroidsPerChannel
            let (inner, extent) = stride(codebook.axis)
            let single = codebook.channels == 1
            return codebook.centroids.withUnsafeBufferPointer { centroids in
                codebook.indices.withUnsafeBufferPointer { indices in
                    range.map { i in centroids[(single ? 0 : (i / inner) % extent) * perChannel + Int(indices[i])] }
                }
            }
        case .quantized(let quantized):
            let codes = quantized.codes
            switch quantized.scheme {
            case .float16: return range.map { MiniFloat.float16ToFloat(UInt16(truncatingIfNeeded: codes[$0])) }
            case .bfloat16: return range.map { MiniFloat.bfloat16ToFloat(UInt16(truncatingIfNeeded: codes[$0])) }
            case .linear:
                let (inner, extent) = stride(quantized.axis)
                let single = quantized.scales.count == 1
                return quantized.scales.withUnsafeBufferPointer { scales in
                    quantized.zeroPoints.withUnsafeBufferPointer { zeroPoints in
                        range.map { i in
                            let c = single ? 0 : (i / inner) % extent
                            return scales[c] * Float(codes[i] - zeroPoints[c])
                        }
                    }
                }
            }
        case .dense(let buffer) where dtype == .float32:
            // Byte for byte into the array: a view of a file need not be aligned, and going through
            // `withUnsafeBufferPointer(as:)` would make an aligned copy of it first.
            return buffer.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: range.count) { destination, initialized in
                    UnsafeMutableRawBufferPointer(destination).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: raw[range.lowerBound * 4..<range.upperBound * 4]))
                    initialized = range.count
                }
            }
        default:
            return Array(decodedFloats()[range])
        }
    }

    /// Codebook values; `positions` maps stored entries to elements (nil: one entry per element).
    func expand(_ codebook: CodebookStorage, positions: [Int]?) -> [Float] {
        let perChannel = codebook.centroidsPerChannel
        return codebook.indices.enumerated().map { entry, code in
            let table = codebook.channels == 1 ? 0 : channel(ofElement: positions?[entry] ?? entry, axis: codebook.axis)
            return codebook.centroids[table * perChannel + Int(code)]
        }
    }

    func expand(_ quantized: QuantizedStorage, positions: [Int]?) -> [Float] {
        switch quantized.scheme {
        case .float16: return quantized.codes.map { MiniFloat.float16ToFloat(UInt16(truncatingIfNeeded: $0)) }
        case .bfloat16: return quantized.codes.map { MiniFloat.bfloat16ToFloat(UInt16(truncatingIfNeeded: $0)) }
        case .linear:
            return quantized.codes.enumerated().map { entry, code in
                let c = quantized.scales.count == 1 ? 0 : channel(ofElement: positions?[entry] ?? entry, axis: quantized.axis)
                return quantized.scales[c] * Float(code - quantized.zeroPoints[c])
            }
        }
    }

    /// The same tensor with dense storage in its own dtype (float types only; other tensors are
    /// returned unchanged). Restoring a compressed tensor this way gives the values the
    /// compression chose, rounded to the dtype.
    public func densified() -> Tensor {
        guard storage.isCompressed, dtype.isFloatingPoint else { return self }
        var copy = self
        copy.storage = .dense(Self.encode(decodedFloats(), as: dtype))
        return copy
    }

    /// `values` encoded as `dtype` (float32, float64, float16 or bfloat16; others as float32),
    /// rounding to nearest even.
    public static func encode(_ values: [Float], as dtype: DType) -> TensorBuffer {
        switch dtype {
        case .float64: return TensorBuffer(values: values.map(Double.init))
        case .float16: return TensorBuffer(values: values.map(FloatRounding.float16Bits))
        case .bfloat16: return TensorBuffer(values: values.map(FloatRounding.bfloat16Bits))
        default: return TensorBuffer(values: values)
        }
    }
}

/// Rounding `Float` to the 16-bit formats, to nearest with ties to even.
public enum FloatRounding {
    /// IEEE binary16 bits of `value`, rounded to nearest even; overflow gives ±infinity, NaN stays NaN.
    public static func float16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        let mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? 0x200 | UInt16(mantissa >> 13) : 0) }
        let unbiased = exponent - 127
        if unbiased > 15 { return sign | 0x7C00 }
        if unbiased >= -14 {
            // Normal in binary16: keep 10 mantissa bits, round the 13 dropped.
            var half = UInt32(unbiased + 15) << 10 | (mantissa >> 13)
            let dropped = mantissa & 0x1FFF
            if dropped > 0x1000 || (dropped == 0x1000 && (half & 1) == 1) { half += 1 }  // may carry into the exponent: correct
            return sign | UInt16(half)
        }
        if unbiased < -25 { return sign }  // below half the smallest subnormal: rounds to zero
        // Subnormal in binary16: value = m · 2^-24 with m = full significand >> shift.
        let significand = mantissa | 0x80_0000
        let shift = UInt32(-unbiased - 14 + 13)  // 14…24
        var half = significand >> shift
        let dropped = significand & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        if dropped > halfway || (dropped == halfway && (half & 1) == 1) { half += 1 }
        return sign | UInt16(half)
    }

    /// `value` rounded to the nearest binary16 value, as a `Float`.
    public static func float16(_ value: Float) -> Float { MiniFloat.float16ToFloat(float16Bits(value)) }

    /// `value` rounded to the nearest bfloat16 value, as a `Float`.
    public static func bfloat16(_ value: Float) -> Float { MiniFloat.bfloat16ToFloat(bfloat16Bits(value)) }

    /// bfloat16 bits of `value`, rounded to nearest even; NaN stays a quiet NaN.
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(rounded >> 16)
    }
}
