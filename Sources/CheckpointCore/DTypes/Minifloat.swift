/// Scalar codecs for the 16- and 8-bit floating-point formats, bit-exact with PyTorch:
/// round-to-nearest-even when narrowing, overflow to infinity where the format has one and to NaN
/// where it does not (`F8_E4M3`, the "fn" variant), NaN kept as NaN.
public enum Minifloat {
    // MARK: bfloat16

    @inline(__always) public static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) &<< 16)
    }

    /// Round to nearest even; NaN becomes the canonical quiet NaN 0x7FC0 (as PyTorch does).
    @inline(__always) public static func floatToBF16(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if f.isNaN { return 0x7FC0 }
        return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
    }

    // MARK: float16

    @inline(__always) public static func f16ToFloat(_ bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    @inline(__always) public static func floatToF16(_ f: Float) -> UInt16 {
        Float16(f).bitPattern
    }

    // MARK: 8-bit formats

    /// Parameters of an 8-bit float format.
    public struct Format: Sendable {
        public var exponentBits: Int
        public var mantissaBits: Int
        public var bias: Int
        /// IEEE-style: all-ones exponent is infinity (mantissa 0) or NaN.
        public var hasInfinity: Bool
        /// FNUZ: 0x80 is the only NaN, no negative zero, no infinity.
        public var unsignedZeroNaN: Bool

        public static let e4m3fn = Format(exponentBits: 4, mantissaBits: 3, bias: 7, hasInfinity: false, unsignedZeroNaN: false)
        public static let e5m2 = Format(exponentBits: 5, mantissaBits: 2, bias: 15, hasInfinity: true, unsignedZeroNaN: false)
        public static let e4m3fnuz = Format(exponentBits: 4, mantissaBits: 3, bias: 8, hasInfinity: false, unsignedZeroNaN: true)
        public static let e5m2fnuz = Format(exponentBits: 5, mantissaBits: 2, bias: 16, hasInfinity: false, unsignedZeroNaN: true)

        /// Decodes one byte.
        public func decode(_ b: UInt8) -> Float {
            if unsignedZeroNaN && b == 0x80 { return .nan }
            let negative = b & 0x80 != 0
            let e = Int(b >> UInt8(mantissaBits)) & ((1 << exponentBits) - 1)
            let m = Int(b) & ((1 << mantissaBits) - 1)
            let allOnes = (1 << exponentBits) - 1
            var v: Float
            if hasInfinity && e == allOnes {
                v = m == 0 ? .infinity : .nan
            } else if !hasInfinity && !unsignedZeroNaN && e == allOnes && m == (1 << mantissaBits) - 1 {
                v = .nan  // e4m3fn: S.1111.111
            } else if e == 0 {
                v = Float(m) * Float(sign: .plus, exponent: 1 - bias - mantissaBits, significand: 1)
            } else {
                v = Float(m + (1 << mantissaBits)) * Float(sign: .plus, exponent: e - bias - mantissaBits, significand: 1)
            }
            return negative ? -v : v
        }

        /// Encodes with round-to-nearest-even (IEEE formats and e4m3fn only).
        public func encode(_ f: Float) -> UInt8 {
            let signBit: UInt8 = f.sign == .minus ? 0x80 : 0
            let nanCode: UInt8 = hasInfinity ? 0x7F : 0x7F  // all-ones payload, as PyTorch writes
            if f.isNaN { return nanCode | signBit }
            let x = abs(f)
            let allOnes = (1 << exponentBits) - 1
            // Largest finite code and its value.
            let maxCode = hasInfinity ? UInt8((allOnes - 1) << mantissaBits | ((1 << mantissaBits) - 1))
                                      : UInt8(allOnes << mantissaBits | ((1 << mantissaBits) - 2))
            let overflowCode: UInt8 = hasInfinity ? UInt8(allOnes << mantissaBits) : nanCode
            if x.isInfinite { return overflowCode | signBit }
            let minNormalExponent = 1 - bias
            var code: Int
            if x < Float(sign: .plus, exponent: minNormalExponent, significand: 1) {
                // Subnormal range: quantum 2^(1-bias-M); rounding may carry into the smallest normal.
                let q = (x * Float(sign: .plus, exponent: bias - 1 + mantissaBits, significand: 1)).rounded(.toNearestOrEven)
                code = Int(q)
            } else {
                let u = x.bitPattern
                let shift = UInt32(23 - mantissaBits)
                let rebased = u &- (UInt32(127 - bias) << 23)
                let rounded = (rebased &+ ((1 << (shift - 1)) - 1) &+ ((rebased >> shift) & 1)) >> shift
                code = rounded > 0xFF ? 0xFF : Int(rounded)
            }
            if code > Int(maxCode) { return overflowCode | signBit }
            return UInt8(code) | signBit
        }
    }

    static let e4m3fnTable = (0..<256).map { Format.e4m3fn.decode(UInt8($0)) }
    static let e5m2Table = (0..<256).map { Format.e5m2.decode(UInt8($0)) }
    static let e4m3fnuzTable = (0..<256).map { Format.e4m3fnuz.decode(UInt8($0)) }
    static let e5m2fnuzTable = (0..<256).map { Format.e5m2fnuz.decode(UInt8($0)) }
    static let e8m0Table: [Float] = (0..<256).map { $0 == 255 ? .nan : Float(sign: .plus, exponent: $0 - 127, significand: 1) }
}
