import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsJSON

/// `shears prune` on the tiny Phi-3 (Fixtures/engine/phi3-eval: fused qkv_proj / gate_up_proj,
/// longrope, partial rotary) under every strategy: each fused tensor is sliced block by block and
/// written fused again with the kept widths, `verify --source --manifest` passes, the output runs
/// in `shears eval`, per-layer widths (and longrope outputs whose hidden_size / heads is no longer
/// head_dim) get `modeling_shears_phi3.py`, and recovery (which adds biases Phi-3 cannot hold) is
/// refused. Tools/check-phi3-prune loads the same outputs in transformers and compares logits.
@Suite struct Phi3PruneCommandTests {
    static let model = fixturesPath + "/engine/phi3-eval"
    static let calibration = ["--calibration", model + "/eval.txt", "--seq-len", "16", "--samples", "4",
                              "--statistics-seq-len", "16", "--statistics-samples", "4"]

    @Test(arguments: [
        ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:2", "--mlp-layers", "0:2", "--gqa", "query"],
        ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:2", "--mlp-layers", "0:2", "--gqa", "kv-group", "--global", "--importance", "wifv"],
        ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:1", "--mlp-layers", "1:2", "--importance", "wanda-sp"],
        ["--strategy", "channel", "--ratio", "0.25"],
        ["--strategy", "layer", "--remove-layers", "1"],
        ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:0", "--mlp-layers", "0:2"],
    ]) func prunesFusedTensorsAndVerifies(_ options: [String]) throws {
        let dir = temporaryFolder("shears-phi3-prune")
        defer { removeFolder(dir) }
        let out = dir + "/out"
        let p = CommandRunner.run(["prune", Self.model, out] + options + Self.calibration)
        #expect(p.status == 0, "\(p.stderr)")
        let v = CommandRunner.run(["verify", out, "--source", Self.model, "--manifest", out + "/pruning-manifest.json"])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        let c = try JSONValue.parse(try FileSystem.readFile(out + "/config.json"))
        #expect(c["model_type"]?.stringValue == "phi3")
        let layers = c["num_hidden_layers"]!.intValue!, hidden = c["hidden_size"]!.intValue!, d = c["head_dim"]!.intValue!
        func perLayer(_ key: String, _ l: Int) -> Int { c[key + "_per_layer"]?.arrayValue?[l].intValue ?? c[key]!.intValue! }
        let pruned = try Checkpoint.open(out)
        #expect(!pruned.tensorNames.contains { $0.contains("q_proj") || $0.contains("gate_proj.") || $0.contains("up_proj.") && !$0.contains("gate_up_proj") })
        for l in 0..<layers {
            let h = perLayer("num_attention_heads", l), kv = perLayer("num_key_value_heads", l), i = perLayer("intermediate_size", l)
            #expect(pruned.tensorInfo(named: "model.layers.\(l).self_attn.qkv_proj.weight")?.shape == [(h + 2 * kv) * d, hidden])
            #expect(pruned.tensorInfo(named: "model.layers.\(l).mlp.gate_up_proj.weight")?.shape == [2 * i, hidden])
        }
        let remote = c["auto_map"] != nil
        #expect(remote == FileSystem.isFile(out + "/modeling_shears_phi3.py"))
        if remote { #expect(c["auto_map"]?["AutoModelForCausalLM"]?.stringValue == "modeling_shears_phi3.ShearsPhi3ForCausalLM") }
        let e = CommandRunner.run(["eval", out, "--text", Self.model + "/eval.txt", "--seq-len", "32", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        // GGUF: llama.cpp's phi3 loader takes one width for every block and query heads × head_dim
        // = hidden_size; anything else is refused with the reason.
        let sizes = (0..<layers).map { [perLayer("num_attention_heads", $0), perLayer("num_key_value_heads", $0), perLayer("intermediate_size", $0)] }
        let g = CommandRunner.run(["convert", out, dir + "/p.gguf"])
        if sizes.allSatisfy({ $0 == sizes[0] }) && sizes[0][0] * d == hidden {
            #expect(g.status == 0, "\(g.stderr)")
            let fromGGUF = CommandRunner.run(["eval", dir + "/p.gguf", "--text", Self.model + "/eval.txt", "--seq-len", "32", "--json"])
            #expect(fromGGUF.status == 0, "\(fromGGUF.stderr)")
            let a = try JSONValue.parse(Array(e.stdout.utf8))["perplexity"]?.doubleValue ?? 0
            let b = try JSONValue.parse(Array(fromGGUF.stdout.utf8))["perplexity"]?.doubleValue ?? -1
            #expect(abs(a - b) <= 1e-9 * a, "eval of the folder \(a), of its GGUF \(b)")
        } else {
            #expect(g.status == 2 && (g.stderr.contains("--uniform") || g.stderr.contains("embedding_length")), "\(g.stderr)")
        }
    }

    /// A phi3 GGUF file (attn_qkv, ffn_up, longrope factor tensors) is pruned in place: read as
    /// its row blocks, `verify --source FILE.gguf --manifest` passes, and a GGUF output evaluates
    /// as the folder output does.
    @Test func prunesAPhi3GGUF() throws {
        let dir = temporaryFolder("shears-phi3-gguf-prune")
        defer { removeFolder(dir) }
        let c = CommandRunner.run(["convert", Self.model, dir + "/m.gguf"])
        #expect(c.status == 0, "\(c.stderr)")
        let options = ["--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:0", "--mlp-layers", "0:2", "--importance", "l2"]
        let p = CommandRunner.run(["prune", dir + "/m.gguf", dir + "/out"] + options)
        #expect(p.status == 0, "\(p.stderr)")
        let v = CommandRunner.run(["verify", dir + "/out", "--source", dir + "/m.gguf", "--manifest", dir + "/out/pruning-manifest.json"])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        let pruned = try Checkpoint.open(dir + "/out")
        #expect(pruned.tensorInfo(named: "model.layers.1.mlp.gate_up_proj.weight")?.shape == [48, 32])
        let g = CommandRunner.run(["prune", dir + "/m.gguf", dir + "/out.gguf"] + options)
        #expect(g.status == 0, "\(g.stderr)")
        var perplexities: [Double] = []
        for m in [dir + "/out", dir + "/out.gguf"] {
            let e = CommandRunner.run(["eval", m, "--text", Self.model + "/eval.txt", "--seq-len", "32", "--json"])
            #expect(e.status == 0, "\(e.stderr)")
            perplexities.append(try JSONValue.parse(Array(e.stdout.utf8))["perplexity"]?.doubleValue ?? .nan)
        }
        #expect(perplexities[0] == perplexities[1] && perplexities[0].isFinite, "\(perplexities)")
    }

    /// Phi-3's o_proj and down_proj have no biases in transformers: recovery is refused.
    @Test func recoveryIsRefused() throws {
        let dir = temporaryFolder("shears-phi3-recover")
        defer { removeFolder(dir) }
        let r = CommandRunner.run(["prune", Self.model, dir + "/out", "--strategy", "block", "--ratio", "0.5", "--attention-layers", "0:2",
                                   "--mlp-layers", "0:2", "--importance", "wifv", "--recover", "ls"] + Self.calibration)
        #expect(r.status != 0 && r.stderr.contains("phi3 models cannot have"), "\(r.stderr)")
    }
}
