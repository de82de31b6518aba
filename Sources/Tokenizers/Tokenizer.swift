import ShearsConcurrency
import ShearsJSON

/// A tokenizer read from a Hugging Face `tokenizer.json`, encoding and decoding exactly as the
/// `tokenizers` library does (same pipeline, same regular-expression engine), with no Python.
///
/// ```swift
/// let tokenizer = try Tokenizer(contentsOf: "models/SmolLM2/tokenizer.json")
/// let ids = tokenizer.encode("It is a truth universally acknowledged")
/// let text = tokenizer.decode(ids)
/// ```
///
/// Supported: the BPE model (string or pair merges, `byte_fallback`, `ignore_merges`,
/// `unk_token`/`fuse_unk`, `continuing_subword_prefix`, `end_of_word_suffix`); the NFC, NFD, NFKC,
/// NFKD, Lowercase, Prepend, Replace, Strip and Sequence normalizers; the ByteLevel, Split, Digits,
/// Metaspace, Whitespace, WhitespaceSplit, Punctuation and Sequence pre-tokenizers; added and
/// special tokens with `lstrip`/`rstrip`/`normalized`/`single_word`; the TemplateProcessing,
/// ByteLevel, Bert, Roberta and Sequence post-processors; the ByteLevel, Metaspace, Replace,
/// ByteFallback, Fuse, Strip and Sequence decoders. Anything else is rejected when loading with
/// a ``TokenizerError`` of code `.unsupported` (for example "unsupported tokenizer model WordPiece").
///
/// A `Tokenizer` is immutable apart from an internal cache of word results, and safe to share
/// between threads.
public final class Tokenizer: Sendable {
    let model: BPEModel
    let added: AddedVocabulary
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: Decoder?
    private let cache: CacheBox
    private let specialIDs: (bos: Int32?, eos: Int32?)

    /// The file the tokenizer was read from, when it was read from a file.
    public let path: String?

    /// Reads `tokenizer.json`, or the `tokenizer.json` inside a model folder. A
    /// `tokenizer_config.json` next to it, when present, names the BOS and EOS tokens.
    /// - Throws: ``TokenizerError`` naming the file and the problem.
    public convenience init(contentsOf path: String) throws(TokenizerError) {
        var file = path
        if FileBytes.isDirectory(path) {
            file = path.hasSuffix("/") ? path + "tokenizer.json" : path + "/tokenizer.json"
            guard FileBytes.exists(file) else {
                throw TokenizerError(.unreadable, "the folder has no tokenizer.json", path: path)
            }
        }
        let bytes = try FileBytes.read(file)
        var config: JSONValue? = nil
        let folder = file.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let configPath = (folder.isEmpty ? "" : folder + "/") + "tokenizer_config.json"
        if FileBytes.exists(configPath), let b = try? FileBytes.read(configPath) {
            config = try? JSONValue.parse(b)
        }
        try self.init(json: bytes, path: file, config: config)
    }

    /// Builds a tokenizer from the bytes of a `tokenizer.json` document.
    /// - Parameters:
    ///   - json: the document.
    ///   - path: the file it came from, for error messages.
    ///   - config: the parsed `tokenizer_config.json`, if any (for ``bosTokenID``/``eosTokenID``).
    /// - Throws: ``TokenizerError``.
    public init(json: [UInt8], path: String? = nil, config: JSONValue? = nil) throws(TokenizerError) {
        self.path = path
        do throws(TokenizerError) {
            let root: JSONValue
            do { root = try JSONValue.parse(json) } catch {
                throw TokenizerError(.malformed, "not valid JSON: \(error.message)")
            }
            let f = try JSONFields(root, at: "")
            if f.has("truncation") {
                throw TokenizerError(.unsupported, "truncation is not supported (set it to null)")
            }
            if f.has("padding"), let strategy = f.object["padding"]?["strategy"], strategy.stringValue != "BatchLongest" {
                throw TokenizerError(.unsupported, "fixed-length padding is not supported (set padding to null)")
            }
            let model = try BPEModel(try f.fields("model"))
            let normalizer = f.has("normalizer") ? try Normalizer(try f.fields("normalizer")) : nil
            self.model = model
            self.normalizer = normalizer
            preTokenizer = f.has("pre_tokenizer") ? try PreTokenizer(try f.fields("pre_tokenizer")) : nil
            postProcessor = f.has("post_processor") ? try PostProcessor(try f.fields("post_processor")) : nil
            decoder = f.has("decoder") ? try Decoder(try f.fields("decoder")) : nil
            added = try AddedVocabulary(f.has("added_tokens") ? try f.objects("added_tokens") : [], model: model,
                                        normalizer: normalizer)
            cache = CacheBox()
            specialIDs = Self.findSpecialIDs(config: config, model: model, added: added, postProcessor: postProcessor)
        } catch {
            throw error.at(path)
        }
    }

    // MARK: Encoding

    /// Encodes `text` into token ids.
    ///
    /// - Parameters:
    ///   - text: the text.
    ///   - addSpecialTokens: whether the post-processor adds its special tokens (for example a
    ///     BOS id); the library's default is `true`.
    /// - Returns: the ids, exactly those of the library's `encode(text, add_special_tokens=...)`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        var bytes = Array(text.utf8)
        return encode(utf8: &bytes, addSpecialTokens: addSpecialTokens)
    }

    /// Encodes UTF-8 bytes; invalid UTF-8 is first replaced by U+FFFD per maximal subpart (as
    /// Python's `errors="replace"` and Rust's `from_utf8_lossy` do).
    public func encode(bytes: [UInt8], addSpecialTokens: Bool = true) -> [Int32] {
        encode(String(decoding: bytes, as: UTF8.self), addSpecialTokens: addSpecialTokens)
    }

    private func encode(utf8 bytes: inout [UInt8], addSpecialTokens: Bool) -> [Int32] {
        var ids: [Int32] = []
        do {
            ids = try tokenize(bytes)
        } catch {
            // Only an unk_token missing from the vocabulary gets here; the library fails too.
            ids = []
        }
        return postProcessor?.apply(ids, addSpecialTokens: addSpecialTokens) ?? ids
    }

    /// Encodes `text`, throwing instead of returning no ids when the tokenizer cannot represent
    /// a character (a BPE without byte fallback whose `unk_token` is missing from its vocabulary).
    public func encodeChecked(_ text: String, addSpecialTokens: Bool = true) throws(TokenizerError) -> [Int32] {
        let ids = try tokenize(Array(text.utf8))
        return postProcessor?.apply(ids, addSpecialTokens: addSpecialTokens) ?? ids
    }

    /// The pipeline up to the model: added tokens, normalizer, pre-tokenizer, BPE.
    func tokenize(_ bytes: [UInt8]) throws(TokenizerError) -> [Int32] {
        var pieces = PieceList(reservingBytes: bytes.count + 16, pieces: 16)
        bytes.withUnsafeBufferPointer { b in
            for (s, e, id) in added.rawMatcher.split(b) {
                if id >= 0 { pieces.appendToken(id); continue }
                let segment = UnsafeBufferPointer(rebasing: b[s..<e])
                if normalizer == nil && added.normalizedMatcher.isEmpty {
                    pieces.append(segment, from: 0, to: segment.count, isFirst: s == 0)
                    continue
                }
                let normalized = normalizer?.apply(Array(segment)) ?? Array(segment)
                normalized.withUnsafeBufferPointer { n in
                    for (s2, e2, id2) in added.normalizedMatcher.split(n) {
                        if id2 >= 0 { pieces.appendToken(id2) } else {
                            pieces.append(n, from: s2, to: e2, isFirst: s == 0 && s2 == 0)
                        }
                    }
                }
            }
        }
        if let preTokenizer { pieces = preTokenizer.apply(pieces) }

        var ids: [Int32] = []
        ids.reserveCapacity(pieces.bytes.count / 3 + 16)
        var wordCache = cache.take()
        defer { cache.put(wordCache) }
        var scratch = BPEScratch()
        try pieces.bytes.withUnsafeBufferPointer { (all) throws(TokenizerError) in
            for piece in pieces.pieces {
                if piece.token >= 0 { ids.append(piece.token); continue }
                let word = UnsafeBufferPointer(rebasing: all[Int(piece.start)..<Int(piece.end)])
                try model.tokenize(word, cache: &wordCache, scratch: &scratch, into: &ids)
            }
        }
        return ids
    }

    // MARK: Decoding

    /// Decodes ids back into text, as the library's `decode(ids, skip_special_tokens=...)` does:
    /// ids unknown to the vocabulary are skipped, the tokens go through the decoder (or are
    /// joined with spaces when there is none), and invalid UTF-8 from partial byte tokens becomes
    /// U+FFFD.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = tokenBytes(id) else { continue }
            if skipSpecialTokens && added.isSpecial(t) { continue }
            tokens.append(t)
        }
        guard let decoder else {
            var out: [UInt8] = []
            for (k, t) in tokens.enumerated() {
                if k > 0 { out.append(0x20) }
                out.append(contentsOf: t)
            }
            return String(decoding: out, as: UTF8.self)
        }
        return String(decoding: decoder.decodeChain(tokens).flatMap { $0 }, as: UTF8.self)
    }

    // MARK: Vocabulary

    private func tokenBytes(_ id: Int32) -> [UInt8]? {
        if let t = added.contentForID[id] { return t }
        guard id >= 0, Int(id) < model.tokens.count else { return nil }
        let t = model.tokens[Int(id)]
        return t.isEmpty && model.vocabulary.value(for: t) != UInt64(id) ? nil : t
    }

    /// The number of distinct ids: the model's vocabulary plus added tokens outside it (the
    /// library's `get_vocab_size(with_added_tokens=True)`).
    public var vocabularySize: Int {
        var n = model.vocabulary.count
        for id in added.contentForID.keys where Int(id) >= model.tokens.count || model.tokens[Int(id)].isEmpty { n += 1 }
        return n
    }

    /// The id of a token (added tokens first, then the model's vocabulary).
    public func tokenID(for token: String) -> Int32? { Self.tokenID(for: token, model: model, added: added) }

    private static func tokenID(for token: String, model: BPEModel, added: AddedVocabulary) -> Int32? {
        let b = Array(token.utf8)
        if let id = added.idForContent.value(for: b) { return Int32(id) }
        return model.id(of: b)
    }

    /// The token string of an id, as stored in the vocabulary (byte-level tokens keep their
    /// `Ġ`-style characters).
    public func token(for id: Int32) -> String? {
        tokenBytes(id).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The added tokens, in the order the tokenizer matches them.
    public var addedTokens: [AddedToken] { added.tokens }

    /// Whether `id` is a special token (one that `decode(skipSpecialTokens: true)` drops).
    public func isSpecialToken(_ id: Int32) -> Bool {
        guard let t = added.contentForID[id] else { return false }
        return added.isSpecial(t)
    }

    /// The beginning-of-sequence id: from `tokenizer_config.json`'s `bos_token` when present,
    /// else the special token the post-processor puts first, else a conventional name
    /// (`<s>`, `<|begin_of_text|>`, `<|startoftext|>`, `<bos>`).
    public var bosTokenID: Int32? { specialIDs.bos }

    /// The end-of-sequence id: from `tokenizer_config.json`'s `eos_token` when present, else the
    /// special token the post-processor puts last, else a conventional name (`</s>`,
    /// `<|end_of_text|>`, `<|endoftext|>`, `<eos>`).
    public var eosTokenID: Int32? { specialIDs.eos }

    /// Whether `encode(_:addSpecialTokens: true)` adds anything (a post-processor with special tokens).
    public var addsSpecialTokens: Bool {
        guard let p = postProcessor else { return false }
        let s = p.surroundingIDs
        return !s.before.isEmpty || !s.after.isEmpty
    }

    private static func findSpecialIDs(config: JSONValue?, model: BPEModel, added: AddedVocabulary,
                                       postProcessor: PostProcessor?) -> (bos: Int32?, eos: Int32?) {
        func named(_ key: String) -> Int32? {
            guard let v = config?[key] else { return nil }
            let name = v.stringValue ?? v["content"]?.stringValue
            return name.flatMap { tokenID(for: $0, model: model, added: added) }
        }
        let around = postProcessor?.surroundingIDs
        func conventional(_ names: [String]) -> Int32? {
            for n in names { if let id = tokenID(for: n, model: model, added: added) { return id } }
            return nil
        }
        let bos = named("bos_token") ?? around?.before.first
            ?? conventional(["<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"])
        let eos = named("eos_token") ?? around?.after.last
            ?? conventional(["</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"])
        return (bos, eos)
    }
}

/// The word cache shared by the calls of one tokenizer. An encode call takes the cache out, uses
/// it without locking, and puts it back; a concurrent call meanwhile starts with an empty cache,
/// which only costs speed.
final class CacheBox: @unchecked Sendable {
    private let lock = Lock()
    private var stored: WordCache? = WordCache()

    func take() -> WordCache {
        lock.withLock { () -> WordCache in
            defer { stored = nil }
            return stored ?? WordCache()
        }
    }

    func put(_ c: WordCache) { lock.withLock { stored = c } }
}
