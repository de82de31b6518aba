import CheckpointCore
import ShearsJSON

/// Builds a Hugging Face `tokenizer.json` (and `tokenizer_config.json`) from a GGUF file's
/// `tokenizer.ggml.*` metadata.
///
/// - `gpt2` vocabularies (byte-level BPE): the pre-tokenizer is chosen by `tokenizer.ggml.pre`,
///   with the split expressions llama.cpp (`llama-vocab.cpp`) and the models' own tokenizer.json
///   files use: `smollm`, `gpt2`/`default`, the Llama 3 family (`llama-bpe`, …), the Qwen2 family.
/// - `llama` vocabularies (SentencePiece): a BPE model with byte fallback and merges recovered
///   from the vocabulary, laid out as transformers' GGUF loader builds it for the file's
///   `general.architecture` (``SentencePieceFlavor``): LlamaTokenizer's `Metaspace`, Phi-3's
///   Prepend + Replace normalizer, or Gemma's Replace normalizer and space split (with runs of
///   spaces respelled as `▁` and merges ordered by token position).
///
/// Tokens of type 2 (unknown) and 3 (control) become special added tokens, type 4 (user-defined)
/// plain added tokens.
public struct GGUFTokenizer: Sendable {
    public var model: String
    public var pre: String?
    public var tokens: [String]
    public var tokenTypes: [Int]
    public var scores: [Float]
    public var merges: [String]
    public var bosId: Int?
    public var eosId: Int?
    public var unkId: Int?
    public var padId: Int?
    public var addBos: Bool
    public var addEos: Bool
    public var chatTemplate: String?
    /// `general.architecture`, which picks the SentencePiece layout.
    public var architecture: String?

    /// How transformers lays out a SentencePiece GGUF vocabulary, by architecture
    /// (`GGUF_SENTENCEPIECE_BUILDERS` in its `gguf_tokenizer_mapping.py`).
    public enum SentencePieceFlavor: Sendable, Equatable {
        /// LlamaTokenizer: Metaspace pre-tokenizer (prepend "first", no split), no unknown token
        /// in the model, Strip decoder.
        case llama
        /// Phi-3: Prepend("▁") + Replace(" ", "▁") normalizer, no pre-tokenizer.
        case phi3
        /// GemmaTokenizer: Replace(" ", "▁") normalizer, Split(" ", merged with previous), `<unk>`
        /// unknown token, no Strip decoder; tokens of spaces respelled as `▁`, merges ordered by
        /// token position; GemmaTokenizer's own special tokens added when the vocabulary lacks them.
        case gemma
    }

    public var sentencePieceFlavor: SentencePieceFlavor {
        switch architecture {
        case "gemma", "gemma2", "gemma3": .gemma
        case "phi3": .phi3
        default: .llama
        }
    }

    public static let tokenTypeUnknown = 2
    public static let tokenTypeControl = 3
    public static let tokenTypeUserDefined = 4

    /// Reads the tokenizer metadata of `f`.
    /// - Throws: `ggufMissingKey` when the vocabulary is absent or malformed.
    public init(gguf f: GGUFFile) throws(CheckpointError) {
        guard let model = f["tokenizer.ggml.model"]?.stringValue else {
            throw CheckpointError(.ggufMissingKey, "tokenizer.ggml.model is missing: the file carries no tokenizer", path: f.path)
        }
        self.model = model
        pre = f["tokenizer.ggml.pre"]?.stringValue
        guard let t = f["tokenizer.ggml.tokens"]?.arrayValue, !t.isEmpty else {
            throw CheckpointError(.ggufMissingKey, "tokenizer.ggml.tokens is missing or empty", path: f.path)
        }
        var toks: [String] = []
        toks.reserveCapacity(t.count)
        for v in t {
            guard case .string(let s) = v else {
                throw CheckpointError(.ggufMissingKey, "tokenizer.ggml.tokens holds \(v.type.name) values, not strings", path: f.path)
            }
            toks.append(s.string)
        }
        let count = toks.count
        func intArray(_ key: String) throws(CheckpointError) -> [Int]? {
            guard let a = f[key]?.arrayValue else { return nil }
            var out: [Int] = []
            out.reserveCapacity(a.count)
            for v in a {
                guard let i = v.intValue else { throw CheckpointError(.ggufMissingKey, "\(key) holds \(v.type.name) values, not integers", path: f.path) }
                out.append(i)
            }
            guard out.count == count else {
                throw CheckpointError(.ggufMissingKey, "\(key) has \(out.count) entries for \(count) tokens", path: f.path)
            }
            return out
        }
        tokenTypes = try intArray("tokenizer.ggml.token_type") ?? Array(repeating: 1, count: count)
        if let s = f["tokenizer.ggml.scores"]?.arrayValue {
            guard s.count == count else {
                throw CheckpointError(.ggufMissingKey, "tokenizer.ggml.scores has \(s.count) entries for \(count) tokens", path: f.path)
            }
            scores = s.map { Float($0.doubleValue ?? 0) }
        } else {
            scores = []
        }
        merges = (f["tokenizer.ggml.merges"]?.arrayValue ?? []).compactMap(\.stringValue)
        func id(_ key: String) -> Int? {
            guard let i = f["tokenizer.ggml.\(key)"]?.intValue, i >= 0, i < count else { return nil }
            return i
        }
        tokens = toks
        bosId = id("bos_token_id")
        eosId = id("eos_token_id")
        unkId = id("unknown_token_id")
        padId = id("padding_token_id")
        // llama.cpp adds BOS to SentencePiece vocabularies that do not say otherwise.
        addBos = f["tokenizer.ggml.add_bos_token"]?.boolValue ?? (model == "llama")
        addEos = f["tokenizer.ggml.add_eos_token"]?.boolValue ?? false
        chatTemplate = f["tokenizer.chat_template"]?.stringValue
        architecture = f.architecture
    }

    /// Pre-tokenizer split expressions by `tokenizer.ggml.pre` (llama.cpp's names).
    static let llama3Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let llama3Names: Set<String> = ["llama-bpe", "llama3", "llama-v3", "smaug-bpe", "dbrx", "falcon3"]
    static let qwen2Names: Set<String> = ["qwen2", "deepseek-r1-qwen", "megrez"]
    static let plainByteLevelNames: Set<String> = ["gpt2", "default", "gpt-2"]

    /// The `gpt2` pre-tokenizer names this builder supports.
    public static var supportedPreNames: [String] {
        (["smollm"] + plainByteLevelNames + llama3Names + qwen2Names).sorted()
    }

    static func byteLevel(prefixSpace: Bool = false, trimOffsets: Bool = true, regex: Bool) -> JSONValue {
        .object(JSONObject([("type", .string("ByteLevel")), ("add_prefix_space", .bool(prefixSpace)),
                            ("trim_offsets", .bool(trimOffsets)), ("use_regex", .bool(regex))]))
    }

    static func split(_ pattern: String) -> JSONValue {
        .object(JSONObject([("type", .string("Split")), ("pattern", .object(JSONObject([("Regex", .string(pattern))]))),
                            ("behavior", .string("Isolated")), ("invert", .bool(false))]))
    }

    static func sequence(_ items: [JSONValue]) -> JSONValue {
        .object(JSONObject([("type", .string("Sequence")), ("pretokenizers", .array(items))]))
    }

    /// GPT-2's byte → character table (printable bytes map to themselves).
    static let byteAlphabet: [Character] = {
        var table = [Character](repeating: " ", count: 256)
        var n = 0
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable { table[b] = Character(UnicodeScalar(UInt8(b))) } else { table[b] = Character(UnicodeScalar(UInt32(256 + n))!); n += 1 }
        }
        return table
    }()
    static let byteAlphabetSet: Set<Character> = Set(byteAlphabet)

    /// `tokenizer.json`.
    /// - Throws: `unsupportedConversion` for vocabulary models and pre-tokenizers it cannot build.
    public func tokenizerJSON() throws(CheckpointError) -> JSONValue {
        switch model {
        case "gpt2": return try byteLevelJSON()
        case "llama": return sentencePieceJSON()
        default:
            throw CheckpointError(.unsupportedConversion, "cannot build tokenizer.json for tokenizer.ggml.model '\(model)'; supported: gpt2 (byte-level BPE), llama (SentencePiece)")
        }
    }

    /// - Parameter vocabulary: with it, user-defined tokens missing from it are left out (Gemma's
    ///   whitespace tokens, respelled in the vocabulary, as transformers skips them).
    private func addedTokens(byteLevel: Bool, vocabulary: Set<UTF8Key>? = nil) -> [JSONValue] {
        var out: [JSONValue] = []
        for (i, (token, type)) in zip(tokens, tokenTypes).enumerated() {
            let special: Bool
            if type == Self.tokenTypeControl || type == Self.tokenTypeUnknown {
                // A control token outside the byte alphabet is a mislabel in byte-level vocabularies.
                if byteLevel && !token.allSatisfy({ Self.byteAlphabetSet.contains($0) }) { continue }
                special = true
            } else if type == Self.tokenTypeUserDefined {
                if let vocabulary, !vocabulary.contains(UTF8Key(token)) { continue }
                special = false
            } else {
                continue
            }
            out.append(.object(JSONObject([
                ("id", .int(Int64(i))), ("content", .string(token)), ("single_word", .bool(false)),
                ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(special)),
            ])))
        }
        return out
    }

    private func postProcessor() -> JSONValue {
        var single: [JSONValue] = []
        var pair: [JSONValue] = []
        var specials = JSONObject()
        func special(_ id: Int, _ typeId: Int) -> JSONValue {
            .object(JSONObject([("SpecialToken", .object(JSONObject([("id", .string(tokens[id])), ("type_id", .int(Int64(typeId)))])))]))
        }
        func seq(_ name: String, _ typeId: Int) -> JSONValue {
            .object(JSONObject([("Sequence", .object(JSONObject([("id", .string(name)), ("type_id", .int(Int64(typeId)))])))]))
        }
        let bos = addBos ? bosId : nil
        let eos = addEos ? eosId : nil
        guard bos != nil || eos != nil else { return .null }
        for (name, typeId) in [("A", 0), ("B", 1)] {
            var part: [JSONValue] = []
            if let bos { part.append(special(bos, typeId)) }
            part.append(seq(name, typeId))
            if let eos { part.append(special(eos, typeId)) }
            if name == "A" { single = part }
            pair += part
        }
        for id in [bos, eos].compactMap({ $0 }) {
            specials[tokens[id]] = .object(JSONObject([("id", .string(tokens[id])), ("ids", .array([.int(Int64(id))])), ("tokens", .array([.string(tokens[id])]))]))
        }
        return .object(JSONObject([("type", .string("TemplateProcessing")), ("single", .array(single)), ("pair", .array(pair)), ("special_tokens", .object(specials))]))
    }

    private func byteLevelJSON() throws(CheckpointError) -> JSONValue {
        let preName = pre ?? "default"
        let normalizer: JSONValue
        let preTokenizer: JSONValue
        var ignoreMerges = false
        if preName == "smollm" {
            normalizer = .null
            preTokenizer = Self.sequence([.object(JSONObject([("type", .string("Digits")), ("individual_digits", .bool(true))])),
                                          Self.byteLevel(regex: true)])
        } else if Self.plainByteLevelNames.contains(preName) {
            normalizer = .null
            preTokenizer = Self.byteLevel(regex: true)
        } else if Self.llama3Names.contains(preName) {
            normalizer = .null
            preTokenizer = Self.sequence([Self.split(Self.llama3Split), Self.byteLevel(trimOffsets: false, regex: false)])
            ignoreMerges = true
        } else if Self.qwen2Names.contains(preName) {
            normalizer = .object(JSONObject([("type", .string("NFC"))]))
            preTokenizer = Self.sequence([Self.split(Self.qwen2Split), Self.byteLevel(trimOffsets: false, regex: false)])
        } else {
            throw CheckpointError(.unsupportedConversion, "cannot build tokenizer.json for the byte-level pre-tokenizer '\(preName)'; supported: \(Self.supportedPreNames.joined(separator: ", "))")
        }
        var vocab = JSONObject()
        for (i, t) in tokens.enumerated() {
            let spelled = t.allSatisfy({ Self.byteAlphabetSet.contains($0) }) ? t : String(t.utf8.map { Self.byteAlphabet[Int($0)] })
            if vocab[spelled] == nil { vocab[spelled] = .int(Int64(i)) }
        }
        for m in merges {
            guard m.split(separator: " ", omittingEmptySubsequences: false).count == 2 else {
                throw CheckpointError(.unsupportedConversion, "merge '\(m)' is not two tokens separated by one space")
            }
        }
        let bpe = JSONObject([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
            ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
            ("ignore_merges", .bool(ignoreMerges)), ("vocab", .object(vocab)), ("merges", .array(merges.map { .string($0) })),
        ])
        return .object(JSONObject([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(addedTokens(byteLevel: true))), ("normalizer", normalizer),
            ("pre_tokenizer", preTokenizer), ("post_processor", postProcessor()),
            ("decoder", Self.byteLevel(prefixSpace: true, regex: true)), ("model", .object(bpe)),
        ]))
    }

    /// Merges implied by a SentencePiece vocabulary: every split of a token into two tokens,
    /// ordered by the merged token's score (best first), as transformers' `generate_merges`.
    /// - Parameters:
    ///   - tokens: the vocabulary as the model spells it (Gemma's respelled).
    ///   - byPosition: rank merges by the merged token's position (Gemma) instead of its score.
    func sentencePieceMerges(_ tokens: [String], byPosition: Bool = false) -> [(String, String)] {
        // Keys compare by bytes: canonically equivalent tokens (Bengali য় as one or two scalars)
        // are different tokens, as in Python. Every split is looked up as a slice of the token's
        // UTF-8 bytes (no string is built per split) and merges are sorted as plain numbers.
        let bytes = tokens.map { Array($0.utf8) }
        var index: [ArraySlice<UInt8>: Int32] = [:]
        index.reserveCapacity(tokens.count)
        for (i, b) in bytes.enumerated() { index[b[...]] = Int32(i) }  // the last id wins, as a Python dict
        let ranks = byPosition ? tokens.indices.map { -Float($0) } : scores.isEmpty ? [Float](repeating: 0, count: tokens.count) : scores
        struct Merge { var left: Int32, right: Int32, score: Float, lenL: Int32, lenR: Int32, seq: Int32 }
        var all: [Merge] = []
        var seen = Set<ArraySlice<UInt8>>(minimumCapacity: tokens.count)
        var local: [(left: Int32, right: Int32, lenL: Int32)] = []
        for b in bytes where seen.insert(b[...]).inserted {
            // A split falls on a scalar boundary: a byte that is not a UTF-8 continuation byte.
            var scalars: Int32 = 0
            for x in b where x & 0xC0 != 0x80 { scalars += 1 }
            guard scalars > 1 else { continue }
            local.removeAll(keepingCapacity: true)
            var lenL: Int32 = 0
            for cut in 1..<b.count where b[cut] & 0xC0 != 0x80 {
                lenL += 1
                if let l = index[b[..<cut]], let r = index[b[cut...]] { local.append((l, r, lenL)) }
            }
            local.sort { ($0.left, $0.right) < ($1.left, $1.right) }
            let score = ranks[Int(index[b[...]]!)]
            for x in local {
                all.append(Merge(left: x.left, right: x.right, score: score, lenL: x.lenL, lenR: scalars - x.lenL, seq: Int32(all.count)))
            }
        }
        // Python: sorted(key=(score, len l, len r), reverse=True), stable.
        all.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.lenL != b.lenL { return a.lenL > b.lenL }
            if a.lenR != b.lenR { return a.lenR > b.lenR }
            return a.seq < b.seq
        }
        return all.map { (tokens[Int($0.left)], tokens[Int($0.right)]) }
    }

    /// Python's `str.isspace()` (Unicode White_Space and the separators U+001C…U+001F).
    static func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
        c.properties.isWhitespace || (0x1C...0x1F).contains(c.value)
    }

    /// Gemma files store tokens of two or more spaces as spaces; GemmaTokenizer looks them up as
    /// `▁`: a token that is all whitespace and holds a space becomes `▁` × its length.
    static func gemmaSpelling(_ t: String) -> String {
        let u = t.unicodeScalars
        guard u.contains(" "), u.allSatisfy(isPythonSpace) else { return t }
        return String(repeating: "\u{2581}", count: u.count)
    }

    private func sentencePieceJSON() -> JSONValue {
        let flavor = sentencePieceFlavor
        let spelled = flavor == .gemma ? tokens.map(Self.gemmaSpelling) : tokens
        var vocab = JSONObject()
        for (i, t) in spelled.enumerated() { vocab[t] = .int(Int64(i)) }
        let mergeList: [JSONValue] = (merges.isEmpty ? sentencePieceMerges(spelled, byPosition: flavor == .gemma) : merges.map { m in
            let parts = m.split(separator: " ", maxSplits: 1)
            return (String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : "")
        }).map { .array([.string($0.0), .string($0.1)]) }
        let unk: JSONValue = flavor == .gemma ? .string("<unk>") : .null
        let bpe = JSONObject([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", unk),
            ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null), ("fuse_unk", .bool(true)),
            ("byte_fallback", .bool(true)), ("ignore_merges", .bool(false)), ("vocab", .object(vocab)), ("merges", .array(mergeList)),
        ])
        func replace(_ pattern: String, _ content: String) -> JSONValue {
            .object(JSONObject([("type", .string("Replace")), ("pattern", .object(JSONObject([("String", .string(pattern))]))), ("content", .string(content))]))
        }
        let normalizer: JSONValue, preTokenizer: JSONValue
        switch flavor {
        case .llama:
            normalizer = .null
            preTokenizer = .object(JSONObject([("type", .string("Metaspace")), ("replacement", .string("\u{2581}")), ("prepend_scheme", .string("first")), ("split", .bool(false))]))
        case .phi3:
            normalizer = .object(JSONObject([("type", .string("Sequence")), ("normalizers", .array([
                .object(JSONObject([("type", .string("Prepend")), ("prepend", .string("\u{2581}"))])), replace(" ", "\u{2581}")]))]))
            preTokenizer = .null
        case .gemma:
            normalizer = replace(" ", "\u{2581}")
            preTokenizer = .object(JSONObject([("type", .string("Split")), ("pattern", .object(JSONObject([("String", .string(" "))]))),
                                               ("behavior", .string("MergedWithPrevious")), ("invert", .bool(false))]))
        }
        var decoders: [JSONValue] = [replace("\u{2581}", " "), .object(JSONObject([("type", .string("ByteFallback"))])), .object(JSONObject([("type", .string("Fuse"))]))]
        if flavor != .gemma {
            decoders.append(.object(JSONObject([("type", .string("Strip")), ("content", .string(" ")), ("start", .int(1)), ("stop", .int(0))])))
        }
        var added = addedTokens(byteLevel: false, vocabulary: flavor == .gemma ? Set(spelled.map(UTF8Key.init)) : nil)
        if flavor == .gemma {
            // GemmaTokenizer's own special tokens, appended after the vocabulary when it lacks them.
            var next = tokens.count
            let known = Set((spelled + tokens).map(UTF8Key.init))
            for t in ["<bos>", "<eos>", "<pad>", "<mask>"] where !known.contains(UTF8Key(t)) {
                added.append(.object(JSONObject([
                    ("id", .int(Int64(next))), ("content", .string(t)), ("single_word", .bool(false)),
                    ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(true)),
                ])))
                next += 1
            }
        }
        return .object(JSONObject([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(added)), ("normalizer", normalizer),
            ("pre_tokenizer", preTokenizer), ("post_processor", postProcessor()),
            ("decoder", .object(JSONObject([("type", .string("Sequence")), ("decoders", .array(decoders))]))), ("model", .object(bpe)),
        ]))
    }

    /// `tokenizer_config.json`: special tokens, BOS/EOS flags, chat template.
    public func tokenizerConfigJSON(contextLength: Int?) -> JSONValue {
        var o = JSONObject()
        o["add_bos_token"] = .bool(addBos)
        o["add_eos_token"] = .bool(addEos)
        func tok(_ id: Int?) -> JSONValue { id.map { .string(tokens[$0]) } ?? .null }
        o["bos_token"] = tok(bosId)
        o["eos_token"] = tok(eosId)
        o["unk_token"] = tok(unkId)
        o["pad_token"] = tok(padId)
        if let chatTemplate { o["chat_template"] = .string(chatTemplate) }
        o["clean_up_tokenization_spaces"] = .bool(false)
        if let contextLength { o["model_max_length"] = .int(Int64(contextLength)) }
        o["tokenizer_class"] = .string("PreTrainedTokenizerFast")
        return .object(o)
    }
}
