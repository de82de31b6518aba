import CICU

/// UTF-8 scanning over bytes known to be valid UTF-8.
enum UTF8Scan {
    /// The length of the sequence that starts with `lead` (1 for stray continuation bytes).
    @inline(__always) static func scalarLength(lead: UInt8) -> Int {
        if lead < 0x80 { return 1 }
        if lead < 0xE0 { return lead < 0xC0 ? 1 : 2 }
        return lead < 0xF0 ? 3 : 4
    }

    /// Decodes the scalar at `i`; returns it and its length.
    @inline(__always) static func decode(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> (Unicode.Scalar, Int) {
        let c0 = UInt32(b[i])
        if c0 < 0x80 { return (Unicode.Scalar(UInt8(c0)), 1) }
        let n = scalarLength(lead: b[i])
        var v: UInt32
        switch n {
        case 2: v = c0 & 0x1F
        case 3: v = c0 & 0x0F
        case 4: v = c0 & 0x07
        default: return ("\u{FFFD}", 1)
        }
        guard i + n <= b.count else { return ("\u{FFFD}", 1) }
        for k in 1..<n { v = v << 6 | (UInt32(b[i + k]) & 0x3F) }
        return (Unicode.Scalar(v) ?? "\u{FFFD}", n)
    }

    /// Appends the UTF-8 encoding of `s` to `out`.
    @inline(__always) static func append(_ s: Unicode.Scalar, to out: inout [UInt8]) {
        let v = s.value
        if v < 0x80 { out.append(UInt8(v)) }
        else if v < 0x800 {
            out.append(UInt8(0xC0 | v >> 6)); out.append(UInt8(0x80 | v & 0x3F))
        } else if v < 0x10000 {
            out.append(UInt8(0xE0 | v >> 12)); out.append(UInt8(0x80 | (v >> 6) & 0x3F))
            out.append(UInt8(0x80 | v & 0x3F))
        } else {
            out.append(UInt8(0xF0 | v >> 18)); out.append(UInt8(0x80 | (v >> 12) & 0x3F))
            out.append(UInt8(0x80 | (v >> 6) & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        }
    }

    /// The scalars of valid UTF-8 bytes.
    static func scalars(_ bytes: [UInt8]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        bytes.withUnsafeBufferPointer { b in
            var i = 0
            while i < b.count { let (s, n) = decode(b, at: i); out.append(s); i += n }
        }
        return out
    }

    static func isASCII(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        guard let p = b.baseAddress else { return true }
        let raw = UnsafeRawPointer(p)
        while i + 8 <= n {
            if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            i += 8
        }
        while i < n { if b[i] >= 0x80 { return false }; i += 1 }
        return true
    }
}

/// Character classes with the meaning the `tokenizers` library (Rust) gives them.
enum CharacterClass {
    /// Rust `char::is_whitespace`: the Unicode White_Space property.
    @inline(__always) static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x80 { return s.value == 0x20 || (s.value >= 0x09 && s.value <= 0x0D) }
        return s.properties.isWhitespace
    }

    /// Rust `char::is_numeric`: general categories Nd, Nl and No.
    @inline(__always) static func isNumeric(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x80 { return s.value >= 0x30 && s.value <= 0x39 }
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// The library's punctuation test: ASCII punctuation (which includes symbols such as `$+<=>^|~`)
    /// or any Unicode punctuation category (Pc, Pd, Ps, Pe, Pi, Pf, Po).
    @inline(__always) static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 {
            return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60)
                || (v >= 0x7B && v <= 0x7E)
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    /// The Rust `regex` crate's Unicode `\w`: Alphabetic, marks, decimal digits, connector
    /// punctuation and Join_Control.
    @inline(__always) static func isWord(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 {
            return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x5F
        }
        let p = s.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}

/// Unicode normalization forms, computed by ICU (the system's libicu).
///
/// The `tokenizers` library uses its own tables (from the `unicode-normalization` crate); both
/// implement the same Unicode algorithm, so results agree except for characters whose
/// decompositions differ between the two Unicode versions.
enum NormalizationForm: Sendable {
    case nfc, nfd, nfkc, nfkd

    private struct Instance: @unchecked Sendable { let pointer: OpaquePointer? }

    private static let instances: [Instance] = {
        func get(_ f: (UnsafeMutablePointer<UErrorCode>) -> OpaquePointer?) -> Instance {
            var status = U_ZERO_ERROR
            let p = f(&status)
            return Instance(pointer: status.rawValue <= 0 ? p : nil)
        }
        return [get { shears_icu_nfc($0) }, get { shears_icu_nfd($0) }, get { shears_icu_nfkc($0) },
                get { shears_icu_nfkd($0) }]
    }()

    private var instance: OpaquePointer? {
        switch self {
        case .nfc: Self.instances[0].pointer
        case .nfd: Self.instances[1].pointer
        case .nfkc: Self.instances[2].pointer
        case .nfkd: Self.instances[3].pointer
        }
    }

    /// Normalizes UTF-8 text. ASCII text is returned as is (it is invariant under all four forms).
    func apply(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.withUnsafeBufferPointer({ UTF8Scan.isASCII($0) }) { return bytes }
        guard let normalizer = instance else { return bytes }
        let utf16 = Array(String(decoding: bytes, as: UTF8.self).utf16)
        var capacity = utf16.count * 3 + 16
        while true {
            var status = U_ZERO_ERROR
            var out = [UInt16](repeating: 0, count: capacity)
            let n = utf16.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    shears_icu_normalize(normalizer, src.baseAddress, Int32(src.count), dst.baseAddress,
                                         Int32(dst.count), &status)
                }
            }
            if status == U_BUFFER_OVERFLOW_ERROR { capacity = Int(n) + 16; continue }
            if status.rawValue > 0 { return bytes }
            return Array(String(decoding: out[0..<Int(n)], as: UTF16.self).utf8)
        }
    }
}
