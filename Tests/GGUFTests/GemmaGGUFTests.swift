import Testing
import CheckpointCore
import ModelArchitecture
import ShearsJSON
@testable import GGUF

/// gemma2 / gemma3: HF → GGUF → HF is exact for float types; norms are stored as 1 + w (as
/// llama.cpp's converter writes them) and read back as w; the windows, layer types, rope bases and
/// soft-caps survive through llama.cpp's metadata keys; what llama.cpp cannot express is refused.
/// (Tools/check-gemma-llama-cpp runs the files in llama.cpp.)
@Suite struct GemmaGGUFTests {
    @Test func gemma3RoundTripsExactly() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let srcPath = fixturesPath + "/engine/gemma3-eval"
        _ = try HuggingFaceToGGUF.convert(folder: srcPath, to: dir + "/m.gguf")
        let g = try GGUFFile(path: dir + "/m.gguf")
        let src = try Checkpoint.open(srcPath)
        #expect(g.architecture == "gemma3")
        #expect(g["gemma3.attention.sliding_window"]?.intValue == 8)
        #expect(g["gemma3.attention.sliding_window_pattern"]?.arrayValue?.compactMap(\.boolValue) == [true, false])
        #expect(g["gemma3.attention.key_length"]?.intValue == 16)
        let w = try src.tensor(named: "model.layers.1.post_feedforward_layernorm.weight").floats()
        #expect(try g.floats(named: "blk.1.post_ffw_norm.weight") == w.map { $0 + 1 })
        let qn = try src.tensor(named: "model.layers.0.self_attn.q_norm.weight").floats()
        #expect(try g.floats(named: "blk.0.attn_q_norm.weight") == qn.map { $0 + 1 })
        _ = try GGUFToHuggingFace.convert(g, to: dir + "/back")
        let b = try Checkpoint.open(dir + "/back")
        #expect(Set(b.tensorNames) == Set(src.tensorNames))
        for n in src.tensorNames {
            #expect(try src.tensor(named: n).bytes() == b.tensor(named: n).bytes(), "\(n)")
        }
        let back = try ModelDescription(configPath: dir + "/back/config.json")
        let source = try ModelDescription(configPath: srcPath + "/config.json")
        #expect(back.family.modelType == "gemma3_text" && back.layerAttention == source.layerAttention)
        #expect(back.ropeTheta == source.ropeTheta && back.attentionScale == source.attentionScale && back.tieWordEmbeddings)
        // The GGUF file read in place gives the folder's tensors (norms back to w).
        let store = try GGUFTensorStore(path: dir + "/m.gguf")
        let n = "model.layers.0.input_layernorm.weight"
        #expect(try store.withTensorBytes(n) { Array($0) } == src.tensor(named: n).bytes())
    }

    @Test func gemma2MetadataReadsAsLlamaCppDefaults() throws {
        // gemma2's loader: window 4096, every other block sliding, soft-caps 50 / 30 when absent.
        let d = try GGUFModelMetadata.gemmaExtras(try GGUFFile(path: Self.minimal(dir: temporaryFolder())), arch: "gemma2", layers: 4,
                                                  hidden: 64, heads: 4, headDim: 16, ropeTheta: 10_000)
        #expect(d["sliding_window"]?.intValue == 4096 && d["query_pre_attn_scalar"]?.intValue == 16)
        #expect(d["layer_types"]?.arrayValue?.compactMap(\.stringValue) == ["sliding_attention", "full_attention", "sliding_attention", "full_attention"])
        #expect(d["attn_logit_softcapping"]?.doubleValue == 50 && d["final_logit_softcapping"]?.doubleValue == 30)
    }

    /// A GGUF file with only an architecture key (for the metadata defaults).
    static func minimal(dir: String) throws -> String {
        let path = dir + "/min.gguf"
        let w = try GGUFWriter(path: path, metadata: [("general.architecture", .string(GGUFString("gemma2")))], tensors: [])
        try w.finish()
        return path
    }

    @Test func refusesWhatLlamaCppCannotExpress() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        // query_pre_attn_scalar 24 with head_dim 16: llama.cpp scales by head_dim^-0.5.
        #expect { try HuggingFaceToGGUF.convert(folder: fixturesPath + "/engine/gemma2-softcap-window", to: dir + "/a.gguf") } throws: {
            ($0 as? CheckpointError)?.message.contains("query_pre_attn_scalar") == true
        }
        #expect(!FileSystem.isFile(dir + "/a.gguf"))
    }
}
