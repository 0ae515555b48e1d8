public import PithIR

/// Everything `pith inspect` reports about one tensor, measured from its values.
public struct TensorStatistics: Sendable, Codable, Equatable {
    public var name: String
    /// Name of the node or layer the tensor feeds; empty when unknown or unnamed.
    public var layer: String
    /// Operator type or layer class the tensor feeds; empty when unknown.
    public var op: String
    public var shape: [Int]
    public var dtype: DType
    /// Number of elements.
    public var count: Int
    /// Elements that are not zero (for strings: not empty).
    public var nonzero: Int
    /// Fraction of elements that are zero, 0…1.
    public var sparsity: Double
    /// Distinct values, exact when `distinctCapped` is false; otherwise at least this many.
    /// `-0.0` counts as `0.0`, and all NaNs as one value.
    public var distinct: Int
    public var distinctCapped: Bool
    /// Bits each element occupies as stored in the file; for 4-bit codes packed two per byte
    /// (`PackedCodes`), bits per weight they decode to.
    public var bitsPerWeight: Double
    /// Bytes as stored in the file.
    public var bytes: Int
    /// Over finite values only; nil when there are none or the dtype is not real.
    public var min: Double?
    public var max: Double?
    public var mean: Double?
    /// Population standard deviation of the finite values.
    public var std: Double?
    /// NaN and infinite elements.
    public var nonFinite: Int
    /// What the tensor is to the model (`TensorRole.Kind`: weight, bias, normalization, embedding,
    /// shape, other, unknown); empty until `Inspector.inspect` assigns it.
    public var role: String = ""

    /// Measures `tensor`. Distinct values are counted exactly up to `distinctCap`.
    public init(measuring tensor: Tensor, distinctCap: Int) {
        name = tensor.name
        layer = tensor.consumer?.name ?? ""
        op = tensor.consumer?.op ?? ""
        shape = tensor.shape
        dtype = tensor.dtype
        count = tensor.count
        bytes = tensor.storedBytes
        bitsPerWeight = count == 0 ? 0 : Double(bytes) * 8 / Double(count)
        nonFinite = 0
        distinct = 0
        distinctCapped = false
        nonzero = 0
        sparsity = 0

        switch tensor.storage {
        case .strings(let values):
            nonzero = values.filter { !$0.isEmpty }.count
            var seen = Set<[UInt8]>()
            for value in values {
                if seen.count >= distinctCap { distinctCapped = true; break }
                seen.insert(value)
            }
            distinct = seen.count
        case .dense(let buffer):
            if tensor.dtype == .float32 {
                buffer.withUnsafeBufferPointer(as: Float.self) { measureFloat32($0, distinctCap: distinctCap) }
            } else if tensor.dtype.isReal {
                measureReal(tensor, distinctCap: distinctCap)
            } else {
                measureComplex(buffer, dtype: tensor.dtype, distinctCap: distinctCap)
            }
        case .sparse, .codebook, .quantized, .factored:
            // Statistics of the values the compression chose; size from the storage's bit accounting.
            bitsPerWeight = count == 0 ? 0 : Double(tensor.storageBits.total) / Double(count)
            tensor.decodedFloats().withUnsafeBufferPointer { measureFloat32($0, distinctCap: distinctCap) }
        }
        sparsity = count == 0 ? 0 : Double(count - nonzero) / Double(count)
    }

    /// The common case, without conversion: one pass for everything but the
    /// deviation, a second for it.
    private mutating func measureFloat32(_ values: UnsafeBufferPointer<Float>, distinctCap: Int) {
        var low = Float.infinity, high = -Float.infinity
        var sum = 0.0, finite = 0, zeros = 0, bad = 0
        var seen = Set<UInt32>(minimumCapacity: Swift.min(values.count, distinctCap))
        var capped = false
        for value in values {
            if value == 0 { zeros += 1 }
            if value.isFinite {
                low = Swift.min(low, value)
                high = Swift.max(high, value)
                sum += Double(value)
                finite += 1
            } else {
                bad += 1
            }
            if !capped {
                let key = value == 0 ? 0 : (value.isNaN ? 0x7FC0_0000 : value.bitPattern)
                if seen.insert(key).inserted, seen.count >= distinctCap { capped = true }
            }
        }
        nonzero = values.count - zeros
        nonFinite = bad
        distinct = seen.count
        distinctCapped = capped && seen.count >= distinctCap && values.count > seen.count
        guard finite > 0 else { return }
        let average = sum / Double(finite)
        var squares = 0.0
        for value in values where value.isFinite {
            let deviation = Double(value) - average
            squares += deviation * deviation
        }
        min = Double(low)
        max = Double(high)
        mean = average
        std = (squares / Double(finite)).squareRoot()
    }

    /// Every other real type, decoded to `Double` in chunks.
    private mutating func measureReal(_ tensor: Tensor, distinctCap: Int) {
        var low = Double.infinity, high = -Double.infinity
        var sum = 0.0, finite = 0, zeros = 0, bad = 0
        var seen = Set<UInt64>()
        var capped = false
        var seenAll = 0
        tensor.forEachValueChunk { chunk in
            for value in chunk {
                if value == 0 { zeros += 1 }
                if value.isFinite {
                    low = Swift.min(low, value)
                    high = Swift.max(high, value)
                    sum += value
                    finite += 1
                } else {
                    bad += 1
                }
                if !capped {
                    let key = value == 0 ? 0 : (value.isNaN ? Double.nan.bitPattern : value.bitPattern)
                    if seen.insert(key).inserted, seen.count >= distinctCap { capped = true }
                }
            }
            seenAll += chunk.count
        }
        nonzero = seenAll - zeros
        nonFinite = bad
        distinct = seen.count
        distinctCapped = capped && seenAll > seen.count
        guard finite > 0 else { return }
        let average = sum / Double(finite)
        var squares = 0.0
        tensor.forEachValueChunk { chunk in
            for value in chunk where value.isFinite {
                squares += (value - average) * (value - average)
            }
        }
        min = low
        max = high
        mean = average
        std = (squares / Double(finite)).squareRoot()
    }

    /// Complex tensors: only zeros (both parts zero) and distinct pairs are counted.
    private mutating func measureComplex(_ buffer: TensorBuffer, dtype: DType, distinctCap: Int) {
        var zeros = 0
        var seen = Set<[UInt64]>()
        func scan<T: BinaryFloatingPoint>(_ parts: UnsafeBufferPointer<T>, _ key: (T) -> UInt64) {
            var index = 0
            while index + 1 < parts.count {
                let real = parts[index], imaginary = parts[index + 1]
                if real == 0 && imaginary == 0 { zeros += 1 }
                if seen.count < distinctCap { seen.insert([key(real == 0 ? 0 : real), key(imaginary == 0 ? 0 : imaginary)]) }
                index += 2
            }
        }
        if dtype == .complex64 {
            buffer.withUnsafeBufferPointer(as: Float.self) { scan($0) { UInt64($0.bitPattern) } }
        } else {
            buffer.withUnsafeBufferPointer(as: Double.self) { scan($0) { $0.bitPattern } }
        }
        nonzero = count - zeros
        distinct = seen.count
        distinctCapped = seen.count >= distinctCap && count > seen.count
    }
}
