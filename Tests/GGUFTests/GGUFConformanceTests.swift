import Testing
import CheckpointCore
@testable import GGUF

/// One malformed file per reader rule (formats/gguf.md), built in memory; each must be rejected
/// with its error code, never a crash or an allocation sized by the file.
@Suite struct GGUFConformanceTests {
    /// A valid file: one u32 key, two F32 tensors of 2 and 3 elements (data padded to 32).
    static func valid(alignment: UInt32? = nil) -> [UInt8] {
        var b = GGUFBytes.header(tensors: 2, kvs: alignment == nil ? 1 : 2)
        b.kvString("general.architecture", "llama")
        if let alignment { b.kvU32("general.alignment", alignment) }
        let a = max(8, Int(alignment ?? 32))  // bad alignments still lay out data at 8
        b.tensorInfo("a", dims: [2], type: 0, offset: 0)
        b.tensorInfo("b", dims: [3], type: 0, offset: UInt64(a))
        b.pad(to: a)
        for i in 0..<2 { b.u32(Float(i).bitPattern) }
        b.pad(to: a)
        for i in 0..<3 { b.u32(Float(i + 10).bitPattern) }
        return b.bytes
    }

    func expectCode(_ code: CheckpointError.Code, _ bytes: [UInt8], _ fragment: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try parseGGUF(bytes)
            Issue.record("accepted; expected \(code)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            if let fragment { #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation) }
        }
    }

    @Test func acceptsTheValidFile() throws {
        let h = try parseGGUF(Self.valid())
        #expect(h.tensors.map(\.name) == ["a", "b"] && h.tensors[1].offset == 32 && h.dataStart % 32 == 0)
        let h64 = try parseGGUF(Self.valid(alignment: 64))
        #expect(h64.alignment == 64 && h64.dataStart % 64 == 0)
    }

    @Test func rejectsBadMagic() { var b = Self.valid(); b[0] = 0x47 + 1; expectCode(.ggufInvalidMagic, b, "magic") }
    @Test func rejectsTinyFile() { expectCode(.ggufInvalidMagic, [0x47, 0x47]) }
    @Test func rejectsVersion1() { var b = Self.valid(); b[4] = 1; expectCode(.ggufUnsupportedVersion, b, "v1") }
    @Test func rejectsVersion0() { var b = Self.valid(); b[4] = 0; expectCode(.ggufUnsupportedVersion, b) }
    @Test func rejectsFutureVersion() { var b = Self.valid(); b[4] = 4; expectCode(.ggufUnsupportedVersion, b, "newer") }
    @Test func rejectsBigEndian() {
        var b = Self.valid(); b[4] = 0; b[7] = 3
        expectCode(.ggufUnsupportedVersion, b, "big-endian")
    }
    @Test func rejectsTruncatedHeader() { expectCode(.ggufTruncated, Array(Self.valid().prefix(12))) }

    @Test func rejectsHugeCountsBeforeAllocating() {
        var b = GGUFBytes.header(tensors: 0, kvs: UInt64.max)
        b.kvU32("x", 1)
        expectCode(.ggufTruncated, b.bytes, "cannot fit")
        var t = GGUFBytes.header(tensors: 1 << 60, kvs: 0)
        t.tensorInfo("a", dims: [1], type: 0, offset: 0)
        expectCode(.ggufTruncated, t.bytes, "cannot fit")
    }

    @Test func rejectsStringLongerThanTheFile() {
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.u64(UInt64.max); b.bytes += Array("key".utf8); b.u32(4); b.u32(1)
        expectCode(.ggufInvalidString, b.bytes, "runs past")
        var v = GGUFBytes.header(tensors: 0, kvs: 1)
        v.string("k"); v.u32(8); v.u64(1 << 40); v.bytes += Array("abcdefghijklm".utf8)
        expectCode(.ggufInvalidString, v.bytes)
    }

    @Test func rejectsArrayCountLargerThanTheFile() {
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("k"); b.u32(9); b.u32(8); b.u64(1 << 62); b.u64(0)
        expectCode(.ggufTruncated, b.bytes, "cannot fit")
    }

    @Test func rejectsDeeplyNestedArrays() {
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("k"); b.u32(9)
        for _ in 0..<20 { b.u32(9); b.u64(1) }
        b.u32(4); b.u64(1); b.u32(7)
        expectCode(.ggufInvalidValueType, b.bytes, "nests")
    }

    @Test func rejectsInvalidValueTypes() {
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("k"); b.u32(13); b.u32(0)
        expectCode(.ggufInvalidValueType, b.bytes, "13")
        var a = GGUFBytes.header(tensors: 0, kvs: 1)
        a.string("k"); a.u32(9); a.u32(99); a.u64(0)
        expectCode(.ggufInvalidValueType, a.bytes, "99")
    }

    @Test func rejectsBoolsOtherThan0And1() {
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("k"); b.u32(7); b.u8(2)
        expectCode(.ggufInvalidValueType, b.bytes, "bool")
    }

    @Test func rejectsDuplicateKeys() {
        var b = GGUFBytes.header(tensors: 0, kvs: 2)
        b.kvU32("k", 1); b.kvU32("k", 2)
        expectCode(.ggufDuplicateKey, b.bytes, "'k'")
    }

    @Test func rejectsInvalidUTF8Keys() {
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.u64(2); b.bytes += [0xC3, 0x28]; b.u32(4); b.u32(1)
        expectCode(.ggufInvalidString, b.bytes, "UTF-8")
    }

    @Test func rejectsBadAlignment() {
        expectCode(.ggufInvalidAlignment, Self.valid(alignment: 48), "power of two")
        expectCode(.ggufInvalidAlignment, Self.valid(alignment: 0))
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("general.alignment"); b.u32(10); b.u64(32)  // u64, not u32
        expectCode(.ggufInvalidAlignment, b.bytes, "uint32")
    }

    @Test func rejectsDuplicateTensorNames() {
        var b = GGUFBytes.header(tensors: 2, kvs: 0)
        b.tensorInfo("a", dims: [8], type: 0, offset: 0)
        b.tensorInfo("a", dims: [8], type: 0, offset: 32)
        b.pad(to: 32); b.bytes += [UInt8](repeating: 0, count: 64)
        expectCode(.duplicateTensorName, b.bytes)
    }

    @Test func rejectsLongTensorNames() {
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo(String(repeating: "x", count: 64), dims: [8], type: 0, offset: 0)
        b.pad(to: 32); b.bytes += [UInt8](repeating: 0, count: 32)
        expectCode(.ggufInvalidTensorInfo, b.bytes, "shorter than 64")
    }

    @Test func rejectsTooManyDimensions() {
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("a", dims: [1, 1, 1, 1, 1], type: 0, offset: 0)
        b.pad(to: 32); b.bytes += [0, 0, 0, 0]
        expectCode(.ggufInvalidTensorInfo, b.bytes, "at most 4")
    }

    @Test func rejectsNegativeDimensions() {
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("a", dims: [UInt64(bitPattern: -4)], type: 0, offset: 0)
        expectCode(.ggufInvalidTensorInfo, b.bytes, "non-negative")
    }

    @Test func rejectsElementCountOverflow() {
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("a", dims: [1 << 32, 1 << 32], type: 0, offset: 0)
        expectCode(.validationOverflow, b.bytes, "overflow")
        var c = GGUFBytes.header(tensors: 1, kvs: 0)
        c.tensorInfo("a", dims: [1 << 62, 1], type: 0, offset: 0)  // elements fit, F32 bytes do not
        expectCode(.validationOverflow, c.bytes, "byte count")
    }

    @Test func rejectsUnknownTypes() {
        for t: UInt32 in [4, 5, 31, 99, UInt32.max] {
            var b = GGUFBytes.header(tensors: 1, kvs: 0)
            b.tensorInfo("a", dims: [32], type: t, offset: 0)
            expectCode(.ggufUnknownType, b.bytes, "\(t)")
        }
    }

    @Test func rejectsRowsThatAreNotWholeBlocks() {
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("a", dims: [48, 2], type: 8, offset: 0)  // Q8_0 blocks of 32
        expectCode(.ggufInvalidBlockShape, b.bytes, "block size 32")
    }

    @Test func rejectsMisalignedAndOutOfOrderOffsets() {
        var b = GGUFBytes.header(tensors: 2, kvs: 0)
        b.tensorInfo("a", dims: [2], type: 0, offset: 0)
        b.tensorInfo("b", dims: [2], type: 0, offset: 8)
        b.pad(to: 32); b.bytes += [UInt8](repeating: 0, count: 64)
        expectCode(.invalidOffset, b.bytes, "multiple of the alignment")
        var c = GGUFBytes.header(tensors: 2, kvs: 0)
        c.tensorInfo("a", dims: [2], type: 0, offset: 32)
        c.tensorInfo("b", dims: [2], type: 0, offset: 0)
        c.pad(to: 32); c.bytes += [UInt8](repeating: 0, count: 64)
        expectCode(.invalidOffset, c.bytes)
        var d = GGUFBytes.header(tensors: 2, kvs: 0)  // a gap
        d.tensorInfo("a", dims: [2], type: 0, offset: 0)
        d.tensorInfo("b", dims: [2], type: 0, offset: 64)
        d.pad(to: 32); d.bytes += [UInt8](repeating: 0, count: 96)
        expectCode(.invalidOffset, d.bytes, "without gaps")
    }

    @Test func rejectsDataPastTheEndOfTheFile() {
        expectCode(.ggufTruncated, Array(Self.valid().dropLast(1)), "truncated")
    }

    @Test func warnsAboutTrailingBytes() throws {
        let h = try parseGGUF(Self.valid() + [UInt8](repeating: 0, count: 100))
        #expect(h.warnings.count == 1)
    }

    @Test func errorsNameTheFile() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        var b = Self.valid(); b[4] = 9
        writeFile(dir + "/bad.gguf", b)
        do {
            _ = try GGUFFile(path: dir + "/bad.gguf")
            Issue.record("accepted")
        } catch {
            #expect(error.path == dir + "/bad.gguf")
            #expect(error.description.hasPrefix(dir + "/bad.gguf: "))
        }
        #expect(throws: CheckpointError.self) { try GGUFFile(path: dir + "/missing.gguf") }
    }
}

/// Random mutations of valid files: every outcome is a correct read or a thrown CheckpointError.
@Suite struct GGUFMutationTests {
    @Test func mutatedFilesNeverCrash() throws {
        var rng = SplitMix64(seed: 7)
        let base = try FileSystem.readFile(fixturesPath + "/gguf/all-types.gguf")
        let headerEnd = 1376  // mutate mostly the header, where the structure is
        var accepted = 0, rejected = 0
        for round in 0..<3000 {
            var b = base
            switch round % 5 {
            case 0:
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 0..<headerEnd, using: &rng)
                    b[i] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                }
            case 1:
                b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
            case 2:  // a random 8-byte little-endian value somewhere in the header (counts, lengths)
                let i = Int.random(in: 0..<(headerEnd - 8), using: &rng)
                let v: UInt64 = Bool.random(using: &rng) ? UInt64.random(in: 0...UInt64.max, using: &rng) : UInt64.random(in: 0...4096, using: &rng)
                withUnsafeBytes(of: v.littleEndian) { for k in 0..<8 { b[i + k] = $0[k] } }
            case 3:
                let i = Int.random(in: 0..<headerEnd, using: &rng)
                b[i] = UInt8.random(in: 0...255, using: &rng)
            default:
                let i = Int.random(in: 0..<headerEnd, using: &rng)
                if Bool.random(using: &rng) { b.insert(UInt8.random(in: 0...255, using: &rng), at: i) } else { b.remove(at: i) }
            }
            do {
                let h = try parseGGUF(b)
                for t in h.tensors {
                    #expect(t.offset % h.alignment == 0)
                    #expect(h.dataStart + t.offset + t.byteCount <= b.count)
                    #expect(t.type.byteCount(elements: t.elementCount) == t.byteCount)
                    // Decoding an accepted tensor never traps either.
                    if t.type.canDequantize && t.elementCount < 1 << 20 {
                        var out = [Float](repeating: 0, count: t.elementCount)
                        b.withUnsafeBytes { raw in
                            out.withUnsafeMutableBufferPointer { dst in
                                let src = UnsafeRawBufferPointer(rebasing: raw[(h.dataStart + t.offset)..<(h.dataStart + t.offset + t.byteCount)])
                                _ = Result { () throws(CheckpointError) in try Dequantize.decode(src, type: t.type, into: dst) }
                            }
                        }
                    }
                }
                accepted += 1
            } catch {
                rejected += 1
            }
        }
        #expect(accepted > 100 && rejected > 1000, "accepted \(accepted), rejected \(rejected)")
    }
}
