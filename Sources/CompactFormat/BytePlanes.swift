/// The byte-plane transform of formats/compact.md §5: rotate each W-byte element left by one bit
/// (sign to the lowest bit), then gather byte W−1−k of every element into plane k.
enum BytePlanes {
    /// Splits `n` elements of `width` bytes from `src` into `width` planes of `n` bytes at `dst`
    /// (plane k at `dst + k·n`).
    static func split(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, count n: Int, width: Int) {
        let d = dst.assumingMemoryBound(to: UInt8.self)
        switch width {
        case 2:
            for i in 0..<n {
                let u = src.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self)
                let r = (u &<< 1) | (u &>> 15)
                d[i] = UInt8(truncatingIfNeeded: r &>> 8)
                d[n &+ i] = UInt8(truncatingIfNeeded: r)
            }
        case 4:
            for i in 0..<n {
                let u = src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)
                let r = (u &<< 1) | (u &>> 31)
                d[i] = UInt8(truncatingIfNeeded: r &>> 24)
                d[n &+ i] = UInt8(truncatingIfNeeded: r &>> 16)
                d[2 &* n &+ i] = UInt8(truncatingIfNeeded: r &>> 8)
                d[3 &* n &+ i] = UInt8(truncatingIfNeeded: r)
            }
        case 8:
            for i in 0..<n {
                let u = src.loadUnaligned(fromByteOffset: 8 &* i, as: UInt64.self)
                let r = (u &<< 1) | (u &>> 63)
                for k in 0..<8 { d[k &* n &+ i] = UInt8(truncatingIfNeeded: r &>> UInt64(8 &* (7 &- k))) }
            }
        default:
            preconditionFailure("byte planes of width \(width)")
        }
    }

    /// Reverses ``split(_:_:count:width:)``, reading plane k from `planes[k]` (so raw planes are
    /// read in place from the file, without a copy).
    static func join(_ planes: [UnsafeRawPointer], _ dst: UnsafeMutableRawPointer, count n: Int, width: Int) {
        switch width {
        case 2:
            let p0 = planes[0].assumingMemoryBound(to: UInt8.self), p1 = planes[1].assumingMemoryBound(to: UInt8.self)
            for i in 0..<n {
                let r = UInt16(p0[i]) &<< 8 | UInt16(p1[i])
                dst.storeBytes(of: (r &>> 1) | (r &<< 15), toByteOffset: 2 &* i, as: UInt16.self)
            }
        case 4:
            let p0 = planes[0].assumingMemoryBound(to: UInt8.self), p1 = planes[1].assumingMemoryBound(to: UInt8.self)
            let p2 = planes[2].assumingMemoryBound(to: UInt8.self), p3 = planes[3].assumingMemoryBound(to: UInt8.self)
            for i in 0..<n {
                let r = UInt32(p0[i]) &<< 24 | UInt32(p1[i]) &<< 16 | UInt32(p2[i]) &<< 8 | UInt32(p3[i])
                dst.storeBytes(of: (r &>> 1) | (r &<< 31), toByteOffset: 4 &* i, as: UInt32.self)
            }
        case 8:
            let p = planes.map { $0.assumingMemoryBound(to: UInt8.self) }
            for i in 0..<n {
                var r: UInt64 = 0
                for k in 0..<8 { r = r &<< 8 | UInt64(p[k][i]) }
                dst.storeBytes(of: (r &>> 1) | (r &<< 63), toByteOffset: 8 &* i, as: UInt64.self)
            }
        default:
            preconditionFailure("byte planes of width \(width)")
        }
    }
}
