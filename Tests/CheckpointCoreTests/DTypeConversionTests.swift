import Testing
@testable import CheckpointCore

/// Conversions against PyTorch's results (Fixtures/safetensors/conversions.safetensors, written by
/// the fixture script with torch's `.to(dtype)`).
@Suite struct DTypeConversionTests {
    static let file = try! SafetensorsFile(path: Expected.folder + "/conversions.safetensors")

    static func floats(_ name: String) -> [Float] { try! file.tensor(named: name).floats() }
    static func raw(_ name: String) -> [UInt8] { try! file.tensor(named: name).bytes() }

    /// Same bits, or both NaN (NaN payloads differ between torch's code paths).
    static func sameOrBothNaN(_ a: Float, _ b: Float) -> Bool {
        a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN)
    }

    /// Decoding every bit pattern of the 16- and 8-bit formats gives torch's F32 values.
    @Test(arguments: [
        ("bf16_bits", DType.bf16, "bf16_to_f32"), ("f16_bits", .f16, "f16_to_f32"),
        ("f8_e4m3_bits", .f8E4M3, "f8_e4m3_to_f32"), ("f8_e5m2_bits", .f8E5M2, "f8_e5m2_to_f32"),
        ("f8_e4m3fnuz_bits", .f8E4M3FNUZ, "f8_e4m3fnuz_to_f32"), ("f8_e5m2fnuz_bits", .f8E5M2FNUZ, "f8_e5m2fnuz_to_f32"),
        ("f8_e8m0_bits", .f8E8M0, "f8_e8m0_to_f32"), ("f4_all", .f4, "f4_to_f32_ml_dtypes"),
    ])
    func decodesEveryPattern(_ bitsName: String, _ dtype: DType, _ goldenName: String) throws {
        let bits = Self.raw(bitsName)
        let golden = Self.floats(goldenName)
        var out = [Float](repeating: 0, count: golden.count)
        try bits.withUnsafeBytes { src in
            try out.withUnsafeMutableBufferPointer { try DTypeConversion.decode(src, as: dtype, into: $0) }
        }
        let bad = (0..<golden.count).filter { !Self.sameOrBothNaN(out[$0], golden[$0]) }
        #expect(bad.isEmpty, "\(bad.count) of \(golden.count) differ, first at \(bad.first ?? -1): \(bad.first.map { out[$0] } ?? 0) vs \(bad.first.map { golden[$0] } ?? 0)")
        // Non-NaN values are bit-exact, including -0 and subnormals.
        #expect(out.filter { !$0.isNaN }.count == golden.filter { !$0.isNaN }.count)
    }

    /// Narrowing F32 to each format rounds exactly as torch does (ties to even, overflow rules).
    @Test(arguments: [("as_bf16", DType.bf16), ("as_f16", .f16), ("as_f8_e4m3", .f8E4M3), ("as_f8_e5m2", .f8E5M2),
                      ("as_f8_e4m3fnuz", .f8E4M3FNUZ), ("as_f8_e5m2fnuz", .f8E5M2FNUZ), ("as_f8_e8m0", .f8E8M0)])
    func narrowsLikeTorch(_ goldenName: String, _ dtype: DType) throws {
        let source = Self.floats("source")
        let golden = Self.raw(goldenName)
        let width = dtype.byteSize!
        var out = [UInt8](repeating: 0, count: source.count * width)
        try source.withUnsafeBufferPointer { src in
            try out.withUnsafeMutableBytes { try DTypeConversion.encode(src, as: dtype, into: $0) }
        }
        var mismatches: [Int] = []
        for i in 0..<source.count {
            let a = out[(i * width)..<((i + 1) * width)], b = golden[(i * width)..<((i + 1) * width)]
            if a.elementsEqual(b) { continue }
            // NaN in, NaN out: torch's NaN payload depends on its CPU code path.
            if source[i].isNaN {
                var d = [Float](repeating: 0, count: 1)
                try Array(a).withUnsafeBytes { r in try d.withUnsafeMutableBufferPointer { try DTypeConversion.decode(r, as: dtype, into: $0) } }
                if d[0].isNaN { continue }
            }
            mismatches.append(i)
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(source.count) differ; first: source \(mismatches.first.map { String(source[$0].bitPattern, radix: 16) } ?? "")")
    }

    /// Wider and integer types to F32, as torch rounds them.
    @Test(arguments: [("f64_source", DType.f64, "f64_as_f32"), ("i64_source", .i64, "i64_as_f32"), ("u64_source", .u64, "u64_as_f32"),
                      ("i32_source", .i32, "i32_as_f32"), ("u32_source", .u32, "u32_as_f32"), ("i16_source", .i16, "i16_as_f32"),
                      ("u16_source", .u16, "u16_as_f32"), ("i8_source", .i8, "i8_as_f32"), ("u8_source", .u8, "u8_as_f32")])
    func widensLikeTorch(_ sourceName: String, _ dtype: DType, _ goldenName: String) throws {
        let view = try Self.file.tensor(named: sourceName)
        #expect(view.dtype == dtype)
        let out = try view.floats()
        let golden = Self.floats(goldenName)
        #expect(out.count == golden.count)
        #expect(zip(out, golden).allSatisfy { Self.sameOrBothNaN($0, $1) })
    }

    @Test func roundTripsEveryNonNaNPatternThroughF32() throws {
        // Decoding then encoding must give back the original bits (NaNs aside).
        for (dtype, count) in [(DType.bf16, 65536), (.f16, 65536), (.f8E4M3, 256), (.f8E5M2, 256)] {
            let width = dtype.byteSize!
            var bits = [UInt8](repeating: 0, count: count * width)
            for i in 0..<count { for b in 0..<width { bits[i * width + b] = UInt8(truncatingIfNeeded: i >> (8 * b)) } }
            var f = [Float](repeating: 0, count: count)
            try bits.withUnsafeBytes { r in try f.withUnsafeMutableBufferPointer { try DTypeConversion.decode(r, as: dtype, into: $0) } }
            var back = [UInt8](repeating: 0, count: count * width)
            try f.withUnsafeBufferPointer { s in try back.withUnsafeMutableBytes { try DTypeConversion.encode(s, as: dtype, into: $0) } }
            let bad = (0..<count).filter { i in !f[i].isNaN && bits[(i * width)..<((i + 1) * width)] != back[(i * width)..<((i + 1) * width)] }
            #expect(bad.isEmpty, "\(dtype): \(bad.count) patterns do not round-trip")
        }
    }

    /// The portable Float16 path agrees with the hardware one on every half and on the torch source set.
    @Test func softwareHalfPathMatchesHardware() throws {
        let halves = (0..<65536).map { UInt16($0) }
        var hw = [Float](repeating: 0, count: 65536), sw = hw
        try halves.withUnsafeBytes { r in try hw.withUnsafeMutableBufferPointer { try DTypeConversion.decode(r, as: .f16, into: $0) } }
        halves.withUnsafeBytes { r in sw.withUnsafeMutableBufferPointer { DTypeConversion.softwareF16ToF32(r.baseAddress!, $0.baseAddress!, 65536) } }
        #expect(zip(hw, sw).allSatisfy { Self.sameOrBothNaN($0, $1) })
        let source = Self.floats("source")
        var a = [UInt8](repeating: 0, count: source.count * 2), b = a
        try source.withUnsafeBufferPointer { s in try a.withUnsafeMutableBytes { try DTypeConversion.encode(s, as: .f16, into: $0) } }
        source.withUnsafeBufferPointer { s in b.withUnsafeMutableBytes { DTypeConversion.softwareF32ToF16(s.baseAddress!, $0.baseAddress!, source.count) } }
        let golden = Self.raw("as_f16")
        for i in 0..<source.count where !source[i].isNaN {
            #expect(a[(2 * i)..<(2 * i + 2)] == golden[(2 * i)..<(2 * i + 2)] && b[(2 * i)..<(2 * i + 2)] == golden[(2 * i)..<(2 * i + 2)], "element \(i)")
        }
    }

    @Test func integersRoundAndSaturate() throws {
        let src: [Float] = [0.5, 1.5, 2.5, -0.5, -1.5, 300, -300, 1e10, -1e10]
        var out = [UInt8](repeating: 0, count: src.count)
        try src.withUnsafeBufferPointer { s in try out.withUnsafeMutableBytes { try DTypeConversion.encode(s, as: .i8, into: $0) } }
        #expect(out.map { Int8(bitPattern: $0) } == [0, 2, 2, 0, -2, 127, -128, 127, -128])
        #expect(throws: CheckpointError.self) {
            try [Float.nan].withUnsafeBufferPointer { s in try out.withUnsafeMutableBytes { try DTypeConversion.encode(s, as: .i8, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<1])) } }
        }
    }

    @Test(arguments: [DType.f6E2M3, .f6E3M2, .c64])
    func refusesUndefinedConversions(_ dtype: DType) {
        var out = [Float](repeating: 0, count: 4)
        let bytes = [UInt8](repeating: 0, count: 32)
        #expect { try bytes.withUnsafeBytes { r in try out.withUnsafeMutableBufferPointer { try DTypeConversion.decode(r, as: dtype, into: $0) } } }
            throws: { ($0 as? CheckpointError)?.code == .unsupportedConversion }
    }

    @Test func dtypeTableMatchesTheFormat() {
        #expect(DType.allCases.count == 22)
        #expect(DType.f4.bitSize == 4 && DType.f6E2M3.bitSize == 6 && DType.c64.bitSize == 64 && DType.f8E8M0.bitSize == 8)
        #expect(DType.f4.byteSize == nil && DType.bf16.byteSize == 2)
        // The Python writer's observed order, highest first.
        let writerOrder: [DType] = [.u64, .i64, .f64, .c64, .f32, .u32, .i32, .bf16, .f16, .u16, .i16, .f8E5M2FNUZ, .f8E4M3FNUZ, .f8E8M0, .f8E4M3, .f8E5M2, .i8, .u8, .f6E3M2, .f6E2M3, .f4, .bool]
        #expect(DType.allCases.sorted(by: >) == writerOrder)
        #expect(DType(userName: "bfloat16") == .bf16 && DType(userName: "fp16") == .f16 && DType(userName: "F8_E4M3") == .f8E4M3)
        #expect(MemoryLayout<Float16>.size == 2 && Float(Float16(bitPattern: 0x3C00)) == 1)
    }
}
