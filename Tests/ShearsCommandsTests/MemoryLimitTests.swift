import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore

/// `--memory-limit` measured, not estimated: `shears prune` runs as a child process while this
/// test reads its RssAnon (/proc/PID/status) every 2 ms and keeps the largest value. The model is
/// written here: a LLaMA with a large vocabulary for its size (32768 × 256, untied), so that its
/// embedding and head are 32 MiB each in F32 and decide the peak when they are kept whole.
@Suite(.serialized) struct MemoryLimitTests {
    static let vocab = 32768, hidden = 256, layers = 4, heads = 4, kvHeads = 2, headDim = 64, inter = 512

    /// Writes the model into a temporary folder; returns it and a token file.
    static func writeModel() -> (folder: String, tokens: String) {
        let dir = temporaryFolder("shears-memlimit")
        let h = hidden, q = heads * headDim, kv = kvHeads * headDim
        var specs: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, h]), ("lm_head.weight", [vocab, h]), ("model.norm.weight", [h])]
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            specs += [(p + "input_layernorm.weight", [h]), (p + "post_attention_layernorm.weight", [h]),
                      (p + "self_attn.q_proj.weight", [q, h]), (p + "self_attn.k_proj.weight", [kv, h]),
                      (p + "self_attn.v_proj.weight", [kv, h]), (p + "self_attn.o_proj.weight", [h, q]),
                      (p + "mlp.gate_proj.weight", [inter, h]), (p + "mlp.up_proj.weight", [inter, h]),
                      (p + "mlp.down_proj.weight", [h, inter])]
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        try! SafetensorsWriter.write(path: dir + "/model.safetensors",
                                     tensors: specs.map { TensorSpec(name: $0.0, dtype: .bf16, shape: $0.1) }) { spec throws(CheckpointError) in
            let n = spec.shape.reduce(1, *)
            if spec.shape.count == 1 { return .floats([Float](repeating: 1, count: n)) }
            return .floats((0..<n).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.08
            })
        }
        let config = """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(h), "num_hidden_layers": \(layers),
         "num_attention_heads": \(heads), "num_key_value_heads": \(kvHeads), "head_dim": \(headDim), "intermediate_size": \(inter),
         "vocab_size": \(vocab), "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
         "max_position_embeddings": 256, "hidden_act": "silu", "torch_dtype": "bfloat16"}
        """
        try! AtomicFile.write(Array(config.utf8), to: dir + "/config.json")
        let windows = (0..<4).map { w in "[" + (0..<64).map { String((w * 7919 + $0 * 104729) % vocab) }.joined(separator: ",") + "]" }
        try! AtomicFile.write(Array(("[" + windows.joined(separator: ",") + "]").utf8), to: dir + "/tokens.json")
        return (dir, dir + "/tokens.json")
    }

    /// Runs shears with `arguments`, polling its RssAnon; returns the exit status, the peak in
    /// bytes and stderr.
    static func runPolled(_ arguments: [String]) -> (status: Int32, peak: Int, stderr: String) {
        let errDir = temporaryFolder("shears-memlimit-err"), err = errDir + "/stderr"
        defer { _ = system("rm -rf '\(errDir)'") }
        func quote(_ s: String) -> String { "'" + s.replacing("'", with: "'\\''") + "'" }
        let script = "exec \(quote(CommandRunner.executable)) \(arguments.map(quote).joined(separator: " ")) >/dev/null 2>\(quote(err)) </dev/null"
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = ["/bin/sh", "-c", script].map { (s: String) in strdup(s) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else { return (-1, 0, "spawn failed") }
        var peak = 0, status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if let f = fopen("/proc/\(pid)/status", "r") {
                var line = [CChar](repeating: 0, count: 256)
                while fgets(&line, 256, f) != nil {
                    let s = String(cString: line)
                    if s.hasPrefix("RssAnon:"), let kb = Int(s.dropFirst(8).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") { peak = max(peak, kb * 1024) }
                }
                fclose(f)
            }
            usleep(2000)
        }
        let text = String(decoding: (try? FileSystem.readFile(err)) ?? [], as: UTF8.self)
        return ((status >> 8) & 0xFF, peak, text)
    }

    @Test func pruneStaysUnderTheLimitItIsGiven() throws {
        let model = Self.writeModel()
        defer { _ = system("rm -rf '\(model.folder)'") }
        func prune(_ extra: [String]) -> (status: Int32, peak: Int, stderr: String) {
            let out = temporaryFolder("shears-memlimit-out")
            defer { _ = system("rm -rf '\(out)'") }
            return Self.runPolled(["prune", model.folder, out + "/pruned", "--calibration-tokens", model.tokens, "--threads", "2"] + extra)
        }
        let limit = 64 << 20
        let bounded = prune(["--memory-limit", "64MiB"])
        #expect(bounded.status == 0, "\(bounded.stderr)")
        #expect(bounded.peak > 0 && bounded.peak <= limit, "peak RssAnon \(bounded.peak >> 10) KiB over the 64 MiB limit")
        #expect(bounded.stderr.contains("memory limit 67.1 MB (--memory-limit;"), "\(bounded.stderr)")
        // The same prune with the default limit keeps both 32 MiB tables whole: over 64 MiB, so
        // the bound above is the limit's doing.
        let whole = prune([])
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(whole.peak > limit, "default-limit peak \(whole.peak >> 10) KiB")

        // A limit the pass cannot fit is refused before it starts.
        let r = prune(["--memory-limit", "1MiB"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("more than the memory limit"), "\(r.stderr)")
    }
}
