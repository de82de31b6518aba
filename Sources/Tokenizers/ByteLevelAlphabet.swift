/// GPT-2's reversible map between bytes and printable characters (`bytes_to_unicode`): printable
/// Latin-1 bytes map to themselves, the other 68 bytes to U+0100 and up, so that every byte
/// sequence becomes a string of visible characters (space becomes `Ġ`, newline `Ċ`).
enum ByteLevelAlphabet {
    /// For each byte, its character's UTF-8 encoding packed as (length, byte 0, byte 1).
    static let encoded: [(UInt8, UInt8, UInt8)] = {
        var table = [(UInt8, UInt8, UInt8)](repeating: (0, 0, 0), count: 256)
        for (byte, scalar) in scalars.enumerated() {
            var utf8: [UInt8] = []
            UTF8Scan.append(scalar, to: &utf8)
            table[byte] = (UInt8(utf8.count), utf8[0], utf8.count > 1 ? utf8[1] : 0)
        }
        return table
    }()

    /// The character for each byte.
    static let scalars: [Unicode.Scalar] = {
        var printable = Set<UInt32>()
        for r in [0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF] as [ClosedRange<UInt32>] { printable.formUnion(r) }
        var out = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if printable.contains(UInt32(b)) {
                out[b] = Unicode.Scalar(UInt8(b))
            } else {
                out[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return out
    }()

    /// The byte for each character of the alphabet (character value → byte + 1; 0 = not in it).
    static let byteForScalar: [UInt16] = {
        var table = [UInt16](repeating: 0, count: 0x144)
        for (b, s) in scalars.enumerated() { table[Int(s.value)] = UInt16(b + 1) }
        return table
    }()

    /// Appends the alphabet encoding of `bytes` to `out`.
    @inline(__always) static func encode(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        encoded.withUnsafeBufferPointer { table in
            for b in bytes {
                let (n, c0, c1) = table[Int(b)]
                out.append(c0)
                if n == 2 { out.append(c1) }
            }
        }
    }

    /// The byte a character stands for, if it is in the alphabet.
    @inline(__always) static func byte(for s: Unicode.Scalar) -> UInt8? {
        let v = Int(s.value)
        guard v < byteForScalar.count, byteForScalar[v] != 0 else { return nil }
        return UInt8(byteForScalar[v] - 1)
    }
}
