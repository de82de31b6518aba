import CheckpointCore
import ShearsJSON

/// Qwen2 (`Qwen2ForCausalLM`): LLaMA's tensors with q/k/v biases (on by default), and NeoX-style
/// rotary that llama.cpp stores unpermuted (its qwen2 loader requires the q/k/v biases).
public struct Qwen2Family: ModelFamily {
    public init() {}
    public var modelType: String { "qwen2" }
    public var architectureClass: String { "Qwen2ForCausalLM" }
    public var tensors: TensorNaming { Self.tensorNames }

    /// LLaMA's names; transformers' Qwen2Attention has biases on q/k/v only (none on o_proj), and
    /// Qwen2MLP none, so recovery cannot add one there (transformers would ignore it).
    public static let tensorNames: TensorNaming = {
        var t = LlamaFamily.tensorNames
        for i in t.layer.indices where t.layer[i].role.isMLP || t.layer[i].role == .output { t.layer[i].mayHaveBias = false }
        return t
    }()
    public var gguf: GGUFNaming {
        var g = LlamaFamily.ggufNames
        g.architecture = "qwen2"
        g.alsoReads = []
        g.permutesQueryKey = false
        g.requiresBiases = true
        return g
    }
    public var blocks: EngineBlocks { .llama }
    /// LLaMA's modeling file (its per-layer decoder layers are LLaMA's).
    public var perLayerCode: RemoteCode { LlamaFamily.remoteCode }

    public func describe(_ c: ModelConfiguration) throws(CheckpointError) -> ModelDescription {
        var d = try LlamaFamily.describeDecoder(c, family: self)
        d.layerAttention = try c.qwenLayerAttention(layers: d.layerCount)
        return d
    }

    public func stockConfig(_ v: StockConfigValues) -> JSONObject { LlamaFamily.decoderConfig(v, family: self, mlpBiasKey: false) }
}
