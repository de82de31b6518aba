import CheckpointCore
import ShearsJSON

/// A decoder model, resolved and checked: the one description Engine, Pruning, GGUF and the
/// commands share. Its family (``ModelFamily``) says how tensors are named and laid out; this
/// says how large everything is, layer by layer.
public struct ModelDescription: Sendable {
    public let family: any ModelFamily
    public var hiddenSize: Int
    public var headDim: Int
    public var vocabSize: Int
    /// Every decoder layer's sizes (they differ in a pruned model).
    public var layers: [LayerSizes]
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var rotaryScaling: RotaryScaling
    public var tieWordEmbeddings: Bool
    /// Whether the attention projections may carry biases (transformers' `attention_bias`).
    public var attentionBias: Bool
    /// Whether the MLP projections may carry biases (`mlp_bias`).
    public var mlpBias: Bool
    /// The configuration this was resolved from (written back, amended, into outputs).
    public var configuration: ModelConfiguration
    /// How each layer attends (one entry per layer, or empty: every layer full causal attention
    /// with the model's rotary settings). See ``attention(ofLayer:)``.
    public var layerAttention: [LayerAttention] = []
    /// The attention score scale when it is not head_dim^-0.5 (Gemma: `query_pre_attn_scalar`^-0.5).
    public var attentionScale: Double? = nil
    /// Attention logit soft-cap: scores become tanh(s / cap) · cap before the softmax (Gemma 2).
    public var attentionLogitSoftcap: Double? = nil
    /// Final logit soft-cap: logits become tanh(l / cap) · cap (Gemma 2).
    public var finalLogitSoftcap: Double? = nil
    /// The embedding's `padding_idx` (transformers builds `nn.Embedding` with `pad_token_id`):
    /// that row gets no gradient through the token lookup (it still does through a tied LM head).
    public var paddingTokenId: Int? {
        let raw = family.blocks.isGemma && configuration.raw["text_config"]?.objectValue != nil
            ? configuration.raw["text_config"]?.objectValue?["pad_token_id"] ?? .int(0) : configuration.raw["pad_token_id"]
        // Gemma configs default pad_token_id to 0.
        let v = raw ?? (family.blocks.isGemma ? .int(0) : nil)
        guard let id = v?.intValue, id >= 0, id < vocabSize else { return nil }
        return id
    }

    /// The factor the token embeddings are multiplied by (Gemma: √hidden_size as transformers
    /// computes it in float32); nil for none.
    public var embeddingScale: Float? {
        family.blocks.isGemma ? Float(Double(hiddenSize).squareRoot()) : nil
    }
    /// Norm weights of a decoder layer along the hidden size (2; Gemma 4).
    public var layerNormCount: Int {
        family.tensors.layer.filter { $0.isVector && $0.columns == .hidden }.count
    }
    /// The fraction of each head's dimensions the rotary embedding turns (Phi-3's
    /// `partial_rotary_factor`); the rest pass unrotated. See ``rotaryDimensions``.
    public var partialRotaryFactor: Double = 1

    public init(family: any ModelFamily, hiddenSize: Int, headDim: Int, vocabSize: Int, layers: [LayerSizes],
                rmsNormEps: Double, ropeTheta: Double, rotaryScaling: RotaryScaling, tieWordEmbeddings: Bool,
                attentionBias: Bool, mlpBias: Bool, configuration: ModelConfiguration) {
        self.family = family
        self.hiddenSize = hiddenSize
        self.headDim = headDim
        self.vocabSize = vocabSize
        self.layers = layers
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.rotaryScaling = rotaryScaling
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.mlpBias = mlpBias
        self.configuration = configuration
    }

    /// Resolves a parsed `config.json` through its family (``ModelFamilies``).
    /// - Throws: `invalidConfig` for an unsupported model type or a key the family cannot use.
    public init(_ configuration: ModelConfiguration) throws(CheckpointError) {
        self = try ModelFamilies.family(of: configuration).describe(configuration)
    }

    /// Reads and resolves a `config.json` file.
    public init(configPath: String) throws(CheckpointError) {
        let c = try ModelConfiguration(path: configPath)
        do { try self.init(c) } catch { throw error.inFile(configPath) }
    }

    public var layerCount: Int { layers.count }

    /// The leading dimensions of each head that the rotary embedding turns, as transformers
    /// computes them: int(head_dim × partial_rotary_factor).
    public var rotaryDimensions: Int { Int(Double(headDim) * partialRotaryFactor) }

    /// How layer `l` attends (``LayerAttention/full`` where ``layerAttention`` is empty).
    public func attention(ofLayer l: Int) -> LayerAttention {
        layerAttention.indices.contains(l) ? layerAttention[l] : .full
    }

    /// Whether every layer has the same sizes.
    public var isUniform: Bool { layers.allSatisfy { $0 == layers.first } }

    /// The first layer's sizes: every layer's in a uniform model (an unpruned source).
    public var attentionHeads: Int { layers.first?.numAttentionHeads ?? 0 }
    public var keyValueHeads: Int { layers.first?.numKeyValueHeads ?? 0 }
    public var intermediateSize: Int { layers.first?.intermediateSize ?? 0 }
    /// Query heads per KV head (first layer).
    public var queriesPerKeyValue: Int { layers.first?.groupSize ?? 0 }
    /// Whether the model uses grouped-query attention (fewer KV heads than query heads).
    public var isGroupedQuery: Bool { keyValueHeads < attentionHeads }

    /// The family's tensor names.
    public var tensors: TensorNaming { family.tensors }

    /// The full name of a tensor.
    public func name(_ role: TensorRole, _ kind: ParameterKind = .weight, layer: Int? = nil) -> String {
        family.tensors.name(TensorReference(role, kind, layer: layer))
    }

    /// The shape a tensor must have, with `layers` (default: this model's) as the per-layer sizes.
    public func shape(of ref: TensorReference, hidden: Int? = nil, sizes: LayerSizes? = nil) -> [Int] {
        var m = self
        if let hidden { m.hiddenSize = hidden }
        let d = family.tensors.declaration(ref.role)
        let s = sizes ?? ref.layer.map { layers[$0] } ?? LayerSizes(numAttentionHeads: 0, numKeyValueHeads: 0, intermediateSize: 0)
        let rows = d.rows.reduce(0) { (sum: Int, dim: Dimension) -> Int in
            let (r, o) = sum.addingReportingOverflow(s.width(of: dim, in: m))
            return o ? .max : r
        }
        if ref.kind == .bias { return [rows] }
        return d.isVector ? [s.width(of: d.columns, in: m)] : [rows, s.width(of: d.columns, in: m)]
    }

    /// Every weight the model must have, in checking order: embedding, final norm, LM head (when
    /// untied), then each layer's tensors in the family's declared order (norms, projections),
    /// without the attention (MLP) tensors of a layer that has no attention (MLP).
    public var requiredTensors: [TensorReference] {
        var out = [TensorReference(.embedding), TensorReference(.finalNorm)]
        if !tieWordEmbeddings { out.append(TensorReference(.lmHead)) }
        for l in 0..<layerCount {
            let s = layers[l]
            for d in family.tensors.layer {
                if !s.hasAttention && d.role.isAttention { continue }
                if !s.hasMLP && d.role.isMLP { continue }
                out.append(TensorReference(d.role, layer: l))
            }
        }
        return out
    }

    /// Checks that `store` holds every required tensor with the shape this description implies,
    /// and that any bias it has fits its weight.
    /// - Parameter computable: also require float dtypes the engine converts to F32.
    /// - Throws: `tensorNotFound` or `shapeMismatch` naming the tensor and the rule.
    public func validate(_ store: any TensorStore, computable: Bool = false) throws(CheckpointError) {
        let store = try FusedTensorView.unfused(store, model: self)
        var infos: [String: TensorInfo] = [:]
        for info in store.tensorInfos { infos[info.name] = info }
        func check(_ ref: TensorReference, required: Bool) throws(CheckpointError) {
            let name = family.tensors.name(ref), shape = shape(of: ref)
            guard let info = infos[name] else {
                guard required else { return }
                throw CheckpointError(.tensorNotFound, "the checkpoint has no tensor '\(name)', which the configuration requires", path: store.path, tensor: name)
            }
            let vectorForms = shape.count == 1 ? [shape, [1] + shape] : [shape]
            guard vectorForms.contains(info.shape) else {
                throw CheckpointError(.shapeMismatch, "shape \(info.shape) does not match the configuration's \(shape)", path: store.path, tensor: name)
            }
            if computable {
                guard info.dtype.isFloatingPoint, info.dtype.convertsToFloat32 else {
                    throw CheckpointError(.unsupportedConversion, "dtype \(info.dtype.rawValue) cannot be computed with", path: store.path, tensor: name)
                }
            }
        }
        for ref in requiredTensors {
            try check(ref, required: true)
            if ref.layer != nil && family.tensors.declaration(ref.role).mayHaveBias {
                try check(TensorReference(ref.role, .bias, layer: ref.layer), required: false)
            }
        }
    }

    /// Parameters of one decoder layer: projections, two norms, and biases where the model has
    /// them (attention bias counted on q/k/v only, as Qwen2 has it; exact counts for a given
    /// checkpoint come from its tensors).
    public func parameterCount(ofLayer s: LayerSizes, hidden h: Int? = nil) -> Int {
        let h = h ?? hiddenSize
        let q = s.queryWidth(headDim: headDim), kv = s.keyValueWidth(headDim: headDim), i = s.intermediateSize
        var n = h * q + 2 * h * kv + q * h + 3 * h * i + layerNormCount * h
        if attentionBias { n += q + 2 * kv }
        if mlpBias { n += 2 * i + h }
        if s.hasAttention { n += headNormWeights }
        return n
    }

    /// Elements of a layer's per-head norm weights (q/k norms: head dim each; 0 for LLaMA).
    public var headNormWeights: Int {
        family.tensors.layer.filter { $0.isVector && $0.columns == .headDim }.count * headDim
    }

    /// Parameters of the whole model with `layers` (default: this model's) and `hidden` channels:
    /// embedding, layers, final norm and (untied) LM head.
    public func parameterCount(hidden: Int? = nil, layers: [LayerSizes]? = nil) -> Int {
        let h = hidden ?? hiddenSize
        var n = vocabSize * h + h
        if !tieWordEmbeddings { n += vocabSize * h }
        for w in layers ?? self.layers { n += parameterCount(ofLayer: w, hidden: h) }
        return n
    }

    /// Elements of a layer's projection weights and two norm weights (biases aside).
    public func weightCount(ofLayer s: LayerSizes) -> Int {
        let q = s.queryWidth(headDim: headDim), kv = s.keyValueWidth(headDim: headDim)
        return hiddenSize * (2 * q + 2 * kv + 3 * s.intermediateSize) + layerNormCount * hiddenSize + (s.hasAttention ? headNormWeights : 0)
    }
}

extension ModelDescription: Equatable {
    public static func == (a: ModelDescription, b: ModelDescription) -> Bool {
        a.family.modelType == b.family.modelType && a.hiddenSize == b.hiddenSize && a.headDim == b.headDim
            && a.vocabSize == b.vocabSize && a.layers == b.layers && a.rmsNormEps == b.rmsNormEps && a.ropeTheta == b.ropeTheta
            && a.rotaryScaling == b.rotaryScaling && a.tieWordEmbeddings == b.tieWordEmbeddings
            && a.attentionBias == b.attentionBias && a.mlpBias == b.mlpBias && a.configuration == b.configuration
            && a.layerAttention == b.layerAttention && a.attentionScale == b.attentionScale
            && a.attentionLogitSoftcap == b.attentionLogitSoftcap && a.finalLogitSoftcap == b.finalLogitSoftcap && a.partialRotaryFactor == b.partialRotaryFactor
    }
}

extension ModelDescription {
    /// A model of `family` whose layers all have the same sizes, described through the family's
    /// own `config.json` keys (for synthetic models, plans and tests).
    /// - Throws: `invalidConfig` when the family refuses the sizes.
    public static func uniform(family: any ModelFamily = LlamaFamily(), layers: Int, hiddenSize: Int, attentionHeads: Int,
                               keyValueHeads: Int, headDim: Int, intermediateSize: Int, vocabSize: Int,
                               tiedEmbeddings: Bool = false, attentionBias: Bool = false, mlpBias: Bool = false) throws(CheckpointError) -> ModelDescription {
        let config = JSONObject([
            ("model_type", .string(family.modelType)), ("num_hidden_layers", .int(Int64(layers))),
            ("hidden_size", .int(Int64(hiddenSize))), ("num_attention_heads", .int(Int64(attentionHeads))),
            ("num_key_value_heads", .int(Int64(keyValueHeads))), ("head_dim", .int(Int64(headDim))),
            ("intermediate_size", .int(Int64(intermediateSize))), ("vocab_size", .int(Int64(vocabSize))),
            ("tie_word_embeddings", .bool(tiedEmbeddings)), ("attention_bias", .bool(attentionBias)), ("mlp_bias", .bool(mlpBias)),
        ])
        return try family.describe(ModelConfiguration(json: .object(config)))
    }
}
