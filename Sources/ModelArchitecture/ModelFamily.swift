import CheckpointCore
import ShearsJSON

/// Everything the rest of Shears needs to know about one model family, declared in one file per
/// family (`Families/`), listed once in ``ModelFamilies``: how `config.json` maps to a
/// ``ModelDescription``, every tensor's Hugging Face name and layout, the coupled structures
/// pruning removes (derived from the layouts' ``Dimension``s), the GGUF names, and the engine
/// blocks its layers use.
public protocol ModelFamily: Sendable {
    /// `model_type` in `config.json`.
    var modelType: String { get }
    /// The transformers class written in `architectures` (`LlamaForCausalLM`).
    var architectureClass: String { get }
    /// Hugging Face tensor names and layouts.
    var tensors: TensorNaming { get }
    /// llama.cpp's names for the family.
    var gguf: GGUFNaming { get }
    /// The engine blocks a layer of this family runs.
    var blocks: EngineBlocks { get }
    /// The remote-code modeling file that loads a pruned model whose layers differ in width
    /// (config.json's per-layer lists and `auto_map` point to it).
    var perLayerCode: RemoteCode { get }
    /// Resolves a parsed `config.json` of this family.
    /// - Throws: `invalidConfig` naming the key that is missing, impossible or not supported.
    func describe(_ configuration: ModelConfiguration) throws(CheckpointError) -> ModelDescription
    /// A stock `config.json` (transformers' keys for the family, in its order) for a model of
    /// uniform widths, as the GGUF reader writes it.
    func stockConfig(_ values: StockConfigValues) -> JSONObject
    /// Whether transformers' stock config class of the family loads a pruned model of these
    /// uniform sizes (else the per-layer remote code is written). Default: true.
    func stockConfigLoads(hiddenSize: Int, heads: Int, headDim: Int, configuration: ModelConfiguration) -> Bool
}

extension ModelFamily {
    public func stockConfigLoads(hiddenSize: Int, heads: Int, headDim: Int, configuration: ModelConfiguration) -> Bool { true }
}

/// A family's Hugging Face tensor names: the whole-model tensors and the per-layer ones (after
/// `layerPrefix` + layer index + ".").
public struct TensorNaming: Sendable, Equatable {
    public var layerPrefix: String
    public var global: [TensorDeclaration]
    public var layer: [TensorDeclaration]

    public init(layerPrefix: String, global: [TensorDeclaration], layer: [TensorDeclaration]) {
        self.layerPrefix = layerPrefix
        self.global = global
        self.layer = layer
    }

    /// The declaration of `role`.
    public func declaration(_ role: TensorRole) -> TensorDeclaration {
        guard let d = (role.isPerLayer ? layer : global).first(where: { $0.role == role }) else {
            preconditionFailure("the family declares no \(role) tensor")
        }
        return d
    }

    /// The full name of a tensor.
    public func name(_ ref: TensorReference) -> String {
        let d = declaration(ref.role)
        let base = ref.layer.map { layerPrefix + String($0) + "." + d.name } ?? d.name
        return base + "." + ref.kind.rawValue
    }

    public func name(_ role: TensorRole, _ kind: ParameterKind = .weight, layer: Int? = nil) -> String {
        name(TensorReference(role, kind, layer: layer))
    }

    /// The stored fused tensor a name stands for (``FusedRows``, e.g. Phi-3's
    /// `model.layers.0.self_attn.qkv_proj.weight`): its declaration, layer and kind.
    public func fusedReference(of name: String) -> (fused: FusedRows, layer: Int, kind: ParameterKind)? {
        guard let (l, rest) = layerIndex(of: name) else { return nil }
        for d in layer {
            guard let f = d.fused, rest.hasPrefix(f.name), rest.dropFirst(f.name.count).first == "." else { continue }
            switch rest.dropFirst(f.name.count + 1) {
            case "weight": return (f, l, .weight)
            case "bias": return (f, l, .bias)
            default: continue
            }
        }
        return nil
    }

    /// The full name of the stored fused tensor `fused` of layer `layer`.
    public func fusedName(_ fused: String, _ kind: ParameterKind = .weight, layer: Int) -> String {
        layerPrefix + String(layer) + "." + fused + "." + kind.rawValue
    }

    /// Splits `<layerPrefix>{i}.rest` into (i, rest); nil for tensors outside the decoder layers.
    public func layerIndex(of name: String) -> (layer: Int, rest: Substring)? {
        guard name.hasPrefix(layerPrefix) else { return nil }
        let tail = name.dropFirst(layerPrefix.count)
        guard let dot = tail.firstIndex(of: "."), let i = Int(tail[..<dot]), i >= 0, String(i) == tail[..<dot] else { return nil }
        return (i, tail[tail.index(after: dot)...])
    }

    /// `name` moved to decoder layer `index` (the same name for whole-model tensors).
    public func renumbered(_ name: String, to index: Int) -> String {
        guard let (_, rest) = layerIndex(of: name) else { return name }
        return layerPrefix + String(index) + "." + rest
    }

    /// The role, kind and layer of a tensor name, or nil when the family has no such tensor.
    public func reference(of name: String) -> TensorReference? {
        func match(_ rest: Substring, _ decls: [TensorDeclaration], layer: Int?) -> TensorReference? {
            for d in decls where rest.hasPrefix(d.name) && rest.dropFirst(d.name.count).first == "." {
                switch rest.dropFirst(d.name.count + 1) {
                case "weight": return TensorReference(d.role, .weight, layer: layer)
                case "bias" where d.mayHaveBias: return TensorReference(d.role, .bias, layer: layer)
                default: continue
                }
            }
            return nil
        }
        if let (l, rest) = layerIndex(of: name) { return match(rest, layer, layer: l) }
        return match(Substring(name), global, layer: nil)
    }
}

/// A family's names in llama.cpp's GGUF files.
public struct GGUFNaming: Sendable, Equatable {
    /// `general.architecture` for uniform widths.
    public var architecture: String
    /// Other `general.architecture` values read as this family (e.g. files written by older converters).
    public var alsoReads: [String]
    /// Whether llama.cpp stores the query and key rows permuted for its interleaved rotary.
    public var permutesQueryKey: Bool
    /// Whether llama.cpp's loader for `architecture` requires the projection biases the family has
    /// (qwen2: q/k/v), so that all-zero biases are written rather than left out.
    public var requiresBiases: Bool
    /// Tensor base names (`token_embd`, per layer `attn_q`; `blk.{i}.` is prepended per layer).
    public var names: [TensorRole: String]
    /// Whether llama.cpp stores every norm weight as 1 + w (Gemma: its converter adds 1 to the
    /// (1 + w) norms' w, transformers' GGUF loader subtracts it).
    public var normWeightsPlusOne = false
    /// llama.cpp's names of the family's fused tensors (``FusedRows/name`` → GGUF base name, Phi-3:
    /// `self_attn.qkv_proj` → `attn_qkv`, `mlp.gate_up_proj` → `ffn_up`), stored as they are: the
    /// same rows in the same order on both sides.
    public var fusedNames: [String: String] = [:]
    /// Whether llama.cpp's loader sizes the attention projections by `embedding_length` (phi3:
    /// `attn_output` is n_embd × n_embd), so that query heads × head_dim must equal hidden_size.
    public var queryWidthIsHidden = false
    /// The whole-model tensors holding longrope's short and long factors (phi3:
    /// `rope_factors_short`, `rope_factors_long`); the Hugging Face side keeps them in config.json.
    public var longRopeFactorTensors: (short: String, long: String)? {
        get { longRopeNames.map { ($0[0], $0[1]) } }
        set { longRopeNames = newValue.map { [$0.short, $0.long] } }
    }
    private var longRopeNames: [String]? = nil

    public init(architecture: String, alsoReads: [String] = [], permutesQueryKey: Bool, requiresBiases: Bool = false,
                names: [TensorRole: String]) {
        self.architecture = architecture
        self.alsoReads = alsoReads
        self.permutesQueryKey = permutesQueryKey
        self.requiresBiases = requiresBiases
        self.names = names
    }

    public static let layerPrefix = "blk."

    /// The GGUF name of a tensor.
    public func name(_ ref: TensorReference) -> String? {
        guard let base = names[ref.role] else { return nil }
        return (ref.layer.map { Self.layerPrefix + String($0) + "." } ?? "") + base + "." + ref.kind.rawValue
    }

    /// The fused tensor a GGUF name stands for: the family's ``FusedRows/name``, its block and kind.
    public func fusedReference(of name: String) -> (fused: String, layer: Int, kind: ParameterKind)? {
        guard name.hasPrefix(Self.layerPrefix) else { return nil }
        let tail = name.dropFirst(Self.layerPrefix.count)
        guard let dot = tail.firstIndex(of: "."), let n = Int(tail[..<dot]), n >= 0 else { return nil }
        let rest = tail[tail.index(after: dot)...]
        for (fused, base) in fusedNames where rest.hasPrefix(base) && rest.dropFirst(base.count).first == "." {
            switch rest.dropFirst(base.count + 1) {
            case "weight": return (fused, n, .weight)
            case "bias": return (fused, n, .bias)
            default: continue
            }
        }
        return nil
    }

    /// The role, kind and block of a GGUF tensor name.
    public func reference(of name: String) -> TensorReference? {
        var layer: Int? = nil
        var rest = Substring(name)
        if name.hasPrefix(Self.layerPrefix) {
            let tail = name.dropFirst(Self.layerPrefix.count)
            guard let dot = tail.firstIndex(of: "."), let n = Int(tail[..<dot]), n >= 0 else { return nil }
            layer = n
            rest = tail[tail.index(after: dot)...]
        }
        for (role, base) in names where role.isPerLayer == (layer != nil) && rest.hasPrefix(base) && rest.dropFirst(base.count).first == "." {
            switch rest.dropFirst(base.count + 1) {
            case "weight": return TensorReference(role, .weight, layer: layer)
            case "bias": return TensorReference(role, .bias, layer: layer)
            default: continue
            }
        }
        return nil
    }
}

/// The engine blocks a decoder layer is built from.
public struct EngineBlocks: Sendable, Equatable {
    public enum Attention: Sendable, Equatable {
        /// Grouped-query self-attention with rotary embeddings (rotate-half), optional q/k/v/o biases;
        /// with `queryKeyNorm`, each query and key head is RMS-normalised over the head dim (one
        /// weight shared by all heads, ``TensorRole/queryNorm`` / ``TensorRole/keyNorm``) before
        /// the rotary embedding.
        case groupedQueryRotary(queryKeyNorm: Bool)
    }
    public enum MLP: Sendable, Equatable {
        /// down(silu(gate(x)) · up(x)).
        case gatedSiLU
        /// down(gelu_tanh(gate(x)) · up(x)) (Gemma's GeGLU, `gelu_pytorch_tanh`).
        case gatedGELUTanh
    }
    public enum Norm: Sendable, Equatable {
        /// RMSNorm x / rms(x) · w, pre-attention and pre-MLP.
        case rmsPreNorm
        /// Gemma: RMSNorm x / rms(x) · (1 + w) in float32, before and after the attention and the
        /// MLP (``TensorRole/attentionOutputNorm``, ``TensorRole/mlpOutputNorm``), the embedding
        /// scaled by √hidden_size.
        case gemmaSandwich
    }
    public var attention: Attention
    public var mlp: MLP
    public var norm: Norm

    public init(attention: Attention, mlp: MLP, norm: Norm) {
        self.attention = attention
        self.mlp = mlp
        self.norm = norm
    }

    /// The LLaMA decoder layer.
    public static let llama = EngineBlocks(attention: .groupedQueryRotary(queryKeyNorm: false), mlp: .gatedSiLU, norm: .rmsPreNorm)
    /// The Qwen3 decoder layer: LLaMA's with per-head q/k RMSNorm.
    public static let qwen3 = EngineBlocks(attention: .groupedQueryRotary(queryKeyNorm: true), mlp: .gatedSiLU, norm: .rmsPreNorm)

    /// The Gemma 2 decoder layer: four (1 + w) norms, GeGLU.
    public static let gemma2 = EngineBlocks(attention: .groupedQueryRotary(queryKeyNorm: false), mlp: .gatedGELUTanh, norm: .gemmaSandwich)
    /// The Gemma 3 decoder layer: Gemma 2's with per-head (1 + w) q/k norms.
    public static let gemma3 = EngineBlocks(attention: .groupedQueryRotary(queryKeyNorm: true), mlp: .gatedGELUTanh, norm: .gemmaSandwich)

    /// Whether attention normalises each query and key head before the rotary embedding.
    public var queryKeyNorm: Bool {
        switch attention { case .groupedQueryRotary(let n): n }
    }

    /// Whether the norms scale by 1 + w (Gemma) rather than w, and norm the blocks' outputs too.
    public var isGemma: Bool { norm == .gemmaSandwich }
    /// What the norms add to their weight before scaling (1 for Gemma's (1 + w), 0 otherwise).
    public var normWeightOffset: Float { isGemma ? 1 : 0 }
}

/// The values a stock `config.json` states, whatever the family's keys for them.
public struct StockConfigValues: Sendable, Equatable {
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    /// Rope scaling as Hugging Face writes it (`{"rope_type": "linear", "factor": 2.0}`), if any.
    public var ropeScaling: JSONObject?
    public var tiedEmbeddings: Bool
    public var attentionBias: Bool
    public var mlpBias: Bool
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var padTokenId: Int?
    /// PyTorch's dtype name (`float32`, `bfloat16`).
    public var dtype: String
    /// Family-specific keys the family's ``ModelFamily/stockConfig(_:)`` reads (Gemma:
    /// `sliding_window`, `layer_types`, `query_pre_attn_scalar`, soft-caps, local rope base).
    public var extra = JSONObject()

    public init(hiddenSize: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int, intermediateSize: Int, vocabSize: Int,
                contextLength: Int, rmsNormEps: Double, ropeTheta: Double, ropeScaling: JSONObject?, tiedEmbeddings: Bool,
                attentionBias: Bool, mlpBias: Bool, bosTokenId: Int?, eosTokenId: Int?, padTokenId: Int?, dtype: String) {
        self.hiddenSize = hiddenSize; self.layers = layers; self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        self.intermediateSize = intermediateSize; self.vocabSize = vocabSize; self.contextLength = contextLength
        self.rmsNormEps = rmsNormEps; self.ropeTheta = ropeTheta; self.ropeScaling = ropeScaling; self.tiedEmbeddings = tiedEmbeddings
        self.attentionBias = attentionBias; self.mlpBias = mlpBias; self.bosTokenId = bosTokenId; self.eosTokenId = eosTokenId
        self.padTokenId = padTokenId; self.dtype = dtype
    }
}

/// A remote-code modeling file transformers loads with `trust_remote_code=True`.
public struct RemoteCode: Sendable, Equatable {
    /// The file written next to config.json (`modeling_shears_llama.py`).
    public var fileName: String
    public var configClass: String
    public var modelClass: String
    /// The file's text.
    public var source: String

    public init(fileName: String, configClass: String, modelClass: String, source: String) {
        self.fileName = fileName
        self.configClass = configClass
        self.modelClass = modelClass
        self.source = source
    }

    /// The Python module (the file name without `.py`).
    public var module: String { fileName.hasSuffix(".py") ? String(fileName.dropLast(3)) : fileName }

    /// config.json's `auto_map`.
    public var autoMap: JSONObject {
        JSONObject([("AutoConfig", .string("\(module).\(configClass)")), ("AutoModelForCausalLM", .string("\(module).\(modelClass)"))])
    }
}
