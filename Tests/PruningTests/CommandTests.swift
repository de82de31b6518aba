import CheckpointCore
import ModelArchitecture
import ShearsCommands
import ShearsJSON
import Crypto
import Testing
import Tokenizers
@testable import Pruning

/// `shears prune` end to end on the bundled tiny-llama (GQA: 4 heads, 2 KV heads, 2 layers).
@Suite(.serialized) struct CommandTests {
    static let model = fixtures + "/safetensors/tiny-llama"

    func prune(_ out: String, _ extra: [String]) throws {
        let c = try PruneCommand.parse([Self.model, out] + extra)
        try c.run()
    }

    func json(_ path: String) throws -> JSONValue { try JSONValue.parse(try FileSystem.readFile(path)) }

    @Test func l2EndToEndIsDeterministic() throws {
        let a = temporaryFolder("cli-a"), b = temporaryFolder("cli-b")
        try prune(a, ["--importance", "l2", "--ratio", "0.5"])
        try prune(b, ["--importance", "l2", "--ratio", "0.5"])
        for name in ["model.safetensors", "config.json", "generation_config.json", "pruning-manifest.json"] {
            #expect(try FileSystem.readFile(a + "/" + name) == FileSystem.readFile(b + "/" + name), "\(name) differs between runs")
        }
        #expect(!FileSystem.isFile(a + "/" + LlamaFamily.remoteCode.fileName))
        // Stock config: scalar widths updated, no per-layer keys.
        let cfg = try ModelConfiguration(path: a + "/config.json")
        #expect(cfg.numAttentionHeads == 2 && cfg.numKeyValueHeads == 1 && cfg.intermediateSize == 64 && cfg.headDim == 16)
        #expect(cfg.raw["num_attention_heads_per_layer"] == nil && cfg.raw["auto_map"] == nil)
        let m = try json(a + "/pruning-manifest.json")
        #expect(m["format"] == .string("shears-pruning-manifest") && m["version"] == .int(1))
        #expect(m["source"]!["parameters"] == .int(106_816))
        let result = try Checkpoint.open(a)
        #expect(m["result"]!["parameters"] == .int(Int64(result.parameterCount)))
        #expect(m["result"]!["files"]!["model.safetensors"]!.stringValue!.count == 64)
        #expect(m["source"]!["files"]!.objectValue!.count == 5)  // 3 shards, index, config
        let layer0 = m["layers"]!.arrayValue![0]
        #expect(layer0["attention"]!["heads"] == .int(4) && layer0["attention"]!["kv_heads"] == .int(2))
        let kept = ints(layer0["attention"]!["kept_kv_heads"]), removed = ints(layer0["attention"]!["removed_kv_heads"])
        #expect(kept.count == 1 && removed.count == 1 && Set(kept + removed) == [0, 1])
        #expect(ints(layer0["attention"]!["kept_heads"]) == [kept[0] * 2, kept[0] * 2 + 1])
        #expect(layer0["mlp"]!["scores"]!.arrayValue!.count == 128 && ints(layer0["mlp"]!["kept_channels"]).count == 64)
        #expect(m["calibration"] == .null && m["settings"]!["reduction"] == .string("mean"))
        // The written weights are the source's rows.
        let src = try Checkpoint.open(Self.model)
        let k = try src.tensor(named: "model.layers.0.self_attn.k_proj.weight").floats()
        let k2 = try result.tensor(named: "model.layers.0.self_attn.k_proj.weight").floats()
        #expect(Array(k[(kept[0] * 16 * 64)..<((kept[0] + 1) * 16 * 64)]) == k2)
    }

    @Test func unevenWidthsWritePerLayerConfigAndModelingFile() throws {
        let out = temporaryFolder("cli-uneven")
        try prune(out, ["--importance", "l1", "--ratio", "0.5", "--global", "--shard-size", "100KB", "--dtype", "bf16"])
        let m = try json(out + "/pruning-manifest.json")
        let cfg = try json(out + "/config.json")
        let widths = m["result"]!["layers"]!.arrayValue!
        #expect(m["result"]!["uniform"] == .bool(false))
        do {
            #expect(cfg["intermediate_size_per_layer"]!.arrayValue!.map { $0.intValue! } == widths.map { $0["intermediate_size"]!.intValue! })
            #expect(cfg["num_key_value_heads_per_layer"] != nil && cfg["num_attention_heads_per_layer"] != nil)
            #expect(cfg["auto_map"]!["AutoModelForCausalLM"] == .string("modeling_shears_llama.ShearsLlamaForCausalLM"))
            #expect(cfg["intermediate_size"] == .int(128))  // scalars keep the source's values
            #expect(try FileSystem.readFile(out + "/modeling_shears_llama.py")
                    == FileSystem.readFile(repositoryRoot + "/Tools/python/modeling_shears_llama.py"))
        }
        #expect(cfg["dtype"] == .string("bfloat16"))
        let result = try Checkpoint.open(out)
        #expect(result.format == .shardedSafetensors && result.files.count > 1)
        #expect(result.entries.allSatisfy { $0.info.dtype == .bf16 })
        #expect(m["result"]!["parameters"] == .int(Int64(result.parameterCount)))
    }

    @Test func dryRunWritesOnlyTheManifest() throws {
        let out = temporaryFolder("cli-dry")
        try prune(out, ["--importance", "random", "--dry-run", "--gqa", "query"])
        #expect(try FileSystem.contents(of: out) == ["pruning-manifest.json"])
        let m = try json(out + "/pruning-manifest.json")
        #expect(m["settings"]!["dry_run"] == .bool(true) && m["settings"]!["gqa"] == .string("query"))
        #expect(m["result"]!["files"]!.objectValue!.isEmpty)
    }

    @Test func channelAndLayerStrategies() throws {
        let ch = temporaryFolder("cli-channel")
        try prune(ch, ["--strategy", "channel", "--importance", "l2"])
        let c = try ModelConfiguration(path: ch + "/config.json")
        #expect(c.hiddenSize == 48 && c.headDim == 16 && c.numAttentionHeads == 4)
        let r = try Checkpoint.open(ch)
        #expect(r.info(named: "model.embed_tokens.weight")!.shape == [256, 48])
        #expect(r.info(named: "model.layers.1.self_attn.o_proj.weight")!.shape == [48, 64])
        let m = try json(ch + "/pruning-manifest.json")
        #expect(ints(m["hidden"]!["kept_channels"]).count == 48 && ints(m["hidden"]!["removed_channels"]).count == 16)

        let ly = temporaryFolder("cli-layer")
        try prune(ly, ["--strategy", "layer", "--remove-layers", "1", "--importance", "l1"])
        let lc = try ModelConfiguration(path: ly + "/config.json")
        #expect(lc.numHiddenLayers == 1)
        let lm = try json(ly + "/pruning-manifest.json")
        let removed = ints(lm["removed_layers"])
        #expect(removed.count == 1)
        let lr = try Checkpoint.open(ly)
        #expect(lr.info(named: "model.layers.1.mlp.up_proj.weight") == nil)
        let src = try Checkpoint.open(Self.model)
        let kept = 1 - removed[0]
        #expect(try lr.tensor(named: "model.layers.0.mlp.up_proj.weight").bytes() == src.tensor(named: "model.layers.\(kept).mlp.up_proj.weight").bytes())

        let keep = temporaryFolder("cli-keep")
        try prune(keep, ["--strategy", "layer", "--keep-layers", "1"])
        #expect(try ints(json(keep + "/pruning-manifest.json")["removed_layers"]) == [1])
    }

    @Test func taylorWithoutEngineFailsClearly() throws {
        let out = temporaryFolder("cli-taylor")
        #expect(throws: (any Error).self) { try prune(out, []) }
        #expect(!FileSystem.isFile(out + "/model.safetensors"))
    }

    @Test func refusesToOverwriteWithoutForce() throws {
        let out = temporaryFolder("cli-force")
        try prune(out, ["--importance", "l1"])
        #expect(throws: (any Error).self) { try prune(out, ["--importance", "l1"]) }
        try prune(out, ["--importance", "l1", "--force", "--uniform", "--round-to", "32"])
        let c = try ModelConfiguration(path: out + "/config.json")
        #expect(c.intermediateSize == 96)  // 128 − int(128·0.75) = 32 removed; 96 is a multiple of 32
    }

    /// The command's Taylor path with a plugged-in gradient source (the recorded PyTorch gradients
    /// of tiny-llama), as the engine will plug in: same selection as the golden, calibration recorded.
    @Test func taylorThroughAGradientSource() throws {
        let model = try GoldenModel("tiny-llama")
        let tokens = temporaryFolder("cli-tokens") + ".json"
        let batch = model.goldens["tokens"]!
        try AtomicFile.write(batch.serializedBytes(), to: tokens)
        let out = temporaryFolder("cli-taylor-recorded")
        var job = try PruneCommand.parse([Self.model, out, "--taylor", "param_mix", "--calibration-tokens", tokens, "--samples", "4", "--seq-len", "16"]).job
        job.gradients = model.gradientSource
        try job.run()
        let m = try json(out + "/pruning-manifest.json")
        let golden = try #require(model.goldens["selections"]!.arrayValue!.first { s in
            s["importance"] == .string("param_mix") && s["reduction"] == .string("sum") && s["gqa"] == .string("kv-group")
                && s["scope"] == .string("local") && s["ratio"] == .double(0.25) && s["round_to"] == .null
        })
        for l in 0..<2 {
            let layer = m["layers"]!.arrayValue![l]
            #expect(ints(layer["attention"]!["kept_heads"]) == ints(golden["layers"]!["\(l)"]!["heads"]))
            #expect(ints(layer["mlp"]!["kept_channels"]) == ints(golden["layers"]!["\(l)"]!["channels"]))
        }
        let cal = m["calibration"]!
        #expect(cal["samples"] == .int(4) && cal["seq_len"] == .int(16) && cal["token_count"] == .int(64) && cal["seed"]?.intValue == 42)
        #expect(m["settings"]!["taylor"] == .string("param_mix") && m["settings"]!["reduction"] == .string("sum"))
        #expect(!FileSystem.isDirectory(out + "/.shears-prune-step"))
    }

    /// Text calibration: tokenized with the model folder's tokenizer.json, windows drawn from it,
    /// file name, SHA-256 and token count recorded.
    @Test func textCalibrationIsTokenizedAndRecorded() throws {
        let model = try GoldenModel("tiny-llama")
        let folder = temporaryFolder("cli-model-with-tokenizer")
        try FileSystem.createDirectory(folder)
        for name in try FileSystem.contents(of: Self.model) {
            try AtomicFile.write(try FileSystem.readFile(Self.model + "/" + name), to: folder + "/" + name)
        }
        try AtomicFile.write(try FileSystem.readFile(fixtures + "/tokenizers/smollm2/tokenizer.json"), to: folder + "/tokenizer.json")
        let text = fixtures + "/text/austen-evaluation/persuasion-head.txt"
        let out = temporaryFolder("cli-text-calibration")
        var job = try PruneCommand.parse([folder, out, "--calibration", text, "--samples", "3", "--seq-len", "32"]).job
        job.gradients = model.gradientSource
        try job.run()
        let m = try json(out + "/pruning-manifest.json")
        let tokens = try Tokenizer(contentsOf: folder + "/tokenizer.json").encode(bytes: try FileSystem.readFile(text))
        let digest = SHA256.hash(data: try FileSystem.readFile(text)).map { String($0 >> 4, radix: 16) + String($0 & 15, radix: 16) }.joined()
        #expect(m["calibration"]!["file"] == .string("persuasion-head.txt"))
        #expect(m["calibration"]!["sha256"] == .string(digest))
        #expect(m["calibration"]!["token_count"] == .int(Int64(tokens.count)) && tokens.count > 1000)
        #expect(m["calibration"]!["samples"] == .int(3) && m["calibration"]!["seq_len"] == .int(32))
        #expect(FileSystem.isFile(out + "/tokenizer.json"))
        var sampler = try CalibrationSampler(documents: [tokens], samples: 3, seqLen: 32, seed: 42)
        let windows = sampler.batch(step: 1)
        #expect(windows.allSatisfy { w in w.count == 32 && tokens.indices.contains { i in i + 32 <= tokens.count && Array(tokens[i..<(i + 32)]) == w } })
    }

    @Test func modelingSourceMatchesToolsFile() throws {
        let file = try FileSystem.readFile(repositoryRoot + "/Tools/python/modeling_shears_llama.py")
        #expect(Array((LlamaFamily.remoteCode.source + "\n").utf8) == file)
        let qwen3 = try FileSystem.readFile(repositoryRoot + "/Tools/python/modeling_shears_qwen3.py")
        #expect(Array((Qwen3Family().perLayerCode.source + "\n").utf8) == qwen3)
        let phi3 = try FileSystem.readFile(repositoryRoot + "/Tools/python/modeling_shears_phi3.py")
        #expect(Array((Phi3Family().perLayerCode.source + "\n").utf8) == phi3)
    }
}

/// Uniform widths whose query heads do not divide the hidden size cannot be a stock config
/// (transformers' LlamaConfig refuses it): the per-layer keys and the modeling file are written.
@Suite struct StockConfigTests {
    @Test func uniformHeadsThatDoNotDivideHiddenGetTheRemoteCodeConfig() throws {
        let out = temporaryFolder("cli-uniform-heads")
        // tiny-gqa: 64 hidden, 8 query heads over 2 KV heads of 8; query policy at 0.25 keeps 6 heads.
        let c = try PruneCommand.parse([fixtures + "/pruning/tiny-gqa", out, "--uniform", "--gqa", "query", "--importance", "l2"])
        try c.run()
        let config = try JSONValue.parse(try FileSystem.readFile(out + "/config.json"))
        #expect(config["num_attention_heads"] == .int(8))    // the source's, so that LlamaConfig accepts it
        #expect(config["num_attention_heads_per_layer"] == .array(Array(repeating: .int(6), count: 3)))
        #expect(config["auto_map"] != nil)
        #expect(FileSystem.isFile(out + "/" + LlamaFamily.remoteCode.fileName))
        // Heads that divide the hidden size keep the stock form.
        let stock = temporaryFolder("cli-uniform-stock")
        try PruneCommand.parse([fixtures + "/pruning/tiny-gqa", stock, "--uniform", "--importance", "l2", "--ratio", "0.5"]).run()
        let s = try JSONValue.parse(try FileSystem.readFile(stock + "/config.json"))
        #expect(s["num_attention_heads"] == .int(4) && s["auto_map"] == nil)
    }
}
