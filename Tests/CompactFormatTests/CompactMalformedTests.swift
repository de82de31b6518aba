import Crypto
import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsJSON
@testable import CompactFormat

/// One malformed file per rule of formats/compact.md §3–§6, each asserting its specific error, and
/// random corruption of valid files.
@Suite struct CompactMalformedTests {
    /// A valid file with a byte-plane tensor, a zstd tensor and a raw tensor, in small chunks.
    static let valid: [UInt8] = {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let w = try! CompactWriter(path: dir + "/v.ctz", metadata: Metadata([("format", "pt")]), options: .init(chunkSize: 512))
        try! normalBF16(2000).withUnsafeBytes { try w.append(name: "planes", dtype: .bf16, shape: [2000], bytes: $0) }
        try! [UInt8](repeating: 3, count: 3000).withUnsafeBytes { try w.append(name: "zstd", dtype: .u8, shape: [3000], bytes: $0) }
        var rng = SplitMix64(state: 9)
        try! (0..<1500).map { _ in UInt8.random(in: 0...255, using: &rng) }.withUnsafeBytes { try w.append(name: "raw", dtype: .u8, shape: [1500], bytes: $0) }
        try! w.finish()
        return read(dir + "/v.ctz")
    }()

    static func open(_ bytes: [UInt8]) throws(CheckpointError) -> CompactFile {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let f = fopen(dir + "/x.ctz", "wb")!
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
        return try CompactFile(path: dir + "/x.ctz")
    }

    static func readAll(_ bytes: [UInt8]) throws(CheckpointError) -> [[UInt8]] {
        let f = try open(bytes)
        var out: [[UInt8]] = []
        for t in f.tensors { out.append(try f.bytes(named: t.name)) }
        return out
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// Rebuilds the file with an edited index (and a footer that matches it, unless told otherwise).
    static func withIndex(_ edit: (inout CompactIndex) -> Void, fixFooter: Bool = true, data: (inout [UInt8]) -> Void = { _ in }) -> [UInt8] {
        let size = valid.count
        let i = Int(UInt64(littleEndian: valid.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: size - 64, as: UInt64.self) }))
        var index = try! valid.withUnsafeBytes { try CompactIndex.parse(UnsafeRawBufferPointer(rebasing: $0[i..<(size - 64)]), dataEnd: i) }
        edit(&index)
        var dataRegion = Array(valid[0..<i])
        data(&dataRegion)
        let bytes = index.serialized()
        let footer = CompactLayout.footer(indexOffset: dataRegion.count, indexLength: bytes.count,
                                          indexSHA256: fixFooter ? Array(SHA256.hash(data: bytes)) : [UInt8](repeating: 0, count: 32))
        return dataRegion + bytes + footer
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var label: String
        var bytes: [UInt8]
        var code: CheckpointError.Code
        var testDescription: String { label }
    }

    static let cases: [Case] = {
        var c: [Case] = []
        let v = valid
        c.append(Case(label: "§3 shorter than 96 bytes", bytes: Array(v.prefix(95)), code: .invalidFormat))
        c.append(Case(label: "§3 truncated (footer lost)", bytes: Array(v.prefix(v.count - 10)), code: .invalidFormat))
        var badMagic = v; badMagic[0] = 0x58
        c.append(Case(label: "§2 bad header magic", bytes: badMagic, code: .invalidFormat))
        var badVersion = v; badVersion[8] = 2; badVersion[v.count - 16] = 2
        c.append(Case(label: "§3 unknown major version", bytes: badVersion, code: .invalidFormat))
        var mismatchedVersion = v; mismatchedVersion[10] = 1
        c.append(Case(label: "§3 header and footer versions differ", bytes: mismatchedVersion, code: .invalidFormat))
        var flags = v; flags[12] = 1
        c.append(Case(label: "§3 non-zero flags", bytes: flags, code: .invalidFormat))
        var outside = v; outside.replaceSubrange((v.count - 64)..<(v.count - 56), with: le(UInt64(v.count * 4)))
        c.append(Case(label: "§3 index pointing outside the file", bytes: outside, code: .invalidFormat))
        var hugeIndex = v; hugeIndex.replaceSubrange((v.count - 56)..<(v.count - 48), with: le(UInt64.max))
        c.append(Case(label: "§3 index length beyond the limit", bytes: hugeIndex, code: .invalidFormat))
        c.append(Case(label: "§3 index not matching its SHA-256", bytes: withIndex({ $0.metadata["format"] = "px" }, fixFooter: false), code: .corruptData))
        c.append(Case(label: "§4 chunk count lying", bytes: withIndex({ $0.tensors[0].chunks.removeLast() }), code: .invalidIndex))
        c.append(Case(label: "§4 stored length not the sum of chunks", bytes: withIndex({ $0.tensors[1].storedLength += 1 }), code: .invalidIndex))
        c.append(Case(label: "§5 plane length lying (frame does not fill it)", bytes: withIndex({ $0.tensors[0].chunks[0].parts[0].storedLength += 3; $0.tensors[0].storedLength += 3 }), code: .corruptData))
        c.append(Case(label: "§4 raw plane of the wrong size", bytes: withIndex({ $0.tensors[0].chunks[0].parts[1].storedLength -= 1; $0.tensors[0].storedLength -= 1 }), code: .invalidIndex))
        c.append(Case(label: "§4 data offset overlapping", bytes: withIndex({ $0.tensors[1].dataOffset -= 64 }), code: .invalidIndex))
        c.append(Case(label: "§4 data offset leaving a gap", bytes: withIndex({ $0.tensors[1].dataOffset += 64 }), code: .invalidIndex))
        c.append(Case(label: "§4 data past the index", bytes: withIndex({ $0.tensors[2].dataOffset += 64 }), code: .invalidIndex))
        c.append(Case(label: "§4 byte length not matching the shape", bytes: withIndex({ $0.tensors[2].shape = [1499] }), code: .tensorInvalidInfo))
        c.append(Case(label: "§4 duplicate tensor name", bytes: withIndex({ $0.tensors[1].name = "planes" }), code: .duplicateTensorName))
        c.append(Case(label: "§4 tensor named __metadata__", bytes: withIndex({ $0.tensors[1].name = "__metadata__" }), code: .reservedTensorName))
        c.append(Case(label: "§4 byte planes for an integer dtype", bytes: withIndex({ $0.tensors[0].dtype = .i16 }), code: .invalidIndex))
        c.append(Case(label: "§4 chunk size not a multiple of 64", bytes: withIndex({ $0.tensors[2].chunkSize = 500 }), code: .invalidIndex))
        c.append(Case(label: "§4 hidden bytes after the last tensor", bytes: withIndex({ _ in }, data: { $0 += [UInt8](repeating: 0, count: 64) }), code: .invalidIndex))
        var trailing = withIndex({ _ in })
        trailing.insert(0, at: trailing.count - 64)  // one byte after the index: the footer no longer frames it
        c.append(Case(label: "§3 bytes between index and footer", bytes: trailing, code: .invalidFormat))
        return c
    }()

    @Test(arguments: cases)
    func rejectsWithTheRightError(_ c: Case) {
        #expect {
            _ = try Self.readAll(c.bytes)
        } throws: { error in
            guard let e = error as? CheckpointError else { return false }
            return e.code == c.code && e.path != nil
        }
    }

    /// §6: a flipped bit in a chunk's data is a checksum error naming the tensor and chunk.
    @Test func corruptedChunkIsReportedNotReturned() throws {
        var b = Self.valid
        let f = try Self.open(b)
        let raw = try f.tensor(named: "raw")
        b[raw.dataOffset + 600] ^= 0x10  // chunk 1 of the raw tensor
        let g = try Self.open(b)
        #expect { try g.bytes(named: "raw") } throws: { e in
            let e = e as! CheckpointError
            return e.code == .corruptData && e.tensor == "raw" && e.message.contains("chunk 1") && e.message.contains("checksum")
        }
        // The other chunks of the tensor still read.
        #expect(try g.bytes(named: "raw", range: 0..<512) == f.bytes(named: "raw", range: 0..<512))
        #expect(g.verify().count == 1)
    }

    /// §6: a zstd frame claiming more than its chunk is refused before decoding (no bomb), even
    /// when the index is consistent with it.
    @Test func decompressionBombIsRefused() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let w = try CompactWriter(path: dir + "/z.ctz", options: .init(chunkSize: 512))
        try [UInt8](repeating: 3, count: 3000).withUnsafeBytes { try w.append(name: "zstd", dtype: .u8, shape: [3000], bytes: $0) }
        try w.finish()
        let f = try CompactFile(path: dir + "/z.ctz")
        var t = f.tensors[0]
        #expect(t.encoding == .zstd)
        let bomb: [UInt8] = {
            let c = Zstd.Compressor(level: 1)
            let big = [UInt8](repeating: 3, count: 1 << 20)
            var out = [UInt8](repeating: 0, count: Zstd.compressBound(big.count))
            let n = big.withUnsafeBytes { s in out.withUnsafeMutableBytes { c.compress(s, into: $0)! } }
            return Array(out[0..<n])
        }()
        let original = read(dir + "/z.ctz")
        let old = t.chunks[0].parts[0].storedLength
        let rest = Array(original[(t.dataOffset + old)..<(t.dataOffset + t.storedLength)])
        t.chunks[0].parts[0].storedLength = bomb.count
        t.storedLength += bomb.count - old
        let index = CompactIndex(metadata: f.metadata, sourceHeader: [], tensors: [t]).serialized()
        let data = Array(original[0..<t.dataOffset]) + bomb + rest
        let bytes = data + index + CompactLayout.footer(indexOffset: data.count, indexLength: index.count, indexSHA256: Array(SHA256.hash(data: index)))
        let g = try Self.open(bytes)
        #expect { try g.bytes(named: "zstd") } throws: { e in
            let e = e as! CheckpointError
            return e.code == .corruptData && e.message.contains("chunk 0") && e.message.contains("claims 1048576 bytes where 512 are expected")
        }
    }

    /// Random corruption: every outcome is the original data or a thrown error.
    @Test func randomCorruptionNeverReturnsWrongData() throws {
        let original = try Self.readAll(Self.valid)
        var rng = SplitMix64(state: 2024)
        var rejected = 0
        for round in 0..<600 {
            var b = Self.valid
            switch round % 3 {
            case 0:
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    b[Int.random(in: 0..<b.count, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                }
            case 1:
                b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
            default:
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                let got = try Self.readAll(b)
                #expect(got == original, "round \(round) returned different data")
            } catch {
                rejected += 1
            }
        }
        #expect(rejected > 400)
    }
}
