import Testing
import CheckpointCore
import ShearsJSON
import Tokenizers
@testable import GGUF

@Suite struct GGUFTokenizerTests {
    /// A SentencePiece ("llama") vocabulary: our tokenizer.json encodes like the tokenizer
    /// transformers' GGUF loader builds (Tools/make-gguf-fixtures recorded its ids).
    @Test func sentencePieceVocabularyMatchesTransformers() throws {
        let f = try GGUFFile(path: fixturesPath + "/gguf/spm-vocab.gguf")
        let tok = try GGUFTokenizer(gguf: f)
        #expect(tok.model == "llama" && tok.addBos)
        let json = try tok.tokenizerJSON()
        #expect(json["model"]?["byte_fallback"] == .bool(true))
        let t = try Tokenizer(json: json.serializedBytes())
        let golden = try JSONValue.parse(try FileSystem.readFile(fixturesPath + "/gguf/spm-ids.json"))
        for (name, text) in golden["texts"]!.objectValue!.members {
            let want = golden["ids"]![name]!.arrayValue!.map { Int32($0.intValue!) }
            let got = t.encode(text.stringValue!, addSpecialTokens: false)
            #expect(got == want, "\(name): \(got.count) vs \(want.count) ids, first difference at \(Array(zip(got, want)).firstIndex { $0.0 != $0.1 } ?? min(got.count, want.count))")
        }
        // BOS is added when special tokens are requested, as llama.cpp does for this vocabulary.
        #expect(t.encode("Hello", addSpecialTokens: true).first == 1)
    }

    @Test func unknownPreTokenizerIsAClearError() throws {
        let f = try GGUFFile(path: SmolLM2Tests.ggufPath)
        var tok = try GGUFTokenizer(gguf: f)
        tok.pre = "some-new-model"
        #expect {
            _ = try tok.tokenizerJSON()
        } throws: { e in
            (e as? CheckpointError)?.code == .unsupportedConversion && "\(e)".contains("some-new-model")
        }
        for pre in ["llama-bpe", "qwen2", "gpt2"] {
            tok.pre = pre
            let j = try tok.tokenizerJSON()
            _ = try Tokenizer(json: j.serializedBytes())  // loads in the Swift implementation
        }
    }
}
