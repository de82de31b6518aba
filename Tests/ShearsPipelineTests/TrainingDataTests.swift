import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Pruning
import ShearsJSON
import ShearsPipeline
import Tokenizers

/// `--data` files become the token ids and loss masks of upstream LLM-Pruner's post_training.py
/// (Fixtures/lora/data/golden.json, made by Tools/lora/data_reference.py with the HF tokenizer).
@Suite struct TrainingDataTests {
    static let tokenizer: Tokenizer = try! Tokenizer(contentsOf: fixtures + "/models/austen-llama")
    static let golden: JSONValue = try! JSONValue.parse(FileSystem.readFile(fixtures + "/lora/data/golden.json"))

    func ints(_ v: JSONValue?) -> [Int32] { (v?.arrayValue ?? []).map { Int32($0.intValue!) } }

    @Test(arguments: [0, 1, 2, 3])
    func recordsMatchUpstream(_ index: Int) throws {
        let c = Self.golden["cases"]!.arrayValue![index]
        let file = c["file"]!.stringValue!, seqLen = c["seq_len"]!.intValue!
        let loaded = try TrainingData.load(files: [fixtures + "/lora/data/" + file], tokenizer: Self.tokenizer, seqLen: seqLen)
        let want = c["examples"]!.arrayValue!
        #expect(loaded.examples.count == want.count && want.count >= 3)
        for (got, w) in zip(loaded.examples, want) {
            let ids = ints(w["input_ids"]), labels = ints(w["labels"])
            #expect(got.tokens == ids)
            #expect(got == TrainingExample(tokens: ids, huggingFaceLabels: labels))
            // The model-aligned targets are HF's labels shifted by one.
            #expect(got.shiftedLabels == Array(labels.dropFirst()) + [-100])
            // Per predicted token: HF's labels themselves (the first token never predicted).
            #expect(got.predictedTokens == labels.indices.map { $0 > 0 && labels[$0] != -100 })
        }
        #expect(loaded.files.count == 1)
        let r = loaded.files[0]
        #expect(r.file == file && r.sha256 == c["sha256"]!.stringValue! && r.skipped == c["skipped"]!.intValue!)
        #expect(r.format == (file.hasPrefix("alpaca") ? .jsonlAlpaca : .jsonlText))
        #expect(r.examples == want.count && r.tokens == loaded.examples.reduce(0) { $0 + $1.tokens.count })
    }

    /// The golden exercises what it should: masked prompts, truncation at the cut-off, EOS rules.
    @Test func goldenCoversTheRules() throws {
        let cases = Self.golden["cases"]!.arrayValue!
        let alpaca64 = cases[0]["examples"]!.arrayValue!, alpaca128 = cases[2]["examples"]!.arrayValue!
        let eos = Int32(Self.golden["eos"]!.intValue!)
        // Prompt positions masked, then the response trained, ending in EOS.
        let first = try TrainingData.load(files: [fixtures + "/lora/data/alpaca.jsonl"], tokenizer: Self.tokenizer, seqLen: 128).examples[0]
        #expect(first.trained.first == false && first.tokens.last == eos && first.trained.dropLast().last == true)
        // At 64 some record is cut at the cut-off (no EOS) and one is skipped (a prompt filling it).
        #expect(alpaca64.contains { ints($0["input_ids"]).count == 64 && ints($0["input_ids"]).last != eos })
        #expect(cases[0]["skipped"]!.intValue! >= 1 && alpaca128.count > alpaca64.count)
        // Text records: a text already ending in EOS gets no second one; the empty one is skipped.
        let text = cases[1]["examples"]!.arrayValue!.map { ints($0["input_ids"]) }
        #expect(text.allSatisfy { $0.count == 64 || $0.last == eos })
        #expect(text.filter { $0.last == eos && $0.dropLast().last == eos }.isEmpty)
        #expect(cases[1]["skipped"]!.intValue! == 1)
    }

    /// The template text itself (LLMPruner/utils/prompter.py, alpaca).
    @Test func alpacaTemplate() {
        #expect(TrainingData.AlpacaTemplate.render(instruction: "I", input: "", output: nil)
            == "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nI\n\n### Response:\n")
        #expect(TrainingData.AlpacaTemplate.render(instruction: "I", input: "X", output: "O")
            == "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nI\n\n### Input:\nX\n\n### Response:\nO")
    }

    /// A JSON array of the same Alpaca records gives the same examples.
    @Test func jsonArrayEqualsJSONL() throws {
        let dir = temporaryFolder("shears-data")
        defer { _ = system("rm -rf '\(dir)'") }
        let lines = try FileSystem.readFile(fixtures + "/lora/data/alpaca.jsonl").split(separator: UInt8(ascii: "\n"))
        let array = Array("[".utf8) + lines.map(Array.init).joined(separator: Array(",\n".utf8)) + Array("]".utf8)
        try AtomicFile.write(array, to: dir + "/alpaca.json")
        let a = try TrainingData.load(files: [dir + "/alpaca.json"], tokenizer: Self.tokenizer, seqLen: 128)
        let b = try TrainingData.load(files: [fixtures + "/lora/data/alpaca.jsonl"], tokenizer: Self.tokenizer, seqLen: 128)
        #expect(a.examples == b.examples && a.files[0].format == .jsonAlpaca)
    }

    /// Plain text: the calibration tokenization, cut into consecutive windows (HF ids), or drawn
    /// as --calibration draws them.
    @Test func textWindows() throws {
        let w = Self.golden["text_windows"]!
        let path = fixtures + "/text/austen-evaluation/persuasion-head.txt"
        let seqLen = w["seq_len"]!.intValue!
        let loaded = try TrainingData.load(files: [path], tokenizer: Self.tokenizer, seqLen: seqLen)
        #expect(loaded.examples.count == w["count"]!.intValue!)
        #expect(loaded.examples.first?.tokens == ints(w["first"]) && loaded.examples.last?.tokens == ints(w["last"]))
        #expect(loaded.examples.allSatisfy { $0.trained == (0..<seqLen).map { $0 < seqLen - 1 } })
        #expect(loaded.files[0].sha256 == w["sha256"]!.stringValue! && loaded.files[0].format == .text)
        let sampled = try TrainingData.load(files: [path], tokenizer: Self.tokenizer, seqLen: 32, textWindows: .sampled(count: 5, seed: 7))
        let docs = try CalibrationSource.text(path).documents(tokenizer: { Self.tokenizer }).documents
        var sampler = try CalibrationSampler(documents: docs, samples: 5, seqLen: 32, seed: 7)
        #expect(sampled.examples.map(\.tokens) == sampler.batch(step: 1))
    }

    /// The default data: the bundled training novels as --calibration reads them (never the
    /// held-out Persuasion), cut into consecutive windows.
    @Test func bundledDefault() throws {
        let loaded = try TrainingData.loadBundled(tokenizer: Self.tokenizer, seqLen: 512)
        let d = try CalibrationSource.bundled.documents(tokenizer: { Self.tokenizer })
        #expect(loaded.files == [TrainingData.FileRecord(file: "austen-calibration", sha256: d.sha256, format: .text,
                                                         examples: d.documents.reduce(0) { $0 + $1.count / 512 }, skipped: 0,
                                                         tokens: d.documents.reduce(0) { $0 + $1.count / 512 * 512 })])
        #expect(loaded.files[0].record == TrainingRecord.DataFile(file: "austen-calibration", sha256: d.sha256, format: "text",
                                                                  examples: loaded.examples.count, tokens: loaded.files[0].tokens))
        #expect(loaded.examples.count > 1000 && loaded.examples[0].tokens == Array(d.documents[0].prefix(512)))
        #expect(try FileSystem.contents(of: CalibrationSource.bundledFolder()!).allSatisfy { !$0.contains("persuasion") })
    }

    /// Hostile and malformed files: an error naming the file, the line and the rule; no crash.
    @Test func badFilesAreRejected() throws {
        let dir = temporaryFolder("shears-data-bad")
        defer { _ = system("rm -rf '\(dir)'") }
        func expectError(_ name: String, _ bytes: [UInt8], _ words: [String], seqLen: Int = 64) throws {
            try AtomicFile.write(bytes, to: dir + "/" + name)
            do {
                _ = try TrainingData.load(files: [dir + "/" + name], tokenizer: Self.tokenizer, seqLen: seqLen)
                Issue.record("\(name) was accepted")
            } catch let e as CheckpointError {
                let text = "\(e)"
                #expect(text.contains(name), "\(text)")
                for w in words { #expect(text.contains(w), "\(text) lacks \(w)") }
            }
        }
        let ok = Array(#"{"text": "Emma Woodhouse, handsome, clever, and rich."}"#.utf8) + [10]
        try expectError("a.jsonl", ok + Array("[1, 2]\n".utf8), ["line 2", "not a JSON object"])
        try expectError("b.jsonl", ok + Array(#"{"text": "bad "#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8), ["line 2", "UTF-8"])
        try expectError("d.jsonl", ok + Array(#"{"text": 5}"#.utf8), ["line 2", "`text` is integer, not a string"])
        try expectError("e.jsonl", Array(#"{"text": "x", "instruction": "y", "output": "z"}"#.utf8), ["line 1", "both"])
        try expectError("f.jsonl", ok + Array(#"{"instruction": "y", "output": "z"}"#.utf8), ["line 2", "keep one kind per file"])
        try expectError("g.jsonl", Array(#"{"prompt": "y"}"#.utf8), ["line 1", "neither"])
        try expectError("h.jsonl", Array(#"{"instruction": "y"}"#.utf8), ["line 1", "`output`"])
        try expectError("i.json", Array(#"{"instruction": "y", "output": "z"}"#.utf8), ["array"])
        try expectError("j.json", Array(#"[{"instruction": "y", "output": "z"}, 3]"#.utf8), ["record 1", "not an object"])
        try expectError("k.json", Array(#"[{"text": "y"}]"#.utf8), ["JSONL"])
        try expectError("l.data", Array("[Illustration] An opening that is not JSON".utf8), [".txt"])
        try expectError("l2.data", ok + Array("Chapter 1. A text whose first line happened to be JSON.".utf8), ["line 2", ".txt"])
        try expectError("m.jsonl", Array(#"{"text": "#.utf8) + [UInt8](repeating: 0x61, count: TrainingData.maximumRecordBytes + 1) + Array("\"}".utf8), ["line 1", "limit"])
        try expectError("n.txt", Array("Too short.".utf8), ["fewer than 64 tokens"])
        try expectError("o.jsonl", Array(#"{"text": ""}"#.utf8), ["no record"])
        // A byte-order mark before JSONL is skipped.
        try AtomicFile.write([0xEF, 0xBB, 0xBF] + ok, to: dir + "/bom.jsonl")
        #expect(try TrainingData.load(files: [dir + "/bom.jsonl"], tokenizer: Self.tokenizer, seqLen: 64).examples.count == 1)
        // A text file of any bytes is text (invalid UTF-8 replaced, as --calibration does).
        try AtomicFile.write(FileSystem.readFile(fixtures + "/text/adversarial-invalid-utf8.bin"), to: dir + "/p.txt")
        let p = try TrainingData.load(files: [dir + "/p.txt"], tokenizer: Self.tokenizer, seqLen: 16)
        #expect(!p.examples.isEmpty)
        #expect(throws: CheckpointError.self) { _ = try TrainingData.load(files: [dir + "/p.txt"], tokenizer: Self.tokenizer, seqLen: 1) }
    }

    /// Mutated records (seeded byte flips, cuts, duplications): each load returns examples or
    /// throws a CheckpointError; nothing traps.
    @Test func mutatedFilesNeverTrap() throws {
        let dir = temporaryFolder("shears-data-mut")
        defer { _ = system("rm -rf '\(dir)'") }
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(max(1, n)))
        }
        let sources = try ["alpaca.jsonl", "text.jsonl"].map { try FileSystem.readFile(fixtures + "/lora/data/" + $0) }
        var accepted = 0, rejected = 0
        for round in 0..<120 {
            var b = sources[round % 2]
            for _ in 0..<(1 + next(4)) {
                switch next(4) {
                case 0: b[next(b.count)] = UInt8(next(256))
                case 1: b = Array(b.prefix(next(b.count)))
                case 2: let i = next(b.count); b.insert(contentsOf: b[i..<min(b.count, i + next(40))], at: next(b.count))
                default: b[next(b.count)] = [UInt8(ascii: "{"), UInt8(ascii: "\""), UInt8(ascii: "["), 0x0A, 0xC3][next(5)]
                }
                if b.isEmpty { b = [0x7B] }
            }
            let path = dir + "/m\(round)." + (round % 3 == 0 ? "data" : "jsonl")
            try AtomicFile.write(b, to: path)
            do {
                let l = try TrainingData.load(files: [path], tokenizer: Self.tokenizer, seqLen: 48)
                #expect(l.examples.allSatisfy { $0.tokens.count <= 48 && $0.trained.count == $0.tokens.count && $0.trainedCount > 0 })
                accepted += 1
            } catch is CheckpointError { rejected += 1 }
        }
        #expect(accepted > 0 && rejected > 0)
    }
}
