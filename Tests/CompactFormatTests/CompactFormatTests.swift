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

let fixtures: String = {
    var p = #filePath
    for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
    return p + "/Fixtures/safetensors"
}()

func temporaryFolder() -> String {
    var template = Array("/tmp/shears-ctz-XXXXXX".utf8CString)
    return String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
}

func removeTree(_ path: String) {
    guard path.hasPrefix("/tmp/shears-ctz-") else { return }
    _ = system("rm -rf '\(path)'")
}

func read(_ path: String) -> [UInt8] { try! FileSystem.readFile(path) }

/// Deterministic pseudo-random numbers.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

/// BF16 values of trained-weight magnitude: N(0, σ) rounded to nearest even.
func normalBF16(_ n: Int, sigma: Float = 0.02, seed: UInt64 = 7) -> [UInt8] {
    var rng = SplitMix64(state: seed)
    var out = [UInt8](repeating: 0, count: 2 * n)
    for i in 0..<n {
        let u1 = max(Float(rng.next() >> 40) / Float(1 << 24), 1e-7), u2 = Float(rng.next() >> 40) / Float(1 << 24)
        let z = (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2) * sigma
        let b = Minifloat.floatToBF16(z)
        out[2 * i] = UInt8(b & 0xFF)
        out[2 * i + 1] = UInt8(b >> 8)
    }
    return out
}

@Suite struct CompactRoundTripTests {
    /// §7: safetensors → compact → safetensors reproduces every fixture byte for byte.
    @Test(arguments: ["dtypes", "small", "names", "empty", "metadata-only", "conversions", "tiny-llama-single/model"])
    func safetensorsRoundTripIsByteIdentical(_ name: String) throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let source = fixtures + "/\(name).safetensors"
        let checkpoint = try Checkpoint.open(source)
        try CompactConversion.write(checkpoint, to: dir + "/m.ctz", options: .init(chunkSize: 4096))
        let compact = try CompactFile(path: dir + "/m.ctz")
        #expect(compact.verify().isEmpty)
        // §6: the index's SHA-256 is the digest of each tensor's bytes in the source.
        for e in checkpoint.entries {
            let t = try compact.tensor(named: e.info.name)
            let digest = try checkpoint.tensor(named: e.info.name).withUnsafeBytes { Array(SHA256.hash(data: $0)) }
            #expect(t.sha256 == digest, "\(e.info.name)")
            #expect(try compact.bytes(named: e.info.name) == checkpoint.tensor(named: e.info.name).bytes())
        }
        #expect(try CompactConversion.writeSafetensors(compact, to: dir + "/back.safetensors"))
        #expect(read(dir + "/back.safetensors") == read(source))
    }

    /// A sharded source has no single header to keep: converting back gives the canonical layout,
    /// which for this model is exactly what transformers writes unsharded.
    @Test func shardedSourceComesBackCanonical() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try CompactConversion.write(try Checkpoint.open(fixtures + "/tiny-llama"), to: dir + "/m.ctz")
        let compact = try CompactFile(path: dir + "/m.ctz")
        #expect(compact.index.sourceHeader.isEmpty)
        #expect(try !CompactConversion.writeSafetensors(compact, to: dir + "/back.safetensors"))
        #expect(read(dir + "/back.safetensors") == read(fixtures + "/tiny-llama-single/model.safetensors"))
    }

    /// §5: encodings are chosen by what compresses; random data stays raw.
    @Test func choosesEncodings() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        var rng = SplitMix64(state: 1)
        let random = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let weights = normalBF16(300_000)
        let zeros = [UInt8](repeating: 0, count: 80_000)
        let w = try CompactWriter(path: dir + "/m.ctz", metadata: Metadata([("format", "pt")]), options: .init(chunkSize: 65_536))
        try weights.withUnsafeBytes { try w.append(name: "w", dtype: .bf16, shape: [300_000], bytes: $0) }
        try random.withUnsafeBytes { try w.append(name: "r", dtype: .u8, shape: [100_000], bytes: $0) }
        try zeros.withUnsafeBytes { try w.append(name: "z", dtype: .i64, shape: [10_000], bytes: $0) }
        try [UInt8]().withUnsafeBytes { try w.append(name: "e", dtype: .f32, shape: [0, 4], bytes: $0) }
        try [UInt8](repeating: 7, count: 4).withUnsafeBytes { try w.append(name: "s", dtype: .f32, shape: [], bytes: $0) }
        try w.finish()
        let f = try CompactFile(path: dir + "/m.ctz")
        #expect(try f.tensor(named: "w").encoding == .bytePlanes)
        #expect(try f.tensor(named: "r").encoding == .raw)
        #expect(try f.tensor(named: "z").encoding == .zstd)
        let wt = try f.tensor(named: "w")
        // The exponent plane compresses, the sign+mantissa plane does not.
        #expect(wt.chunks.allSatisfy { $0.parts[0].compressed && !$0.parts[1].compressed })
        #expect(Double(wt.storedLength) / Double(wt.byteLength) < 0.72)
        #expect(try f.bytes(named: "w") == weights)
        #expect(try f.bytes(named: "r") == random)
        #expect(try f.bytes(named: "z") == zeros)
        #expect(try f.bytes(named: "e").isEmpty && f.bytes(named: "s") == [7, 7, 7, 7])
        #expect(f.tensors.allSatisfy { $0.dataOffset % 64 == 0 })
        #expect(f.metadata["format"] == "pt")
    }

    /// §5: a byte range decodes only the chunks it overlaps and equals the same range of the whole.
    @Test func readsSlicesAcrossChunkBoundaries() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let data = normalBF16(50_000, seed: 3)
        let w = try CompactWriter(path: dir + "/m.ctz", options: .init(chunkSize: 1024))
        try data.withUnsafeBytes { try w.append(name: "w", dtype: .bf16, shape: [100, 500], bytes: $0) }
        try w.finish()
        let f = try CompactFile(path: dir + "/m.ctz")
        for range in [0..<1, 1000..<1100, 1023..<1025, 5000..<9000, 99_000..<100_000, 0..<100_000] {
            #expect(try f.bytes(named: "w", range: range) == Array(data[range]), "\(range)")
        }
        #expect(throws: CheckpointError.self) { try f.bytes(named: "w", range: 99_999..<100_001) }
        #expect(try f.floats(named: "w").count == 50_000)
    }

    /// §5: every dtype round-trips; the byte-plane transform inverts for widths 2, 4, 8.
    @Test(arguments: DType.allCases.filter { $0.byteSize != nil })
    func everyDTypeRoundTrips(_ dtype: DType) throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        var rng = SplitMix64(state: UInt64(dtype.writerRank))
        let n = 3000
        let bytes = (0..<(n * dtype.byteSize!)).map { i in i % 7 == 0 ? UInt8.random(in: 0...255, using: &rng) : UInt8(i % 3) }
        let w = try CompactWriter(path: dir + "/m.ctz", options: .init(chunkSize: 512))
        try bytes.withUnsafeBytes { try w.append(name: "t", dtype: dtype, shape: [n], bytes: $0) }
        try w.finish()
        let f = try CompactFile(path: dir + "/m.ctz")
        #expect(try f.bytes(named: "t") == bytes)
        #expect(f.verify().isEmpty)
    }

    @Test func refusesBadWrites() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let w = try CompactWriter(path: dir + "/m.ctz")
        try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try w.append(name: "a", dtype: .f32, shape: [1], bytes: $0) }
        #expect { try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try w.append(name: "a", dtype: .f32, shape: [1], bytes: $0) } }
            throws: { ($0 as? CheckpointError)?.code == .duplicateTensorName }
        #expect { try [UInt8](repeating: 0, count: 3).withUnsafeBytes { try w.append(name: "b", dtype: .f32, shape: [1], bytes: $0) } }
            throws: { ($0 as? CheckpointError)?.code == .shapeMismatch }
        #expect(throws: CheckpointError.self) { try CompactWriter(path: dir + "/x.ctz", options: .init(chunkSize: 100)) }
    }
}
