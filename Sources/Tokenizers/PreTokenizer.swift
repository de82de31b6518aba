/// A `tokenizer.json` pre-tokenizer: splits text pieces into the words the model sees.
indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(Pattern, SplitBehavior, invert: Bool)
    case digits(individual: Bool)
    case metaspace(replacement: [UInt8], prepend: PrependScheme, split: Bool)
    case whitespace
    case whitespaceSplit
    case punctuation(SplitBehavior)
    case sequence([PreTokenizer])

    /// When Metaspace adds its replacement character in front of a piece.
    enum PrependScheme: String, Sendable {
        case always, first, never
    }

    /// GPT-2's pre-tokenization pattern, used by ByteLevel with `use_regex`.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    private static let gpt2Regex: Result<OnigurumaRegex, TokenizerError> = {
        do throws(TokenizerError) { return .success(try OnigurumaRegex(gpt2Pattern)) } catch { return .failure(error) }
    }()

    /// Reads a pre-tokenizer object.
    /// - Throws: ``TokenizerError`` naming the field, `.unsupported` for unknown types.
    init(_ f: JSONFields) throws(TokenizerError) {
        let type = try f.type()
        switch type {
        case "ByteLevel":
            if case .failure(let e) = Self.gpt2Regex { throw e }
            self = .byteLevel(addPrefixSpace: try f.bool("add_prefix_space", default: true),
                              useRegex: try f.bool("use_regex", default: true))
        case "Split":
            let name = try f.string("behavior")
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw TokenizerError(.unsupported, "unsupported split behavior \(name) (\(f.path("behavior")))")
            }
            self = .split(try f.pattern("pattern"), behavior, invert: try f.bool("invert", default: false))
        case "Digits":
            self = .digits(individual: try f.bool("individual_digits", default: false))
        case "Metaspace":
            let replacement = try f.optionalString("replacement") ?? "\u{2581}"
            guard replacement.unicodeScalars.count == 1 else {
                throw TokenizerError(.malformed, "\(f.path("replacement")) should be one character")
            }
            let scheme: PrependScheme
            if let s = try f.optionalString("prepend_scheme") {
                guard let p = PrependScheme(rawValue: s) else {
                    throw TokenizerError(.unsupported, "unsupported prepend_scheme \(s) (\(f.path("prepend_scheme")))")
                }
                scheme = p
            } else {
                scheme = try f.bool("add_prefix_space", default: true) ? .always : .never
            }
            self = .metaspace(replacement: Array(replacement.utf8), prepend: scheme,
                              split: try f.bool("split", default: true))
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Punctuation":
            let name = try f.optionalString("behavior") ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw TokenizerError(.unsupported, "unsupported split behavior \(name) (\(f.path("behavior")))")
            }
            self = .punctuation(behavior)
        case "Sequence":
            var items: [PreTokenizer] = []
            for p in try f.objects("pretokenizers") { items.append(try PreTokenizer(p)) }
            self = .sequence(items)
        default:
            throw TokenizerError(.unsupported, "unsupported pre-tokenizer \(type) (\(f.where_))")
        }
    }

    /// Splits every text piece of `input`.
    func apply(_ input: PieceList) -> PieceList {
        switch self {
        case .sequence(let items):
            var list = input
            for p in items { list = p.apply(list) }
            return list

        case .byteLevel(let addPrefixSpace, let useRegex):
            let searcher = OnigurumaRegex.Searcher()
            guard case .success(let regex) = Self.gpt2Regex else { return input }
            return input.map { text, piece, out in
                var prefixed: [UInt8] = []
                if addPrefixSpace && (text.isEmpty || text[0] != 0x20) {
                    prefixed = [0x20] + Array(text)
                }
                func emit(_ b: UnsafeBufferPointer<UInt8>) {
                    if useRegex {
                        var spans: [(Int, Int)] = []
                        regex.forEachMatch(in: b, using: searcher) { s, e in spans.append((s, e)) }
                        var previous = 0
                        for (s, e) in spans {
                            if previous < s { Self.appendMapped(b, previous, s, piece.isFirst && previous == 0, &out) }
                            Self.appendMapped(b, s, e, piece.isFirst && s == 0, &out)
                            previous = e
                        }
                        if previous < b.count { Self.appendMapped(b, previous, b.count, piece.isFirst && previous == 0, &out) }
                    } else {
                        Self.appendMapped(b, 0, b.count, piece.isFirst, &out)
                    }
                }
                if !prefixed.isEmpty {
                    prefixed.withUnsafeBufferPointer { emit($0) }
                } else {
                    emit(text)
                }
            }

        case .split(let pattern, let behavior, let invert):
            let searcher = OnigurumaRegex.Searcher()
            return input.map { text, piece, out in
                var spans = pattern.spans(in: text, searcher: searcher)
                if invert { for k in spans.indices { spans[k].2.toggle() } }
                behavior.split(text, spans: spans, isFirst: piece.isFirst, into: &out)
            }

        case .digits(let individual):
            return input.map { text, piece, out in
                let spans = Pattern.spans(in: text, where: CharacterClass.isNumeric)
                (individual ? SplitBehavior.isolated : .contiguous).split(text, spans: spans, isFirst: piece.isFirst, into: &out)
            }

        case .punctuation(let behavior):
            return input.map { text, piece, out in
                let spans = Pattern.spans(in: text, where: CharacterClass.isPunctuation)
                behavior.split(text, spans: spans, isFirst: piece.isFirst, into: &out)
            }

        case .whitespaceSplit:
            return input.map { text, piece, out in
                let spans = Pattern.spans(in: text, where: CharacterClass.isWhitespace)
                SplitBehavior.removed.split(text, spans: spans, isFirst: piece.isFirst, into: &out)
            }

        case .whitespace:
            // `\w+|[^\w\s]+`, keeping the matches: maximal runs of word characters, or of
            // characters that are neither word characters nor whitespace.
            return input.map { text, piece, out in
                var i = 0
                var runStart = -1
                var runKind = 0  // 1 word, 2 other
                while i < text.count {
                    let (s, n) = UTF8Scan.decode(text, at: i)
                    let kind = CharacterClass.isWord(s) ? 1 : (CharacterClass.isWhitespace(s) ? 0 : 2)
                    if kind != runKind {
                        if runKind != 0 { out.append(text, from: runStart, to: i, isFirst: piece.isFirst && runStart == 0) }
                        runStart = i
                        runKind = kind
                    }
                    i += n
                }
                if runKind != 0 { out.append(text, from: runStart, to: text.count, isFirst: piece.isFirst && runStart == 0) }
            }

        case .metaspace(let replacement, let prepend, let split):
            return input.map { text, piece, out in
                var replaced: [UInt8] = []
                replaced.reserveCapacity(text.count + 8)
                for b in text { if b == 0x20 { replaced.append(contentsOf: replacement) } else { replaced.append(b) } }
                let startsWithReplacement = replaced.starts(with: replacement)
                switch prepend {
                case .always: if !startsWithReplacement { replaced.insert(contentsOf: replacement, at: 0) }
                case .first: if !startsWithReplacement && piece.isFirst { replaced.insert(contentsOf: replacement, at: 0) }
                case .never: break
                }
                replaced.withUnsafeBufferPointer { b in
                    if split {
                        let spans = Pattern.literal(replacement).spans(in: b, searcher: nil)
                        SplitBehavior.mergedWithNext.split(b, spans: spans, isFirst: piece.isFirst, into: &out)
                    } else {
                        out.append(b, from: 0, to: b.count, isFirst: piece.isFirst)
                    }
                }
            }
        }
    }

    @inline(__always) private static func appendMapped(_ b: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int,
                                                       _ isFirst: Bool, _ out: inout PieceList) {
        guard e > s else { return }
        let start = out.beginPiece()
        ByteLevelAlphabet.encode(UnsafeBufferPointer(rebasing: b[s..<e]), into: &out.bytes)
        out.endPiece(start, isFirst: isFirst)
    }
}
