import Testing
import ShearsJSON
import CheckpointCore
@testable import ModelArchitecture

@Suite struct ModelConfigurationTests {
    static let fixtures: String = {
        var p = #filePath
        for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
        return p + "/Fixtures"
    }()

    @Test func readsTransformersConfig() throws {
        // Written by transformers' save_pretrained (Tools/make-safetensors-fixtures).
        let c = try ModelConfiguration(path: Self.fixtures + "/safetensors/tiny-llama/config.json")
        #expect(c.modelType == "llama" && c.architectures == ["LlamaForCausalLM"])
        #expect(c.numHiddenLayers == 2 && c.hiddenSize == 64 && c.intermediateSize == 128 && c.vocabSize == 256)
        #expect(c.numAttentionHeads == 4 && c.numKeyValueHeads == 2 && c.headDim == 16)
        #expect(c.tieWordEmbeddings == false && c.ropeTheta == 10_000 && c.rmsNormEps == 1e-6)
        #expect(c.maxPositionEmbeddings == 256 && c.torchDtype == "float32")
    }

    @Test func appliesDefaults() throws {
        let c = try ModelConfiguration(json: JSONValue.parse(#"{"model_type":"llama","hidden_size":512,"num_attention_heads":8}"#))
        #expect(c.numKeyValueHeads == 8 && c.headDim == 64 && c.ropeTheta == 10_000 && !c.tieWordEmbeddings)
        let other = try ModelConfiguration(json: JSONValue.parse(#"{"model_type":"gpt2"}"#))
        #expect(other.tieWordEmbeddings)  // PretrainedConfig's default
        let qwen = try ModelConfiguration(json: JSONValue.parse(#"{"model_type":"qwen2","hidden_size":896,"num_attention_heads":14,"num_key_value_heads":2}"#))
        #expect(qwen.attentionBias && qwen.headDim == 64)
    }

    @Test func readsRopeScalingInBothLayouts() throws {
        let v4 = try ModelConfiguration(json: JSONValue.parse(#"{"model_type":"llama","rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}"#))
        #expect(v4.ropeTheta == 500_000 && v4.ropeScaling?["factor"] == .double(8) && v4.ropeScaling?["rope_type"] == .string("llama3"))
        let v5 = try ModelConfiguration(json: JSONValue.parse(#"{"model_type":"llama","rope_parameters":{"rope_theta":100000.0,"rope_type":"default"}}"#))
        #expect(v5.ropeTheta == 100_000 && v5.ropeScaling == nil)
    }

    @Test(arguments: [
        #"{"hidden_size":"64"}"#, #"{"num_hidden_layers":-1}"#, #"{"hidden_size":65,"num_attention_heads":4}"#,
        #"{"num_attention_heads":6,"num_key_value_heads":4}"#, #"{"tie_word_embeddings":"yes"}"#,
        #"{"rope_scaling":{"rope_type":"linear"}}"#, #"{"eos_token_id":"x"}"#, #"[1]"#,
    ])
    func rejectsImpossibleConfigs(_ text: String) {
        #expect { try ModelConfiguration(json: JSONValue.parse(text)) } throws: { ($0 as? CheckpointError)?.code == .invalidConfig }
    }

    @Test func summaryHasInspectKeys() throws {
        let c = try ModelConfiguration(path: Self.fixtures + "/safetensors/tiny-llama/config.json")
        let keys = c.summary.objectValue!.keys
        for k in ["model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim",
                  "intermediate_size", "vocab_size", "tie_word_embeddings", "rope_theta", "rope_scaling"] {
            #expect(keys.contains(k))
        }
    }
}

/// Sizes in config.json are checked against the tensors before anything is built from them (issue 21).
@Suite struct ConfigurationSizeCheckTests {
    static let hostile = ModelConfigurationTests.fixtures + "/hostile"

    @Test func agreeingSizesPass() throws {
        let store = try Checkpoint.open(Self.hostile + "/valid-one-layer")
        let m = try ModelDescription(configPath: Self.hostile + "/valid-one-layer/config.json", store: store)
        #expect(m.layerCount == 1 && m.hiddenSize == 8 && m.vocabSize == 16)
    }

    @Test(arguments: [
        ("layers-1e9", CheckpointError.Code.tensorNotFound, "model.layers.0.input_layernorm.weight"),
        ("hidden-1e12", .shapeMismatch, "model.embed_tokens.weight"),
        ("vocab-1e12", .shapeMismatch, "model.embed_tokens.weight"),
        ("heads-1e12", .shapeMismatch, "model.layers.0.self_attn.q_proj.weight"),
        ("head-dim-overflow", .shapeMismatch, "model.layers.0.self_attn.q_proj.weight"),
        ("intermediate-1e12", .shapeMismatch, "model.layers.0.mlp.gate_proj.weight"),
    ])
    func disagreeingSizesNameTheTensor(_ folder: String, _ code: CheckpointError.Code, _ tensor: String) throws {
        let store = try Checkpoint.open(Self.hostile + "/" + folder)
        let e = #expect(throws: CheckpointError.self) {
            try ModelDescription(configPath: Self.hostile + "/" + folder + "/config.json", store: store)
        }
        #expect(e?.code == code && e?.tensor == tensor, "\(String(describing: e))")
    }

    /// Widths saturate instead of trapping when a product of sizes overflows.
    @Test func widthsSaturate() {
        let s = LayerSizes(numAttentionHeads: 1_000_000_000_000, numKeyValueHeads: 1, intermediateSize: 1)
        #expect(s.queryWidth(headDim: 1_000_000_000_000) == .max)
    }
}
