/// Tensor names of the llama family (`llama`, `qwen2`, `mistral`) in GGUF and in Hugging Face
/// checkpoints, both ways. Per-layer names carry the layer index (`blk.N.` ↔ `model.layers.N.`).
public enum LlamaTensorNames {
    /// Whole-model names, GGUF → Hugging Face.
    static let global: [(String, String)] = [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ]

    /// Per-layer suffixes, GGUF → Hugging Face (weights and biases).
    static let layer: [(String, String)] = [
        ("attn_norm.weight", "input_layernorm.weight"),
        ("ffn_norm.weight", "post_attention_layernorm.weight"),
        ("attn_q.weight", "self_attn.q_proj.weight"),
        ("attn_k.weight", "self_attn.k_proj.weight"),
        ("attn_v.weight", "self_attn.v_proj.weight"),
        ("attn_output.weight", "self_attn.o_proj.weight"),
        ("attn_q.bias", "self_attn.q_proj.bias"),
        ("attn_k.bias", "self_attn.k_proj.bias"),
        ("attn_v.bias", "self_attn.v_proj.bias"),
        ("attn_output.bias", "self_attn.o_proj.bias"),
        ("ffn_gate.weight", "mlp.gate_proj.weight"),
        ("ffn_up.weight", "mlp.up_proj.weight"),
        ("ffn_down.weight", "mlp.down_proj.weight"),
        ("ffn_gate.bias", "mlp.gate_proj.bias"),
        ("ffn_up.bias", "mlp.up_proj.bias"),
        ("ffn_down.bias", "mlp.down_proj.bias"),
    ]

    /// GGUF tensors that have no Hugging Face counterpart (derived from the config on load).
    public static let derived: Set<String> = ["rope_freqs.weight"]

    /// The Hugging Face name of a GGUF tensor, or nil when it is not a llama-family tensor.
    public static func huggingFaceName(_ gguf: String) -> String? {
        if let g = global.first(where: { $0.0 == gguf }) { return g.1 }
        guard gguf.hasPrefix("blk.") else { return nil }
        let rest = gguf.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let n = Int(rest[..<dot]), n >= 0 else { return nil }
        let suffix = String(rest[rest.index(after: dot)...])
        guard let l = layer.first(where: { $0.0 == suffix }) else { return nil }
        return "model.layers.\(n).\(l.1)"
    }

    /// The GGUF name of a Hugging Face tensor, or nil when it is not a llama-family tensor.
    public static func ggufName(_ hf: String) -> String? {
        if let g = global.first(where: { $0.1 == hf }) { return g.0 }
        let prefix = "model.layers."
        guard hf.hasPrefix(prefix) else { return nil }
        let rest = hf.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let n = Int(rest[..<dot]), n >= 0 else { return nil }
        let suffix = String(rest[rest.index(after: dot)...])
        guard let l = layer.first(where: { $0.1 == suffix }) else { return nil }
        return "blk.\(n).\(l.0)"
    }

    /// The block index and per-layer suffix of a GGUF name (`blk.3.attn_q.weight` → (3, `attn_q.weight`)).
    public static func layerAndSuffix(gguf: String) -> (layer: Int, suffix: String)? {
        guard gguf.hasPrefix("blk.") else { return nil }
        let rest = gguf.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let n = Int(rest[..<dot]), n >= 0 else { return nil }
        return (n, String(rest[rest.index(after: dot)...]))
    }

    /// Which rotary-permuted projection a GGUF name is (query or key rows), if any.
    public enum Projection: Sendable { case query, key }

    public static func rotaryProjection(gguf name: String) -> Projection? {
        if name.hasSuffix(".attn_q.weight") || name.hasSuffix(".attn_q.bias") { return .query }
        if name.hasSuffix(".attn_k.weight") || name.hasSuffix(".attn_k.bias") { return .key }
        return nil
    }
}
