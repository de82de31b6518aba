import CheckpointCore
import ShearsJSON

/// The output `config.json` (formats/pruned-config-output.md).
///
/// Uniform widths (and a hidden size the query heads divide, ``isStock(_:)``): the source config with `num_attention_heads`, `num_key_value_heads`,
/// `intermediate_size`, `hidden_size`, `num_hidden_layers` and an explicit `head_dim` updated, which
/// stock transformers loads. Uneven widths: the same, with the scalar head/width keys left at the
/// source's values, plus `num_attention_heads_per_layer`, `num_key_value_heads_per_layer`,
/// `intermediate_size_per_layer` and an `auto_map` to the family's ``ModelFamily/perLayerCode``.
public enum PrunedConfiguration {

    /// Whether `plan`'s output is written with a stock config: every layer the same widths, and a
    /// hidden size that is a multiple of the query heads (transformers' `validate_architecture`
    /// refuses any other, even with an explicit `head_dim`; uniform block pruning can reach such a
    /// head count, e.g. 26 of LLaMA-7B's 32 heads with 4096 hidden channels). Otherwise the
    /// per-layer keys and the remote-code modeling file are written, whose top-level sizes are the
    /// source's.
    public static func isStock(_ plan: PruningPlan) -> Bool {
        guard plan.isUniform, let w = plan.outputWidths.first else { return false }
        return w.numAttentionHeads > 0 && plan.keptHidden.count % w.numAttentionHeads == 0
            && plan.shape.family.stockConfigLoads(hiddenSize: plan.keptHidden.count, heads: w.numAttentionHeads,
                                                  headDim: plan.shape.headDim, configuration: plan.shape.configuration)
    }

    public static func make(source: JSONObject, plan: PruningPlan, dtype: DType? = nil) -> JSONObject {
        // A Gemma3ForConditionalGeneration config: the language model's sizes live in text_config.
        if plan.shape.family.modelType == "gemma3", let text = source["text_config"]?.objectValue {
            var c = source
            var inner = make(source: text, plan: plan, dtype: nil)
            inner["auto_map"] = nil
            c["text_config"] = .object(inner)
            if let dtype {
                let name = dtype.torchName
                if c["dtype"] != nil { c["dtype"] = .string(name) } else { c["torch_dtype"] = .string(name) }
            }
            return c
        }
        var c = source
        let widths = plan.outputWidths
        c["hidden_size"] = .int(Int64(plan.keptHidden.count))
        c["num_hidden_layers"] = .int(Int64(widths.count))
        c["head_dim"] = .int(Int64(plan.shape.headDim))
        for k in ["num_attention_heads_per_layer", "num_key_value_heads_per_layer", "intermediate_size_per_layer", "auto_map"] { c[k] = nil }
        if isStock(plan), let w = widths.first {
            c["num_attention_heads"] = .int(Int64(w.numAttentionHeads))
            c["num_key_value_heads"] = .int(Int64(w.numKeyValueHeads))
            c["intermediate_size"] = .int(Int64(w.intermediateSize))
        } else {
            c["num_attention_heads_per_layer"] = .array(widths.map { .int(Int64($0.numAttentionHeads)) })
            c["num_key_value_heads_per_layer"] = .array(widths.map { .int(Int64($0.numKeyValueHeads)) })
            c["intermediate_size_per_layer"] = .array(widths.map { .int(Int64($0.intermediateSize)) })
            c["auto_map"] = .object(plan.shape.family.perLayerCode.autoMap)
        }
        // Layer types and similar per-layer lists follow the kept layers.
        if case .array(let a)? = c["layer_types"], a.count == plan.shape.layerCount {
            c["layer_types"] = .array(plan.keptLayers.map { a[$0] })
        } else if plan.shape.family.modelType != "mistral", plan.shape.layerAttention.contains(where: \.isSliding),
                  case .array(let a) = plan.shape.layerTypesJSON {
            // Derived from sliding_window_pattern or max_window_layers: written out, so that the
            // layers that remain keep their attention.
            c["layer_types"] = .array(plan.keptLayers.map { a[$0] })
        }
        if let dtype {
            let name = dtype.torchName
            if c["dtype"] != nil { c["dtype"] = .string(name) } else { c["torch_dtype"] = .string(name) }
        }
        return c
    }
}
