/// Decoders for the small floating-point formats. Every value of these
/// formats is exactly representable as `Float`, so decoding is exact.
enum MiniFloat {
    /// IEEE 754 binary16 → Float, exact (subnormals, infinities, NaN payload kept in the top bits).
    @inline(__always)
    static func float16ToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let mantissa = UInt32(bits) & 0x3FF
        if exponent == 0 {
            // Zero or subnormal: mantissa · 2^-24, exact in Float.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// bfloat16 → Float: the top half of a binary32, exact.
    @inline(__always)
    static func bfloat16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// A format of 1 sign bit, `exponentBits` and `mantissaBits` with the
    /// given bias and special-value rule.
    struct Format {
        enum Specials {
            /// All-ones exponent: zero mantissa is infinity, others NaN (IEEE, e.g. E5M2).
            case ieee
            /// Only all-ones exponent and mantissa is NaN; no infinities (E4M3FN).
            case finiteAllOnesNaN
            /// The negative-zero pattern is the only NaN; no infinities, no −0 (…FNUZ).
            case negativeZeroIsNaN
            /// No special values at all (FP6, FP4 of the OCP MX spec).
            case none
        }

        var exponentBits: Int
        var mantissaBits: Int
        var bias: Int
        var specials: Specials

        func decode(_ code: UInt32) -> Float {
            let totalBits = 1 + exponentBits + mantissaBits
            let signBit = (code >> UInt32(totalBits - 1)) & 1
            let exponent = Int((code >> UInt32(mantissaBits)) & ((1 << UInt32(exponentBits)) - 1))
            let mantissa = Int(code & ((1 << UInt32(mantissaBits)) - 1))
            let maxExponent = (1 << exponentBits) - 1
            switch specials {
            case .ieee where exponent == maxExponent:
                if mantissa == 0 { return signBit == 1 ? -.infinity : .infinity }
                return .nan
            case .finiteAllOnesNaN where exponent == maxExponent && mantissa == (1 << mantissaBits) - 1:
                return .nan
            case .negativeZeroIsNaN where signBit == 1 && exponent == 0 && mantissa == 0:
                return .nan
            default: break
            }
            let scale = Float(sign: .plus, exponent: 0, significand: 1)
            var magnitude: Float
            if exponent == 0 {
                magnitude = Float(mantissa) * Float(sign: .plus, exponent: 1 - bias - mantissaBits, significand: scale)
            } else {
                let significand = Float((1 << mantissaBits) + mantissa)
                magnitude = significand * Float(sign: .plus, exponent: exponent - bias - mantissaBits, significand: scale)
            }
            return signBit == 1 ? -magnitude : magnitude
        }

        /// Every code's value, indexed by code.
        func table() -> [Float] {
            (0..<(1 << (1 + exponentBits + mantissaBits))).map { decode(UInt32($0)) }
        }
    }

    static let e4m3fn = Format(exponentBits: 4, mantissaBits: 3, bias: 7, specials: .finiteAllOnesNaN).table()
    static let e4m3fnuz = Format(exponentBits: 4, mantissaBits: 3, bias: 8, specials: .negativeZeroIsNaN).table()
    static let e5m2 = Format(exponentBits: 5, mantissaBits: 2, bias: 15, specials: .ieee).table()
    static let e5m2fnuz = Format(exponentBits: 5, mantissaBits: 2, bias: 16, specials: .negativeZeroIsNaN).table()
    static let e2m3 = Format(exponentBits: 2, mantissaBits: 3, bias: 1, specials: .none).table()
    static let e3m2 = Format(exponentBits: 3, mantissaBits: 2, bias: 3, specials: .none).table()
    static let e2m1 = Format(exponentBits: 2, mantissaBits: 1, bias: 1, specials: .none).table()

    /// E8M0: an unsigned power of two, 2^(code − 127); 0xFF is NaN.
    static let e8m0: [Float] = (0..<256).map { code in
        code == 0xFF ? .nan : Float(sign: .plus, exponent: code - 127, significand: 1)
    }
}
