import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import CompactFormat
import ShearsJSON
@testable import ShearsCommands

/// A scratch folder holding a copy of a fixture model.
func copyOfModel(_ name: String) throws -> String {
    let dir = "/tmp/shears-audit-\(UInt32.random(in: 0...UInt32.max))"
    try FileSystem.createDirectory(dir)
    let src = fixturesPath + "/safetensors/" + name
    for f in try FileSystem.contents(of: src) {
        let fp = fopen(dir + "/" + f, "wb")!
        let b = try FileSystem.readFile(src + "/" + f)
        _ = b.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, fp) }
        fclose(fp)
    }
    return dir
}

func overwrite(_ path: String, at offset: Int, xor mask: UInt8) {
    let fd = open(path, O_RDWR)
    var byte: UInt8 = 0
    _ = pread(fd, &byte, 1, off_t(offset))
    byte ^= mask
    _ = pwrite(fd, &byte, 1, off_t(offset))
    close(fd)
}

@Suite struct HashCommandTests {
    /// Digests equal Python's hashlib over the same bytes (expected.json), in every container.
    @Test func digestsMatchPythonAndAgreeAcrossFormats() throws {
        let expected = try JSONValue.parse(FileSystem.readFile(fixturesPath + "/safetensors/expected.json"))
        var python: [String: String] = [:]
        for f in expected["files"]!.arrayValue! where f["file"]!.stringValue!.hasPrefix("tiny-llama-single/") {
            for t in f["tensors"]!.arrayValue! { python[t["name"]!.stringValue!] = t["sha256"]!.stringValue! }
        }
        let sharded = try TensorHashes.compute(Checkpoint.open(fixturesPath + "/safetensors/tiny-llama"), threads: 2)
        let single = try TensorHashes.compute(Checkpoint.open(fixturesPath + "/safetensors/tiny-llama-single"), threads: 2)
        let dir = try copyOfModel("tiny-llama-single")
        defer { removeFolder(dir) }
        try CompactConversion.write(Checkpoint.open(dir), to: dir + "/model.ctz")
        let compact = try TensorHashes.compute(CompactFile(path: dir + "/model.ctz"), threads: 2)
        #expect(python.count == 21)
        for (name, digest) in python {
            #expect(sharded.tensors[name]?.sha256 == digest && single.tensors[name]?.sha256 == digest && compact.tensors[name]?.sha256 == digest, "\(name)")
        }
        // The CLI writes the same list, readable back.
        let r = CommandRunner.run(["hash", "--json", fixturesPath + "/safetensors/tiny-llama"])
        #expect(r.status == 0)
        let j = try JSONValue.parse(r.stdout)
        #expect(j["format"] == .string("shears-hashes") && j["version"] == .int(1))
        #expect(j["tensors"]?["lm_head.weight"]?["sha256"] == .string(python["lm_head.weight"]!))
        #expect(j["files"]?["model-00001-of-00003.safetensors"]?.stringValue?.count == 64)
    }
}

@Suite struct VerifyCommandTests {
    static let list: String = {
        let path = "/tmp/shears-audit-list-\(getpid()).json"
        _ = CommandRunner.run(["hash", "-o", path, fixturesPath + "/safetensors/tiny-llama-single"])
        return path
    }()

    @Test func intactModelPassesEveryCheck() throws {
        let r = CommandRunner.run(["verify", "--json", "--hashes", Self.list, fixturesPath + "/safetensors/tiny-llama"])
        #expect(r.status == 0, "\(r.stdout)")
        let j = try JSONValue.parse(r.stdout)
        #expect(j["ok"] == .bool(true))
        #expect(j["checks"]?.arrayValue?.map { $0["name"]!.stringValue! + " " + $0["status"]!.stringValue! } == [
            "structure passed", "values passed", "config passed", "hashes passed", "manifest skipped", "perplexity skipped", "signature skipped",
        ])
    }

    /// A one-bit flip in any tensor's data is caught by --hashes, naming the tensor.
    @Test func oneBitFlipInEachTensorIsCaught() throws {
        let dir = try copyOfModel("tiny-llama-single")
        defer { removeFolder(dir) }
        let file = dir + "/model.safetensors"
        let header = try SafetensorsFile(path: file).header
        for t in header.tensors {
            let offset = header.dataStart + t.dataOffsets.lowerBound + t.byteCount / 2
            overwrite(file, at: offset, xor: 0x01)
            let r = CommandRunner.run(["verify", "--json", "--hashes", Self.list, file])
            #expect(r.status == 1, "\(t.name)")
            let hashes = try JSONValue.parse(r.stdout)["checks"]!.arrayValue!.first { $0["name"] == .string("hashes") }!
            #expect(hashes["status"] == .string("failed") && hashes["detail"]!.stringValue!.contains(t.name))
            overwrite(file, at: offset, xor: 0x01)
        }
        #expect(CommandRunner.run(["verify", "--hashes", Self.list, file]).status == 0)
    }

    /// In a compact file the same flip fails structure (chunk checksum) as well as the hashes.
    @Test func bitFlipInCompactDataIsCaught() throws {
        let dir = try copyOfModel("tiny-llama-single")
        defer { removeFolder(dir) }
        try CompactConversion.write(Checkpoint.open(dir), to: dir + "/model.ctz")
        let c = try CompactFile(path: dir + "/model.ctz")
        let t = try c.tensor(named: "model.layers.1.mlp.up_proj.weight")
        overwrite(dir + "/model.ctz", at: t.dataOffset + t.storedLength / 2, xor: 0x40)
        let r = CommandRunner.run(["verify", "--json", "--hashes", Self.list, dir + "/model.ctz"])
        #expect(r.status == 1)
        let checks = try JSONValue.parse(r.stdout)["checks"]!.arrayValue!
        #expect(checks[0]["status"] == .string("failed") && checks[0]["detail"]!.stringValue!.contains("model.layers.1.mlp.up_proj.weight"))
    }

    /// Random bit flips anywhere in a sharded checkpoint: verify --hashes never passes a changed tensor.
    @Test func randomFlipsNeverPassAChangedTensor() throws {
        let originalDir = fixturesPath + "/safetensors/tiny-llama"
        let original = try TensorHashes.compute(Checkpoint.open(originalDir), threads: 2, files: false)
        var rng = SeededGenerator(state: 0x5EED)
        let dir = try copyOfModel("tiny-llama")
        defer { removeFolder(dir) }
        let files = try FileSystem.contents(of: dir).filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".json") }
        for _ in 0..<25 {
            let f = dir + "/" + files.randomElement(using: &rng)!
            let offset = Int.random(in: 0..<(try FileSystem.size(of: f)), using: &rng)
            let mask = UInt8(1) << UInt8.random(in: 0...7, using: &rng)
            overwrite(f, at: offset, xor: mask)
            let r = CommandRunner.run(["verify", "--hashes", Self.list, dir])
            if r.status == 0 {
                // Passing is only allowed when every tensor still has its original bytes.
                let now = try TensorHashes.compute(Checkpoint.open(dir), threads: 2, files: false)
                #expect(now.tensors == original.tensors, "verify passed a changed tensor (\(f) @\(offset))")
            }
            overwrite(f, at: offset, xor: mask)
        }
    }

    @Test func nanAndConfigMismatchAndMissingShardAreReported() throws {
        let dir = try copyOfModel("tiny-llama-single")
        defer { removeFolder(dir) }
        let file = dir + "/model.safetensors"
        let header = try SafetensorsFile(path: file).header
        let t = header.tensors.first { $0.name == "model.layers.0.self_attn.q_proj.weight" }!
        // F32 NaN: 0x7FC00000 little-endian at element 5.
        let at = header.dataStart + t.dataOffsets.lowerBound + 20
        let fd = open(file, O_RDWR)
        var nan: [UInt8] = [0, 0, 0xC0, 0x7F]
        _ = pwrite(fd, &nan, 4, off_t(at))
        close(fd)
        var r = CommandRunner.run(["verify", "--json", file])
        #expect(r.status == 1)
        var checks = try JSONValue.parse(r.stdout)["checks"]!.arrayValue!
        #expect(checks[1]["status"] == .string("failed") && checks[1]["detail"]!.stringValue!.contains("model.layers.0.self_attn.q_proj.weight (1 of"))
        // config.json that disagrees with the tensors.
        var config = try JSONValue.parse(FileSystem.readFile(dir + "/config.json")).objectValue!
        config["intermediate_size"] = .int(96)
        try AtomicFile.write(JSONValue.object(config).serializedBytes(), to: dir + "/config.json")
        r = CommandRunner.run(["verify", "--json", file])
        checks = try JSONValue.parse(r.stdout)["checks"]!.arrayValue!
        #expect(checks[2]["status"] == .string("failed") && checks[2]["detail"]!.stringValue!.contains("mlp.gate_proj.weight has shape [128, 64], config.json implies [96, 64]"))
        // A shard missing from a sharded checkpoint: structure fails, exit 2.
        let sharded = try copyOfModel("tiny-llama")
        defer { removeFolder(sharded) }
        unlink(sharded + "/model-00002-of-00003.safetensors")
        r = CommandRunner.run(["verify", "--json", sharded])
        #expect(r.status == 2)
        checks = try JSONValue.parse(r.stdout)["checks"]!.arrayValue!
        #expect(checks[0]["status"] == .string("failed") && checks[0]["detail"]!.stringValue!.contains("missing"))
    }
}

@Suite struct DiffCommandTests {
    @Test func identicalAcrossFormats() throws {
        let dir = try copyOfModel("tiny-llama-single")
        defer { removeFolder(dir) }
        try CompactConversion.write(Checkpoint.open(dir), to: dir + "/model.ctz")
        let r = CommandRunner.run(["diff", "--json", fixturesPath + "/safetensors/tiny-llama", dir + "/model.ctz"])
        #expect(r.status == 0, "\(r.stdout)")
        let j = try JSONValue.parse(r.stdout)
        #expect(j["equal"] == .bool(true) && j["tensors_compared"] == .int(21))
        #expect(j["tensors"]!.arrayValue!.allSatisfy { $0["identical_bytes"] == .bool(true) })
    }

    @Test func bf16CopyDiffersUnlessTolerated() throws {
        let dir = try copyOfModel("tiny-llama-single")
        let bf16 = dir + "-bf16"  // outside the input folder: an output inside it is refused
        defer { removeFolder(dir); removeFolder(bf16) }
        let c = CommandRunner.run(["convert", dir, bf16, "--dtype", "bf16"])
        #expect(c.status == 0, "\(c.stderr)")
        var r = CommandRunner.run(["diff", "--json", bf16, dir])
        #expect(r.status == 1)
        var j = try JSONValue.parse(r.stdout)
        #expect(j["equal"] == .bool(false) && j["dtype_changes"]!.arrayValue!.count == 21)
        let emb = j["tensors"]!.arrayValue!.first { $0["name"] == .string("model.embed_tokens.weight") }!
        // BF16 keeps 8 significant bits: rounding error at most half an ulp, 2^-8 relative.
        #expect(emb["max_rel_diff"]!.doubleValue! <= 1.0 / 256 && emb["max_rel_diff"]!.doubleValue! > 1.0 / 512 && emb["cosine"]!.doubleValue! > 0.9999)
        r = CommandRunner.run(["diff", "--json", "--rtol", "0.0040", bf16, dir])
        j = try JSONValue.parse(r.stdout)
        #expect(r.status == 0 && j["equal"] == .bool(true))
        #expect(CommandRunner.run(["diff", "--strict", "--rtol", "0.0040", bf16, dir]).status == 1)
    }

    @Test func structuralDifferences() throws {
        let r = CommandRunner.run(["diff", "--json", fixturesPath + "/safetensors/small.safetensors", fixturesPath + "/safetensors/tiny-llama"])
        #expect(r.status == 1)
        let j = try JSONValue.parse(r.stdout)
        #expect(j["only_in_a"]!.arrayValue!.count == 9 && j["only_in_b"]!.arrayValue!.count == 21)
        #expect(CommandRunner.run(["diff", fixturesPath + "/safetensors/small.safetensors", "/nonexistent"]).status == 2)
    }
}

/// A deterministic generator (SplitMix64), so a failing random case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
