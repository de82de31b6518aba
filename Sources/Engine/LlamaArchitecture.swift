import CheckpointCore
import ModelArchitecture

/// Everything the engine needs from `config.json`, resolved and checked: the LLaMA family
/// (`LlamaForCausalLM`, `MistralForCausalLM`, `Qwen2ForCausalLM`) with per-layer sizes.
public struct LlamaArchitecture: Sendable, Equatable {
    public var hiddenSize: Int
    public var headDim: Int
    public var vocabSize: Int
    public var layers: [LayerSizes]
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var rotaryScaling: RotaryScaling
    public var tieWordEmbeddings: Bool

    public var numLayers: Int { layers.count }

    public init(hiddenSize: Int, headDim: Int, vocabSize: Int, layers: [LayerSizes], rmsNormEps: Float,
                ropeTheta: Double, rotaryScaling: RotaryScaling = .none, tieWordEmbeddings: Bool) {
        self.hiddenSize = hiddenSize
        self.headDim = headDim
        self.vocabSize = vocabSize
        self.layers = layers
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.rotaryScaling = rotaryScaling
        self.tieWordEmbeddings = tieWordEmbeddings
    }

    /// Model types whose decoder the engine implements.
    public static let supportedModelTypes: Set<String> = ["llama", "mistral", "qwen2"]

    /// Resolves a parsed `config.json`.
    /// - Throws: `invalidConfig` for other architectures, a non-SiLU activation, sliding-window
    ///   attention that is switched on, or missing sizes.
    public init(_ c: ModelConfiguration) throws(CheckpointError) {
        guard let type = c.modelType, Self.supportedModelTypes.contains(type) else {
            throw CheckpointError(.invalidConfig, "model_type \(c.modelType ?? "(missing)") is not supported; the engine runs llama, mistral and qwen2")
        }
        if let act = c.hiddenAct, act != "silu" {
            throw CheckpointError(.invalidConfig, "hidden_act \(act) is not supported (only silu)")
        }
        if c.raw["use_sliding_window"]?.boolValue == true {
            throw CheckpointError(.invalidConfig, "sliding-window attention is not supported")
        }
        guard let h = c.hiddenSize, h > 0, let d = c.headDim, d > 0, d % 2 == 0, let v = c.vocabSize, v > 0 else {
            throw CheckpointError(.invalidConfig, "config lacks hidden_size, an even head_dim or vocab_size")
        }
        hiddenSize = h
        headDim = d
        vocabSize = v
        layers = try c.layerSizes()
        guard !layers.isEmpty else { throw CheckpointError(.invalidConfig, "num_hidden_layers is 0") }
        rmsNormEps = Float(c.rmsNormEps ?? 1e-6)
        ropeTheta = c.ropeTheta ?? 10_000
        rotaryScaling = try c.rotaryScaling()
        tieWordEmbeddings = c.tieWordEmbeddings
    }
}
