import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsJSON

/// `shears eval` and `shears prune` on the tiny Gemma fixtures (Tools/engine/make_goldens.py):
/// the eval perplexity equals transformers' float64 one to 1e-5 relative (a sliding window of 8 in
/// 32-token windows); block and layer pruning verify against the source and keep the layer
/// types of the layers that remain; what Gemma cannot remove exactly is refused with exit 64.
/// Tools/check-gemma-prune loads the same outputs in transformers and compares logits.
@Suite struct GemmaCommandTests {
    static let model = fixturesPath + "/engine/gemma3-eval"
    static let calibration = ["--calibration", model + "/eval.txt", "--seq-len", "16", "--samples", "4"]

    @Test func evalMatchesTransformersPerplexity() throws {
        let out = CommandRunner.run(["eval", Self.model, "--text", Self.model + "/eval.txt", "--seq-len", "32", "--json", "--threads", "2"])
        #expect(out.status == 0, "\(out.stderr)")
        let j = try JSONValue.parse(out.stdout).objectValue!
        let g = try Checkpoint.open(Self.model + "/golden.safetensors")
        let ref = try g.tensor(named: "ppl.perplexity").withUnsafeBytes {
            Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)))
        }
        let ppl = try #require(j["perplexity"]?.doubleValue)
        #expect(abs(ppl - ref) / ref < 1e-5, "perplexity \(ppl) vs transformers \(ref)")
    }

    /// `--tokens` gives the same perplexity as the text it was tokenized from; `--bos window`
    /// puts BOS before every window of seq-len − 1 tokens and says so; the fixture's tokenizer adds
    /// no BOS, so `--bos auto` (the default) evaluates without.
    @Test func tokensAndBOSProtocols() throws {
        let dir = temporaryFolder("shears-gemma-eval")
        defer { removeFolder(dir) }
        let plain = CommandRunner.run(["eval", Self.model, "--text", Self.model + "/eval.txt", "--seq-len", "32", "--json", "--logits-out", dir + "/l"])
        #expect(plain.status == 0 && plain.stderr.contains("eval: no BOS (--bos auto"), "\(plain.stderr)")
        let tokens = try JSONValue.parse(try FileSystem.readFile(dir + "/l.tokens.json"))
        #expect(tokens.arrayValue?.count == 32)
        let all = CommandRunner.run(["tokenize", Self.model, "--text", Self.model + "/eval.txt", "--json", "--no-add-special-tokens"])
        #expect(all.status == 0, "\(all.stderr)")
        let ids = try JSONValue.parse(all.stdout)
        let idList = ids["ids"] ?? ids
        try AtomicFile.write(Array(idList.serialized().utf8), to: dir + "/ids.json")
        let fromTokens = CommandRunner.run(["eval", Self.model, "--tokens", dir + "/ids.json", "--seq-len", "32", "--json"])
        #expect(fromTokens.status == 0, "\(fromTokens.stderr)")
        #expect(try JSONValue.parse(fromTokens.stdout)["perplexity"]?.doubleValue == JSONValue.parse(plain.stdout)["perplexity"]?.doubleValue)
        let bos = CommandRunner.run(["eval", Self.model, "--tokens", dir + "/ids.json", "--seq-len", "32", "--json", "--bos", "window"])
        #expect(bos.status == 0 && bos.stderr.contains("at the start of every window"), "\(bos.stderr)")
        let j = try JSONValue.parse(bos.stdout)
        #expect(j["tokens"]?.intValue == j["windows"]!.intValue! * 31 && j["bos"]?.intValue != nil)
        let bad = CommandRunner.run(["eval", Self.model, "--tokens", Self.model + "/config.json"])
        #expect(bad.status == 2, "\(bad.stderr)")
    }

    @Test(arguments: [
        ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:2", "--mlp-layers", "0:2", "--gqa", "query"],
        ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:2", "--mlp-layers", "0:2", "--gqa", "kv-group", "--global"],
        ["--strategy", "layer", "--remove-layers", "1"],
    ]) func prunesAndVerifies(_ options: [String]) throws {
        let dir = temporaryFolder("shears-gemma-prune")
        defer { removeFolder(dir) }
        let out = dir + "/out"
        let p = CommandRunner.run(["prune", Self.model, out] + options + Self.calibration)
        #expect(p.status == 0, "\(p.stderr)")
        let v = CommandRunner.run(["verify", out, "--source", Self.model, "--manifest", out + "/pruning-manifest.json"])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        let pruned = try Checkpoint.open(out)
        #expect(pruned.tensorNames.filter { $0.contains("feedforward_layernorm") }.count == (options.contains("layer") ? 2 : 4))
        let c = try JSONValue.parse(try FileSystem.readFile(out + "/config.json"))
        #expect(c["model_type"]?.stringValue == "gemma3_text")
        let types = c["layer_types"]?.arrayValue?.compactMap(\.stringValue)
        // Removing the last layer keeps layer 0, the sliding one.
        #expect(types == (options.contains("layer") ? ["sliding_attention"] : ["sliding_attention", "full_attention"]))
        if options.contains("--global") {
            #expect(c["auto_map"]?["AutoModelForCausalLM"]?.stringValue == "modeling_shears_gemma3.ShearsGemma3ForCausalLM")
            #expect(FileSystem.isFile(out + "/modeling_shears_gemma3.py"))
        } else {
            #expect(c["auto_map"] == nil)
        }
    }

    @Test func refusesWhatGemmaCannotRemoveExactly() {
        let dir = temporaryFolder("shears-gemma-refuse")
        defer { removeFolder(dir) }
        let channel = CommandRunner.run(["prune", Self.model, dir + "/c", "--strategy", "channel", "--ratio", "0.25"] + Self.calibration)
        #expect(channel.status == 64 && channel.stderr.contains("√hidden_size"), "\(channel.stderr)")
        let recover = CommandRunner.run(["prune", Self.model, dir + "/r", "--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:2",
                                         "--mlp-layers", "0:0", "--importance", "wanda-sp", "--recover", "ls"] + Self.calibration)
        #expect(recover.status == 64 && recover.stderr.contains("post-attention norm"), "\(recover.stderr)")
        let kv1 = fixturesPath + "/engine/gemma3-kv1-window"
        let group = CommandRunner.run(["prune", kv1, dir + "/k", "--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:4",
                                       "--gqa", "kv-group", "--importance", "l2"])
        #expect(group.status == 64 && group.stderr.contains("one KV head"), "\(group.stderr)")
        #expect(!FileSystem.isFile(dir + "/c/config.json") && !FileSystem.isFile(dir + "/k/config.json"))
    }

    /// The same refusals on a tied Gemma 2 (soft-caps, windows): hidden channels (the embedding
    /// scale √hidden_size), and a recovery bias on the down projection, which Gemma 2's
    /// post-feedforward norm would normalise away. Nothing is written.
    @Test func refusesWhatGemma2CannotRemoveExactly() {
        let dir = temporaryFolder("shears-gemma2-refuse")
        defer { removeFolder(dir) }
        let gemma2 = fixturesPath + "/engine/gemma2-softcap-window"
        let channel = CommandRunner.run(["prune", gemma2, dir + "/c", "--strategy", "channel", "--ratio", "0.25", "--importance", "l2"])
        #expect(channel.status == 64 && channel.stderr.contains("gemma2 multiplies its embeddings by √hidden_size")
                && channel.stderr.contains("use --strategy block or layer"), "\(channel.stderr)")
        let recover = CommandRunner.run(["prune", gemma2, dir + "/r", "--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:0",
                                         "--mlp-layers", "0:2", "--importance", "l2", "--recover", "bias"] + Self.calibration)
        #expect(recover.status == 64 && recover.stderr.contains("post-feedforward norm") && recover.stderr.contains("--recover none"), "\(recover.stderr)")
        #expect(!FileSystem.isFile(dir + "/c/config.json") && !FileSystem.isFile(dir + "/r/config.json"))
    }
}
