import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import ShearsJSON
@testable import ModelArchitecture

/// Phi-3's description from config.json: longrope resolved as transformers'
/// `_compute_longrope_parameters` does, partial rotary, sliding window per layer, fused tensors
/// as row blocks; malformed settings refused with the key named.
@Suite struct Phi3DescriptionTests {
    func config(_ extra: [(String, JSONValue)]) throws -> ModelConfiguration {
        var o = JSONObject([
            ("model_type", .string("phi3")), ("hidden_size", .int(64)), ("num_attention_heads", .int(4)),
            ("num_key_value_heads", .int(2)), ("num_hidden_layers", .int(2)), ("intermediate_size", .int(96)),
            ("vocab_size", .int(100)), ("max_position_embeddings", .int(131072)),
        ])
        for (k, v) in extra { o[k] = v }
        return try ModelConfiguration(json: .object(o))
    }
    func longrope(_ pairs: Int, _ extra: [(String, JSONValue)] = []) -> JSONValue {
        var o = JSONObject([("rope_type", .string("longrope")),
                            ("short_factor", .array(Array(repeating: .double(1), count: pairs))),
                            ("long_factor", .array(Array(repeating: .double(2), count: pairs)))])
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    @Test func longRopeAttentionFactorFromTheContextRatio() throws {
        // Phi-3-mini-128k: 131072 / 4096 = 32 → sqrt(1 + ln 32 / ln 4096).
        let d = try Phi3Family().describe(try config([("original_max_position_embeddings", .int(4096)), ("rope_scaling", longrope(8))]))
        guard case .longRope(let s, let l, let a, let o) = d.rotaryScaling else { Issue.record("\(d.rotaryScaling)"); return }
        #expect(s.count == 8 && l.count == 8 && o == 4096)
        #expect(abs(a - (1 + log(32.0) / log(4096.0)).squareRoot()) < 1e-12)
        #expect(d.rmsNormEps == 1e-5 && !d.tieWordEmbeddings && !d.attentionBias)
    }

    @Test func explicitFactorsAndPartialRotary() throws {
        let d = try Phi3Family().describe(try config([
            ("partial_rotary_factor", .double(0.75)), ("sliding_window", .int(2047)),
            ("rope_parameters", longrope(6, [("original_max_position_embeddings", .int(1024)), ("attention_factor", .double(1.5))])),
        ]))
        #expect(d.rotaryDimensions == 12)
        guard case .longRope(_, _, let a, let o) = d.rotaryScaling else { Issue.record("\(d.rotaryScaling)"); return }
        #expect(a == 1.5 && o == 1024)
        #expect(d.layerAttention.map(\.slidingWindow) == [2047, 2047])
    }

    @Test func refusesMalformedSettings() throws {
        #expect(throws: CheckpointError.self) { try Phi3Family().describe(try config([("rope_scaling", longrope(5))])) }   // 8 pairs
        #expect(throws: CheckpointError.self) { try Phi3Family().describe(try config([("partial_rotary_factor", .double(1.5))])) }
        #expect(throws: CheckpointError.self) { try Phi3Family().describe(try config([("sliding_window", .int(-1))])) }
        // A llama config with longrope lists of the wrong length is refused, not trapped on.
        var c = try config([("rope_scaling", longrope(3))])
        c.modelType = "llama"
        #expect(throws: CheckpointError.self) { try LlamaFamily().describe(c) }
    }

    @Test func fusedTensorsAreRowBlocks() throws {
        let t = Phi3Family.tensorNames
        #expect(FusedTensorView.fusedGroups(t).map(\.name) == ["self_attn.qkv_proj", "mlp.gate_up_proj"])
        #expect(FusedTensorView.fusedTarget(of: "model.layers.3.self_attn.v_proj.weight", naming: t)?.name == "model.layers.3.self_attn.qkv_proj.weight")
        #expect(FusedTensorView.fusedTarget(of: "model.layers.3.mlp.up_proj.weight", naming: t)?.position == 1)
        #expect(FusedTensorView.fusedTarget(of: "model.layers.3.mlp.down_proj.weight", naming: t) == nil)
        let d = try Phi3Family().describe(try config([]))
        var shapes: [String: [Int]] = [:]
        for r in d.requiredTensors { shapes[d.tensors.name(r)] = d.shape(of: r) }
        let stored = FusedTensorView.storedShapes(shapes, naming: t)
        #expect(stored["model.layers.0.self_attn.qkv_proj.weight"] == [128, 64])
        #expect(stored["model.layers.1.mlp.gate_up_proj.weight"] == [192, 64])
        #expect(stored["model.layers.0.self_attn.q_proj.weight"] == nil)
    }
}
