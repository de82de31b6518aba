import Testing
import ShearsJSON
import CheckpointCore
import ModelArchitecture

@Suite struct LayerSizesTests {
    func config(_ json: String) throws -> ModelConfiguration { try ModelConfiguration(json: JSONValue.parse(json)) }

    @Test func uniformWithoutPerLayerConfig() throws {
        let c = try config(#"{"model_type":"llama","hidden_size":64,"num_hidden_layers":3,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96}"#)
        #expect(try c.layerSizes() == Array(repeating: LayerSizes(numAttentionHeads: 4, numKeyValueHeads: 2, intermediateSize: 96), count: 3))
    }

    @Test func perLayerOverrides() throws {
        let c = try config(#"{"model_type":"llama","hidden_size":64,"num_hidden_layers":3,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96,"per_layer_config":{"0":{"num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":56},"2":{"intermediate_size":80}}}"#)
        let s = try c.layerSizes()
        #expect(s[0] == LayerSizes(numAttentionHeads: 2, numKeyValueHeads: 1, intermediateSize: 56))
        #expect(s[1] == LayerSizes(numAttentionHeads: 4, numKeyValueHeads: 2, intermediateSize: 96))
        #expect(s[2] == LayerSizes(numAttentionHeads: 4, numKeyValueHeads: 2, intermediateSize: 80))
    }

    @Test(arguments: [
        #""per_layer_config":{"3":{"intermediate_size":8}}"#,          // layer out of range
        #""per_layer_config":{"01":{"intermediate_size":8}}"#,         // not a canonical index
        #""per_layer_config":{"0":{"hidden_size":8}}"#,                // not a per-layer attribute
        #""per_layer_config":{"0":{"intermediate_size":0}}"#,          // not positive
        #""per_layer_config":{"0":{"num_attention_heads":3}}"#,        // 3 heads over 2 KV heads
        #""per_layer_config":[1,2]"#,
    ])
    func rejectsBadPerLayerConfig(_ entry: String) throws {
        let c = try config(#"{"model_type":"llama","hidden_size":64,"num_hidden_layers":3,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96,"# + entry + "}")
        #expect(throws: CheckpointError.self) { try c.layerSizes() }
    }

    @Test func rotaryScalingKinds() throws {
        #expect(try config(#"{"model_type":"llama"}"#).rotaryScaling() == .none)
        #expect(try config(#"{"model_type":"llama","rope_scaling":{"type":"linear","factor":2.0}}"#).rotaryScaling() == .linear(factor: 2))
        let l3 = try config(#"{"model_type":"llama","rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}"#)
        #expect(try l3.rotaryScaling() == .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 8192))
        #expect(l3.ropeTheta == 500_000)
        #expect(throws: CheckpointError.self) { try config(#"{"model_type":"llama","rope_scaling":{"rope_type":"yarn","factor":4.0}}"#).rotaryScaling() }
        #expect(throws: CheckpointError.self) { try config(#"{"model_type":"llama","rope_scaling":{"rope_type":"llama3","factor":8.0}}"#).rotaryScaling() }
    }
}

@Suite struct PerLayerListTests {
    @Test func listsAndSparseOverridesAgree() throws {
        let base = #""model_type":"llama","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96"#
        let lists = try ModelConfiguration(json: JSONValue.parse("{" + base + #","num_attention_heads_per_layer":[2,4],"num_key_value_heads_per_layer":[1,2],"intermediate_size_per_layer":[56,80]}"#))
        let sparse = try ModelConfiguration(json: JSONValue.parse("{" + base + #","per_layer_config":{"0":{"num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":56},"1":{"intermediate_size":80}}}"#))
        #expect(try lists.layerSizes() == sparse.layerSizes())
        let short = try ModelConfiguration(json: JSONValue.parse("{" + base + #","intermediate_size_per_layer":[56]}"#))
        #expect(throws: CheckpointError.self) { try short.layerSizes() }
    }
}
