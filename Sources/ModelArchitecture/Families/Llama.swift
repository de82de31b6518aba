import CheckpointCore
import ShearsJSON

/// LLaMA 1/2/3 (`LlamaForCausalLM`): the reference decoder. Mistral and Qwen2 share its tensors.
public struct LlamaFamily: ModelFamily {
    public init() {}
    public var modelType: String { "llama" }
    public var architectureClass: String { "LlamaForCausalLM" }
    public var tensors: TensorNaming { Self.tensorNames }
    public var gguf: GGUFNaming { Self.ggufNames }
    public var blocks: EngineBlocks { .llama }
    public var perLayerCode: RemoteCode { Self.remoteCode }

    /// `modeling_shears_llama.py`: each decoder layer a stock LlamaDecoderLayer of its own sizes.
    public static let remoteCode = RemoteCode(fileName: "modeling_shears_llama.py", configClass: "ShearsLlamaConfig",
                                              modelClass: "ShearsLlamaForCausalLM", source: LlamaModelingSource.text)

    /// transformers' LLaMA names: `model.embed_tokens`, `model.layers.{i}.self_attn.q_proj`, ...
    public static let tensorNames = TensorNaming(
        layerPrefix: "model.layers.",
        global: [
            TensorDeclaration(.embedding, "model.embed_tokens", rows: [.vocabulary], columns: .hidden),
            .vector(.finalNorm, "model.norm", along: .hidden),
            TensorDeclaration(.lmHead, "lm_head", rows: [.vocabulary], columns: .hidden),
        ],
        layer: [
            .vector(.inputNorm, "input_layernorm", along: .hidden),
            .vector(.postAttentionNorm, "post_attention_layernorm", along: .hidden),
            TensorDeclaration(.query, "self_attn.q_proj", rows: [.queryChannels], columns: .hidden, mayHaveBias: true),
            TensorDeclaration(.key, "self_attn.k_proj", rows: [.keyValueChannels], columns: .hidden, mayHaveBias: true),
            TensorDeclaration(.value, "self_attn.v_proj", rows: [.keyValueChannels], columns: .hidden, mayHaveBias: true),
            TensorDeclaration(.output, "self_attn.o_proj", rows: [.hidden], columns: .queryChannels, mayHaveBias: true),
            TensorDeclaration(.gate, "mlp.gate_proj", rows: [.mlpChannels], columns: .hidden, mayHaveBias: true),
            TensorDeclaration(.up, "mlp.up_proj", rows: [.mlpChannels], columns: .hidden, mayHaveBias: true),
            TensorDeclaration(.down, "mlp.down_proj", rows: [.hidden], columns: .mlpChannels, mayHaveBias: true),
        ])

    /// llama.cpp's LLaMA names (`convert_hf_to_gguf.py`, `MODEL_TENSOR` in gguf-py). `deci` files
    /// (per-layer widths) read as LLaMA with per-layer sizes.
    public static let ggufNames = GGUFNaming(
        architecture: "llama", alsoReads: ["deci"], permutesQueryKey: true,
        names: [
            .embedding: "token_embd", .finalNorm: "output_norm", .lmHead: "output",
            .inputNorm: "attn_norm", .postAttentionNorm: "ffn_norm",
            .query: "attn_q", .key: "attn_k", .value: "attn_v", .output: "attn_output",
            .gate: "ffn_gate", .up: "ffn_up", .down: "ffn_down",
        ])

    public func describe(_ c: ModelConfiguration) throws(CheckpointError) -> ModelDescription {
        try Self.describeDecoder(c, family: self)
    }

    public func stockConfig(_ v: StockConfigValues) -> JSONObject {
        Self.decoderConfig(v, family: self, mlpBiasKey: true)
    }

    /// A LLaMA-style decoder's description from its `config.json` (the keys LlamaConfig,
    /// MistralConfig and Qwen2Config share), with per-layer sizes for pruned models
    /// (``ModelConfiguration/layerSizes(allowingEmpty:)``).
    /// - Throws: `invalidConfig` naming the missing or impossible key or a non-SiLU activation.
    ///   (Families with sliding windows set ``ModelDescription/layerAttention`` themselves.)
    /// - Parameter rotaryPairs: the rotated pairs per head that longrope's factor lists must
    ///   match (default: head_dim / 2).
    public static func describeDecoder(_ c: ModelConfiguration, family: any ModelFamily, rotaryPairs: Int? = nil) throws(CheckpointError) -> ModelDescription {
        if let act = c.hiddenAct, act != "silu" {
            throw CheckpointError(.invalidConfig, "hidden_act \(act) is not supported for \(family.modelType) (only silu)")
        }
        func need(_ v: Int?, _ key: String) throws(CheckpointError) -> Int {
            guard let v, v > 0 else { throw CheckpointError(.invalidConfig, "\(key) is missing or zero") }
            return v
        }
        let hidden = try need(c.hiddenSize, "hidden_size"), vocab = try need(c.vocabSize, "vocab_size")
        _ = try need(c.numAttentionHeads, "num_attention_heads")
        _ = try need(c.numHiddenLayers, "num_hidden_layers")
        _ = try need(c.intermediateSize, "intermediate_size")
        let headDim = try need(c.headDim, "head_dim")
        guard headDim % 2 == 0 else { throw CheckpointError(.invalidConfig, "head_dim \(headDim) is odd; rotary embeddings need an even head_dim") }
        let layers = try c.layerSizes()
        return ModelDescription(
            family: family, hiddenSize: hidden, headDim: headDim, vocabSize: vocab, layers: layers,
            rmsNormEps: c.rmsNormEps ?? 1e-6, ropeTheta: c.ropeTheta ?? 10_000, rotaryScaling: try c.rotaryScaling(rotaryPairs: rotaryPairs ?? headDim / 2),
            tieWordEmbeddings: c.tieWordEmbeddings, attentionBias: c.attentionBias, mlpBias: c.mlpBias, configuration: c)
    }

    /// The keys LlamaConfig, MistralConfig and Qwen2Config share, in the order transformers
    /// writes them (`mlp_bias` is LlamaConfig's alone).
    public static func decoderConfig(_ v: StockConfigValues, family: any ModelFamily, mlpBiasKey: Bool) -> JSONObject {
        var o = JSONObject()
        o["architectures"] = .array([.string(family.architectureClass)])
        o["model_type"] = .string(family.modelType)
        o["attention_bias"] = .bool(v.attentionBias)
        o["attention_dropout"] = .double(0)
        if let b = v.bosTokenId { o["bos_token_id"] = .int(Int64(b)) }
        if let e = v.eosTokenId { o["eos_token_id"] = .int(Int64(e)) }
        if let p = v.padTokenId { o["pad_token_id"] = .int(Int64(p)) }
        o["head_dim"] = .int(Int64(v.headDim))
        o["hidden_act"] = .string("silu")
        o["hidden_size"] = .int(Int64(v.hiddenSize))
        o["initializer_range"] = .double(0.02)
        o["intermediate_size"] = .int(Int64(v.intermediateSize))
        o["max_position_embeddings"] = .int(Int64(v.contextLength))
        if mlpBiasKey { o["mlp_bias"] = .bool(v.mlpBias) }
        o["num_attention_heads"] = .int(Int64(v.heads))
        o["num_hidden_layers"] = .int(Int64(v.layers))
        o["num_key_value_heads"] = .int(Int64(v.kvHeads))
        o["rms_norm_eps"] = .double(v.rmsNormEps)
        o["rope_scaling"] = v.ropeScaling.map { .object($0) } ?? .null
        o["rope_theta"] = .double(v.ropeTheta)
        o["tie_word_embeddings"] = .bool(v.tiedEmbeddings)
        o["dtype"] = .string(v.dtype)
        o["use_cache"] = .bool(true)
        o["vocab_size"] = .int(Int64(v.vocabSize))
        return o
    }
}
