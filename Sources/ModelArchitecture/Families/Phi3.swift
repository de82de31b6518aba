import CheckpointCore
import ShearsJSON

/// Phi-3 / Phi-3.5 / Phi-4-mini (`Phi3ForCausalLM`): LLaMA's decoder with two fused projections,
/// `self_attn.qkv_proj` (query rows, then key rows, then value rows) and `mlp.gate_up_proj` (gate
/// rows, then up rows), no biases, optional partial rotary (`partial_rotary_factor`), `longrope`
/// scaling on the 128K variants, and a `sliding_window` on every layer.
///
/// The fused tensors are declared as ``FusedRows``: the engine reads each block as a row range of
/// the stored tensor (``FusedTensorView``), pruning slices each block and writes the tensor fused
/// again. Inside Shears the blocks carry LLaMA's projection names (`self_attn.q_proj`, ...,
/// `mlp.up_proj`); files hold only the fused tensors.
public struct Phi3Family: ModelFamily {
    public init() {}
    public var modelType: String { "phi3" }
    public var architectureClass: String { "Phi3ForCausalLM" }
    public var tensors: TensorNaming { Self.tensorNames }
    public var gguf: GGUFNaming { Self.ggufNames }
    public var blocks: EngineBlocks { .llama }
    /// `modeling_shears_phi3.py`: each decoder layer a stock Phi3DecoderLayer of its own sizes.
    public var perLayerCode: RemoteCode {
        RemoteCode(fileName: "modeling_shears_phi3.py", configClass: "ShearsPhi3Config", modelClass: "ShearsPhi3ForCausalLM",
                   source: Phi3ModelingSource.text)
    }

    /// Phi3Config checks longrope's factor lists against hidden_size // num_attention_heads, not
    /// head_dim: a stock config loads only while the two agree.
    public func stockConfigLoads(hiddenSize: Int, heads: Int, headDim: Int, configuration c: ModelConfiguration) -> Bool {
        guard case .longRope? = try? c.rotaryScaling() else { return true }
        return heads > 0 && hiddenSize / heads == headDim
    }

    static let qkv = FusedRows(name: "self_attn.qkv_proj", blocks: [.query, .key, .value])
    static let gateUp = FusedRows(name: "mlp.gate_up_proj", blocks: [.gate, .up])

    /// transformers' Phi-3 names: LLaMA's embedding, norms, `o_proj` and `down_proj`, and the fused
    /// `qkv_proj` / `gate_up_proj`. No projection has a bias (Phi3Attention, Phi3MLP).
    public static let tensorNames = TensorNaming(
        layerPrefix: "model.layers.",
        global: LlamaFamily.tensorNames.global,
        layer: [
            .vector(.inputNorm, "input_layernorm", along: .hidden),
            .vector(.postAttentionNorm, "post_attention_layernorm", along: .hidden),
            TensorDeclaration(.query, "self_attn.q_proj", rows: [.queryChannels], columns: .hidden, fused: qkv),
            TensorDeclaration(.key, "self_attn.k_proj", rows: [.keyValueChannels], columns: .hidden, fused: qkv),
            TensorDeclaration(.value, "self_attn.v_proj", rows: [.keyValueChannels], columns: .hidden, fused: qkv),
            TensorDeclaration(.output, "self_attn.o_proj", rows: [.hidden], columns: .queryChannels),
            TensorDeclaration(.gate, "mlp.gate_proj", rows: [.mlpChannels], columns: .hidden, fused: gateUp),
            TensorDeclaration(.up, "mlp.up_proj", rows: [.mlpChannels], columns: .hidden, fused: gateUp),
            TensorDeclaration(.down, "mlp.down_proj", rows: [.hidden], columns: .mlpChannels),
        ])

    /// llama.cpp's phi3 names (`convert_hf_to_gguf.py` Phi3MiniModel, `llama-model.cpp`
    /// LLM_ARCH_PHI3): the fused tensors stored as they are (`attn_qkv` holds the query, key and
    /// value rows; `ffn_up` the gate rows, then the up rows, which llama.cpp's SwiGLU splits in
    /// half), Q and K unpermuted (NeoX rotary), longrope's factors as the whole-model tensors
    /// `rope_factors_short` / `rope_factors_long`. The loader sizes `attn_qkv` and `attn_output`
    /// by `embedding_length` and reads one head count and feed-forward length for every block.
    public static let ggufNames: GGUFNaming = {
        var g = GGUFNaming(
            architecture: "phi3", permutesQueryKey: false,
            names: [
                .embedding: "token_embd", .finalNorm: "output_norm", .lmHead: "output",
                .inputNorm: "attn_norm", .postAttentionNorm: "ffn_norm",
                .output: "attn_output", .down: "ffn_down",
            ])
        g.fusedNames = [qkv.name: "attn_qkv", gateUp.name: "ffn_up"]
        g.queryWidthIsHidden = true
        g.longRopeFactorTensors = (short: "rope_factors_short", long: "rope_factors_long")
        return g
    }()

    public func describe(_ c: ModelConfiguration) throws(CheckpointError) -> ModelDescription {
        var c = c
        if c.raw["rms_norm_eps"] == nil || c.raw["rms_norm_eps"]?.isNull == true { c.rmsNormEps = 1e-5 }   // Phi3Config's default
        // Phi-3 has no projection biases whatever the config says; its rotary is resolved below.
        c.attentionBias = false
        c.mlpBias = false
        let factor = try c.partialRotaryFactor()
        let rot = c.headDim.map { Int(Double($0) * factor) } ?? 0
        guard rot >= 2 && rot % 2 == 0 || (c.headDim ?? 0) == 0 else {
            throw CheckpointError(.invalidConfig, "partial_rotary_factor \(factor) turns \(rot) of head_dim \(c.headDim ?? 0) dimensions; the rotary embedding needs an even, positive number")
        }
        var d = try LlamaFamily.describeDecoder(c, family: self, rotaryPairs: rot / 2)
        d.partialRotaryFactor = factor
        if let v = c.raw["sliding_window"], !v.isNull {
            guard let w = v.intValue, w > 0 else {
                throw CheckpointError(.invalidConfig, "sliding_window is \(v.serialized()), not a positive number of tokens")
            }
            d.layerAttention = Array(repeating: LayerAttention(slidingWindow: w), count: d.layerCount)
        }
        return d
    }

    /// A stock Phi3Config in transformers 5's spelling (`rope_parameters`). ``StockConfigValues/extra``
    /// may hold `partial_rotary_factor`, `original_max_position_embeddings` and `sliding_window`
    /// (null: none); ``StockConfigValues/ropeScaling`` longrope's factors.
    public func stockConfig(_ v: StockConfigValues) -> JSONObject {
        var o = LlamaFamily.decoderConfig(v, family: self, mlpBiasKey: false)
        o["attention_bias"] = nil
        o["embd_pdrop"] = .double(0)
        o["resid_pdrop"] = .double(0)
        let original = v.extra["original_max_position_embeddings"] ?? .int(Int64(v.contextLength))
        let factor = v.extra["partial_rotary_factor"] ?? .double(1)
        o["original_max_position_embeddings"] = original
        o["partial_rotary_factor"] = factor
        var rope = v.ropeScaling ?? JSONObject([("rope_type", .string("default"))])
        if (rope["rope_type"]?.stringValue ?? rope["type"]?.stringValue) == "longrope" { rope["original_max_position_embeddings"] = original }
        rope["partial_rotary_factor"] = factor
        rope["rope_theta"] = .double(v.ropeTheta)
        o["rope_scaling"] = nil
        o["rope_theta"] = nil
        o["rope_parameters"] = .object(rope)
        o["sliding_window"] = v.extra["sliding_window"] ?? .null
        return o
    }
}
