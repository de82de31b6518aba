import CheckpointCore
import ModelArchitecture

/// The sizes of a LLaMA-family decoder that pruning needs, read from its configuration, plus the
/// Hugging Face tensor names of its parameters.
public struct ModelShape: Sendable, Equatable {
    public var layers: Int
    public var hiddenSize: Int
    public var attentionHeads: Int
    public var keyValueHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var tiedEmbeddings: Bool
    public var attentionBias: Bool
    public var mlpBias: Bool

    /// Query heads per KV head.
    public var queriesPerKeyValue: Int { attentionHeads / keyValueHeads }
    /// Whether the model uses grouped-query attention (fewer KV heads than query heads).
    public var isGroupedQuery: Bool { keyValueHeads < attentionHeads }

    public init(layers: Int, hiddenSize: Int, attentionHeads: Int, keyValueHeads: Int, headDim: Int,
                intermediateSize: Int, vocabSize: Int, tiedEmbeddings: Bool = false,
                attentionBias: Bool = false, mlpBias: Bool = false) {
        self.layers = layers
        self.hiddenSize = hiddenSize
        self.attentionHeads = attentionHeads
        self.keyValueHeads = keyValueHeads
        self.headDim = headDim
        self.intermediateSize = intermediateSize
        self.vocabSize = vocabSize
        self.tiedEmbeddings = tiedEmbeddings
        self.attentionBias = attentionBias
        self.mlpBias = mlpBias
    }

    /// Reads the sizes from a parsed `config.json`.
    /// - Throws: `invalidConfig` naming the missing or impossible field.
    public init(configuration c: ModelConfiguration) throws(CheckpointError) {
        func need(_ v: Int?, _ key: String) throws(CheckpointError) -> Int {
            guard let v, v > 0 else { throw CheckpointError(.invalidConfig, "\(key) is missing or zero; pruning needs it") }
            return v
        }
        let heads = try need(c.numAttentionHeads, "num_attention_heads")
        let kv = try need(c.numKeyValueHeads, "num_key_value_heads")
        guard heads % kv == 0 else {
            throw CheckpointError(.invalidConfig, "num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kv)")
        }
        self.init(layers: try need(c.numHiddenLayers, "num_hidden_layers"), hiddenSize: try need(c.hiddenSize, "hidden_size"),
                  attentionHeads: heads, keyValueHeads: kv, headDim: try need(c.headDim, "head_dim"),
                  intermediateSize: try need(c.intermediateSize, "intermediate_size"), vocabSize: try need(c.vocabSize, "vocab_size"),
                  tiedEmbeddings: c.tieWordEmbeddings, attentionBias: c.attentionBias, mlpBias: c.mlpBias)
    }

    // MARK: Names

    /// `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight` and the MLP's `gate/up/down_proj.weight`.
    public static func attention(_ layer: Int, _ proj: String, _ kind: String = "weight") -> String {
        "model.layers.\(layer).self_attn.\(proj)_proj.\(kind)"
    }
    public static func mlp(_ layer: Int, _ proj: String, _ kind: String = "weight") -> String {
        "model.layers.\(layer).mlp.\(proj)_proj.\(kind)"
    }
    public static func norm(_ layer: Int, _ which: String) -> String { "model.layers.\(layer).\(which).weight" }
    public static let embedding = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let lmHead = "lm_head.weight"

    /// Splits `model.layers.{i}.rest` into (i, rest); nil for tensors outside the decoder layers.
    public static func layerIndex(of name: String) -> (layer: Int, rest: Substring)? {
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let tail = name.dropFirst(prefix.count)
        guard let dot = tail.firstIndex(of: "."), let i = Int(tail[..<dot]), String(i) == tail[..<dot] else { return nil }
        return (i, tail[tail.index(after: dot)...])
    }
}

/// Closed-form parameter counts of a LLaMA decoder with per-layer widths.
public enum ParameterCount {
    /// Parameters of one decoder layer: q/k/v/o, gate/up/down, two norms, and biases where present
    /// (attention bias counted Qwen2-style on q/k/v only; checkpoints with an o_proj bias have `hidden`
    /// more per layer — ``Surgery/slices(_:plan:)`` gives exact counts for a given checkpoint).
    public static func layer(_ w: LayerSizes, hidden h: Int, headDim d: Int, attentionBias: Bool = false, mlpBias: Bool = false) -> Int {
        let q = w.numAttentionHeads * d, kv = w.numKeyValueHeads * d, i = w.intermediateSize
        var n = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h
        if attentionBias { n += q + 2 * kv }
        if mlpBias { n += 2 * i + h }
        return n
    }

    /// Parameters of the whole model: embedding, layers, final norm and (untied) LM head.
    public static func model(_ shape: ModelShape, hidden: Int? = nil, layers: [LayerSizes]) -> Int {
        let h = hidden ?? shape.hiddenSize
        var n = shape.vocabSize * h + h
        if !shape.tiedEmbeddings { n += shape.vocabSize * h }
        for w in layers {
            n += layer(w, hidden: h, headDim: shape.headDim, attentionBias: shape.attentionBias, mlpBias: shape.mlpBias)
        }
        return n
    }

    /// The unpruned model's widths, one per layer.
    public static func originalWidths(_ shape: ModelShape) -> [LayerSizes] {
        Array(repeating: LayerSizes(numAttentionHeads: shape.attentionHeads, numKeyValueHeads: shape.keyValueHeads,
                                    intermediateSize: shape.intermediateSize), count: shape.layers)
    }
}
