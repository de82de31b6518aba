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

    /// The same bits as ``floatToF16(_:)`` (round to nearest even, NaN payload kept as
    /// compiler-rt's `__truncsfhf2` keeps it), in integer arithmetic the optimizer can vectorize:
    /// `Float16(Float)` is a library call on baseline x86-64 (~5× slower).
    @inline(__always) public static func floatToF16Bits(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let a = x & 0x7FFF_FFFF
        let result: UInt32
        if a > 0x7F80_0000 {  // NaN: quiet, top 9 payload bits
            result = 0x7E00 | ((a & 0x3F_FFFF) >> 13)
        } else if a >= 0x4780_0000 {  // >= 65536 (or inf): infinity
            result = 0x7C00
        } else if a < 0x3880_0000 {  // below 2^-14: subnormal or zero; the float adder rounds
            let magic: UInt32 = ((127 - 15) + (23 - 10) + 1) << 23
            result = (Float(bitPattern: a) + Float(bitPattern: magic)).bitPattern &- magic
        } else {  // normal: rebias, round to nearest even (may carry into infinity)
            let odd = (a >> 13) & 1
            result = (a &+ (UInt32(bitPattern: 15 - 127) << 23) &+ 0xFFF &+ odd) >> 13
        }
        return sign | UInt16(truncatingIfNeeded: result)
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

        /// Encodes with round-to-nearest-even, as PyTorch does: IEEE formats (`e5m2`) overflow to
        /// infinity; `e4m3fn` saturates finite overflow and infinities to ±448; FNUZ formats map
        /// NaN, infinities and overflow to their one NaN (0x80) and zero to +0.
        public func encode(_ f: Float) -> UInt8 {
            let signBit: UInt8 = f.sign == .minus ? 0x80 : 0
            let allOnes = (1 << exponentBits) - 1
            let fnuzNaN: UInt8 = 0x80
            if f.isNaN { return unsignedZeroNaN ? fnuzNaN : 0x7F | signBit }
            // Largest finite code.
            let maxCode: UInt8 = hasInfinity ? UInt8((allOnes - 1) << mantissaBits | ((1 << mantissaBits) - 1))
                : unsignedZeroNaN ? 0x7F : UInt8(allOnes << mantissaBits | ((1 << mantissaBits) - 2))
            let overflow: UInt8 = hasInfinity ? UInt8(allOnes << mantissaBits) | signBit
                : unsignedZeroNaN ? fnuzNaN : maxCode | signBit
            if f.isInfinite { return overflow }
            let x = abs(f)
            var code: Int
            if x < Float(sign: .plus, exponent: 1 - bias, significand: 1) {
                // Subnormal range: quantum 2^(1-bias-M); rounding may carry into the smallest normal.
                code = Int((x * Float(sign: .plus, exponent: bias - 1 + mantissaBits, significand: 1)).rounded(.toNearestOrEven))
            } else {
                let u = x.bitPattern
                let shift = UInt32(23 - mantissaBits)
                let rebased = u &- (UInt32(127 - bias) << 23)
                let rounded = (rebased &+ ((1 << (shift - 1)) - 1) &+ ((rebased >> shift) & 1)) >> shift
                code = rounded > 0xFF ? 0xFF : Int(rounded)
            }
            if code > Int(maxCode) { return overflow }
            if code == 0 && unsignedZeroNaN { return 0 }
            return UInt8(code) | signBit
        }
    }

    /// E8M0 (an MX scale: a power of two, 2^(e-127)) as PyTorch rounds it: the sign is ignored,
    /// a significand of 1.5 or more rounds up (subnormals too: to 2^-126 or down to 0x00), and NaN,
    /// infinities and overflow become 0xFF (NaN).
    @inline(__always) public static func floatToE8M0(_ f: Float) -> UInt8 {
        if !f.isFinite { return 0xFF }
        let u = f.bitPattern & 0x7FFF_FFFF
        let e = Int(u >> 23)
        let up = (u & 0x7F_FFFF) >= 0x40_0000 ? 1 : 0
        return UInt8(min(255, e + up))
    }

    /// F4 (OCP MXFP4 E2M1) values of the 16 codes.
    static let f4Table: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    static let e4m3fnTable = (0..<256).map { Format.e4m3fn.decode(UInt8($0)) }
    static let e5m2Table = (0..<256).map { Format.e5m2.decode(UInt8($0)) }
    static let e4m3fnuzTable = (0..<256).map { Format.e4m3fnuz.decode(UInt8($0)) }
    static let e5m2fnuzTable = (0..<256).map { Format.e5m2fnuz.decode(UInt8($0)) }
    static let e8m0Table: [Float] = (0..<256).map { $0 == 255 ? .nan : Float(sign: .plus, exponent: $0 - 127, significand: 1) }
}
