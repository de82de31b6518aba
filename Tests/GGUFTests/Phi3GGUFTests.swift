import Testing
import CheckpointCore
import ModelArchitecture
import ShearsJSON
@testable import GGUF

/// phi3: HF → GGUF → HF is exact for float types, as llama.cpp's converter (Phi3MiniModel) lays
/// the file out: the fused `qkv_proj` / `gate_up_proj` stored as `attn_qkv` / `ffn_up` (same rows,
/// same order), Q/K unpermuted, partial rotary as `rope.dimension_count`, longrope's factors as the
/// tensors `rope_factors_short` / `rope_factors_long` with `rope.scaling.attn_factor` and
/// `rope.scaling.original_context_length`, the window as `attention.sliding_window`. What
/// llama.cpp's phi3 loader cannot size is refused.
@Suite struct Phi3GGUFTests {
    @Test(arguments: ["phi3-eval", "phi3-gqa-longrope-partial", "phi3-mha-tied", "phi3-kv1-longrope-short", "phi3-window4"])
    func roundTripsExactly(_ name: String) throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let srcPath = fixturesPath + "/engine/" + name
        let source = try ModelDescription(configPath: srcPath + "/config.json")
        let report = try HuggingFaceToGGUF.convert(folder: srcPath, to: dir + "/m.gguf")
        #expect(report.architecture == "phi3")
        let g = try GGUFFile(path: dir + "/m.gguf")
        let src = try Checkpoint.open(srcPath)
        #expect(g.architecture == "phi3")
        #expect(try g.floats(named: "blk.1.attn_qkv.weight") == src.tensor(named: "model.layers.1.self_attn.qkv_proj.weight").floats())
        #expect(try g.floats(named: "blk.0.ffn_up.weight") == src.tensor(named: "model.layers.0.mlp.gate_up_proj.weight").floats())
        #expect(g.tensorInfo(named: "blk.0.attn_q.weight") == nil && g.tensorInfo(named: "blk.0.ffn_gate.weight") == nil)
        #expect(g["phi3.rope.dimension_count"]?.intValue == source.rotaryDimensions)
        #expect(g["phi3.attention.sliding_window"]?.intValue == source.layerAttention.compactMap(\.slidingWindow).first ?? 0)
        if case .longRope(let short, let long, let a, let original) = source.rotaryScaling {
            #expect(try g.floats(named: "rope_factors_short.weight") == short.map { Float($0) })
            #expect(try g.floats(named: "rope_factors_long.weight") == long.map { Float($0) })
            #expect(g["phi3.rope.scaling.original_context_length"]?.intValue == original)
            #expect(abs((g["phi3.rope.scaling.attn_factor"]?.doubleValue ?? 0) - a) < 1e-6)
        } else {
            #expect(g.tensorInfo(named: "rope_factors_long.weight") == nil)
        }
        _ = try GGUFToHuggingFace.convert(g, to: dir + "/back")
        let b = try Checkpoint.open(dir + "/back")
        #expect(Set(b.tensorNames) == Set(src.tensorNames))
        for n in src.tensorNames {
            #expect(b.tensorInfo(named: n)?.dtype == src.tensorInfo(named: n)?.dtype, "\(n)")
            #expect(try src.tensor(named: n).bytes() == b.tensor(named: n).bytes(), "\(n)")
        }
        let back = try ModelDescription(configPath: dir + "/back/config.json")
        #expect(back.family.modelType == "phi3" && back.family.architectureClass == "Phi3ForCausalLM")
        #expect(back.headDim == source.headDim && back.layers == source.layers && back.hiddenSize == source.hiddenSize)
        #expect(back.vocabSize == source.vocabSize && back.tieWordEmbeddings == source.tieWordEmbeddings)
        #expect(back.ropeTheta == source.ropeTheta && back.rmsNormEps == source.rmsNormEps)
        #expect(back.partialRotaryFactor == source.partialRotaryFactor && back.rotaryDimensions == source.rotaryDimensions)
        #expect(back.rotaryScaling == source.rotaryScaling, "\(back.rotaryScaling) vs \(source.rotaryScaling)")
        #expect(back.layerAttention == source.layerAttention)
    }

    /// Per-layer widths and query widths other than hidden_size have no phi3 layout in llama.cpp.
    @Test func refusesWhatTheLoaderCannotSize() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let srcPath = fixturesPath + "/engine/phi3-mha-tied"
        let config = try JSONValue.parse(try FileSystem.readFile(srcPath + "/config.json")).objectValue!
        func attempt(_ edit: (inout JSONObject) -> Void) -> CheckpointError? {
            var c = config
            edit(&c)
            let folder = dir + "/m\(Int.random(in: 0..<1_000_000))"
            try? FileSystem.createDirectory(folder)
            try? AtomicFile.write(JSONValue.object(c).serializedBytes(style: .pretty), to: folder + "/config.json")
            try? AtomicFile.write(FileSystem.readFile(srcPath + "/model.safetensors"), to: folder + "/model.safetensors")
            do { _ = try HuggingFaceToGGUF.convert(folder: folder, to: folder + ".gguf"); return nil } catch { return error }
        }
        // 4 heads × 16 = 64 = hidden: a head_dim of 8 leaves 32 query rows.
        let narrow = attempt { $0["head_dim"] = .int(8); $0["num_key_value_heads"] = .int(4) }
        #expect(narrow?.code == .unsupportedConversion && narrow?.message.contains("embedding_length") == true, "\(String(describing: narrow))")
        let perLayer = attempt { $0["intermediate_size_per_layer"] = .array([.int(96), .int(48)]) }
        #expect(perLayer?.code == .unsupportedConversion && perLayer?.message.contains("--uniform") == true, "\(String(describing: perLayer))")
    }
}
