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
}
