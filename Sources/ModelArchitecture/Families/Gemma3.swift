import CheckpointCore
import ShearsJSON

/// Gemma 3 text (`Gemma3ForCausalLM`, `gemma3_text`): Gemma 2's layer (``Gemma2Family``) with
/// per-head (1 + w) q/k norms before the rotary embedding, no soft-capping by default, and
/// `layer_types` mixing sliding and full attention (5:1 by default, `sliding_window_pattern` 6).
/// Sliding layers rotate with `rope_local_base_freq` (10,000), full layers with `rope_theta`
/// (1,000,000) and `rope_scaling`; transformers 5 spells both as `rope_parameters` per layer type.
public struct Gemma3TextFamily: ModelFamily {
    public init() {}
    public var modelType: String { "gemma3_text" }
    public var architectureClass: String { "Gemma3ForCausalLM" }
    public var tensors: TensorNaming { Self.tensorNames }
    public var gguf: GGUFNaming { Self.ggufNames }
    public var blocks: EngineBlocks { .gemma3 }
    /// `modeling_shears_gemma3.py`: each decoder layer a stock Gemma3DecoderLayer of its own sizes.
    public var perLayerCode: RemoteCode { Self.remoteCode }

    static let remoteCode = RemoteCode(fileName: "modeling_shears_gemma3.py", configClass: "ShearsGemma3Config",
                                       modelClass: "ShearsGemma3ForCausalLM", source: Gemma3ModelingSource.text)
    public static let tensorNames = GemmaDecoder.tensorNames(prefix: "model.", queryKeyNorm: true)
    public static let ggufNames = GemmaDecoder.ggufNames(architecture: "gemma3", queryKeyNorm: true)

    /// Gemma3TextConfig's defaults for the keys a config may omit (rope bases are read apart).
    static let defaults: [(String, JSONValue)] = [
        ("vocab_size", .int(262_208)), ("hidden_size", .int(2304)), ("intermediate_size", .int(9216)),
        ("num_hidden_layers", .int(26)), ("num_attention_heads", .int(8)), ("num_key_value_heads", .int(4)),
        ("head_dim", .int(256)), ("rms_norm_eps", .double(1e-6)),
        ("query_pre_attn_scalar", .int(256)), ("sliding_window", .int(4096)),
        ("tie_word_embeddings", .bool(true)), ("max_position_embeddings", .int(131_072)),
    ]

    public func describe(_ c: ModelConfiguration) throws(CheckpointError) -> ModelDescription {
        try GemmaDecoder.describe(c.raw, outer: c, family: self, defaults: Self.defaults, pattern: 6, localRope: true)
    }

    public func stockConfig(_ v: StockConfigValues) -> JSONObject {
        GemmaDecoder.stockConfig(v, family: self, localRope: true)
    }
}

/// The language model inside a Gemma 3 vision-language checkpoint (`Gemma3ForConditionalGeneration`,
/// `gemma3`): the text model of ``Gemma3TextFamily`` configured by `text_config`, its tensors under
/// `model.language_model.` (transformers 5's layout), the LM head tied to its embedding. The vision
/// tower and projector tensors are left alone (not read, not required).
public struct Gemma3Family: ModelFamily {
    public init() {}
    public var modelType: String { "gemma3" }
    public var architectureClass: String { "Gemma3ForConditionalGeneration" }
    public var tensors: TensorNaming { Self.tensorNames }
    /// llama.cpp's converter writes the language model as `gemma3` (the vision tower goes to a
    /// separate mmproj file); such files read as ``Gemma3TextFamily`` (listed first).
    public var gguf: GGUFNaming { Gemma3TextFamily.ggufNames }
    public var blocks: EngineBlocks { .gemma3 }
    public var perLayerCode: RemoteCode { Gemma3TextFamily.remoteCode }

    public static let tensorNames = GemmaDecoder.tensorNames(prefix: "model.language_model.", queryKeyNorm: true)

    public func describe(_ c: ModelConfiguration) throws(CheckpointError) -> ModelDescription {
        var text = JSONObject()
        if let t = c.raw["text_config"], !t.isNull {
            guard let o = t.objectValue else { throw CheckpointError(.invalidConfig, "text_config is \(t.serialized()), not an object") }
            text = o
        }
        text["model_type"] = .string("gemma3_text")
        if text["tie_word_embeddings"] == nil, let tie = c.raw["tie_word_embeddings"] { text["tie_word_embeddings"] = tie }
        do {
            return try GemmaDecoder.describe(text, outer: c, family: self, defaults: Gemma3TextFamily.defaults, pattern: 6, localRope: true)
        } catch {
            var e = error
            e.message = "text_config: " + e.message
            throw e
        }
    }

    public func stockConfig(_ v: StockConfigValues) -> JSONObject { Gemma3TextFamily().stockConfig(v) }
}
