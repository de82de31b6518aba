import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import ShearsJSON
import ShearsPipeline
import Tokenizers

/// A GGUF whose tokenizer is SentencePiece (`tokenizer.ggml.model = llama`) gives the ids
/// transformers gives with `AutoTokenizer.from_pretrained(dir, gguf_file=...)`
/// (Tools/tokenizers/make_gguf_spm_fixtures.py): LlamaTokenizer's, Phi-3's and Gemma's layouts of
/// the same 8,000-piece vocabulary, on Austen, Unicode, digits, whitespace runs and byte-fallback
/// text; and, when Tools/fetch-gemma3-270m has cached it, the real Gemma 3 270M GGUF.
@Suite struct GGUFSentencePieceTokenizerTests {
    static let folder = fixtures + "/gguf/spm"

    func check(_ golden: JSONValue, file: String) throws {
        let tokenizer = try ModelSource.ggufTokenizer(file)
        let texts = try #require(golden["texts"]?.objectValue)
        let ids = try #require((golden["file"] != nil ? golden["ids"] : golden["ids"]?[FileSystem.baseName(file)])?.objectValue)
        #expect(ids.count == 7)
        for (name, want) in ids.members {
            let text = try #require(texts[name]?.stringValue)
            let got = tokenizer.encode(text).map(Int.init)
            #expect(got == want.arrayValue?.compactMap(\.intValue), "\(FileSystem.baseName(file)) \(name)")
        }
    }

    @Test(arguments: ["spm-llama.gguf", "spm-phi3.gguf", "spm-gemma3.gguf"]) func syntheticFiles(_ name: String) throws {
        let golden = try JSONValue.parse(try FileSystem.readFile(Self.folder + "/spm-gguf-ids.json"))
        try check(golden, file: Self.folder + "/" + name)
    }

    static let gemma: String? = {
        let home = String(cString: getenv("HOME") ?? strdup("/root"))
        let path = home + "/.cache/shears/gemma3-270m/gemma-3-270m-q4_k_m.gguf"
        return FileSystem.isFile(path) ? path : nil
    }()

    @Test(.enabled(if: gemma != nil, "the Gemma 3 270M GGUF is not cached (Tools/fetch-gemma3-270m)"))
    func realGemma3() throws {
        let golden = try JSONValue.parse(try FileSystem.readFile(Self.folder + "/gemma3-270m-ids.json"))
        try check(golden, file: Self.gemma!)
    }
}
