import CKernels

/// Bulk conversion between a dtype's little-endian bytes and `Float`.
///
/// These loops are the hot path of every conversion and every weight load, so they run over raw
/// buffers (unaligned loads: safetensors data need not be aligned) and are written so that the
/// optimizer vectorizes them. Entry points check that the byte and element counts agree.
public enum DTypeConversion {
    /// Whether half floats convert in hardware (F16C); otherwise Swift's `Float16`, which without
    /// `-target-cpu` code generation is a software routine, about 6× slower.
    public static let hasF16C = shears_has_f16c() != 0

    /// Decodes `source` (elements of `dtype`, little-endian) into `destination`.
    /// - Throws: `unsupportedConversion` for complex and sub-byte types; `shapeMismatch` when the
    ///   byte count is not `destination.count` elements.
    public static func decode(_ source: UnsafeRawBufferPointer, as dtype: DType,
                              into destination: UnsafeMutableBufferPointer<Float>) throws(CheckpointError) {
        let n = destination.count
        if dtype == .f4 {
            // Two elements per byte, element 2i in the low nibble of byte i.
            guard n % 2 == 0, source.count == n / 2 else {
                throw CheckpointError(.shapeMismatch, "\(source.count) bytes of F4 do not hold \(n) elements")
            }
            Minifloat.f4Table.withUnsafeBufferPointer { t in
                for i in 0..<(n / 2) {
                    let b = source[i]
                    destination[2 * i] = t[Int(b & 0x0F)]
                    destination[2 * i + 1] = t[Int(b >> 4)]
                }
            }
            return
        }
        guard dtype.convertsToFloat32, let width = dtype.byteSize else {
            throw CheckpointError(.unsupportedConversion, "cannot convert \(dtype.rawValue) to F32: no conversion is defined for this type")
        }
        guard source.count == n * width else {
            throw CheckpointError(.shapeMismatch, "\(source.count) bytes of \(dtype.rawValue) do not hold \(n) elements")
        }
        guard n > 0, let s = source.baseAddress, let d = destination.baseAddress else { return }
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(d).copyMemory(from: s, byteCount: n * 4)
        case .bf16:
            d.withMemoryRebound(to: UInt32.self, capacity: n) { d32 in
                for i in 0..<n { d32[i] = UInt32(s.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self)) &<< 16 }
            }
        case .f16:
            if hasF16C { shears_f16_to_f32(s, d, n) } else { softwareF16ToF32(s, d, n) }
        case .f64:
            for i in 0..<n { d[i] = Float(s.loadUnaligned(fromByteOffset: 8 &* i, as: Double.self)) }
        case .f8E4M3: lookup(s, d, n, Minifloat.e4m3fnTable)
        case .f8E5M2: lookup(s, d, n, Minifloat.e5m2Table)
        case .f8E4M3FNUZ: lookup(s, d, n, Minifloat.e4m3fnuzTable)
        case .f8E5M2FNUZ: lookup(s, d, n, Minifloat.e5m2fnuzTable)
        case .f8E8M0: lookup(s, d, n, Minifloat.e8m0Table)
        case .bool:
            for i in 0..<n { d[i] = s.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
        case .u8: for i in 0..<n { d[i] = Float(s.load(fromByteOffset: i, as: UInt8.self)) }
        case .i8: for i in 0..<n { d[i] = Float(s.load(fromByteOffset: i, as: Int8.self)) }
        case .u16: for i in 0..<n { d[i] = Float(s.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self)) }
        case .i16: for i in 0..<n { d[i] = Float(s.loadUnaligned(fromByteOffset: 2 &* i, as: Int16.self)) }
        case .u32: for i in 0..<n { d[i] = Float(s.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)) }
        case .i32: for i in 0..<n { d[i] = Float(s.loadUnaligned(fromByteOffset: 4 &* i, as: Int32.self)) }
        case .u64: for i in 0..<n { d[i] = Float(s.loadUnaligned(fromByteOffset: 8 &* i, as: UInt64.self)) }
        case .i64: for i in 0..<n { d[i] = Float(s.loadUnaligned(fromByteOffset: 8 &* i, as: Int64.self)) }
        case .f4, .f6E2M3, .f6E3M2, .c64:
            break  // handled or excluded above
        }
    }

    /// The portable half-float paths (Swift `Float16`), used where the CPU lacks F16C.
    static func softwareF16ToF32(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { d[i] = Float(Float16(bitPattern: s.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self))) }
    }

    static func softwareF32ToF16(_ s: UnsafePointer<Float>, _ d: UnsafeMutableRawPointer, _ n: Int) {
        // Integer arithmetic, bit-identical to Float16(Float) (a library call on baseline x86-64).
        for i in 0..<n { d.storeBytes(of: Minifloat.floatToF16Bits(s[i]).littleEndian, toByteOffset: 2 &* i, as: UInt16.self) }
    }

    @inline(__always)
    private static func lookup(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ n: Int, _ table: [Float]) {
        table.withUnsafeBufferPointer { t in
            for i in 0..<n { d[i] = t[Int(s.load(fromByteOffset: i, as: UInt8.self))] }
        }
    }

    /// Encodes `source` as `dtype` into `destination` (little-endian), rounding to nearest even when
    /// narrowing. Integer targets round to nearest even and saturate at the type's range.
    /// - Throws: `unsupportedConversion` for types with no encoder; `unrepresentableValue` for NaN
    ///   into an integer type; `shapeMismatch` when the sizes disagree.
    public static func encode(_ source: UnsafeBufferPointer<Float>, as dtype: DType,
                              into destination: UnsafeMutableRawBufferPointer) throws(CheckpointError) {
        guard dtype.convertsFromFloat32, let width = dtype.byteSize else {
            throw CheckpointError(.unsupportedConversion, "cannot convert F32 to \(dtype.rawValue): no conversion is defined for this type")
        }
        let n = source.count
        guard destination.count == n * width else {
            throw CheckpointError(.shapeMismatch, "\(destination.count) bytes of \(dtype.rawValue) do not hold \(n) elements")
        }
        guard n > 0, let s = source.baseAddress, let d = destination.baseAddress else { return }
        switch dtype {
        case .f32:
            d.copyMemory(from: s, byteCount: n * 4)
        case .bf16:
            for i in 0..<n { d.storeBytes(of: Minifloat.floatToBF16(s[i]), toByteOffset: 2 &* i, as: UInt16.self) }
        case .f16:
            if hasF16C { shears_f32_to_f16(s, d, n) } else { softwareF32ToF16(s, d, n) }
        case .f64:
            for i in 0..<n { d.storeBytes(of: Double(s[i]), toByteOffset: 8 &* i, as: Double.self) }
        case .f8E4M3:
            for i in 0..<n { d.storeBytes(of: Minifloat.Format.e4m3fn.encode(s[i]), toByteOffset: i, as: UInt8.self) }
        case .f8E5M2:
            for i in 0..<n { d.storeBytes(of: Minifloat.Format.e5m2.encode(s[i]), toByteOffset: i, as: UInt8.self) }
        case .f8E4M3FNUZ:
            for i in 0..<n { d.storeBytes(of: Minifloat.Format.e4m3fnuz.encode(s[i]), toByteOffset: i, as: UInt8.self) }
        case .f8E5M2FNUZ:
            for i in 0..<n { d.storeBytes(of: Minifloat.Format.e5m2fnuz.encode(s[i]), toByteOffset: i, as: UInt8.self) }
        case .f8E8M0:
            for i in 0..<n { d.storeBytes(of: Minifloat.floatToE8M0(s[i]), toByteOffset: i, as: UInt8.self) }
        case .bool:
            for i in 0..<n { d.storeBytes(of: s[i] != 0 ? 1 : 0, toByteOffset: i, as: UInt8.self) }
        case .u8: try integers(s, n, d, UInt8.self)
        case .i8: try integers(s, n, d, Int8.self)
        case .u16: try integers(s, n, d, UInt16.self)
        case .i16: try integers(s, n, d, Int16.self)
        case .u32: try integers(s, n, d, UInt32.self)
        case .i32: try integers(s, n, d, Int32.self)
        case .u64: try integers(s, n, d, UInt64.self)
        case .i64: try integers(s, n, d, Int64.self)
        default:
            break  // excluded above
        }
    }

    private static func integers<T: FixedWidthInteger>(_ s: UnsafePointer<Float>, _ n: Int,
                                                       _ d: UnsafeMutableRawPointer, _: T.Type) throws(CheckpointError) {
        for i in 0..<n {
            let x = s[i]
            if x.isNaN {
                throw CheckpointError(.unrepresentableValue, "element \(i) is NaN, which \(T.self) cannot represent")
            }
            let r = x.rounded(.toNearestOrEven)
            let v: T = if r <= Float(T.min) { T.min } else if r >= Float(T.max) { T.max } else { T(r) }
            d.storeBytes(of: v.littleEndian, toByteOffset: i &* MemoryLayout<T>.size, as: T.self)
        }
    }

    /// Converts between any two dtypes that have conversions through `Float`; identical dtypes copy.
    public static func convert(_ source: UnsafeRawBufferPointer, from: DType, to: DType,
                               into destination: UnsafeMutableRawBufferPointer) throws(CheckpointError) {
        if from == to {
            guard source.count == destination.count else {
                throw CheckpointError(.shapeMismatch, "source and destination sizes differ")
            }
            if let s = source.baseAddress, let d = destination.baseAddress { d.copyMemory(from: s, byteCount: source.count) }
            return
        }
        guard let fromWidth = from.byteSize, from.convertsToFloat32 else {
            throw CheckpointError(.unsupportedConversion, "cannot convert \(from.rawValue) to \(to.rawValue): no conversion is defined for \(from.rawValue)")
        }
        guard to.convertsFromFloat32, to.byteSize != nil else {
            throw CheckpointError(.unsupportedConversion, "cannot convert \(from.rawValue) to \(to.rawValue): no conversion is defined for \(to.rawValue)")
        }
        guard source.count % fromWidth == 0 else {
            throw CheckpointError(.shapeMismatch, "\(source.count) bytes is not a whole number of \(from.rawValue) elements")
        }
        let n = source.count / fromWidth
        // Convert in cache-sized blocks so the intermediate floats stay in L2.
        let block = 1 << 16
        var scratch = [Float](repeating: 0, count: min(n, block))
        var start = 0
        let toWidth = to.byteSize!
        while start < n {
            let m = min(block, n - start)
            try scratch.withUnsafeMutableBufferPointer { (f) throws(CheckpointError) in
                let fm = UnsafeMutableBufferPointer(rebasing: f[0..<m])
                try decode(UnsafeRawBufferPointer(rebasing: source[start * fromWidth..<(start + m) * fromWidth]), as: from, into: fm)
                try encode(UnsafeBufferPointer(fm), as: to,
                           into: UnsafeMutableRawBufferPointer(rebasing: destination[start * toWidth..<(start + m) * toWidth]))
            }
            start += m
        }
    }
}
