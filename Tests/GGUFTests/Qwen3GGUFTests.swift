import Testing
import CheckpointCore
import ModelArchitecture
import ShearsJSON
@testable import GGUF

/// qwen3: HF → GGUF → HF is exact for float types. llama.cpp's names (`attn_q_norm`,
/// `attn_k_norm`), Q/K rows unpermuted (NeoX rotary), head_dim carried as key/value length.
@Suite struct Qwen3GGUFTests {
    @Test(arguments: ["qwen3-gqa-untied", "qwen3-kv1-tied-headdim"]) func roundTripsExactly(_ name: String) throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let srcPath = fixturesPath + "/engine/" + name
        _ = try HuggingFaceToGGUF.convert(folder: srcPath, to: dir + "/m.gguf")
        let g = try GGUFFile(path: dir + "/m.gguf")
        let src = try Checkpoint.open(srcPath)
        #expect(g.architecture == "qwen3")
        #expect(try g.floats(named: "blk.1.attn_q_norm.weight") == src.tensor(named: "model.layers.1.self_attn.q_norm.weight").floats())
        #expect(try g.floats(named: "blk.0.attn_k.weight") == src.tensor(named: "model.layers.0.self_attn.k_proj.weight").floats(), "not permuted")
        _ = try GGUFToHuggingFace.convert(g, to: dir + "/back")
        let b = try Checkpoint.open(dir + "/back")
        #expect(Set(b.tensorNames) == Set(src.tensorNames))
        for n in src.tensorNames {
            #expect(b.tensorInfo(named: n)?.dtype == src.tensorInfo(named: n)?.dtype, "\(n)")
            #expect(try src.tensor(named: n).bytes() == b.tensor(named: n).bytes(), "\(n)")
        }
        let back = try ModelDescription(configPath: dir + "/back/config.json")
        let source = try ModelDescription(configPath: srcPath + "/config.json")
        #expect(back.family.modelType == "qwen3" && back.family.architectureClass == "Qwen3ForCausalLM")
        #expect(back.headDim == source.headDim && back.layers == source.layers && back.hiddenSize == source.hiddenSize)
        #expect(back.tieWordEmbeddings == source.tieWordEmbeddings && back.ropeTheta == source.ropeTheta && back.rmsNormEps == source.rmsNormEps)
        let c = try JSONValue.parse(try FileSystem.readFile(dir + "/back/config.json"))
        #expect(c["use_sliding_window"]?.boolValue == false)
    }
}
