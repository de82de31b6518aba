import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsJSON

/// `shears prune` on the tiny Qwen3 (Fixtures/engine/qwen3-eval) under every strategy: the q/k
/// norms are kept as they are, `verify --source --manifest` passes, per-layer widths get
/// Qwen3's own remote-code file, and GGUF output of per-layer widths is refused (llama.cpp's
/// qwen3 loader reads one width for every block). Tools/check-qwen3-prune loads the same outputs
/// in transformers and compares logits.
@Suite struct Qwen3PruneCommandTests {
    static let model = fixturesPath + "/engine/qwen3-eval"
    static let calibration = ["--calibration", model + "/eval.txt", "--seq-len", "16", "--samples", "4"]

    @Test(arguments: [
        ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:2", "--mlp-layers", "0:2", "--gqa", "query"],
        ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:2", "--mlp-layers", "0:2", "--gqa", "kv-group", "--global"],
        ["--strategy", "channel", "--ratio", "0.25"],
        ["--strategy", "layer", "--remove-layers", "1"],
    ]) func prunesAndVerifies(_ options: [String]) throws {
        let dir = temporaryFolder("shears-qwen3-prune")
        defer { removeFolder(dir) }
        let out = dir + "/out"
        let p = CommandRunner.run(["prune", Self.model, out] + options + Self.calibration)
        #expect(p.status == 0, "\(p.stderr)")
        let v = CommandRunner.run(["verify", out, "--source", Self.model, "--manifest", out + "/pruning-manifest.json"])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        let src = try Checkpoint.open(Self.model), pruned = try Checkpoint.open(out)
        for n in pruned.tensorNames where n.contains("_norm.weight") && n.contains("self_attn") {
            #expect(pruned.tensorInfo(named: n)?.shape == [16], "\(n)")
        }
        if !options.contains("layer") {
            #expect(try pruned.tensor(named: "model.layers.1.self_attn.k_norm.weight").bytes() == src.tensor(named: "model.layers.1.self_attn.k_norm.weight").bytes())
        }
        let c = try JSONValue.parse(try FileSystem.readFile(out + "/config.json"))
        #expect(c["model_type"]?.stringValue == "qwen3")
        if options.contains("--global") {
            #expect(FileSystem.isFile(out + "/modeling_shears_qwen3.py") && !FileSystem.isFile(out + "/modeling_shears_llama.py"))
            #expect(c["auto_map"]?["AutoModelForCausalLM"]?.stringValue == "modeling_shears_qwen3.ShearsQwen3ForCausalLM")
            let g = CommandRunner.run(["convert", out, dir + "/p.gguf"])
            #expect(g.status != 0 && g.stderr.contains("--uniform"), "\(g.stderr)")
        } else {
            #expect(c["auto_map"] == nil)
            let g = CommandRunner.run(["convert", out, dir + "/p.gguf"])
            #expect(g.status == 0, "\(g.stderr)")
        }
    }

    /// Qwen3's MLP has no biases in transformers: recovery that would add a down-projection bias is
    /// refused; recovery of the attention output (attention_bias) is written and verifies.
    @Test func recoveryRefusesAnMLPBias() throws {
        let dir = temporaryFolder("shears-qwen3-recover")
        defer { removeFolder(dir) }
        let options = ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:2", "--importance", "wanda-sp", "--recover", "ls"]
        let refused = CommandRunner.run(["prune", Self.model, dir + "/mlp"] + options + ["--mlp-layers", "0:2"] + Self.calibration)
        #expect(refused.status != 0 && refused.stderr.contains("down projection"), "\(refused.stderr)")
        let out = dir + "/attention"
        let p = CommandRunner.run(["prune", Self.model, out] + options + ["--mlp-layers", "0:0"] + Self.calibration)
        #expect(p.status == 0, "\(p.stderr)")
        let v = CommandRunner.run(["verify", out, "--source", Self.model, "--manifest", out + "/pruning-manifest.json"])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        let c = try JSONValue.parse(try FileSystem.readFile(out + "/config.json"))
        #expect(c["attention_bias"]?.boolValue == true && c["mlp_bias"] == nil)
    }
}
