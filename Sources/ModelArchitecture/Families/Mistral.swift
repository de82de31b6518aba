import CheckpointCore
import ShearsJSON

/// Mistral (`MistralForCausalLM`): LLaMA's tensors and layout; `sliding_window` (when set)
/// windows every layer's attention, as MistralAttention does.
public struct MistralFamily: ModelFamily {
    public init() {}
    public var modelType: String { "mistral" }
    public var architectureClass: String { "MistralForCausalLM" }
    public var tensors: TensorNaming { Self.tensorNames }

    /// LLaMA's names; transformers' Mistral projections have no biases at all, so recovery cannot
    /// add one (transformers would ignore it).
    public static let tensorNames: TensorNaming = {
        var t = LlamaFamily.tensorNames
        for i in t.layer.indices { t.layer[i].mayHaveBias = false }
        return t
    }()
    /// llama.cpp's converter writes Mistral as `llama`; files that say `mistral` read as Mistral.
    public var gguf: GGUFNaming {
        var g = LlamaFamily.ggufNames
        g.alsoReads = ["mistral"]
        return g
    }
    public var blocks: EngineBlocks { .llama }
    /// LLaMA's modeling file (its per-layer decoder layers are LLaMA's).
    public var perLayerCode: RemoteCode { LlamaFamily.remoteCode }

    public func describe(_ c: ModelConfiguration) throws(CheckpointError) -> ModelDescription {
        var d = try LlamaFamily.describeDecoder(c, family: self)
        d.layerAttention = try c.mistralLayerAttention(layers: d.layerCount)
        return d
    }

    public func stockConfig(_ v: StockConfigValues) -> JSONObject { LlamaFamily.decoderConfig(v, family: self, mlpBiasKey: false) }
}
