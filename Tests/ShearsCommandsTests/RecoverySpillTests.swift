import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore

/// `prune --importance wifv --recover anchored-ls` takes scores and covariances in one statistics
/// pass; under a `--memory-limit` too small for a layer's covariance accumulators they go to a
/// file in the output's staging area (docs/scaling.md). The output must not change by a bit, and
/// no file may be left behind, whether the run succeeds or fails.
@Suite(.serialized) struct RecoverySpillTests {
    /// A LLaMA whose MLP is wide for its size (hidden 64, MLP 2048): its down_proj input
    /// covariance accumulator is 2048² × 8 B = 32 MiB per layer, over a quarter of a 96 MiB limit.
    static func writeModel() -> (folder: String, tokens: String) {
        let dir = temporaryFolder("shears-spill")
        let h = 64, layers = 4, heads = 2, headDim = 32, inter = 2048, vocab = 512
        var specs: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, h]), ("lm_head.weight", [vocab, h]), ("model.norm.weight", [h])]
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            specs += [(p + "input_layernorm.weight", [h]), (p + "post_attention_layernorm.weight", [h]),
                      (p + "self_attn.q_proj.weight", [heads * headDim, h]), (p + "self_attn.k_proj.weight", [heads * headDim, h]),
                      (p + "self_attn.v_proj.weight", [heads * headDim, h]), (p + "self_attn.o_proj.weight", [h, heads * headDim]),
                      (p + "mlp.gate_proj.weight", [inter, h]), (p + "mlp.up_proj.weight", [inter, h]),
                      (p + "mlp.down_proj.weight", [h, inter])]
        }
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        try! SafetensorsWriter.write(path: dir + "/model.safetensors",
                                     tensors: specs.map { TensorSpec(name: $0.0, dtype: .bf16, shape: $0.1) }) { spec throws(CheckpointError) in
            let n = spec.shape.reduce(1, *)
            if spec.shape.count == 1 { return .floats([Float](repeating: 1, count: n)) }
            return .floats((0..<n).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.2
            })
        }
        let config = """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(h), "num_hidden_layers": \(layers),
         "num_attention_heads": \(heads), "num_key_value_heads": \(heads), "head_dim": \(headDim), "intermediate_size": \(inter),
         "vocab_size": \(vocab), "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
         "max_position_embeddings": 256, "hidden_act": "silu", "torch_dtype": "bfloat16"}
        """
        try! AtomicFile.write(Array(config.utf8), to: dir + "/config.json")
        let windows = (0..<4).map { w in "[" + (0..<32).map { String((w * 7919 + $0 * 104729) % vocab) }.joined(separator: ",") + "]" }
        try! AtomicFile.write(Array(("[" + windows.joined(separator: ",") + "]").utf8), to: dir + "/tokens.json")
        return (dir, dir + "/tokens.json")
    }

    func files(_ folder: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in try FileSystem.contents(of: folder) { out[name] = try FileSystem.readFile(folder + "/" + name) }
        return out
    }

    @Test func spilledCovariancesWriteTheSameBytesAndLeaveNothing() throws {
        let model = Self.writeModel()
        defer { _ = system("rm -rf '\(model.folder)'") }
        let base = ["--importance", "wifv", "--recover", "anchored-ls", "--calibration-tokens", model.tokens,
                    "--statistics-samples", "4", "--statistics-seq-len", "32", "--threads", "2"]
        let parent = temporaryFolder("shears-spill-out")
        defer { _ = system("rm -rf '\(parent)'") }

        let memory = CommandRunner.run(["prune", model.folder, parent + "/memory"] + base)
        #expect(memory.status == 0, "\(memory.stderr)")
        #expect(memory.stderr.contains("in one statistics pass"), "\(memory.stderr)")
        #expect(!memory.stderr.contains("spilled"), "\(memory.stderr)")

        let spilled = CommandRunner.run(["prune", model.folder, parent + "/spilled", "--memory-limit", "96MiB"] + base)
        #expect(spilled.status == 0, "\(spilled.stderr)")
        // Layers 1–3 are pruned (the default range): their down_proj accumulators go to disk.
        #expect(spilled.stderr.contains("3 covariance accumulators spilled to disk"), "\(spilled.stderr)")

        let a = try files(parent + "/memory"), b = try files(parent + "/spilled")
        #expect(a.keys.sorted() == b.keys.sorted())
        #expect(a.keys.contains("model.safetensors") && a.keys.contains("pruning-manifest.json"))
        for (name, bytes) in a { #expect(b[name] == bytes, "\(name) differs between the in-memory and the spilled run") }
        #expect(try FileSystem.contents(of: parent).sorted() == ["memory", "spilled"], "staging or spill files left behind")

        // A failing run (a singular covariance with --damping 0) after the spill: nothing is left.
        let failed = CommandRunner.run(["prune", model.folder, parent + "/failed", "--memory-limit", "96MiB", "--damping", "0"] + base)
        #expect(failed.status == 2, "\(failed.stderr)")
        #expect(failed.stderr.contains("not positive definite"), "\(failed.stderr)")
        #expect(try FileSystem.contents(of: parent).sorted() == ["memory", "spilled"], "the failed run left files behind")
    }
}
