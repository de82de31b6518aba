import CheckpointCore
import Crypto
import Pruning
import ShearsJSON
import Tokenizers

/// One training sequence and which of its positions the loss counts.
///
/// Label convention: `trained[i]` is true when the model's prediction **at position i** — its
/// distribution for the *next* token, `tokens[i + 1]` — counts in the loss. The last position
/// predicts nothing, so `trained[tokens.count − 1]` is always false. In Hugging Face terms, with
/// `labels` as a data collator hands them to a causal LM (−100 = ignored, shifted inside the model
/// so that `logits[i]` is scored against `labels[i + 1]`):
///
///     trained[i] == (i + 1 < labels.count && labels[i + 1] != -100)
///
/// and `labels[0]` never matters (no position predicts the first token). ``shiftedLabels`` gives
/// the targets in the model's own alignment: `shiftedLabels[i]` is `tokens[i + 1]` where
/// `trained[i]`, else −100.
public struct TrainingExample: Sendable, Equatable {
    public var tokens: [Int32]
    public var trained: [Bool]

    public init(tokens: [Int32], trained: [Bool]) {
        precondition(tokens.count == trained.count, "one trained flag per token")
        self.tokens = tokens
        self.trained = trained
    }

    /// Every position but the last predicts its next token (text windows, JSONL `text` records).
    public init(allTrained tokens: [Int32]) {
        self.tokens = tokens
        trained = tokens.indices.map { $0 + 1 < tokens.count }
    }

    /// Hugging Face `labels` (unshifted, −100 = ignored) mapped to this convention.
    public init(tokens: [Int32], huggingFaceLabels labels: [Int32]) {
        precondition(tokens.count == labels.count, "one label per token")
        self.tokens = tokens
        trained = tokens.indices.map { $0 + 1 < labels.count && labels[$0 + 1] != -100 }
    }

    /// The target of each position: `tokens[i + 1]` where `trained[i]`, else −100.
    public var shiftedLabels: [Int32] { tokens.indices.map { trained[$0] ? tokens[$0 + 1] : -100 } }

    /// The same mask per *predicted token*: element j says whether predicting `tokens[j]` counts
    /// (HF's `labels[j] != −100`; element 0 is false, no position predicts the first token). This is
    /// the convention of a per-token loss mask indexed by target (the engine's training sequences):
    /// `predictedTokens[j] == trained[j − 1]`.
    public var predictedTokens: [Bool] { tokens.isEmpty ? [] : [false] + trained.dropLast() }

    /// Positions whose prediction counts.
    public var trainedCount: Int { trained.reduce(0) { $0 + ($1 ? 1 : 0) } }
}

/// Training data for `finetune` (docs/finetune.md "Data formats"): text files, JSONL records with a
/// `text` field, or Alpaca records (`instruction`, `input`, `output`) rendered with upstream
/// LLM-Pruner's Alpaca-LoRA template, tokenized as `post_training.py` does.
public enum TrainingData {
    /// A file's format, detected by ``detectFormat(path:bytes:)``.
    public enum Format: String, Sendable, Equatable {
        /// Plain text, cut into windows of `seqLen` tokens.
        case text
        /// One JSON object per line with a string `text`: one example per record.
        case jsonlText = "jsonl-text"
        /// One JSON object per line with `instruction`, optional `input`, and `output`.
        case jsonlAlpaca = "jsonl-alpaca"
        /// A JSON array of Alpaca objects (as `alpaca_data_cleaned.json` is shipped).
        case jsonAlpaca = "json-alpaca"
    }

    /// How text files become windows.
    public enum TextWindows: Sendable, Equatable {
        /// Consecutive non-overlapping windows of `seqLen` tokens from the start of each file's
        /// token sequence (the tail shorter than `seqLen` is dropped): every token once per epoch,
        /// as `shears eval` cuts its windows.
        case consecutive
        /// `count` windows drawn exactly as `--calibration` draws them: ``CalibrationSampler``
        /// with `seed` (a document uniformly among those holding `seqLen` tokens, then a start).
        case sampled(count: Int, seed: UInt64)
    }

    /// What one `--data` file contributed (the manifest's `training.data` entry).
    public struct FileRecord: Sendable, Equatable {
        /// The file's base name ("austen-calibration" for the bundled novels).
        public var file: String
        /// SHA-256 of the file's bytes (bundled folder: of each file's name, a NUL and its bytes,
        /// in name order, as the calibration record).
        public var sha256: String
        public var format: Format
        public var examples: Int
        /// Records skipped because no position of theirs is trained (nothing to learn from).
        public var skipped: Int
        /// Tokens over the file's examples.
        public var tokens: Int

        public init(file: String, sha256: String, format: Format, examples: Int, skipped: Int, tokens: Int) {
            self.file = file
            self.sha256 = sha256
            self.format = format
            self.examples = examples
            self.skipped = skipped
            self.tokens = tokens
        }

        /// The manifest's `training.data` entry.
        public var record: TrainingRecord.DataFile {
            TrainingRecord.DataFile(file: file, sha256: sha256, format: format.rawValue, examples: examples, tokens: tokens)
        }
    }

    /// Examples of all files, in file order then record order, and one record per file.
    public struct Loaded: Sendable, Equatable {
        public var examples: [TrainingExample]
        public var files: [FileRecord]
    }

    /// Upstream's Alpaca-LoRA template (LLM-Pruner `LLMPruner/utils/prompter.py`, `alpaca`).
    public enum AlpacaTemplate {
        /// `Prompter.generate_prompt(instruction, input, label)`: the input template when `input` is
        /// non-empty, then the output appended when non-empty.
        public static func render(instruction: String, input: String, output: String?) -> String {
            var s = input.isEmpty
                ? "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n" + instruction + "\n\n### Response:\n"
                : "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n" + instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n"
            if let output, !output.isEmpty { s += output }
            return s
        }
    }

    /// Largest data file read (bytes).
    public static let maximumFileBytes = 1 << 30
    /// Largest JSONL line or JSON record (bytes).
    public static let maximumRecordBytes = 16 << 20
    /// Largest `seqLen` accepted.
    public static let maximumSeqLen = 1 << 20

    /// Loads `files`, each in its detected format.
    ///
    /// - Text files: tokenized exactly as `--calibration FILE` (``CalibrationSource/text(_:)``: one
    ///   document per file, the tokenizer's special tokens added), then cut by `textWindows`; every
    ///   position but a window's last is trained.
    /// - JSONL `text` records: upstream's `tokenize(text)` — truncated to `seqLen` tokens as the HF
    ///   tokenizer truncates (`truncation=True, max_length=seqLen`), then EOS appended when the last
    ///   token is not EOS and there are fewer than `seqLen` tokens; every position trained.
    /// - Alpaca records: upstream's `generate_and_tokenize_prompt` with `train_on_inputs=False` and
    ///   `add_eos_token=False`: the full prompt (template + output) tokenized as above; the first
    ///   *n* labels are −100, *n* being the token count of the prompt without the output (truncated
    ///   the same way, no EOS).
    ///
    /// Records with no trained position (fewer than two tokens, or a prompt filling the whole
    /// cut-off) are skipped and counted in ``FileRecord/skipped``; upstream keeps them, where they
    /// add nothing to the loss.
    /// - Throws: ``CheckpointError`` naming the file, the line (or record) and the rule broken.
    public static func load(files: [String], tokenizer: Tokenizer, seqLen: Int,
                            textWindows: TextWindows = .consecutive) throws -> Loaded {
        try checkSeqLen(seqLen)
        guard !files.isEmpty else { throw CheckpointError(.invalidUsage, "no training data files given") }
        var out = Loaded(examples: [], files: [])
        for path in files {
            let raw = try FileSystem.readFile(path, limit: maximumFileBytes)
            // A UTF-8 byte-order mark is not part of the records (the hash is of the file as it is).
            let bytes = raw.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(raw.dropFirst(3)) : raw
            let format = try detectFormat(path: path, bytes: bytes)
            let name = FileSystem.baseName(path)
            switch format {
            case .text:
                let d = try CalibrationSource.text(path).documents(tokenizer: { tokenizer })
                let examples = try windows(d.documents, seqLen: seqLen, textWindows: textWindows, path: path)
                out.files.append(FileRecord(file: name, sha256: d.sha256, format: .text, examples: examples.count, skipped: 0,
                                            tokens: examples.reduce(0) { $0 + $1.tokens.count }))
                out.examples += examples
            case .jsonlText, .jsonlAlpaca, .jsonAlpaca:
                let (examples, skipped) = try records(bytes, format: format, path: path, tokenizer: tokenizer, seqLen: seqLen)
                out.files.append(FileRecord(file: name, sha256: ModelSource.hex(SHA256.hash(data: raw)), format: format,
                                            examples: examples.count, skipped: skipped,
                                            tokens: examples.reduce(0) { $0 + $1.tokens.count }))
                out.examples += examples
            }
        }
        return out
    }

    /// The bundled Austen training novels (`Fixtures/text/austen-calibration`, never the held-out
    /// Persuasion), tokenized as the bundled `--calibration` default and cut by `textWindows`.
    public static func loadBundled(tokenizer: Tokenizer, seqLen: Int, textWindows: TextWindows = .consecutive) throws -> Loaded {
        try checkSeqLen(seqLen)
        let d = try CalibrationSource.bundled.documents(tokenizer: { tokenizer })
        let examples = try windows(d.documents, seqLen: seqLen, textWindows: textWindows, path: d.file)
        return Loaded(examples: examples, files: [FileRecord(file: d.file, sha256: d.sha256, format: .text, examples: examples.count,
                                                             skipped: 0, tokens: examples.reduce(0) { $0 + $1.tokens.count })])
    }

    static func checkSeqLen(_ seqLen: Int) throws {
        guard seqLen >= 2, seqLen <= maximumSeqLen else {
            throw CheckpointError(.invalidUsage, "sequence length \(seqLen) is outside 2 … \(maximumSeqLen)")
        }
    }

    /// The format of a data file: by extension (`.jsonl`, `.json`; `.txt`, `.text`, `.md` are text),
    /// otherwise by content: a first line holding a JSON object is JSONL, a document that is a
    /// JSON array is JSON, anything else is text. JSONL/JSON records decide between `text` and
    /// Alpaca by their first record's fields.
    /// - Throws: when the content contradicts the extension or cannot be decided.
    public static func detectFormat(path: String, bytes: [UInt8]) throws -> Format {
        let name = FileSystem.baseName(path).lowercased()
        func ext(_ e: String) -> Bool { name.hasSuffix("." + e) }
        if ext("txt") || ext("text") || ext("md") { return .text }
        let firstByte = bytes.first { !isJSONWhitespace($0) }
        if ext("jsonl") || (!ext("json") && firstByte == UInt8(ascii: "{")) {
            // The first record decides text versus Alpaca.
            let line = lines(bytes).first { !isBlank($0.bytes) }
            guard let line else { throw CheckpointError(.invalidArgument, "JSONL file holds no record", path: path) }
            let object = try parseRecord(line.bytes, path: path, where: "line \(line.number)", hint: ext("jsonl") ? nil : jsonlHint)
            return try kind(of: object, path: path, where: "line \(line.number)") == .text ? .jsonlText : .jsonlAlpaca
        }
        if ext("json") || firstByte == UInt8(ascii: "[") {
            guard bytes.count <= maximumFileBytes else { throw CheckpointError(.invalidArgument, "JSON file is over \(maximumFileBytes) bytes", path: path) }
            let root: JSONValue
            do {
                guard validUTF8(bytes[...]) else { throw JSONError(.syntax, "the file is not valid UTF-8") }
                root = try JSONValue.parse(bytes)
            } catch let e as JSONError {
                throw CheckpointError(.invalidArgument, "not a JSON document: \(e.message)" + (ext("json") ? "" : "; " + jsonlHint), path: path)
            }
            guard let array = root.arrayValue else {
                throw CheckpointError(.invalidArgument, "a JSON data file must be an array of Alpaca records (instruction, input, output), found \(root.typeName)", path: path)
            }
            if let first = array.first {
                guard let o = first.objectValue else { throw CheckpointError(.invalidArgument, "record 0 is \(first.typeName), not an object", path: path) }
                guard try kind(of: o, path: path, where: "record 0") == .alpaca else {
                    throw CheckpointError(.invalidArgument, "record 0: `text` records go in a JSONL file (one object per line); a JSON array holds Alpaca records", path: path)
                }
            }
            return .jsonAlpaca
        }
        return .text
    }

    static let jsonlHint = "a file whose first byte is '{' or '[' is read as JSON; give it a .txt name to train on it as plain text"

    // MARK: - Text windows

    static func windows(_ documents: [[Int32]], seqLen: Int, textWindows: TextWindows, path: String) throws -> [TrainingExample] {
        switch textWindows {
        case .consecutive:
            var out: [TrainingExample] = []
            for d in documents {
                var start = 0
                while d.count - start >= seqLen {
                    out.append(TrainingExample(allTrained: Array(d[start..<(start + seqLen)])))
                    start += seqLen
                }
            }
            guard !out.isEmpty else {
                throw CheckpointError(.invalidArgument, "the text holds fewer than \(seqLen) tokens: no window of the sequence length", path: path)
            }
            return out
        case .sampled(let count, let seed):
            guard count >= 1 else { throw CheckpointError(.invalidUsage, "the number of text windows must be at least 1") }
            do {
                var sampler = try CalibrationSampler(documents: documents, samples: count, seqLen: seqLen, seed: seed)
                return sampler.batch(step: 1).map(TrainingExample.init(allTrained:))
            } catch { throw error.inFile(path) }
        }
    }

    // MARK: - Records

    enum RecordKind { case text, alpaca }

    static func kind(of o: JSONObject, path: String, where place: String) throws -> RecordKind {
        let hasText = o["text"] != nil
        let hasAlpaca = o["instruction"] != nil || o["output"] != nil
        if hasText && hasAlpaca {
            throw CheckpointError(.invalidArgument, "\(place): the record has both `text` and Alpaca fields (`instruction`/`output`); keep one kind per file", path: path)
        }
        if hasText { return .text }
        if hasAlpaca { return .alpaca }
        let keys = o.keys.prefix(8).map { "\"\($0)\"" }.joined(separator: ", ")
        throw CheckpointError(.invalidArgument, "\(place): the record has neither `text` nor `instruction`/`output` (keys: \(keys.isEmpty ? "none" : keys))", path: path)
    }

    static func records(_ bytes: [UInt8], format: Format, path: String, tokenizer: Tokenizer, seqLen: Int) throws -> ([TrainingExample], Int) {
        let eos = tokenizer.eosTokenID
        var examples: [TrainingExample] = []
        var skipped = 0
        func add(_ o: JSONObject, place: String, expected: RecordKind) throws {
            let k = try kind(of: o, path: path, where: place)
            guard k == expected else {
                throw CheckpointError(.invalidArgument, "\(place): a \(k == .text ? "`text`" : "Alpaca") record in a file of \(expected == .text ? "`text`" : "Alpaca") records; keep one kind per file", path: path)
            }
            let example: TrainingExample
            switch k {
            case .text:
                let text = try string(o, "text", place: place, path: path, required: true)!
                let ids = try tokenize(text, tokenizer: tokenizer, cutoff: seqLen, addEOS: true, eos: eos, path: path, place: place)
                example = TrainingExample(allTrained: ids)
            case .alpaca:
                let instruction = try string(o, "instruction", place: place, path: path, required: true)!
                let input = try string(o, "input", place: place, path: path, required: false) ?? ""
                let output = try string(o, "output", place: place, path: path, required: true)!
                let full = try tokenize(AlpacaTemplate.render(instruction: instruction, input: input, output: output),
                                        tokenizer: tokenizer, cutoff: seqLen, addEOS: true, eos: eos, path: path, place: place)
                let prompt = try tokenize(AlpacaTemplate.render(instruction: instruction, input: input, output: nil),
                                          tokenizer: tokenizer, cutoff: seqLen, addEOS: false, eos: eos, path: path, place: place)
                // labels = [−100] × prompt.count + full[prompt.count...]: position i is trained
                // when label i + 1 is not −100, that is when i + 1 ≥ prompt.count.
                example = TrainingExample(tokens: full, trained: full.indices.map { $0 + 1 < full.count && $0 + 1 >= prompt.count })
            }
            if example.trainedCount == 0 { skipped += 1 } else { examples.append(example) }
        }
        switch format {
        case .jsonlText, .jsonlAlpaca:
            let expected: RecordKind = format == .jsonlText ? .text : .alpaca
            // Sniffed (not named .jsonl): a bad line may mean the file was meant as plain text.
            let hint = FileSystem.baseName(path).lowercased().hasSuffix(".jsonl") ? nil : jsonlHint
            for line in lines(bytes) where !isBlank(line.bytes) {
                let place = "line \(line.number)"
                try add(try parseRecord(line.bytes, path: path, where: place, hint: hint), place: place, expected: expected)
            }
        case .jsonAlpaca:
            let root = try JSONValue.parse(bytes)
            for (i, r) in (root.arrayValue ?? []).enumerated() {
                guard let o = r.objectValue else { throw CheckpointError(.invalidArgument, "record \(i) is \(r.typeName), not an object", path: path) }
                try add(o, place: "record \(i)", expected: .alpaca)
            }
        case .text:
            preconditionFailure("text files are windows, not records")
        }
        guard !examples.isEmpty else {
            throw CheckpointError(.invalidArgument, "no record gives a training example (none has a trained position)", path: path)
        }
        return (examples, skipped)
    }

    static func string(_ o: JSONObject, _ key: String, place: String, path: String, required: Bool) throws -> String? {
        switch o[key] {
        case .string(let s)?: return s
        case nil, .null?:
            if required { throw CheckpointError(.invalidArgument, "\(place): the record has no string `\(key)`", path: path) }
            return nil
        case let v?:
            throw CheckpointError(.invalidArgument, "\(place): `\(key)` is \(v.typeName), not a string", path: path)
        }
    }

    /// Upstream's `tokenize(prompt, add_eos_token)`: the HF tokenizer with `truncation=True,
    /// max_length=cutoff` (special tokens kept, content cut), then EOS appended when asked, the
    /// last id is not EOS and there are fewer than `cutoff` ids.
    static func tokenize(_ text: String, tokenizer: Tokenizer, cutoff: Int, addEOS: Bool, eos: Int32?,
                         path: String, place: String) throws -> [Int32] {
        var ids = truncated(text, tokenizer: tokenizer, maxLength: cutoff)
        if addEOS, ids.count < cutoff, ids.last != eos {
            guard let eos else {
                throw CheckpointError(.invalidArgument, "\(place): the tokenizer names no EOS token, which upstream appends to each example", path: path)
            }
            ids.append(eos)
        }
        return ids
    }

    /// The HF fast tokenizer's truncation to `maxLength`: the special tokens its post-processor
    /// adds are kept and the content is cut from its end.
    static func truncated(_ text: String, tokenizer: Tokenizer, maxLength: Int) -> [Int32] {
        let full = tokenizer.encode(text, addSpecialTokens: true)
        guard full.count > maxLength else { return full }
        let content = tokenizer.encode(text, addSpecialTokens: false)
        let added = full.count - content.count
        guard added >= 0 else { return Array(full.prefix(maxLength)) }
        // Where the content sits among the added tokens (prefix length).
        var prefix = 0
        if added > 0 {
            prefix = (0...added).first { p in full[p..<(p + content.count)].elementsEqual(content) } ?? added
        }
        let keep = max(0, maxLength - added)
        return Array(full[0..<prefix]) + Array(content.prefix(keep)) + Array(full[(prefix + content.count)...])
    }

    // MARK: - Bytes

    struct Line { var number: Int; var bytes: ArraySlice<UInt8> }

    /// Lines split at LF (a CR before it is dropped), numbered from 1.
    static func lines(_ bytes: [UInt8]) -> [Line] {
        var out: [Line] = []
        var start = 0, number = 1
        while start < bytes.count {
            var end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            let next = end + 1
            if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            out.append(Line(number: number, bytes: bytes[start..<end]))
            start = next
            number += 1
        }
        return out
    }

    static func isJSONWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
    static func isBlank(_ b: ArraySlice<UInt8>) -> Bool { b.allSatisfy(isJSONWhitespace) }
    static func validUTF8(_ b: ArraySlice<UInt8>) -> Bool { String(validating: b, as: UTF8.self) != nil }

    static func parseRecord(_ line: ArraySlice<UInt8>, path: String, where place: String, hint: String?) throws -> JSONObject {
        let suffix = hint.map { "; " + $0 } ?? ""
        guard line.count <= maximumRecordBytes else {
            throw CheckpointError(.invalidArgument, "\(place) is \(line.count) bytes, over the \(maximumRecordBytes)-byte limit for one record\(suffix)", path: path)
        }
        guard validUTF8(line) else { throw CheckpointError(.invalidArgument, "\(place) is not valid UTF-8\(suffix)", path: path) }
        let value: JSONValue
        do { value = try JSONValue.parse(Array(line)) } catch {
            throw CheckpointError(.invalidArgument, "\(place) is not a JSON object (JSONL holds one object per line): \(error.message)\(suffix)", path: path)
        }
        guard let o = value.objectValue else {
            throw CheckpointError(.invalidArgument, "\(place) is \(value.typeName), not a JSON object (JSONL holds one object per line)\(suffix)", path: path)
        }
        return o
    }
}
