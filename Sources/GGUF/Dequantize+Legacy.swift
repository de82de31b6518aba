/// The 32-element block formats. Within a block, nibble formats store element j (j < 16) in the
/// low nibble of byte j and element j + 16 in its high nibble.
extension Dequantize {
    /// Q4_0: f16 d, 16 B nibbles; x = d·(q − 8).
    static func q4_0(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            for b in 0..<blocks {
                let p = s + b &* 18
                let o = d + b &* 32
                let scale = F16Table.load(p, 0, t)
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 2 &+ j, as: UInt8.self)
                    o[j] = scale * Float(Int8(bitPattern: q & 0x0F) &- 8)
                    o[j &+ 16] = scale * Float(Int8(bitPattern: q >> 4) &- 8)
                }
            }
        }
    }

    /// Q4_1: f16 d, f16 m, 16 B nibbles; x = d·q + m.
    static func q4_1(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            for b in 0..<blocks {
                let p = s + b &* 20
                let o = d + b &* 32
                let scale = F16Table.load(p, 0, t)
                let m = F16Table.load(p, 2, t)
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 4 &+ j, as: UInt8.self)
                    o[j] = scale * Float(q & 0x0F) + m
                    o[j &+ 16] = scale * Float(q >> 4) + m
                }
            }
        }
    }

    /// Q5_0: f16 d, u32 qh (bit j = 5th bit of element j), 16 B nibbles; x = d·(q − 16).
    static func q5_0(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            for b in 0..<blocks {
                let p = s + b &* 22
                let o = d + b &* 32
                let scale = F16Table.load(p, 0, t)
                let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 6 &+ j, as: UInt8.self)
                    let lo = Int32(q & 0x0F) | Int32((qh >> UInt32(j)) & 1) << 4
                    let hi = Int32(q >> 4) | Int32((qh >> UInt32(j &+ 16)) & 1) << 4
                    o[j] = scale * Float(lo &- 16)
                    o[j &+ 16] = scale * Float(hi &- 16)
                }
            }
        }
    }

    /// Q5_1: f16 d, f16 m, u32 qh, 16 B nibbles; x = d·q + m.
    static func q5_1(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            for b in 0..<blocks {
                let p = s + b &* 24
                let o = d + b &* 32
                let scale = F16Table.load(p, 0, t)
                let m = F16Table.load(p, 2, t)
                let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 8 &+ j, as: UInt8.self)
                    let lo = UInt32(q & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
                    let hi = UInt32(q >> 4) | ((qh >> UInt32(j &+ 16)) & 1) << 4
                    o[j] = scale * Float(lo) + m
                    o[j &+ 16] = scale * Float(hi) + m
                }
            }
        }
    }

    /// Q8_0: f16 d, 32 int8; x = q·d.
    static func q8_0(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            for b in 0..<blocks {
                let p = s + b &* 34
                let o = d + b &* 32
                let scale = F16Table.load(p, 0, t)
                for j in 0..<32 {
                    o[j] = Float(p.load(fromByteOffset: 2 &+ j, as: Int8.self)) * scale
                }
            }
        }
    }
}
