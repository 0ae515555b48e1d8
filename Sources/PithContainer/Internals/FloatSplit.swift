import PithIR

/// The exponent apart from sign and mantissa (the DFloat11 / ZipNN observation: trained weights
/// use few exponents, so the exponent stream codes to a few bits while the mantissa stays ~random).
/// float32: [exponent, sign·2^7 + mantissa bits 22–16, mantissa bits 15–8, mantissa bits 7–0];
/// bfloat16: [exponent, sign·2^7 + mantissa bits 6–0]. The writer splits (`float-split` encoding),
/// the reader joins, whole tensors or a range of elements at a time.
enum FloatSplit {
    static func split(_ bytes: [UInt8], dtype: DType) -> [[UInt8]]? {
        bytes.withUnsafeBytes { split($0, dtype: dtype) }
    }

    static func split(_ raw: UnsafeRawBufferPointer, dtype: DType) -> [[UInt8]]? {
        switch dtype {
        case .float32: return (0..<4).map { field($0, of: raw, dtype: dtype) }
        case .bfloat16: return (0..<2).map { field($0, of: raw, dtype: dtype) }
        default: return nil
        }
    }

    /// Field `k` of `split` alone (float32: 0 exponent, 1 sign-mantissa high, 2 and 3 the lower
    /// mantissa bytes; bfloat16: 0 exponent, 1 sign-mantissa), so that the writer holds one field at
    /// a time.
    static func field(_ k: Int, of raw: UnsafeRawBufferPointer, dtype: DType) -> [UInt8] {
        let width = dtype == .float32 ? 4 : 2
        let count = raw.count / width
        return [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            initialized = count
            guard count > 0, let base = raw.baseAddress, let output = out.baseAddress else { return }
            if dtype == .float32 {
                switch k {
                case 0: extract(base, count, into: output) { (u: SIMD16<UInt32>) in u &>> 23 }
                case 1: extract(base, count, into: output) { (u: SIMD16<UInt32>) in (u &>> 31) &<< 7 | (u &>> 16) & 0x7F }
                default:
                    // Fields 2 and 3 are bytes 1 and 0 of the element.
                    let shift = UInt32(8 * (3 - k))
                    extract(base, count, into: output) { (u: SIMD16<UInt32>) in u &>> shift }
                }
            } else {
                if k == 0 {
                    extract(base, count, into: output) { (u: SIMD16<UInt16>) in u &>> 7 }
                } else {
                    extract(base, count, into: output) { (u: SIMD16<UInt16>) in (u &>> 15) &<< 7 | u & 0x7F }
                }
            }
        }
    }

    /// `out[i]` = the low byte of `f` of element `i` (little-endian, of `Lanes.Scalar`), for
    /// `count` elements from `base`: sixteen at a time as vectors, then one at a time.
    @inline(__always)
    private static func extract<Lanes: SIMD>(
        _ base: UnsafeRawPointer, _ count: Int, into out: UnsafeMutablePointer<UInt8>, _ f: (Lanes) -> Lanes
    ) where Lanes.Scalar: FixedWidthInteger & UnsignedInteger, Lanes.MaskStorage.Scalar: FixedWidthInteger {
        let size = MemoryLayout<Lanes.Scalar>.size
        var i = 0
        while i + 16 <= count {
            let lanes = f(base.loadUnaligned(fromByteOffset: i * size, as: Lanes.self))
            for j in 0..<16 { out[i + j] = UInt8(truncatingIfNeeded: lanes[j]) }
            i += 16
        }
        while i < count {
            var one = Lanes()
            one[0] = Lanes.Scalar(littleEndian: base.loadUnaligned(fromByteOffset: i * size, as: Lanes.Scalar.self))
            out[i] = UInt8(truncatingIfNeeded: f(one)[0])
            i += 1
        }
    }

    /// Every histogram the writer's choice of encoding needs, in one pass over the element bytes:
    /// one per byte position (`planes`; their sum is the histogram of the raw bytes, `dense`) and,
    /// for float32 and bfloat16, the exponent and sign-mantissa fields (`float-split`; its other
    /// fields are byte positions 1 and 0). `width` is the element's byte count, or 1 to count every
    /// byte as one position (then no fields).
    static func histograms(_ raw: UnsafeRawBufferPointer, dtype: DType, width: Int) -> (positions: [[Int]], fields: [[Int]]?) {
        let count = raw.count / width
        var positions = [[Int]](repeating: [Int](repeating: 0, count: 256), count: width)
        switch dtype {
        case .float32 where width == 4 && count >= 1 << 16:
            // Large: the top 16 bits (sign, exponent, 7 mantissa bits) counted as one symbol, from
            // which positions 3 and 2 and both fields follow, and the two low bytes apart: three
            // counts per element instead of six.
            var top = [UInt32](repeating: 0, count: 1 << 16)
            var low = [UInt32](repeating: 0, count: 2 * 256)
            precondition(count < Int(UInt32.max), "histograms: too many elements for 32-bit counters")
            top.withUnsafeMutableBufferPointer { top in
                low.withUnsafeMutableBufferPointer { low in
                    let t = top.baseAddress!, l = low.baseAddress!
                    for i in 0..<count {
                        let u = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                        t[Int(u >> 16)] &+= 1
                        l[Int(u & 0xFF)] &+= 1
                        l[256 + Int(u >> 8 & 0xFF)] &+= 1
                    }
                }
            }
            var sums = [[Int]](repeating: [Int](repeating: 0, count: 256), count: 6)
            for v in 0..<(1 << 16) where top[v] > 0 {
                let n = Int(top[v])
                sums[2][v & 0xFF] += n
                sums[3][v >> 8] += n
                sums[4][v >> 7 & 0xFF] += n
                sums[5][(v >> 15) << 7 | v & 0x7F] += n
            }
            for s in 0..<256 {
                sums[0][s] = Int(low[s])
                sums[1][s] = Int(low[256 + s])
            }
            for k in 0..<4 { positions[k] = sums[k] }
            return (positions, [sums[4], sums[5], positions[1], positions[0]])
        case .float32 where width == 4:
            // Two sets of tables, for even and odd elements: trained weights have few exponents, and
            // counting one element into the counter the previous one just raised waits for it.
            var t = [UInt32](repeating: 0, count: 2 * 6 * 256)
            precondition(count < Int(UInt32.max), "histograms: too many elements for 32-bit counters")
            t.withUnsafeMutableBufferPointer { t in
                @inline(__always) func tally(_ u: UInt32, _ c: UnsafeMutablePointer<UInt32>) {
                    c[Int(u & 0xFF)] &+= 1
                    c[256 + Int(u >> 8 & 0xFF)] &+= 1
                    c[512 + Int(u >> 16 & 0xFF)] &+= 1
                    c[768 + Int(u >> 24)] &+= 1
                    c[1024 + Int(u >> 23 & 0xFF)] &+= 1
                    c[1280 + Int((u >> 31) << 7 | (u >> 16) & 0x7F)] &+= 1
                }
                let even = t.baseAddress!, odd = even + 6 * 256
                var i = 0
                while i + 1 < count {
                    let pair = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt64.self))
                    tally(UInt32(truncatingIfNeeded: pair), even)
                    tally(UInt32(truncatingIfNeeded: pair >> 32), odd)
                    i += 2
                }
                if i < count { tally(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)), even) }
            }
            let sums = (0..<6).map { k in (0..<256).map { Int(t[256 * k + $0]) + Int(t[6 * 256 + 256 * k + $0]) } }
            for k in 0..<4 { positions[k] = sums[k] }
            return (positions, [sums[4], sums[5], positions[1], positions[0]])
        case .bfloat16 where width == 2:
            var t = [Int](repeating: 0, count: 4 * 256)
            t.withUnsafeMutableBufferPointer { t in
                let c = t.baseAddress!
                for i in 0..<count {
                    let u = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    c[Int(u & 0xFF)] &+= 1
                    c[256 + Int(u >> 8)] &+= 1
                    c[512 + Int(u >> 7 & 0xFF)] &+= 1
                    c[768 + Int((u >> 15) << 7 | u & 0x7F)] &+= 1
                }
            }
            for k in 0..<2 { positions[k] = Array(t[256 * k..<256 * (k + 1)]) }
            return (positions, [Array(t[512..<768]), Array(t[768..<1024])])
        default:
            let bytes = raw.bindMemory(to: UInt8.self)
            for k in 0..<width {
                positions[k].withUnsafeMutableBufferPointer { c in
                    var i = k
                    while i < count * width {
                        c[Int(bytes[i])] &+= 1
                        i += width
                    }
                }
            }
            return (positions, nil)
        }
    }

    /// Byte position `k` of every `width`-byte element (a `planes` stream).
    static func plane(_ raw: UnsafeRawBufferPointer, position k: Int, width: Int) -> [UInt8] {
        let count = raw.count / width
        return [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            for i in 0..<count { out[i] = raw[i * width + k] }
            initialized = count
        }
    }

    /// Inverse of `split`: the little-endian element bytes, in a tensor buffer.
    static func join(_ parts: [[UInt8]], dtype: DType, count: Int) -> TensorBuffer {
        func withBuffers(_ done: [UnsafeBufferPointer<UInt8>]) -> TensorBuffer {
            done.count == parts.count
                ? join(done, dtype: dtype, count: count)
                : parts[done.count].withUnsafeBufferPointer { withBuffers(done + [$0]) }
        }
        return withBuffers([])
    }

    static func join(_ parts: [UnsafeBufferPointer<UInt8>], dtype: DType, count: Int) -> TensorBuffer {
        TensorBuffer(count: count * dtype.bitWidth / 8) { out in
            join(parts, dtype: dtype, range: 0..<count, into: out.baseAddress!)
        }
    }

    /// Elements `range` of the split `parts`, joined into `out` (which receives `range.count` elements).
    static func join(_ parts: [UnsafeBufferPointer<UInt8>], dtype: DType, range: Range<Int>, into out: UnsafeMutableRawPointer) {
        switch dtype {
        case .float32:
            let (e, sm, mid, low) = (parts[0], parts[1], parts[2], parts[3])
            var o = out
            for i in range {
                let u = UInt32(e[i]) << 23 | UInt32(sm[i] >> 7) << 31 | UInt32(sm[i] & 0x7F) << 16 | UInt32(mid[i]) << 8 | UInt32(low[i])
                o.storeBytes(of: u.littleEndian, as: UInt32.self)
                o += 4
            }
        case .bfloat16:
            let (e, sm) = (parts[0], parts[1])
            var o = out
            for i in range {
                let u = UInt16(e[i]) << 7 | UInt16(sm[i] >> 7) << 15 | UInt16(sm[i] & 0x7F)
                o.storeBytes(of: u.littleEndian, as: UInt16.self)
                o += 2
            }
        default: break
        }
    }
}
