import Testing
import CheckpointCore
import ShearsJSON
@testable import ModelArchitecture

/// The Qwen3 family as Qwen3Config reads config.json: head_dim 128 when absent (not hidden /
/// heads), sliding windows derived as Qwen3Config derives layer_types, q/k norms required along
/// the head dim.
@Suite struct Qwen3FamilyTests {
    let base = #""model_type":"qwen3","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96,"vocab_size":64"#

    func describe(_ extra: String) throws -> ModelDescription {
        try ModelDescription(ModelConfiguration(json: JSONValue.parse("{" + base + extra + "}")))
    }

    @Test func headDimDefaultsTo128() throws {
        #expect(try describe("").headDim == 128)
        #expect(try describe(#","head_dim":24"#).headDim == 24)
    }

    /// transformers: the window only with use_sliding_window; layers from max_window_layers
    /// (default 28) on slide, unless layer_types says otherwise.
    @Test func slidingWindowsFollowQwen3Config() throws {
        #expect(try describe(#","use_sliding_window":true,"sliding_window":8"#).layerAttention.isEmpty)
        #expect(try describe(#","use_sliding_window":true,"sliding_window":8,"max_window_layers":1"#).layerAttention.map(\.slidingWindow) == [nil, 8])
        #expect(try describe(#","use_sliding_window":false,"sliding_window":8,"max_window_layers":0"#).layerAttention.isEmpty)
        #expect(try describe(#","use_sliding_window":true,"sliding_window":8,"layer_types":["sliding_attention","full_attention"]"#).layerAttention.map(\.slidingWindow) == [8, nil])
        #expect(throws: CheckpointError.self) { try describe(#","use_sliding_window":false,"layer_types":["sliding_attention","full_attention"]"#) }
        #expect(throws: CheckpointError.self) { try describe(#","use_sliding_window":true,"sliding_window":0,"max_window_layers":0"#) }
        #expect(throws: CheckpointError.self) { try describe(#","layer_types":["chunked_attention","full_attention"]"#) }
    }

    @Test func requiresHeadNormsAlongTheHeadDim() throws {
        let d = try describe(#","head_dim":24"#)
        let norms = d.requiredTensors.filter { $0.role == .queryNorm || $0.role == .keyNorm }
        #expect(norms.count == 4 && norms.allSatisfy { d.shape(of: $0) == [24] })
        #expect(d.tensors.declaration(.down).mayHaveBias == false && d.tensors.declaration(.output).mayHaveBias)
        let llama = try LlamaFamily().describe(d.configuration)
        #expect(d.parameterCount(ofLayer: d.layers[0]) == llama.parameterCount(ofLayer: d.layers[0]) + 2 * 24)
    }
}
