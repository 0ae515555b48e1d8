extension DType {
    /// Decodes elements `range` of `bytes` (stored as this type) into `output`
    /// as `Double`. Exact for every real type: `Double` holds every value of
    /// every real ONNX type except the largest 64-bit integers, which round
    /// to nearest.
    ///
    /// - Precondition: `isReal`, `output` holds `range.count` elements and
    ///   `bytes` holds at least `range.upperBound` elements.
    public func decode(
        _ bytes: UnsafeRawBufferPointer, elements range: Range<Int>, into output: UnsafeMutablePointer<Double>
    ) {
        precondition(isReal, "decode(_:elements:into:) needs a real dtype, not \(self)")
        let start = range.lowerBound
        @inline(__always) func load<T: FixedWidthInteger>(_ type: T.Type, _ index: Int) -> T {
            T(littleEndian: bytes.loadUnaligned(fromByteOffset: index * MemoryLayout<T>.size, as: T.self))
        }
        @inline(__always) func bits(_ index: Int, width: Int) -> UInt32 {
            let bitOffset = index * width
            let byte = bitOffset >> 3, shift = bitOffset & 7
            var word = UInt32(bytes[byte])
            if shift + width > 8, byte + 1 < bytes.count { word |= UInt32(bytes[byte + 1]) << 8 }
            return (word >> UInt32(shift)) & ((1 << UInt32(width)) - 1)
        }
        func table(_ values: [Float], width: Int) {
            for i in 0..<range.count { output[i] = Double(values[Int(bits(start + i, width: width))]) }
        }
        switch self {
        case .float32:
            for i in 0..<range.count { output[i] = Double(Float(bitPattern: load(UInt32.self, start + i))) }
        case .float64:
            for i in 0..<range.count { output[i] = Double(bitPattern: load(UInt64.self, start + i)) }
        case .float16:
            for i in 0..<range.count { output[i] = Double(MiniFloat.float16ToFloat(load(UInt16.self, start + i))) }
        case .bfloat16:
            for i in 0..<range.count { output[i] = Double(MiniFloat.bfloat16ToFloat(load(UInt16.self, start + i))) }
        case .float8e4m3fn: table(MiniFloat.e4m3fn, width: 8)
        case .float8e4m3fnuz: table(MiniFloat.e4m3fnuz, width: 8)
        case .float8e5m2: table(MiniFloat.e5m2, width: 8)
        case .float8e5m2fnuz: table(MiniFloat.e5m2fnuz, width: 8)
        case .float8e8m0: table(MiniFloat.e8m0, width: 8)
        case .float6e2m3: table(MiniFloat.e2m3, width: 6)
        case .float6e3m2: table(MiniFloat.e3m2, width: 6)
        case .float4e2m1: table(MiniFloat.e2m1, width: 4)
        case .int8: for i in 0..<range.count { output[i] = Double(load(Int8.self, start + i)) }
        case .uint8: for i in 0..<range.count { output[i] = Double(load(UInt8.self, start + i)) }
        case .bool: for i in 0..<range.count { output[i] = load(UInt8.self, start + i) == 0 ? 0 : 1 }
        case .int16: for i in 0..<range.count { output[i] = Double(load(Int16.self, start + i)) }
        case .uint16: for i in 0..<range.count { output[i] = Double(load(UInt16.self, start + i)) }
        case .int32: for i in 0..<range.count { output[i] = Double(load(Int32.self, start + i)) }
        case .uint32: for i in 0..<range.count { output[i] = Double(load(UInt32.self, start + i)) }
        case .int64: for i in 0..<range.count { output[i] = Double(load(Int64.self, start + i)) }
        case .uint64: for i in 0..<range.count { output[i] = Double(load(UInt64.self, start + i)) }
        case .uint4: for i in 0..<range.count { output[i] = Double(bits(start + i, width: 4)) }
        case .int4:
            for i in 0..<range.count { output[i] = Double(Int32(bitPattern: bits(start + i, width: 4) << 28) >> 28) }
        case .uint2: for i in 0..<range.count { output[i] = Double(bits(start + i, width: 2)) }
        case .int2:
            for i in 0..<range.count { output[i] = Double(Int32(bitPattern: bits(start + i, width: 2) << 30) >> 30) }
        case .complex64, .complex128, .string:
            preconditionFailure("unreachable: checked isReal")
        }
    }
}

extension Tensor {
    /// Calls `body` with the values in order, `chunkSize` at a time, as `Double`.
    /// Works for every real dtype with dense storage; does nothing otherwise.
    public func forEachValueChunk(chunkSize: Int = 4096, _ body: (UnsafeBufferPointer<Double>) -> Void) {
        guard dtype.isReal, case .dense(let buffer) = storage else { return }
        let total = count
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: chunkSize)
        defer { scratch.deallocate() }
        buffer.withUnsafeBytes { bytes in
            var start = 0
            while start < total {
                let end = min(start + chunkSize, total)
                dtype.decode(bytes, elements: start..<end, into: scratch)
                body(UnsafeBufferPointer(start: scratch, count: end - start))
                start = end
            }
        }
    }

    /// The values as `Float`. Exact when `dtype.convertsExactlyToFloat32`;
    /// `float64` and wide integers round to nearest. Empty for non-real dtypes.
    public func floatValues() -> [Float] {
        guard dtype.isReal, case .dense(let buffer) = storage else { return [] }
        if dtype == .float32 { return decodedFloats(elements: 0..<buffer.count / 4) }
        var result: [Float] = []
        result.reserveCapacity(count)
        forEachValueChunk { chunk in
            for value in chunk { result.append(Float(value)) }
        }
        return result
    }
}
