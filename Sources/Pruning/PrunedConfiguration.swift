import CheckpointCore
import ModelArchitecture
import ShearsJSON

/// The output `config.json` (formats/pruned-config-output.md).
///
/// Uniform widths: the source config with `num_attention_heads`, `num_key_value_heads`,
/// `intermediate_size`, `hidden_size`, `num_hidden_layers` and an explicit `head_dim` updated, which
/// stock transformers loads. Uneven widths: the same, with the scalar head/width keys left at the
/// source's values, plus `num_attention_heads_per_layer`, `num_key_value_heads_per_layer`,
/// `intermediate_size_per_layer` and an `auto_map` to the family's remote-code file
/// (``remoteCode(for:)``).
public enum PrunedConfiguration {
    /// The remote-code modeling file placed next to an uneven LLaMA config.
    public static let modelingFileName = "modeling_shears_llama.py"

    /// A remote-code modeling file: its name, classes and text.
    public struct RemoteCode: Sendable, Equatable {
        public var fileName: String
        public var configClass: String
        public var modelClass: String
        public var text: String
        public var module: String { String(fileName.dropLast(3)) }
    }

    /// Every remote-code file a pruned folder may hold (to remove stale ones).
    public static let remoteCodeFiles = ["modeling_shears_llama.py", "modeling_shears_qwen3.py"]

    /// The remote-code file for an uneven model of `family`: the family's own where it has one
    /// (its decoder layer differs from LLaMA's), else LLaMA's.
    public static func remoteCode(for family: any ModelFamily) -> RemoteCode {
        switch family.modelType {
        case "qwen3": RemoteCode(fileName: "modeling_shears_qwen3.py", configClass: "ShearsQwen3Config",
                                 modelClass: "ShearsQwen3ForCausalLM", text: ModelingSource.qwen3)
        default: RemoteCode(fileName: modelingFileName, configClass: "ShearsLlamaConfig",
                            modelClass: "ShearsLlamaForCausalLM", text: ModelingSource.text)
        }
    }

    public static func make(source: JSONObject, plan: PruningPlan, dtype: DType? = nil) -> JSONObject {
        var c = source
        let widths = plan.outputWidths
        c["hidden_size"] = .int(Int64(plan.keptHidden.count))
        c["num_hidden_layers"] = .int(Int64(widths.count))
        c["head_dim"] = .int(Int64(plan.shape.headDim))
        for k in ["num_attention_heads_per_layer", "num_key_value_heads_per_layer", "intermediate_size_per_layer", "auto_map"] { c[k] = nil }
        if plan.isUniform, let w = widths.first {
            c["num_attention_heads"] = .int(Int64(w.numAttentionHeads))
            c["num_key_value_heads"] = .int(Int64(w.numKeyValueHeads))
            c["intermediate_size"] = .int(Int64(w.intermediateSize))
        } else {
            c["num_attention_heads_per_layer"] = .array(widths.map { .int(Int64($0.numAttentionHeads)) })
            c["num_key_value_heads_per_layer"] = .array(widths.map { .int(Int64($0.numKeyValueHeads)) })
            c["intermediate_size_per_layer"] = .array(widths.map { .int(Int64($0.intermediateSize)) })
            let code = remoteCode(for: plan.shape.family)
            c["auto_map"] = .object(JSONObject([
                ("AutoConfig", .string("\(code.module).\(code.configClass)")),
                ("AutoModelForCausalLM", .string("\(code.module).\(code.modelClass)")),
            ]))
        }
        // Layer types and similar per-layer lists follow the kept layers.
        if case .array(let a)? = c["layer_types"], a.count == plan.shape.layerCount {
            c["layer_types"] = .array(plan.keptLayers.map { a[$0] })
        }
        if let dtype {
            let name = torchName(dtype)
            if c["dtype"] != nil { c["dtype"] = .string(name) } else { c["torch_dtype"] = .string(name) }
        }
        return c
    }

    /// PyTorch's name of a dtype (`bfloat16`).
    public static func torchName(_ t: DType) -> String {
        switch t {
        case .bf16: "bfloat16"
        case .f16: "float16"
        case .f32: "float32"
        case .f64: "float64"
        case .f8E4M3: "float8_e4m3fn"
        case .f8E5M2: "float8_e5m2"
        default: t.rawValue
        }
    }
}
