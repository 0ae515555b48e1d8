import PithIR

/// The exponent apart from sign and mantissa (the DFloat11 / ZipNN observation: trained weights
/// use few exponents, so the exponent stream codes to a few bits while the mantissa stays ~random).
/// float32: [exponent, sign·2^7 + mantissa bits 22–16, mantissa bits 15–8, mantissa bits 7–0];
/// bfloat16: [exponent, sign·2^7 + mantissa bits 6–0]. The writer splits (`float-split` encoding),
/// the reader joins, whole tensors or a range of elements at a time.
enum FloatSplit {
    static func split(_ bytes: [UInt8], dtype: DType) -> [[UInt8]]? {
        switch dtype {
        case .float32:
            let count = bytes.count / 4
            var e = [UInt8](repeating: 0, count: count), sm = e, mid = e, low = e
            bytes.withUnsafeBytes { raw in
                e.withUnsafeMutableBufferPointer { e in
                    sm.withUnsafeMutableBufferPointer { sm in
                        mid.withUnsafeMutableBufferPointer { mid in
                            low.withUnsafeMutableBufferPointer { low in
                                for i in 0..<count {
                                    let u = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                                    e[i] = UInt8(truncatingIfNeeded: u >> 23)
                                    sm[i] = UInt8(truncatingIfNeeded: (u >> 31) << 7 | (u >> 16) & 0x7F)
                                    mid[i] = UInt8(truncatingIfNeeded: u >> 8)
                                    low[i] = UInt8(truncatingIfNeeded: u)
                                }
                            }
                        }
                    }
                }
            }
            return [e, sm, mid, low]
        case .bfloat16:
            let count = bytes.count / 2
            var e = [UInt8](repeating: 0, count: count), sm = e
            bytes.withUnsafeBytes { raw in
                e.withUnsafeMutableBufferPointer { e in
                    sm.withUnsafeMutableBufferPointer { sm in
                        for i in 0..<count {
                            let u = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                            e[i] = UInt8(truncatingIfNeeded: u >> 7)
                            sm[i] = UInt8(truncatingIfNeeded: (u >> 15) << 7 | u & 0x7F)
                        }
                    }
                }
            }
            return [e, sm]
        default:
            return nil
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
