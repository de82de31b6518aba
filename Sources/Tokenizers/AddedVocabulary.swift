/// One entry of `added_tokens` in `tokenizer.json`.
public struct AddedToken: Sendable, Equatable {
    public var id: Int32
    public var content: String
    public var singleWord: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var normalized: Bool
    public var special: Bool
}

/// The added and special tokens, matched in the text before the model runs, as the library's
/// `AddedVocabulary` does: first the tokens with `normalized: false` on the raw text, then, in
/// each remaining piece after normalization, the tokens with `normalized: true` (whose contents
/// are normalized too). Matching is leftmost-longest; `single_word` rejects matches inside words;
/// `lstrip`/`rstrip` absorb the whitespace to the left/right into the token.
struct AddedVocabulary: Sendable {
    /// The tokens in the order the library registers them (special ones first, then the others).
    let tokens: [AddedToken]
    /// Content bytes → id, for all added tokens.
    let idForContent: ByteStringTable
    /// Id → the text the token decodes to: its content, normalized when the token is
    /// `normalized` (the library's `id_to_token` returns the normalized form).
    let contentForID: [Int32: [UInt8]]
    /// Contents of special tokens (skipped when decoding with `skipSpecialTokens`).
    let specialContents: ByteStringTable
    let rawMatcher: Matcher
    let normalizedMatcher: Matcher

    init(_ list: [JSONFields], model: BPEModel, normalizer: Normalizer?) throws(TokenizerError) {
        var ordered: [AddedToken] = []
        var special: [AddedToken] = []
        var plain: [AddedToken] = []
        var idForContent = ByteStringTable()
        var contentForID: [Int32: [UInt8]] = [:]
        var specialContents = ByteStringTable()
        let vocabularySize = Int32(model.vocabulary.count)
        var maxAdded: Int32 = -1
        // Definitions already registered (content bytes and options), and the latest registered
        // token of each (content, id): hashed, so that large added vocabularies (Gemma's 6,000+
        // control tokens) register in linear time.
        struct Definition: Hashable { var content: [UInt8]; var singleWord, lstrip, rstrip, normalized, special: Bool }
        struct ContentID: Hashable { var content: [UInt8]; var id: Int32 }
        var defined = Set<Definition>()
        var latest: [ContentID: AddedToken] = [:]
        for f in list {
            let token = AddedToken(id: Int32(try f.int("id", default: -1)), content: try f.string("content"),
                                   singleWord: try f.bool("single_word", default: false),
                                   lstrip: try f.bool("lstrip", default: false), rstrip: try f.bool("rstrip", default: false),
                                   normalized: try f.bool("normalized", default: !(try f.bool("special", default: false))),
                                   special: try f.bool("special", default: false))
            let content = Array(token.content.utf8)
            if content.isEmpty { continue }
            if token.special && specialContents.value(for: content) == nil {
                specialContents.set(content, 1)
                var t = token
                t.id = -1
                special.append(t)
            }
            let definition = Definition(content: content, singleWord: token.singleWord, lstrip: token.lstrip, rstrip: token.rstrip,
                                        normalized: token.normalized, special: token.special)
            if !defined.insert(definition).inserted { continue }
            // The id the library assigns: an existing added token's, the model's, or the next free one.
            let id: Int32
            if let existing = idForContent.value(for: content) { id = Int32(existing) }
            else if let m = model.id(of: content) { id = m }
            else if maxAdded < 0 { id = vocabularySize }
            else { id = maxAdded >= vocabularySize ? maxAdded + 1 : vocabularySize }
            idForContent.set(content, UInt64(id))
            contentForID[id] = content
            if !contentForID.keys.isEmpty { maxAdded = max(maxAdded, id) }
            var t = token
            t.id = id
            ordered.append(t)
            latest[ContentID(content: content, id: id)] = t
            if specialContents.value(for: content) == nil { plain.append(t) }
        }
        // The registration order used for matching: special tokens, then the others.
        var matching: [AddedToken] = []
        for var s in special {
            guard let id = idForContent.value(for: Array(s.content.utf8)) else { continue }
            s.id = Int32(id)
            // The special list keeps the first definition; its options are those of the last
            // definition with that content, as the library's id → token map holds.
            if let l = latest[ContentID(content: Array(s.content.utf8), id: s.id)] { s = l }
            matching.append(s)
        }
        matching.append(contentsOf: plain)
        tokens = matching
        self.idForContent = idForContent
        for t in ordered where t.normalized {
            if let normalizer { contentForID[t.id] = normalizer.apply(Array(t.content.utf8)) }
        }
        self.contentForID = contentForID
        self.specialContents = specialContents

        var raw: [(content: [UInt8], token: AddedToken)] = []
        var normalized: [(content: [UInt8], token: AddedToken)] = []
        for t in matching {
            // Options come from the id → token map (the last definition for that id).
            let options = ordered.last(where: { $0.id == t.id }) ?? t
            if options.normalized {
                let content = normalizer.map { $0.apply(Array(t.content.utf8)) } ?? Array(t.content.utf8)
                normalized.append((content, options))
            } else {
                raw.append((Array(t.content.utf8), options))
            }
        }
        rawMatcher = Matcher(raw)
        normalizedMatcher = Matcher(normalized)
    }

    var isEmpty: Bool { tokens.isEmpty }

    func isSpecial(_ content: [UInt8]) -> Bool { specialContents.value(for: content) != nil }

    /// Finds added tokens in one sentence.
    struct Matcher: Sendable {
        struct Entry: Sendable {
            let content: [UInt8]
            let id: Int32
            let singleWord: Bool
            let lstrip: Bool
            let rstrip: Bool
        }
        /// Candidates by first byte, longest first (ties keep registration order).
        let byFirstByte: [[Entry]]
        let isEmpty: Bool

        init(_ list: [(content: [UInt8], token: AddedToken)]) {
            var table = [[Entry]](repeating: [], count: 256)
            var order: [[Int]] = Array(repeating: [], count: 256)
            for (k, item) in list.enumerated() where !item.content.isEmpty {
                let e = Entry(content: item.content, id: item.token.id, singleWord: item.token.singleWord,
                              lstrip: item.token.lstrip, rstrip: item.token.rstrip)
                table[Int(item.content[0])].append(e)
                order[Int(item.content[0])].append(k)
            }
            for b in 0..<256 where table[b].count > 1 {
                let pairs = zip(table[b], order[b]).sorted { x, y in
                    x.0.content.count != y.0.content.count ? x.0.content.count > y.0.content.count : x.1 < y.1
                }
                table[b] = pairs.map(\.0)
            }
            byFirstByte = table
            isEmpty = list.isEmpty
        }

        /// The library's `find_matches`: spans of `text` as (start, end, token id or -1),
        /// covering the text.
        func split(_ text: UnsafeBufferPointer<UInt8>) -> [(Int, Int, Int32)] {
            let n = text.count
            if isEmpty || n == 0 { return [(0, n, -1)] }
            var out: [(Int, Int, Int32)] = []
            var startOffset = 0
            var i = 0
            while i < n {
                let candidates = byFirstByte[Int(text[i])]
                if candidates.isEmpty { i += 1; continue }
                var found: Entry? = nil
                for c in candidates where c.content.count <= n - i {
                    if c.content.withUnsafeBufferPointer({ memoryEqual(text, i, $0) }) { found = c; break }
                }
                guard let m = found else { i += 1; continue }
                var start = i
                var stop = i + m.content.count
                i = stop
                if m.singleWord {
                    let startSpace = start == 0 || !Self.endsWithWord(text, start)
                    let stopSpace = stop == n || !Self.startsWithWord(text, stop)
                    if !startSpace || !stopSpace { continue }
                }
                if m.lstrip { start = max(Self.whitespaceRunStart(text, before: start), startOffset) }
                if m.rstrip { stop = Self.whitespaceRunEnd(text, from: stop) }
                if startOffset < start { out.append((startOffset, start, -1)) }
                out.append((start, stop, m.id))
                startOffset = stop
                // The search resumes at the end of the match itself, not of the whitespace an
                // `rstrip` absorbed: a following token may start inside it, and then the two
                // tokens overlap, as they do in the library.
            }
            if startOffset != n { out.append((startOffset, n, -1)) }
            return out
        }

        private static func scalar(before end: Int, in text: UnsafeBufferPointer<UInt8>) -> (Unicode.Scalar, Int)? {
            guard end > 0 else { return nil }
            var s = end - 1
            while s > 0 && text[s] & 0xC0 == 0x80 { s -= 1 }
            let (c, _) = UTF8Scan.decode(text, at: s)
            return (c, s)
        }

        static func endsWithWord(_ text: UnsafeBufferPointer<UInt8>, _ end: Int) -> Bool {
            guard let (c, _) = scalar(before: end, in: text) else { return false }
            return CharacterClass.isWord(c)
        }

        static func startsWithWord(_ text: UnsafeBufferPointer<UInt8>, _ start: Int) -> Bool {
            guard start < text.count else { return false }
            return CharacterClass.isWord(UTF8Scan.decode(text, at: start).0)
        }

        /// The start of the run of whitespace that ends at `before`.
        static func whitespaceRunStart(_ text: UnsafeBufferPointer<UInt8>, before: Int) -> Int {
            var e = before
            while let (c, s) = scalar(before: e, in: text), CharacterClass.isWhitespace(c) { e = s }
            return e
        }

        /// The end of the run of whitespace that starts at `from`.
        static func whitespaceRunEnd(_ text: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
            var i = from
            while i < text.count {
                let (c, n) = UTF8Scan.decode(text, at: i)
                if !CharacterClass.isWhitespace(c) { break }
                i += n
            }
            return i
        }
    }
}
