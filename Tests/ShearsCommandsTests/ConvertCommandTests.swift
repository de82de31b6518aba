import ArgumentParser
import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import GGUF
import ShearsJSON
@testable import ShearsCommands

/// `shears convert` and `shears inspect` on GGUF, driven in-process.
@Suite struct ConvertCommandGGUFTests {
    static func tempDir() -> String {
        temporaryFolder("shears-convert-test")
    }

    static func remove(_ path: String) { if path.hasPrefix("/tmp/") { _ = system("rm -rf '\(path)'") } }

    /// A tiny llama folder: 1 layer, hidden 32, 2 query / 1 KV heads of 16, values from `value`.
    static func makeFolder(_ folder: String, dtype: DType = .f32, value: ((Int) -> Float)? = nil) throws {
        let specs = [
            TensorSpec(name: "model.embed_tokens.weight", dtype: dtype, shape: [64, 32]),
            TensorSpec(name: "model.norm.weight", dtype: dtype, shape: [32]),
            TensorSpec(name: "model.layers.0.input_layernorm.weight", dtype: dtype, shape: [32]),
            TensorSpec(name: "model.layers.0.post_attention_layernorm.weight", dtype: dtype, shape: [32]),
            TensorSpec(name: "model.layers.0.self_attn.q_proj.weight", dtype: dtype, shape: [32, 32]),
            TensorSpec(name: "model.layers.0.self_attn.k_proj.weight", dtype: dtype, shape: [16, 32]),
            TensorSpec(name: "model.layers.0.self_attn.v_proj.weight", dtype: dtype, shape: [16, 32]),
            TensorSpec(name: "model.layers.0.self_attn.o_proj.weight", dtype: dtype, shape: [32, 32]),
            TensorSpec(name: "model.layers.0.mlp.gate_proj.weight", dtype: dtype, shape: [64, 32]),
            TensorSpec(name: "model.layers.0.mlp.up_proj.weight", dtype: dtype, shape: [64, 32]),
            TensorSpec(name: "model.layers.0.mlp.down_proj.weight", dtype: dtype, shape: [32, 64]),
        ]
        var k = 0
        try ShardedWriter.write(folder: folder, tensors: specs) { (spec) throws(CheckpointError) -> TensorBytes in
            .floats((0..<spec.shape.reduce(1, *)).map { _ in k += 1; return value?(k) ?? Float(k % 97) / 97 - 0.5 })
        }
        let config = JSONValue.object(JSONObject([
            ("architectures", .array([.string("LlamaForCausalLM")])), ("model_type", .string("llama")),
            ("hidden_size", .int(32)), ("intermediate_size", .int(64)), ("num_hidden_layers", .int(1)),
            ("num_attention_heads", .int(2)), ("num_key_value_heads", .int(1)), ("head_dim", .int(16)),
            ("vocab_size", .int(64)), ("max_position_embeddings", .int(128)), ("rms_norm_eps", .double(1e-6)),
            ("rope_theta", .double(10000)), ("tie_word_embeddings", .bool(true)),
        ]))
        try AtomicFile.write(config.serializedBytes(style: .pretty), to: folder + "/config.json")
    }

    static func run(_ args: [String]) throws {
        let c = try ConvertCommand.parse(args)
        try c.run()
    }

    static func exitCode(_ args: [String]) -> Int32? {
        do {
            try run(args)
            return nil
        } catch let e as ExitCode {
            return e.rawValue
        } catch {
            return -1
        }
    }

    @Test func folderToGGUFAndBackIsExact() throws {
        let dir = Self.tempDir()
        defer { Self.remove(dir) }
        try Self.makeFolder(dir + "/src", dtype: .bf16)
        try Self.run([dir + "/src", dir + "/m.gguf", "--quiet"])
        let g = try GGUFFile(path: dir + "/m.gguf")
        #expect(g.tensorInfo(named: "blk.0.ffn_up.weight")?.type == .bf16)
        try Self.run([dir + "/m.gguf", dir + "/back", "--quiet"])
        for f in ["config.json", "generation_config.json", "model.safetensors"] { #expect(FileSystem.isFile(dir + "/back/" + f)) }
        let a = try Checkpoint.open(dir + "/src"), b = try Checkpoint.open(dir + "/back")
        for n in a.tensorNames { #expect(try a.tensor(named: n).bytes() == b.tensor(named: n).bytes(), "\(n)") }
        // --to gguf with another extension, --dtype q8_0.
        try Self.run([dir + "/src", dir + "/q8.bin", "--to", "gguf", "--dtype", "q8_0", "--quiet"])
        #expect(try GGUFFile(path: dir + "/q8.bin").tensorInfo(named: "blk.0.attn_q.weight")?.type == .q8_0)
    }

    @Test func shardSizeSplitsAndTheOldSpellingWorks() throws {
        let dir = Self.tempDir()
        defer { Self.remove(dir) }
        try Self.makeFolder(dir + "/src")
        try Self.run([dir + "/src", dir + "/m.gguf", "--quiet"])
        try Self.run([dir + "/m.gguf", dir + "/sharded", "--shard-size", "10KB", "--quiet"])
        #expect(FileSystem.isFile(dir + "/sharded/model.safetensors.index.json"))
        #expect(try Checkpoint.open(dir + "/sharded").files.count > 1)
        try Self.run([dir + "/sharded", dir + "/merged", "--quiet"])
        #expect(try FileSystem.contents(of: dir + "/merged").contains("model.safetensors"))
        try Self.run([dir + "/sharded", dir + "/resharded", "--max-shard-size", "20KB", "--quiet"])
        #expect(try Checkpoint.open(dir + "/resharded").files.count > 1)
        #expect(try FileSystem.contents(of: dir).allSatisfy { !$0.hasPrefix(".") }, "no staging folders left")
    }

    @Test func refusesConvertingOntoItself() throws {
        let dir = Self.tempDir()
        defer { Self.remove(dir) }
        try Self.makeFolder(dir + "/src")
        try Self.run([dir + "/src", dir + "/m.gguf", "--quiet"])
        #expect(Self.exitCode([dir + "/m.gguf", dir + "/m.gguf", "--force"]) == 2)
        #expect(Self.exitCode([dir + "/src", dir + "/src", "--force"]) == 2)
        #expect(Self.exitCode([dir + "/src/model.safetensors", dir + "/src/model.safetensors", "--force"]) == 2)
        #expect(Self.exitCode([dir + "/missing.gguf", dir + "/x"]) == 2)
        #expect(Self.exitCode([dir + "/src", dir + "/m.gguf"]) == 2, "exists without --force")
    }

    @Test func overflowIsAnErrorUnlessAllowedAndLeavesNoOutput() throws {
        let dir = Self.tempDir()
        defer { Self.remove(dir) }
        try Self.makeFolder(dir + "/src", value: { $0 == 500 ? 1e6 : 0.25 })
        #expect(Self.exitCode([dir + "/src", dir + "/f16", "--dtype", "f16", "--quiet"]) == 2)
        #expect(FileSystem.kind(of: dir + "/f16") == nil)
        #expect(try FileSystem.contents(of: dir) == ["src"], "an interrupted conversion leaves nothing behind")
        #expect(Self.exitCode([dir + "/src", dir + "/m.gguf", "--dtype", "f16", "--quiet"]) == 2)
        #expect(FileSystem.kind(of: dir + "/m.gguf") == nil)
        try Self.run([dir + "/src", dir + "/f16", "--dtype", "f16", "--allow-overflow", "--quiet"])
        let x = try Checkpoint.open(dir + "/f16").tensor(named: "model.embed_tokens.weight").floats()
        #expect(x.contains(.infinity))
        try Self.run([dir + "/src", dir + "/bf16", "--dtype", "bf16", "--quiet"])  // in range for bf16
    }

    @Test func compactRoundTripAndInspect() throws {
        let dir = Self.tempDir()
        defer { Self.remove(dir) }
        try Self.makeFolder(dir + "/src", dtype: .bf16)
        try Self.run([dir + "/src", dir + "/m.ctz", "--quiet"])
        try Self.run([dir + "/m.ctz", dir + "/back.safetensors", "--quiet"])
        #expect(try FileSystem.readFile(dir + "/back.safetensors") == FileSystem.readFile(dir + "/src/model.safetensors"))
        #expect(Self.exitCode([dir + "/m.ctz", dir + "/m.gguf", "--quiet"]) == 2)
        let inspect = try InspectCommand.parse([dir + "/m.ctz", "--json"])
        try inspect.run()  // prints; must not fail
    }

    @Test func validatesOptions() {
        #expect(throws: (any Error).self) { try ConvertCommand.parse(["a", "b.ctz", "--dtype", "f16"]) }
        #expect(throws: (any Error).self) { try ConvertCommand.parse(["a", "b.gguf", "--dtype", "q4_0"]) }
        #expect(throws: (any Error).self) { try ConvertCommand.parse(["a", "b.gguf", "--shard-size", "1GB"]) }
        #expect(throws: (any Error).self) { try ConvertCommand.parse(["a", "b", "--shard-size", "lots"]) }
        #expect((try? ConvertCommand.parse(["a", "b", "--max-shard-size", "2GiB"])) != nil)
    }

    @Test func progressLineShowsBytesRateAndETA() {
        let s = Progress.line(label: "convert", done: 250_000_000, total: 1_000_000_000, elapsed: 2)
        #expect(s == "convert: 250.0 MB / 1.0 GB (25%), 125.0 MB/s, ETA 6 s")
    }

    /// Redirected to a log, progress is one plain line every `logInterval` seconds, then a last line.
    @Test func progressInALogPrintsPlainLinesEveryInterval() {
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let out = Lines()
        let p = Progress(totalItems: 100, label: "eval: boolq", terminal: false) { out.all.append($0) }
        let t0 = p.startTime, dt = Progress.logInterval
        p.update(bytesDone: 10, now: t0 + 2)
        #expect(out.all.isEmpty)  // a short run stays silent
        p.update(bytesDone: 40, now: t0 + dt)
        p.update(bytesDone: 50, now: t0 + dt + 1)
        p.update(bytesDone: 90, now: t0 + 2 * dt)
        p.finish(now: t0 + 2 * dt + 5)
        #expect(out.all == ["eval: boolq 40/100 (40%), 30 s\n", "eval: boolq 90/100 (90%), 60 s\n",
                            "eval: boolq 100/100 (100%), 65 s\n"])
        let quiet = Progress(totalItems: 5, label: "x", quiet: true, terminal: false) { out.all.append($0) }
        quiet.update(bytesDone: 1, now: quiet.startTime + 3 * dt)
        quiet.finish(now: quiet.startTime + 3 * dt)
        #expect(out.all.count == 3)
        let tty = Progress(totalItems: 4, label: "t", terminal: true) { out.all.append($0) }
        tty.update(bytesDone: 2, now: tty.startTime + 2)
        tty.finish(now: tty.startTime + 3)
        #expect(out.all.suffix(2) == ["\rt 2/4 (50%), 2 s   ", "\rt 4/4 (100%), 3 s   \n"])
    }

    @Test func inspectReportsGGUF() throws {
        var p = #filePath
        for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
        let r = try GGUFInspectReport(path: p + "/Fixtures/gguf/all-types.gguf")
        let j = r.json
        #expect(j["format"]?.stringValue == "gguf" && j["gguf_version"]?.intValue == 3 && j["alignment"]?.intValue == 32)
        #expect(j["tensor_count"]?.intValue == 14 && j["dtypes"]?["Q4_K"]?["tensors"]?.intValue == 1)
        #expect(j["metadata"]?["test.array.int32"] == .array([.int(1), .int(-2), .int(3)]))
        #expect(j["tensors"]?.arrayValue?.first?["dtype"]?.stringValue == "F32")
        let spm = try GGUFInspectReport(path: p + "/Fixtures/gguf/spm-vocab.gguf")
        #expect(spm.json["metadata"]?["tokenizer.ggml.tokens"]?.stringValue == "[8000 strings]")
        #expect(spm.text(withTensors: true).contains("tokenizer.ggml.scores = [8000 float32]"))
    }
}
