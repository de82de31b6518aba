import Testing
import CheckpointCore
import ShearsJSON
@testable import GGUF

@Suite struct GGUFWriterTests {
    /// Rewriting the Python-written fixture from what we read gives the same bytes.
    @Test func rewritesThePythonFileByteForByte() throws {
        let path = fixturesPath + "/gguf/all-types.gguf"
        let f = try GGUFFile(path: path)
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let out = dir + "/copy.gguf"
        let w = try GGUFWriter(path: out, metadata: f.metadata, tensors: f.tensors.map { GGUFWriter.TensorSpec(name: $0.name, dimensions: $0.dimensions, type: $0.type) }, alignment: f.alignment)
        for t in f.tensors { try w.write(f.withUnsafeBytes(of: t) { Array($0) }) }
        try w.finish()
        #expect(try FileSystem.readFile(out) == FileSystem.readFile(path))
    }

    /// Q8_0 quantization is ggml's: re-quantizing decoded Q8_0 data gives the original blocks.
    @Test func q8_0MatchesTheReferenceQuantizer() throws {
        let f = try GGUFFile(path: fixturesPath + "/gguf/all-types.gguf")
        let t = f.tensorInfo(named: "t.q8_0")!
        let values = try f.floats(t)
        let bytes = try Quantize.encode(values, as: .q8_0)
        #expect(bytes == f.withUnsafeBytes(of: t) { Array($0) })
    }

    @Test func writerRejectsBadSpecs() {
        #expect(throws: CheckpointError.self) { try GGUFWriter.makeHeader(metadata: [], tensors: [.init(name: "a", dimensions: [33], type: .q8_0)], alignment: 32) }
        #expect(throws: CheckpointError.self) { try GGUFWriter.makeHeader(metadata: [("k", .uint8(1)), ("k", .uint8(2))], tensors: [], alignment: 32) }
        #expect(throws: CheckpointError.self) { try GGUFWriter.makeHeader(metadata: [], tensors: [.init(name: String(repeating: "n", count: 64), dimensions: [1], type: .f32)], alignment: 32) }
    }
}

@Suite struct RotaryPermutationTests {
    @Test func followsTheDocumentedRowRule() {
        // 2 heads of hd = 4: HF row p*2 + i -> GGUF row 2i + p within each head.
        var rows: [Float] = (0..<8).map(Float.init)
        RotaryPermutation.permute(&rows, rows: 8, heads: 2, direction: .toGGUF)
        #expect(rows == [0, 2, 1, 3, 4, 6, 5, 7])
        RotaryPermutation.permute(&rows, rows: 8, heads: 2, direction: .toHuggingFace)
        #expect(rows == (0..<8).map(Float.init))
    }

    @Test func inverseOfTheForwardPermutationOnWideRows() {
        var rng = SplitMix64(seed: 3)
        let original = (0..<(12 * 5)).map { _ in Float.random(in: -1...1, using: &rng) }
        var x = original
        RotaryPermutation.permute(&x, rows: 12, heads: 3, direction: .toGGUF)
        #expect(x != original)
        RotaryPermutation.permute(&x, rows: 12, heads: 3, direction: .toHuggingFace)
        #expect(x == original)
    }

    @Test func rejectsOddHeads() {
        #expect(throws: CheckpointError.self) { try RotaryPermutation.validate(rows: 9, heads: 3, tensor: "q") }
        #expect(throws: CheckpointError.self) { try RotaryPermutation.validate(rows: 8, heads: 3, tensor: "q") }
    }
}

/// A tiny random llama folder (hidden 64, 2 layers, 4 query / 2 KV heads), written in `dtype`.
func makeTinyLlama(_ folder: String, dtype: DType, tied: Bool = false, seed: UInt64 = 1, modelType: String = "llama") throws {
    let hidden = 64, ffn = 96, layers = 2, heads = 4, kv = 2, hd = 16, vocab = 49152 / 512
    var specs: [TensorSpec] = [TensorSpec(name: "model.embed_tokens.weight", dtype: dtype, shape: [vocab, hidden]),
                               TensorSpec(name: "model.norm.weight", dtype: dtype, shape: [hidden])]
    if !tied { specs.append(TensorSpec(name: "lm_head.weight", dtype: dtype, shape: [vocab, hidden])) }
    for l in 0..<layers {
        let p = "model.layers.\(l)."
        specs += [
            TensorSpec(name: p + "input_layernorm.weight", dtype: dtype, shape: [hidden]),
            TensorSpec(name: p + "post_attention_layernorm.weight", dtype: dtype, shape: [hidden]),
            TensorSpec(name: p + "self_attn.q_proj.weight", dtype: dtype, shape: [heads * hd, hidden]),
            TensorSpec(name: p + "self_attn.k_proj.weight", dtype: dtype, shape: [kv * hd, hidden]),
            TensorSpec(name: p + "self_attn.v_proj.weight", dtype: dtype, shape: [kv * hd, hidden]),
            TensorSpec(name: p + "self_attn.o_proj.weight", dtype: dtype, shape: [hidden, heads * hd]),
            TensorSpec(name: p + "mlp.gate_proj.weight", dtype: dtype, shape: [ffn, hidden]),
            TensorSpec(name: p + "mlp.up_proj.weight", dtype: dtype, shape: [ffn, hidden]),
            TensorSpec(name: p + "mlp.down_proj.weight", dtype: dtype, shape: [hidden, ffn]),
        ]
        if modelType == "qwen2" {
            specs += [TensorSpec(name: p + "self_attn.q_proj.bias", dtype: dtype, shape: [heads * hd]),
                      TensorSpec(name: p + "self_attn.k_proj.bias", dtype: dtype, shape: [kv * hd]),
                      TensorSpec(name: p + "self_attn.v_proj.bias", dtype: dtype, shape: [kv * hd])]
        }
    }
    var rng = SplitMix64(seed: seed)
    try ShardedWriter.write(folder: folder, tensors: specs) { (spec) throws(CheckpointError) -> TensorBytes in
        .floats((0..<spec.shape.reduce(1, *)).map { _ in Float.random(in: -0.5...0.5, using: &rng) })
    }
    let config = JSONValue.object(JSONObject([
        ("architectures", .array([.string(modelType == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM")])), ("model_type", .string(modelType)),
        ("hidden_size", .int(Int64(hidden))), ("intermediate_size", .int(Int64(ffn))),
        ("num_hidden_layers", .int(Int64(layers))), ("num_attention_heads", .int(Int64(heads))),
        ("num_key_value_heads", .int(Int64(kv))), ("head_dim", .int(Int64(hd))), ("vocab_size", .int(Int64(vocab))),
        ("max_position_embeddings", .int(512)), ("rms_norm_eps", .double(1e-5)), ("rope_theta", .double(10000)),
        ("tie_word_embeddings", .bool(tied)), ("bos_token_id", .int(1)), ("eos_token_id", .int(2)),
    ]))
    try AtomicFile.write(config.serializedBytes(style: .pretty), to: folder + "/config.json")
}

@Suite struct FolderGGUFRoundTripTests {
    @Test(arguments: [DType.f32, .f16, .bf16])
    func floatRoundTripIsExact(dtype: DType) throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makeTinyLlama(dir + "/src", dtype: dtype)
        // A real byte-level tokenizer.json rides along.
        try AtomicFile.write(try FileSystem.readFile(fixturesPath + "/tokenizers/smollm2/tokenizer.json"), to: dir + "/src/tokenizer.json")
        let report = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf")
        #expect(report.tensorCount == 21)
        let g = try GGUFFile(path: dir + "/m.gguf")
        #expect(g.architecture == "llama")
        #expect(g["llama.attention.head_count_kv"]?.intValue == 2)
        #expect(g["tokenizer.ggml.pre"]?.stringValue == "smollm")
        #expect(g.tensorInfo(named: "blk.0.attn_norm.weight")?.type == .f32)
        #expect(g.tensorInfo(named: "blk.1.ffn_down.weight")?.type.name == dtype.rawValue)
        #expect(GGUFToHuggingFace.defaultDType(g) == dtype)
        let back = try GGUFToHuggingFace.convert(g, to: dir + "/back")
        #expect(back.dtype == dtype)
        let a = try Checkpoint.open(dir + "/src"), b = try Checkpoint.open(dir + "/back")
        #expect(Set(a.tensorNames) == Set(b.tensorNames))
        for name in a.tensorNames {
            let x = try a.tensor(named: name), y = try b.tensor(named: name)
            #expect(x.shape == y.shape && x.dtype == y.dtype, "\(name)")
            #expect(x.bytes() == y.bytes(), "\(name) differs after the round trip")
        }
        // The tokenizer survives too: same vocabulary and merges.
        let t1 = try JSONValue.parse(try FileSystem.readFile(dir + "/src/tokenizer.json"))
        let t2 = try JSONValue.parse(try FileSystem.readFile(dir + "/back/tokenizer.json"))
        #expect(t1["model"]?["vocab"] == t2["model"]?["vocab"])
        #expect(t1["model"]?["merges"] == t2["model"]?["merges"])
        #expect(t1["pre_tokenizer"] == t2["pre_tokenizer"])
        #expect(t1["added_tokens"] == t2["added_tokens"])
    }

    @Test func q8_0RoundTripIsWithinTheQuantizationBound() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makeTinyLlama(dir + "/src", dtype: .f32, tied: true)
        _ = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf", options: .init(type: .q8_0))
        let g = try GGUFFile(path: dir + "/m.gguf")
        #expect(g.tensorInfo(named: "blk.0.attn_q.weight")?.type == .q8_0)
        #expect(g.tensorInfo(named: "output.weight") == nil)
        _ = try GGUFToHuggingFace.convert(g, to: dir + "/back")
        let a = try Checkpoint.open(dir + "/src"), b = try Checkpoint.open(dir + "/back")
        #expect(b.info(named: "lm_head.weight") == nil)
        for name in a.tensorNames {
            let x = try a.tensor(named: name).floats(), y = try b.tensor(named: name).floats()
            // Per 32-element block, d = max|x|/127 stored as f16 (d16): x' = q·d16 with |x − q·d| <= d/2,
            // so |x − x'| <= d/2 + 127·|d − d16| (plus float rounding).
            var worst: Float = 0
            for blockStart in stride(from: 0, to: x.count, by: 32) {
                let block = blockStart..<min(blockStart + 32, x.count)
                let d = block.map { abs(x[$0]) }.max()! / 127
                let bound = d / 2 + 127 * abs(d - Float(Float16(d))) + 1e-6
                for i in block { worst = max(worst, abs(x[i] - y[i]) - bound) }
            }
            #expect(worst <= 0, "\(name): exceeds the Q8_0 bound by \(worst)")
        }
    }

    /// qwen2: biases carried, no rotary permutation (NeoX layout in llama.cpp too).
    @Test func qwen2RoundTripsWithBiasesAndNoPermutation() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makeTinyLlama(dir + "/src", dtype: .f32, modelType: "qwen2")
        _ = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf")
        let g = try GGUFFile(path: dir + "/m.gguf")
        #expect(g.architecture == "qwen2" && g.tensorInfo(named: "blk.1.attn_k.bias")?.type == .f32)
        let src = try Checkpoint.open(dir + "/src")
        #expect(try g.floats(named: "blk.0.attn_q.weight") == src.tensor(named: "model.layers.0.self_attn.q_proj.weight").floats())
        let back = try GGUFToHuggingFace.convert(g, to: dir + "/back")
        #expect(back.tensorCount == 27)
        let b = try Checkpoint.open(dir + "/back")
        for n in src.tensorNames { #expect(try src.tensor(named: n).bytes() == b.tensor(named: n).bytes(), "\(n)") }
        let c = try JSONValue.parse(try FileSystem.readFile(dir + "/back/config.json"))
        #expect(c["architectures"]?.arrayValue?.first?.stringValue == "Qwen2ForCausalLM" && c["model_type"]?.stringValue == "qwen2")
    }

    @Test func configRoundTrips() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makeTinyLlama(dir + "/src", dtype: .bf16, tied: true)
        try AtomicFile.write(try FileSystem.readFile(fixturesPath + "/tokenizers/smollm2/tokenizer.json"), to: dir + "/src/tokenizer.json")
        _ = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf")
        _ = try GGUFToHuggingFace.convert(try GGUFFile(path: dir + "/m.gguf"), to: dir + "/back")
        let c = try JSONValue.parse(try FileSystem.readFile(dir + "/back/config.json"))
        #expect(c["num_key_value_heads"]?.intValue == 2 && c["head_dim"]?.intValue == 16)
        #expect(c["rms_norm_eps"]?.doubleValue == 1e-5 && c["rope_theta"]?.doubleValue == 10000)
        #expect(c["tie_word_embeddings"]?.boolValue == true && c["dtype"]?.stringValue == "bfloat16")
        #expect(c["bos_token_id"]?.intValue == 1 && c["eos_token_id"]?.intValue == 2)
    }
}

@Suite struct FastF16Tests {
    /// The integer f32 → f16 encoder equals Float16(Float) on every exponent, with random and
    /// boundary mantissas (ties, subnormals, overflow, NaN payloads).
    @Test func matchesFloat16Conversion() {
        var rng = SplitMix64(seed: 11)
        var bad = 0
        for e: UInt32 in 0...255 {
            for sign: UInt32 in [0, 1] {
                var mantissas: [UInt32] = [0, 1, 0xFFF, 0x1000, 0x1FFF, 0x2000, 0x3FFF, 0x7F_E000, 0x7F_F000, 0x7F_FFFF, 0x40_0000]
                for _ in 0..<200 { mantissas.append(UInt32(truncatingIfNeeded: rng.next()) & 0x7F_FFFF) }
                for m in mantissas {
                    let f = Float(bitPattern: sign << 31 | e << 23 | m)
                    if Minifloat.floatToF16Bits(f) != Float16(f).bitPattern { bad += 1 }
                }
            }
        }
        #expect(bad == 0)
    }
}

@Suite struct HostileFolderTests {
    /// Impossible config values are errors, not traps.
    @Test(arguments: [("num_attention_heads", JSONValue.int(0)), ("vocab_size", .int(1 << 40)), ("hidden_size", .int(1 << 33))])
    func impossibleConfigValuesAreErrors(key: String, value: JSONValue) throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makeTinyLlama(dir + "/src", dtype: .f32)
        var cfg = try JSONValue.parse(try FileSystem.readFile(dir + "/src/config.json")).objectValue!
        cfg[key] = value
        if key == "num_attention_heads" { cfg["num_key_value_heads"] = .int(0) }
        try AtomicFile.write(JSONValue.object(cfg).serializedBytes(), to: dir + "/src/config.json")
        #expect(throws: CheckpointError.self) { try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf") }
        #expect(!FileSystem.isFile(dir + "/m.gguf"))
    }
}
