/// The 256-element super-block ("K-quant") formats, after ggml-quants.c and gguf-py's quants.py.
extension Dequantize {
    /// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64] (2-bit), f16 d, f16 dmin.
    /// Element e = h·128 + s·32 + l takes bits 2s..2s+1 of qs[h·32 + l]; sub-block e / 16;
    /// x = (d·sc)·q − (dmin·m).
    static func q2_K(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            var table = [Float](repeating: 0, count: 32)  // 16 scales, then 16 mins
            table.withUnsafeMutableBufferPointer { tb in
                let dlp = tb.baseAddress!, mlp = tb.baseAddress! + 16
                for b in 0..<blocks {
                    let p = s + b &* 84
                    let o = d + b &* 256
                    let scale = F16Table.load(p, 80, t)
                    let dmin = F16Table.load(p, 82, t)
                    for i in 0..<16 {
                        let sc = p.load(fromByteOffset: i, as: UInt8.self)
                        dlp[i] = scale * Float(sc & 0x0F)
                        mlp[i] = dmin * Float(sc >> 4)
                    }
                    for h in 0..<2 {
                        for sh in 0..<4 {
                            let base = h &* 128 &+ sh &* 32
                            for l in 0..<32 {
                                let q = (p.load(fromByteOffset: 16 &+ h &* 32 &+ l, as: UInt8.self) >> UInt8(2 &* sh)) & 3
                                let e = base &+ l
                                o[e] = dlp[e >> 4] * Float(q) - mlp[e >> 4]
                            }
                        }
                    }
                }
            }
        }
    }

    /// Q3_K: hmask[32], qs[64] (low 2 bits), scales[12] (16 six-bit scales), f16 d.
    /// Low bits as Q2_K; the high bit of element e is bit e / 32 of hmask[e % 32], and a clear bit
    /// subtracts 4. Scale i = (low 4 bits | high 2 bits << 4) − 32; x = (d·scale)·q.
    static func q3_K(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            var dl = [Float](repeating: 0, count: 16)
            dl.withUnsafeMutableBufferPointer { dlb in
                let dlp = dlb.baseAddress!
                for b in 0..<blocks {
                    let p = s + b &* 110
                    let o = d + b &* 256
                    let scale = F16Table.load(p, 108, t)
                    let sp = p + 96
                    for i in 0..<16 {
                        let low = (sp.load(fromByteOffset: i & 7, as: UInt8.self) >> UInt8(4 &* (i >> 3))) & 0x0F
                        let high = (sp.load(fromByteOffset: 8 &+ (i & 3), as: UInt8.self) >> UInt8(2 &* (i >> 2))) & 0x03
                        let sc = Int8(bitPattern: low | high << 4) &- 32
                        dlp[i] = scale * Float(sc)
                    }
                    for h in 0..<2 {
                        let qs = p + (32 &+ h &* 32), oh = o + h &* 128, sc = dlp + h &* 8
                        let hb = UInt8(h &* 4)
                        for l in 0..<32 {
                            let q = qs.load(fromByteOffset: l, as: UInt8.self)
                            let m = p.load(fromByteOffset: l, as: UInt8.self) >> hb
                            let i = l >> 4
                            // A clear hmask bit subtracts 4.
                            oh[l] = sc[i] * Float(Int8(bitPattern: q & 3) &- Int8(bitPattern: (~m & 1) << 2))
                            oh[l &+ 32] = sc[i &+ 2] * Float(Int8(bitPattern: (q >> 2) & 3) &- Int8(bitPattern: (~(m >> 1) & 1) << 2))
                            oh[l &+ 64] = sc[i &+ 4] * Float(Int8(bitPattern: (q >> 4) & 3) &- Int8(bitPattern: (~(m >> 2) & 1) << 2))
                            oh[l &+ 96] = sc[i &+ 6] * Float(Int8(bitPattern: (q >> 6) & 3) &- Int8(bitPattern: (~(m >> 3) & 1) << 2))
                        }
                    }
                }
            }
        }
    }

    /// The eight 6-bit (scale, min) pairs of Q4_K and Q5_K, packed in 12 bytes.
    @inline(__always)
    static func scaleMin(_ sp: UnsafeRawPointer, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 {
            return (sp.load(fromByteOffset: j, as: UInt8.self) & 0x3F, sp.load(fromByteOffset: j &+ 4, as: UInt8.self) & 0x3F)
        }
        let md = sp.load(fromByteOffset: j &+ 4, as: UInt8.self)
        let dd = sp.load(fromByteOffset: j &- 4, as: UInt8.self)
        let mm = sp.load(fromByteOffset: j, as: UInt8.self)
        return ((md & 0x0F) | ((dd >> 2) & 0x30), (md >> 4) | ((mm >> 2) & 0x30))
    }

    /// Q4_K: f16 d, f16 dmin, scales[12], qs[128]. Element e = c·64 + k·32 + l is nibble k of
    /// qs[c·32 + l]; sub-block e / 32; x = (d·sc)·q − (dmin·m).
    static func q4_K(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            for b in 0..<blocks {
                let p = s + b &* 144
                let o = d + b &* 256
                let scale = F16Table.load(p, 0, t)
                let dmin = F16Table.load(p, 2, t)
                for j in 0..<8 {
                    let (sc, m) = scaleMin(p + 4, j)
                    let dd = scale * Float(sc)
                    let dm = dmin * Float(m)
                    let qp = p + (16 &+ (j >> 1) &* 32)
                    let shift = UInt8(4 &* (j & 1))
                    let oo = o + j &* 32
                    for l in 0..<32 {
                        let q = (qp.load(fromByteOffset: l, as: UInt8.self) >> shift) & 0x0F
                        oo[l] = dd * Float(q) - dm
                    }
                }
            }
        }
    }

    /// Q5_K: f16 d, f16 dmin, scales[12], qh[32], qs[128]. Low nibbles as Q4_K; the fifth bit of
    /// element e is bit e / 32 of qh[e % 32].
    static func q5_K(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            for b in 0..<blocks {
                let p = s + b &* 176
                let o = d + b &* 256
                let scale = F16Table.load(p, 0, t)
                let dmin = F16Table.load(p, 2, t)
                for j in 0..<8 {
                    let (sc, m) = scaleMin(p + 4, j)
                    let dd = scale * Float(sc)
                    let dm = dmin * Float(m)
                    let qp = p + (48 &+ (j >> 1) &* 32)
                    let shift = UInt8(4 &* (j & 1))
                    let oo = o + j &* 32
                    for l in 0..<32 {
                        let lo = (qp.load(fromByteOffset: l, as: UInt8.self) >> shift) & 0x0F
                        let hi = (p.load(fromByteOffset: 16 &+ l, as: UInt8.self) >> UInt8(j)) & 1
                        oo[l] = dd * Float(lo | hi << 4) - dm
                    }
                }
            }
        }
    }

    /// Q6_K: ql[128], qh[64], scales[16] (int8), f16 d. Element e = h·128 + k·64 + l (l < 64) has
    /// low nibble k of ql[h·64 + l]; e = h·128 + s·32 + l (l < 32) has high bits 2s..2s+1 of
    /// qh[h·32 + l]; x = (d·scale[e / 16])·(q − 32).
    static func q6_K(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ blocks: Int) {
        F16Table.with { t in
            var ds = [Float](repeating: 0, count: 16)
            ds.withUnsafeMutableBufferPointer { dsb in
                let dsp = dsb.baseAddress!
                for b in 0..<blocks {
                    let p = s + b &* 210
                    let o = d + b &* 256
                    let scale = F16Table.load(p, 208, t)
                    for i in 0..<16 { dsp[i] = scale * Float(p.load(fromByteOffset: 192 &+ i, as: Int8.self)) }
                    for h in 0..<2 {
                        let ql = p + h &* 64, qh = p + (128 &+ h &* 32), oh = o + h &* 128, sc = dsp + h &* 8
                        for l in 0..<32 {
                            let a = ql.load(fromByteOffset: l, as: UInt8.self)
                            let b = ql.load(fromByteOffset: l &+ 32, as: UInt8.self)
                            let c = qh.load(fromByteOffset: l, as: UInt8.self)
                            let i = l >> 4
                            oh[l] = sc[i] * Float(Int8(bitPattern: (a & 0x0F) | (c & 3) << 4) &- 32)
                            oh[l &+ 32] = sc[i &+ 2] * Float(Int8(bitPattern: (b & 0x0F) | ((c >> 2) & 3) << 4) &- 32)
                            oh[l &+ 64] = sc[i &+ 4] * Float(Int8(bitPattern: (a >> 4) | ((c >> 4) & 3) << 4) &- 32)
                            oh[l &+ 96] = sc[i &+ 6] * Float(Int8(bitPattern: (b >> 4) | ((c >> 6) & 3) << 4) &- 32)
                        }
                    }
                }
            }
        }
    }
}
