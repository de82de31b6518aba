import Testing
import CheckpointCore
import ModelArchitecture
import ShearsJSON
@testable import GGUF

/// A pruned-like llama folder (hidden 64, head_dim 16, vocab 96) whose layers have the given query
/// heads, KV heads and MLP widths (0 = the layer has no such tensors), with the per-layer lists of
/// formats/pruned-config-output.md. `biases`: random o_proj/down_proj biases and all-zero
/// q/k/v/gate/up biases, as recovery writes them.
func makePrunedLlama(_ folder: String, dtype: DType = .f32, heads: [Int], kv: [Int], ffn: [Int],
                     biases: Bool = false, seed: UInt64 = 7) throws {
    let hidden = 64, hd = 16, vocab = 96
    var specs: [TensorSpec] = [TensorSpec(name: "model.embed_tokens.weight", dtype: dtype, shape: [vocab, hidden]),
                               TensorSpec(name: "model.norm.weight", dtype: dtype, shape: [hidden]),
                               TensorSpec(name: "lm_head.weight", dtype: dtype, shape: [vocab, hidden])]
    var zero = Set<String>()
    for l in 0..<heads.count {
        let p = "model.layers.\(l)."
        specs += [TensorSpec(name: p + "input_layernorm.weight", dtype: dtype, shape: [hidden]),
                  TensorSpec(name: p + "post_attention_layernorm.weight", dtype: dtype, shape: [hidden])]
        if heads[l] > 0 {
            specs += [TensorSpec(name: p + "self_attn.q_proj.weight", dtype: dtype, shape: [heads[l] * hd, hidden]),
                      TensorSpec(name: p + "self_attn.k_proj.weight", dtype: dtype, shape: [kv[l] * hd, hidden]),
                      TensorSpec(name: p + "self_attn.v_proj.weight", dtype: dtype, shape: [kv[l] * hd, hidden]),
                      TensorSpec(name: p + "self_attn.o_proj.weight", dtype: dtype, shape: [hidden, heads[l] * hd])]
        }
        if ffn[l] > 0 {
            specs += [TensorSpec(name: p + "mlp.gate_proj.weight", dtype: dtype, shape: [ffn[l], hidden]),
                      TensorSpec(name: p + "mlp.up_proj.weight", dtype: dtype, shape: [ffn[l], hidden]),
                      TensorSpec(name: p + "mlp.down_proj.weight", dtype: dtype, shape: [hidden, ffn[l]])]
        }
        if biases {
            specs += [TensorSpec(name: p + "self_attn.q_proj.bias", dtype: dtype, shape: [heads[l] * hd]),
                      TensorSpec(name: p + "self_attn.k_proj.bias", dtype: dtype, shape: [kv[l] * hd]),
                      TensorSpec(name: p + "self_attn.v_proj.bias", dtype: dtype, shape: [kv[l] * hd]),
                      TensorSpec(name: p + "self_attn.o_proj.bias", dtype: dtype, shape: [hidden]),
                      TensorSpec(name: p + "mlp.gate_proj.bias", dtype: dtype, shape: [ffn[l]]),
                      TensorSpec(name: p + "mlp.up_proj.bias", dtype: dtype, shape: [ffn[l]]),
                      TensorSpec(name: p + "mlp.down_proj.bias", dtype: dtype, shape: [hidden])]
            for s in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj"] { zero.insert(p + s + ".bias") }
        }
    }
    var rng = SplitMix64(seed: seed)
    try ShardedWriter.write(folder: folder, tensors: specs) { (spec) throws(CheckpointError) -> TensorBytes in
        .floats((0..<spec.shape.reduce(1, *)).map { _ in zero.contains(spec.name) ? 0 : Float.random(in: -0.5...0.5, using: &rng) })
    }
    func ints(_ a: [Int]) -> JSONValue { .array(a.map { .int(Int64($0)) }) }
    let config = JSONValue.object(JSONObject([
        ("architectures", .array([.string("LlamaForCausalLM")])), ("model_type", .string("llama")),
        ("hidden_size", .int(Int64(hidden))), ("intermediate_size", .int(128)), ("num_hidden_layers", .int(Int64(heads.count))),
        ("num_attention_heads", .int(4)), ("num_key_value_heads", .int(2)), ("head_dim", .int(Int64(hd))), ("vocab_size", .int(Int64(vocab))),
        ("max_position_embeddings", .int(512)), ("rms_norm_eps", .double(1e-5)), ("rope_theta", .double(10000)),
        ("tie_word_embeddings", .bool(false)), ("bos_token_id", .int(1)), ("eos_token_id", .int(2)),
        ("attention_bias", .bool(biases)), ("mlp_bias", .bool(biases)),
        ("num_attention_heads_per_layer", ints(heads)), ("num_key_value_heads_per_layer", ints(kv)), ("intermediate_size_per_layer", ints(ffn)),
    ]))
    try AtomicFile.write(config.serializedBytes(style: .pretty), to: folder + "/config.json")
}

private func intArray(_ v: GGUFValue?) -> [Int]? {
    guard case .array(let t, let items)? = v, t == .int32 else { return nil }
    return items.compactMap(\.intValue)
}

@Suite struct DeciWriterTests {
    /// Uneven widths: deci, exact per-block arrays, key/value length always, Q/K permuted per block.
    @Test func unevenWidthsAreWrittenAsDeci() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makePrunedLlama(dir + "/src", heads: [4, 2, 2], kv: [2, 1, 2], ffn: [96, 40, 64])
        let report = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf")
        #expect(report.architecture == "deci")
        let g = try GGUFFile(path: dir + "/m.gguf")
        #expect(g.architecture == "deci")
        #expect(g["deci.block_count"]?.intValue == 3)
        #expect(intArray(g["deci.attention.head_count"]) == [4, 2, 2])
        #expect(intArray(g["deci.attention.head_count_kv"]) == [2, 1, 2])
        #expect(intArray(g["deci.feed_forward_length"]) == [96, 40, 64])
        #expect(g["deci.attention.key_length"]?.intValue == 16 && g["deci.attention.value_length"]?.intValue == 16)
        #expect(g["deci.rope.dimension_count"]?.intValue == 16 && g["deci.embedding_length"]?.intValue == 64)
        #expect(g["llama.block_count"] == nil)
        #expect(g.tensorInfo(named: "blk.1.attn_q.weight")?.shape == [32, 64])
        #expect(g.tensorInfo(named: "blk.1.attn_k.weight")?.shape == [16, 64])
        #expect(g.tensorInfo(named: "blk.1.ffn_down.weight")?.shape == [64, 40])
        // Q of block 1 is permuted with its own 2 heads.
        let src = try Checkpoint.open(dir + "/src")
        var q = try src.tensor(named: "model.layers.1.self_attn.q_proj.weight").floats()
        RotaryPermutation.permute(&q, rows: 32, heads: 2, direction: .toGGUF)
        #expect(try g.floats(named: "blk.1.attn_q.weight") == q)
        // Our reader reads the sizes back.
        let hp = try GGUFModelMetadata(gguf: g)
        #expect(hp.layerSizes == [LayerSizes(numAttentionHeads: 4, numKeyValueHeads: 2, intermediateSize: 96),
                                  LayerSizes(numAttentionHeads: 2, numKeyValueHeads: 1, intermediateSize: 40),
                                  LayerSizes(numAttentionHeads: 2, numKeyValueHeads: 2, intermediateSize: 64)])
        #expect(hp.hasPerLayerSizes && hp.heads == 4 && hp.intermediateSize == 96 && hp.headDim == 16)
        // 40 is not a multiple of 32: the quantization warning recommends --round-to.
        #expect(report.warnings.contains { $0.contains("blocks 1") && $0.contains("--round-to") })
    }

    /// HF pruned folder → deci GGUF → HF folder: identical tensors, equivalent per-layer config.
    @Test(arguments: [DType.f32, .bf16])
    func roundTripToHuggingFace(dtype: DType) throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makePrunedLlama(dir + "/src", dtype: dtype, heads: [4, 2, 4], kv: [2, 1, 1], ffn: [96, 64, 128])
        _ = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf")
        let back = try GGUFToHuggingFace.convert(try GGUFFile(path: dir + "/m.gguf"), to: dir + "/back")
        #expect(back.dtype == dtype)
        let a = try Checkpoint.open(dir + "/src"), b = try Checkpoint.open(dir + "/back")
        #expect(Set(a.tensorNames) == Set(b.tensorNames))
        for n in a.tensorNames { #expect(try a.tensor(named: n).bytes() == b.tensor(named: n).bytes(), "\(n)") }
        let ca = try ModelConfiguration(path: dir + "/src/config.json"), cb = try ModelConfiguration(path: dir + "/back/config.json")
        #expect(try ca.layerSizes() == cb.layerSizes())
        #expect(cb.headDim == 16 && cb.hiddenSize == 64 && cb.numHiddenLayers == 3)
        #expect(cb.raw["auto_map"]?["AutoModelForCausalLM"]?.stringValue == "modeling_shears_llama.ShearsLlamaForCausalLM")
        #expect(cb.raw["num_key_value_heads_per_layer"] == .array([.int(2), .int(1), .int(1)]))
    }

    /// Equal widths stay llama even when the config carries (equal) per-layer lists.
    @Test func uniformWidthsStayLlama() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makePrunedLlama(dir + "/src", heads: [2, 2], kv: [1, 1], ffn: [64, 64])
        let report = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf")
        let g = try GGUFFile(path: dir + "/m.gguf")
        #expect(report.architecture == "llama" && g.architecture == "llama")
        #expect(g["llama.attention.head_count"] == .uint32(2) && g["llama.attention.head_count_kv"] == .uint32(1))
        #expect(g["llama.feed_forward_length"] == .uint32(64))
        #expect(try GGUFModelMetadata(gguf: g).layerSizes == nil)
    }

    /// A layer that keeps attention but has no MLP gets an all-zero MLP of 32 channels.
    @Test func zeroMLPLayerGetsAZeroMLP() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makePrunedLlama(dir + "/src", heads: [4, 2], kv: [2, 1], ffn: [96, 0])
        let report = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf", options: .init(type: .q8_0))
        #expect(report.warnings.contains { $0.contains("layer 1 has no MLP channels") })
        let g = try GGUFFile(path: dir + "/m.gguf")
        #expect(intArray(g["deci.feed_forward_length"]) == [96, GGUFLayerLayout.zeroMLPWidth])
        #expect(g.tensorInfo(named: "blk.1.ffn_gate.weight")?.shape == [32, 64])
        #expect(g.tensorInfo(named: "blk.1.ffn_down.weight")?.shape == [64, 32])
        #expect(g.tensorInfo(named: "blk.1.ffn_down.weight")?.type == .q8_0)
        for t in ["ffn_gate", "ffn_up", "ffn_down"] { #expect(try g.floats(named: "blk.1.\(t).weight").allSatisfy { $0 == 0 }) }
        let src = try Checkpoint.open(dir + "/src")
        #expect(try g.floats(named: "blk.1.ffn_norm.weight") == src.tensor(named: "model.layers.1.post_attention_layernorm.weight").floats())
        // Read back as a llama folder with a 32-channel zero MLP (the same function).
        _ = try GGUFToHuggingFace.convert(g, to: dir + "/back")
        let c = try ModelConfiguration(path: dir + "/back/config.json")
        #expect(try c.layerSizes().map(\.intermediateSize) == [96, 32])
    }

    /// A layer with neither attention nor MLP is the identity: not written (also when last).
    @Test(arguments: [[1], [0, 2]])
    func emptyLayersAreDropped(empty: [Int]) throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        var heads = [4, 2, 2], kv = [2, 1, 1], ffn = [96, 64, 32]
        for l in empty { heads[l] = 0; kv[l] = 0; ffn[l] = 0 }
        try makePrunedLlama(dir + "/src", heads: heads, kv: kv, ffn: ffn)
        let report = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf")
        #expect(report.layout.dropped == empty)
        let g = try GGUFFile(path: dir + "/m.gguf")
        let kept = (0..<3).filter { !empty.contains($0) }
        #expect(g["deci.block_count"]?.intValue == kept.count)
        #expect(intArray(g["deci.attention.head_count"]) == kept.map { heads[$0] })
        #expect(intArray(g["deci.feed_forward_length"]) == kept.map { ffn[$0] })
        #expect(g.tensorInfo(named: "blk.\(kept.count).attn_norm.weight") == nil)
        let src = try Checkpoint.open(dir + "/src")
        for (b, l) in kept.enumerated() {
            #expect(try g.floats(named: "blk.\(b).ffn_down.weight") == src.tensor(named: "model.layers.\(l).mlp.down_proj.weight").floats())
        }
    }

    /// A layer without attention but with an MLP: 0 heads (llama.cpp's attention-free block), no
    /// attention tensors or attention norm. Our reader shows it but refuses to make a llama folder.
    @Test func attentionFreeLayer() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makePrunedLlama(dir + "/src", heads: [4, 0], kv: [2, 0], ffn: [96, 64])
        _ = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf")
        let g = try GGUFFile(path: dir + "/m.gguf")
        #expect(intArray(g["deci.attention.head_count"]) == [4, 0] && intArray(g["deci.attention.head_count_kv"]) == [2, 0])
        #expect(g.tensorInfo(named: "blk.1.attn_norm.weight") == nil && g.tensorInfo(named: "blk.1.attn_q.weight") == nil)
        #expect(g.tensorInfo(named: "blk.1.ffn_norm.weight") != nil)
        #expect(try GGUFModelMetadata(gguf: g).layerSizes?[1].numAttentionHeads == 0)
        let e = #expect(throws: CheckpointError.self) { try GGUFToHuggingFace.convert(g, to: dir + "/back") }
        #expect(e?.code == .unsupportedArchitecture && e?.message.contains("block 1") == true)
    }

    /// Recovery biases: non-zero o_proj/down_proj biases are written (attn_output.bias,
    /// ffn_down.bias, which llama.cpp's llama and deci loaders apply); the all-zero q/k/v/gate/up
    /// biases are left out and come back as zeros.
    @Test(arguments: [true, false])
    func recoveryBiases(uneven: Bool) throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makePrunedLlama(dir + "/src", dtype: .bf16, heads: uneven ? [4, 2] : [2, 2], kv: uneven ? [2, 1] : [1, 1],
                            ffn: uneven ? [96, 64] : [64, 64], biases: true)
        let report = try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf")
        #expect(report.architecture == (uneven ? "deci" : "llama"))
        let g = try GGUFFile(path: dir + "/m.gguf")
        let src = try Checkpoint.open(dir + "/src")
        for l in 0..<2 {
            #expect(try g.floats(named: "blk.\(l).attn_output.bias") == src.tensor(named: "model.layers.\(l).self_attn.o_proj.bias").floats())
            #expect(try g.floats(named: "blk.\(l).ffn_down.bias") == src.tensor(named: "model.layers.\(l).mlp.down_proj.bias").floats())
            for t in ["attn_q", "attn_k", "attn_v", "ffn_gate", "ffn_up"] { #expect(g.tensorInfo(named: "blk.\(l).\(t).bias") == nil) }
        }
        _ = try GGUFToHuggingFace.convert(g, to: dir + "/back")
        let b = try Checkpoint.open(dir + "/back")
        #expect(Set(src.tensorNames) == Set(b.tensorNames))
        for n in src.tensorNames { #expect(try src.tensor(named: n).bytes() == b.tensor(named: n).bytes(), "\(n)") }
        let c = try ModelConfiguration(path: dir + "/back/config.json")
        #expect(c.attentionBias && c.mlpBias)
    }
}

@Suite struct DeciRefusalTests {
    /// An o_proj bias on a layer without attention cannot be expressed in llama.cpp.
    @Test func attentionBiasWithoutAttentionIsRefused() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makePrunedLlama(dir + "/src", heads: [4, 0], kv: [2, 0], ffn: [96, 64], biases: true)
        let e = #expect(throws: CheckpointError.self) { try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf") }
        #expect(e?.code == .unsupportedConversion)
        #expect(e?.message.contains("--recover") == true && e?.tensor == "model.layers.1.self_attn.o_proj.bias")
        #expect(!FileSystem.isFile(dir + "/m.gguf"))
    }

    @Test func queryHeadsMustBeAMultipleOfKVHeads() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makePrunedLlama(dir + "/src", heads: [4, 3], kv: [2, 2], ffn: [96, 64])
        let e = #expect(throws: CheckpointError.self) { try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf") }
        #expect(e?.code == .invalidConfig && e?.message.contains("layer 1") == true && e?.path?.hasSuffix("config.json") == true)
    }

    /// A tensor whose shape disagrees with its layer's sizes is named.
    @Test func shapeAgainstPerLayerSizes() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        try makePrunedLlama(dir + "/src", heads: [4, 2], kv: [2, 1], ffn: [96, 64])
        var cfg = try JSONValue.parse(try FileSystem.readFile(dir + "/src/config.json")).objectValue!
        cfg["intermediate_size_per_layer"] = .array([.int(96), .int(48)])
        try AtomicFile.write(JSONValue.object(cfg).serializedBytes(), to: dir + "/src/config.json")
        let e = #expect(throws: CheckpointError.self) { try HuggingFaceToGGUF.convert(folder: dir + "/src", to: dir + "/m.gguf") }
        #expect(e?.code == .shapeMismatch && e?.tensor?.hasPrefix("model.layers.1.mlp.") == true)
    }

    /// Reader: per-block arrays of the wrong length and inconsistent head counts are errors.
    @Test func readerChecksPerBlockArrays() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        func write(_ heads: [Int32], _ kv: [Int32], _ ffn: [Int32]) throws -> CheckpointError? {
            let md: [(key: String, value: GGUFValue)] = [
                ("general.architecture", .string(GGUFString("deci"))), ("deci.block_count", .uint32(2)),
                ("deci.embedding_length", .uint32(64)), ("deci.context_length", .uint32(128)),
                ("deci.attention.layer_norm_rms_epsilon", .float32(1e-5)),
                ("deci.attention.head_count", .array(.int32, heads.map { .int32($0) })),
                ("deci.attention.head_count_kv", .array(.int32, kv.map { .int32($0) })),
                ("deci.feed_forward_length", .array(.int32, ffn.map { .int32($0) })),
            ]
            let w = try GGUFWriter(path: dir + "/h.gguf", metadata: md, tensors: [])
            try w.finish()
            do { _ = try GGUFModelMetadata(gguf: try GGUFFile(path: dir + "/h.gguf")); return nil } catch { return error }
        }
        #expect(try write([4, 2], [2, 1], [96, 64]) == nil)
        #expect(try write([4, 2, 2], [2, 1, 1], [96, 64, 64])?.message.contains("array of 2 integers") == true)
        #expect(try write([4, 3], [2, 2], [96, 64])?.message.contains("block 1") == true)
    }
}
