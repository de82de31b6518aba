import CheckpointCore
import ShearsJSON

/// Qwen3 (`Qwen3ForCausalLM`): LLaMA's tensors plus a per-head RMSNorm of the queries and keys
/// (`self_attn.q_norm` / `k_norm`, one weight of head-dim size shared by all heads, applied before
/// the rotary embedding), an explicit `head_dim` (128 when the config omits it), no attention
/// biases by default, an MLP that never has biases (Qwen3MLP), and NeoX-style rotary that
/// llama.cpp stores unpermuted.
public struct Qwen3Family: ModelFamily {
    public init() {}
    public var modelType: String { "qwen3" }
    public var architectureClass: String { "Qwen3ForCausalLM" }
    public var tensors: TensorNaming { Self.tensorNames }
    public var gguf: GGUFNaming { Self.ggufNames }
    public var blocks: EngineBlocks { .qwen3 }
    /// `modeling_shears_qwen3.py`: each decoder layer a stock Qwen3DecoderLayer of its own sizes
    /// (its q/k norms run over head_dim, which pruning keeps).
    public var perLayerCode: RemoteCode {
        RemoteCode(fileName: "modeling_shears_qwen3.py", configClass: "ShearsQwen3Config",
                   modelClass: "ShearsQwen3ForCausalLM", source: Qwen3ModelingSource.text)
    }

    /// transformers' Qwen3 names: LLaMA's, and `model.layers.{i}.self_attn.q_norm` / `k_norm`
    /// along the head dim (which pruning never slices). transformers' Qwen3MLP has no biases.
    public static let tensorNames: TensorNaming = {
        var t = LlamaFamily.tensorNames
        for i in t.layer.indices where t.layer[i].role.isMLP { t.layer[i].mayHaveBias = false }
        let k = t.layer.firstIndex { $0.role == .key }!
        t.layer.insert(.vector(.keyNorm, "self_attn.k_norm", along: .headDim), at: k + 1)
        t.layer.insert(.vector(.queryNorm, "self_attn.q_norm", along: .headDim), at: k)
        return t
    }()

    /// llama.cpp's qwen3 names (`attn_q_norm`, `attn_k_norm`; Q and K rows unpermuted).
    public static let ggufNames: GGUFNaming = {
        var g = LlamaFamily.ggufNames
        g.architecture = "qwen3"
        g.alsoReads = []
        g.permutesQueryKey = false
        g.names[.queryNorm] = "attn_q_norm"
        g.names[.keyNorm] = "attn_k_norm"
        return g
    }()

    public func describe(_ c: ModelConfiguration) throws(CheckpointError) -> ModelDescription {
        var c = c
        // Qwen3Config's head_dim defaults to 128, not hidden_size / heads.
        if c.raw["head_dim"] == nil || c.raw["head_dim"]?.isNull == true { c.headDim = 128 }
        var d = try LlamaFamily.describeDecoder(c, family: self)
        d.layerAttention = try c.qwenLayerAttention(layers: d.layerCount)
        return d
    }

    public func stockConfig(_ v: StockConfigValues) -> JSONObject {
        var o = LlamaFamily.decoderConfig(v, family: self, mlpBiasKey: false)
        o["use_sliding_window"] = .bool(false)
        o["sliding_window"] = .null
        o["max_window_layers"] = .int(Int64(v.layers))
        return o
    }
}
