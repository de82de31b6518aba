import CheckpointCore
import ShearsJSON

/// Gemma 2 (`Gemma2ForCausalLM`): four (1 + w) RMSNorms per layer (input, post-attention,
/// pre-feedforward, post-feedforward), GeGLU (`gelu_pytorch_tanh`), embeddings scaled by
/// √hidden_size, attention scaled by `query_pre_attn_scalar`^-0.5, attention and final logit
/// soft-capping, and sliding-window attention on alternate layers (`layer_types`; even layers
/// slide by default). Tied 256K vocabulary. llama.cpp stores its norms as 1 + w.
public struct Gemma2Family: ModelFamily {
    public init() {}
    public var modelType: String { "gemma2" }
    public var architectureClass: String { "Gemma2ForCausalLM" }
    public var tensors: TensorNaming { Self.tensorNames }
    public var gguf: GGUFNaming { GemmaDecoder.ggufNames(architecture: "gemma2", queryKeyNorm: false) }
    public var blocks: EngineBlocks { .gemma2 }
    /// `modeling_shears_gemma2.py`: each decoder layer a stock Gemma2DecoderLayer of its own sizes.
    public var perLayerCode: RemoteCode {
        RemoteCode(fileName: "modeling_shears_gemma2.py", configClass: "ShearsGemma2Config",
                   modelClass: "ShearsGemma2ForCausalLM", source: Gemma2ModelingSource.text)
    }

    public static let tensorNames = GemmaDecoder.tensorNames(prefix: "model.", queryKeyNorm: false)

    /// Gemma2Config's defaults for the keys a config may omit.
    static let defaults: [(String, JSONValue)] = [
        ("vocab_size", .int(256_000)), ("hidden_size", .int(2304)), ("intermediate_size", .int(9216)),
        ("num_hidden_layers", .int(26)), ("num_attention_heads", .int(8)), ("num_key_value_heads", .int(4)),
        ("head_dim", .int(256)), ("rms_norm_eps", .double(1e-6)), ("rope_theta", .double(10_000)),
        ("query_pre_attn_scalar", .int(256)), ("sliding_window", .int(4096)),
        ("final_logit_softcapping", .double(30)), ("attn_logit_softcapping", .double(50)),
        ("tie_word_embeddings", .bool(true)), ("max_position_embeddings", .int(8192)),
    ]

    public func describe(_ c: ModelConfiguration) throws(CheckpointError) -> ModelDescription {
        try GemmaDecoder.describe(c.raw, outer: c, family: self, defaults: Self.defaults, pattern: 2, localRope: false)
    }

    public func stockConfig(_ v: StockConfigValues) -> JSONObject {
        GemmaDecoder.stockConfig(v, family: self, localRope: false)
    }
}

/// What Gemma 2 and Gemma 3 share: tensor names, GGUF names, config reading and writing.
public enum GemmaDecoder {
    /// transformers' Gemma names under `prefix` (`model.`, or `model.language_model.` inside a
    /// Gemma3ForConditionalGeneration checkpoint). Roles: ``TensorRole/postAttentionNorm`` is the
    /// norm feeding the MLP (`pre_feedforward_layernorm`); `post_attention_layernorm` norms the
    /// attention output (``TensorRole/attentionOutputNorm``). q/k/v/o carry biases only with
    /// `attention_bias`; o_proj and down_proj feed a norm, so recovery cannot add a bias there.
    public static func tensorNames(prefix: String, queryKeyNorm: Bool) -> TensorNaming {
        var layer: [TensorDeclaration] = [
            .vector(.inputNorm, "input_layernorm", along: .hidden),
            .vector(.attentionOutputNorm, "post_attention_layernorm", along: .hidden),
            .vector(.postAttentionNorm, "pre_feedforward_layernorm", along: .hidden),
            .vector(.mlpOutputNorm, "post_feedforward_layernorm", along: .hidden),
            TensorDeclaration(.query, "self_attn.q_proj", rows: [.queryChannels], columns: .hidden, mayHaveBias: true),
            TensorDeclaration(.key, "self_attn.k_proj", rows: [.keyValueChannels], columns: .hidden, mayHaveBias: true),
            TensorDeclaration(.value, "self_attn.v_proj", rows: [.keyValueChannels], columns: .hidden, mayHaveBias: true),
            TensorDeclaration(.output, "self_attn.o_proj", rows: [.hidden], columns: .queryChannels),
            TensorDeclaration(.gate, "mlp.gate_proj", rows: [.mlpChannels], columns: .hidden),
            TensorDeclaration(.up, "mlp.up_proj", rows: [.mlpChannels], columns: .hidden),
            TensorDeclaration(.down, "mlp.down_proj", rows: [.hidden], columns: .mlpChannels),
        ]
        if queryKeyNorm {
            let k = layer.firstIndex { $0.role == .key }!
            layer.insert(.vector(.keyNorm, "self_attn.k_norm", along: .headDim), at: k + 1)
            layer.insert(.vector(.queryNorm, "self_attn.q_norm", along: .headDim), at: k)
        }
        return TensorNaming(
            layerPrefix: prefix + "layers.",
            global: [
                TensorDeclaration(.embedding, prefix + "embed_tokens", rows: [.vocabulary], columns: .hidden),
                .vector(.finalNorm, prefix + "norm", along: .hidden),
                TensorDeclaration(.lmHead, "lm_head", rows: [.vocabulary], columns: .hidden),
            ],
            layer: layer)
    }

    /// llama.cpp's gemma2 / gemma3 names (`convert_hf_to_gguf.py`): `post_attention_norm`,
    /// `ffn_norm` (pre-feedforward), `post_ffw_norm`; Q and K rows unpermuted; norms stored as 1 + w.
    public static func ggufNames(architecture: String, queryKeyNorm: Bool) -> GGUFNaming {
        var names: [TensorRole: String] = [
            .embedding: "token_embd", .finalNorm: "output_norm", .lmHead: "output",
            .inputNorm: "attn_norm", .attentionOutputNorm: "post_attention_norm",
            .postAttentionNorm: "ffn_norm", .mlpOutputNorm: "post_ffw_norm",
            .query: "attn_q", .key: "attn_k", .value: "attn_v", .output: "attn_output",
            .gate: "ffn_gate", .up: "ffn_up", .down: "ffn_down",
        ]
        if queryKeyNorm {
            names[.queryNorm] = "attn_q_norm"
            names[.keyNorm] = "attn_k_norm"
        }
        var g = GGUFNaming(architecture: architecture, permutesQueryKey: false, names: names)
        g.normWeightsPlusOne = true
        return g
    }

    /// A Gemma description from the (text) config object `raw`, with `defaults` for absent keys,
    /// resolved for `family`; `outer` is kept as the description's configuration.
    /// - Parameters:
    ///   - pattern: the default `sliding_window_pattern` (every Nth layer full attention).
    ///   - localRope: Gemma 3's rotary: sliding layers use `rope_local_base_freq` (or
    ///     `rope_parameters.sliding_attention`), full layers `rope_theta` with `rope_scaling` (or
    ///     `rope_parameters.full_attention`).
    /// - Throws: `invalidConfig` naming the missing or impossible key.
    static func describe(_ raw: JSONObject, outer: ModelConfiguration, family: any ModelFamily, defaults: [(String, JSONValue)],
                         pattern: Int, localRope: Bool) throws(CheckpointError) -> ModelDescription {
        var o = raw
        for (k, v) in defaults where o[k] == nil { o[k] = v }
        var ropeParameters: JSONObject? = nil
        if localRope, let rp = o["rope_parameters"]?.objectValue, rp["full_attention"] != nil || rp["sliding_attention"] != nil {
            // transformers 5: one entry per layer type; ModelConfiguration reads the full one.
            ropeParameters = rp
            o["rope_parameters"] = rp["full_attention"] ?? .null
        }
        let c = try ModelConfiguration(json: .object(o))
        let act = o["hidden_activation"]?.stringValue ?? o["hidden_act"]?.stringValue ?? "gelu_pytorch_tanh"
        guard act == "gelu_pytorch_tanh" else {
            throw CheckpointError(.invalidConfig, "hidden_activation \(act) is not supported for \(family.modelType) (only gelu_pytorch_tanh)")
        }
        if o["use_bidirectional_attention"]?.boolValue == true {
            throw CheckpointError(.invalidConfig, "use_bidirectional_attention is not supported (the engine runs causal attention)")
        }
        func need(_ v: Int?, _ key: String) throws(CheckpointError) -> Int {
            guard let v, v > 0 else { throw CheckpointError(.invalidConfig, "\(key) is missing or zero") }
            return v
        }
        let hidden = try need(c.hiddenSize, "hidden_size"), vocab = try need(c.vocabSize, "vocab_size")
        let n = try need(c.numHiddenLayers, "num_hidden_layers")
        let headDim = try need(c.headDim, "head_dim")
        guard headDim % 2 == 0 else { throw CheckpointError(.invalidConfig, "head_dim \(headDim) is odd; rotary embeddings need an even head_dim") }
        func number(_ key: String) throws(CheckpointError) -> Double? {
            guard let v = o[key], !v.isNull else { return nil }
            guard let d = v.doubleValue, d > 0, d.isFinite else { throw CheckpointError(.invalidConfig, "\(key) is \(v.serialized()), not a positive number") }
            return d
        }
        let scalar = try number("query_pre_attn_scalar") ?? 256
        // Rotary: the full-attention layers' settings are the model's.
        var theta = c.ropeTheta ?? 10_000, scaling = try c.rotaryScaling()
        var localTheta: Double? = nil, localScaling = RotaryScaling.none
        if localRope {
            if let rp = ropeParameters {
                if let full = rp["full_attention"]?.objectValue {
                    theta = full["rope_theta"]?.doubleValue ?? 1_000_000
                    scaling = try RotaryScaling(full)
                } else {
                    theta = 1_000_000
                    scaling = .none
                }
                let local = rp["sliding_attention"]?.objectValue
                localTheta = local?["rope_theta"]?.doubleValue ?? 10_000
                localScaling = try RotaryScaling(local)
            } else {
                if raw["rope_theta"] == nil && (raw["rope_parameters"]?.objectValue?["rope_theta"]) == nil { theta = 1_000_000 }
                localTheta = try number("rope_local_base_freq") ?? 10_000
            }
            guard theta > 0, theta.isFinite, let lt = localTheta, lt > 0, lt.isFinite else {
                throw CheckpointError(.invalidConfig, "rope_theta and rope_local_base_freq must be positive numbers")
            }
        }
        // Sliding layers: layer_types, or every `sliding_window_pattern`-th layer full.
        let window = try c.slidingWindow()
        var sliding: [Bool]
        if let t = try c.layerTypes(layers: n) {
            sliding = t
        } else {
            var p = pattern
            if let v = o["sliding_window_pattern"], !v.isNull {
                guard let i = v.intValue, i > 0 else { throw CheckpointError(.invalidConfig, "sliding_window_pattern is \(v.serialized()), not a positive integer") }
                p = i
            }
            sliding = (0..<n).map { ($0 + 1) % p != 0 }
        }
        if window == nil { sliding = sliding.map { _ in false } }
        var d = ModelDescription(
            family: family, hiddenSize: hidden, headDim: headDim, vocabSize: vocab, layers: try c.layerSizes(),
            rmsNormEps: c.rmsNormEps ?? 1e-6, ropeTheta: theta, rotaryScaling: scaling,
            tieWordEmbeddings: c.tieWordEmbeddings, attentionBias: c.attentionBias, mlpBias: false, configuration: outer)
        d.layerAttention = sliding.map { s in
            guard s else { return LayerAttention.full }
            return LayerAttention(slidingWindow: window, ropeTheta: localTheta, rotaryScaling: localTheta == nil ? nil : localScaling)
        }
        d.attentionScale = 1 / scalar.squareRoot()
        d.attentionLogitSoftcap = try number("attn_logit_softcapping")
        d.finalLogitSoftcap = try number("final_logit_softcapping")
        return d
    }

    /// The `extra` values (``StockConfigValues/extra``) a Gemma stock config needs, from a description.
    public static func stockExtras(_ d: ModelDescription) -> JSONObject {
        var e = JSONObject()
        e["query_pre_attn_scalar"] = d.attentionScale.map { .double((1 / ($0 * $0)).rounded()) } ?? .int(256)
        e["sliding_window"] = d.layerAttention.compactMap(\.slidingWindow).first.map { .int(Int64($0)) } ?? .null
        e["layer_types"] = d.layerTypesJSON
        e["attn_logit_softcapping"] = d.attentionLogitSoftcap.map { .double($0) } ?? .null
        e["final_logit_softcapping"] = d.finalLogitSoftcap.map { .double($0) } ?? .null
        if let local = d.layerAttention.first(where: { $0.ropeTheta != nil })?.ropeTheta { e["rope_local_base_freq"] = .double(local) }
        return e
    }

    /// A stock Gemma 2 / Gemma 3 text config in transformers 5's spelling (`rope_parameters`; per
    /// layer type for Gemma 3).
    static func stockConfig(_ v: StockConfigValues, family: any ModelFamily, localRope: Bool) -> JSONObject {
        var o = JSONObject()
        o["architectures"] = .array([.string(family.architectureClass)])
        o["model_type"] = .string(family.modelType)
        o["attention_bias"] = .bool(v.attentionBias)
        o["attention_dropout"] = .double(0)
        o["attn_logit_softcapping"] = v.extra["attn_logit_softcapping"] ?? .null
        if let b = v.bosTokenId { o["bos_token_id"] = .int(Int64(b)) }
        if let e = v.eosTokenId { o["eos_token_id"] = .int(Int64(e)) }
        o["final_logit_softcapping"] = v.extra["final_logit_softcapping"] ?? .null
        o["head_dim"] = .int(Int64(v.headDim))
        o["hidden_activation"] = .string("gelu_pytorch_tanh")
        o["hidden_size"] = .int(Int64(v.hiddenSize))
        o["initializer_range"] = .double(0.02)
        o["intermediate_size"] = .int(Int64(v.intermediateSize))
        o["layer_types"] = v.extra["layer_types"] ?? .null
        o["max_position_embeddings"] = .int(Int64(v.contextLength))
        o["num_attention_heads"] = .int(Int64(v.heads))
        o["num_hidden_layers"] = .int(Int64(v.layers))
        o["num_key_value_heads"] = .int(Int64(v.kvHeads))
        if let p = v.padTokenId { o["pad_token_id"] = .int(Int64(p)) }
        o["query_pre_attn_scalar"] = v.extra["query_pre_attn_scalar"] ?? .int(256)
        o["rms_norm_eps"] = .double(v.rmsNormEps)
        var full = v.ropeScaling ?? JSONObject([("rope_type", .string("default"))])
        full["rope_theta"] = .double(v.ropeTheta)
        if localRope {
            let local = JSONObject([("rope_type", .string("default")), ("rope_theta", v.extra["rope_local_base_freq"] ?? .double(10_000))])
            o["rope_parameters"] = .object(JSONObject([("full_attention", .object(full)), ("sliding_attention", .object(local))]))
        } else {
            o["rope_parameters"] = .object(full)
        }
        o["sliding_window"] = v.extra["sliding_window"] ?? .null
        o["tie_word_embeddings"] = .bool(v.tiedEmbeddings)
        o["dtype"] = .string(v.dtype)
        o["use_cache"] = .bool(true)
        o["vocab_size"] = .int(Int64(v.vocabSize))
        return o
    }
}
