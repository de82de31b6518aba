import Testing
import CheckpointCore
import ShearsJSON
@testable import ModelArchitecture

/// Gemma 2 / Gemma 3 configs as transformers reads them: defaults, both rotary spellings
/// (transformers 5's per-layer-type `rope_parameters`, and `rope_theta` / `rope_scaling` /
/// `rope_local_base_freq`), `layer_types` or `sliding_window_pattern`, the text config inside a
/// Gemma3ForConditionalGeneration config, and the four norms per layer.
@Suite struct GemmaFamilyTests {
    let sizes = #""hidden_size":64,"num_hidden_layers":6,"num_attention_heads":4,"num_key_value_heads":1,"head_dim":32,"intermediate_size":96,"vocab_size":64"#

    func describe(_ json: String) throws -> ModelDescription {
        try ModelDescription(ModelConfiguration(json: JSONValue.parse(json)))
    }

    @Test func gemma3BothRotarySpellingsAgree() throws {
        let new = try describe("{" + sizes + #","model_type":"gemma3_text","sliding_window":16,"rope_parameters":{"full_attention":{"rope_type":"linear","factor":8.0,"rope_theta":1000000.0},"sliding_attention":{"rope_type":"default","rope_theta":10000.0}}}"#)
        let old = try describe("{" + sizes + #","model_type":"gemma3_text","sliding_window":16,"rope_theta":1000000.0,"rope_local_base_freq":10000.0,"rope_scaling":{"rope_type":"linear","factor":8.0}}"#)
        for d in [new, old] {
            #expect(d.ropeTheta == 1_000_000 && d.rotaryScaling == .linear(factor: 8))
            // sliding_window_pattern 6 by default: every sixth layer full.
            #expect(d.layerAttention.map(\.slidingWindow) == [16, 16, 16, 16, 16, nil])
            #expect(d.attention(ofLayer: 0).ropeTheta == 10_000 && d.attention(ofLayer: 0).rotaryScaling == RotaryScaling.none)
            #expect(d.attention(ofLayer: 5) == .full)
            #expect(abs(d.attentionScale! - 1 / 256.0.squareRoot()) < 1e-15)   // query_pre_attn_scalar default 256
            #expect(d.tieWordEmbeddings && d.attentionLogitSoftcap == nil && d.finalLogitSoftcap == nil)
            #expect(d.embeddingScale == Float(8))
            #expect(d.layerNormCount == 4 && d.requiredTensors.filter { $0.layer == 0 }.count == 13)
        }
        let pattern = try describe("{" + sizes + #","model_type":"gemma3_text","sliding_window_pattern":2}"#)
        #expect(pattern.layerAttention.map(\.slidingWindow) == [4096, nil, 4096, nil, 4096, nil])
        #expect(pattern.ropeTheta == 1_000_000 && pattern.attention(ofLayer: 0).ropeTheta == 10_000)
    }

    @Test func gemma2DefaultsAndSoftcaps() throws {
        let d = try describe("{" + sizes + #","model_type":"gemma2","query_pre_attn_scalar":144}"#)
        #expect(d.attentionLogitSoftcap == 50 && d.finalLogitSoftcap == 30)
        #expect(d.layerAttention.map(\.slidingWindow) == [4096, nil, 4096, nil, 4096, nil])
        #expect(d.layerAttention.allSatisfy { $0.ropeTheta == nil })
        #expect(abs(d.attentionScale! - 1 / 12.0) < 1e-15)
        let off = try describe("{" + sizes + #","model_type":"gemma2","attn_logit_softcapping":null,"final_logit_softcapping":null,"sliding_window":null}"#)
        #expect(off.attentionLogitSoftcap == nil && off.finalLogitSoftcap == nil && off.layerAttention.allSatisfy { !$0.isSliding })
        #expect(throws: CheckpointError.self) { try describe("{" + sizes + #","model_type":"gemma2","hidden_activation":"gelu"}"#) }
    }

    @Test func gemma3ConditionalGenerationReadsTheTextConfig() throws {
        let d = try describe(#"{"model_type":"gemma3","architectures":["Gemma3ForConditionalGeneration"],"text_config":{"# + sizes + #","sliding_window":512},"vision_config":{"model_type":"siglip_vision_model"}}"#)
        #expect(d.family.modelType == "gemma3" && d.hiddenSize == 64 && d.layerCount == 6)
        #expect(d.name(.query, layer: 2) == "model.language_model.layers.2.self_attn.q_proj.weight")
        #expect(d.name(.embedding) == "model.language_model.embed_tokens.weight" && d.tieWordEmbeddings)
        #expect(d.layerAttention.map(\.slidingWindow) == [512, 512, 512, 512, 512, nil])
        #expect(throws: CheckpointError.self) { try describe(#"{"model_type":"gemma3","text_config":{"# + sizes + #","hidden_activation":"silu"}}"#) }
    }
}
