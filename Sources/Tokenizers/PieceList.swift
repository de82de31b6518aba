/// The text between pipeline stages: pieces of UTF-8 stored back to back in one buffer, so that
/// a stage over a whole book allocates a handful of arrays rather than one per word.
///
/// A piece is either text still to be processed, or an added token already matched (`token >= 0`),
/// which later stages pass through untouched, as the library's `PreTokenizedString` does with
/// splits that already carry tokens.
struct PieceList: Sendable {
    struct Piece: Sendable {
        var start: Int32
        var end: Int32
        /// The id of a matched added token, or -1 for text.
        var token: Int32
        /// Whether the piece begins at offset 0 of the original input (used by Metaspace's
        /// `prepend_scheme: first`).
        var isFirst: Bool
        var count: Int { Int(end - start) }
    }

    var bytes: [UInt8] = []
    var pieces: [Piece] = []

    init() {}

    init(reservingBytes n: Int, pieces p: Int) {
        bytes.reserveCapacity(n)
        pieces.reserveCapacity(p)
    }

    /// Appends a text piece (empty pieces are dropped, as the library drops empty splits).
    @inline(__always) mutating func append(_ b: UnsafeBufferPointer<UInt8>, from: Int, to: Int, isFirst: Bool) {
        guard to > from else { return }
        let start = Int32(bytes.count)
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: b[from..<to]))
        pieces.append(Piece(start: start, end: Int32(bytes.count), token: -1, isFirst: isFirst))
    }

    mutating func append(_ b: [UInt8], isFirst: Bool) {
        b.withUnsafeBufferPointer { append($0, from: 0, to: $0.count, isFirst: isFirst) }
    }

    /// Appends a matched added token.
    mutating func appendToken(_ id: Int32) {
        let at = Int32(bytes.count)
        pieces.append(Piece(start: at, end: at, token: id, isFirst: false))
    }

    /// Starts a text piece whose bytes the caller appends to `bytes`; close it with ``endPiece(_:isFirst:)``.
    @inline(__always) func beginPiece() -> Int32 { Int32(bytes.count) }

    @inline(__always) mutating func endPiece(_ start: Int32, isFirst: Bool) {
        let end = Int32(bytes.count)
        if end > start { pieces.append(Piece(start: start, end: end, token: -1, isFirst: isFirst)) }
    }

    /// Rebuilds the list by passing each text piece through `transform`, which appends the
    /// resulting pieces to the output; token pieces are copied as they are.
    func map(_ transform: (UnsafeBufferPointer<UInt8>, Piece, inout PieceList) -> Void) -> PieceList {
        var out = PieceList(reservingBytes: bytes.count + bytes.count / 8 + 16, pieces: pieces.count * 2 + 4)
        bytes.withUnsafeBufferPointer { all in
            for piece in pieces {
                if piece.token >= 0 { out.appendToken(piece.token); continue }
                let text = UnsafeBufferPointer(rebasing: all[Int(piece.start)..<Int(piece.end)])
                transform(text, piece, &out)
            }
        }
        return out
    }
}

/// What to do with the parts of a piece that a pattern matches (the library's
/// `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// Splits `text` given the pattern's matches, in the form the library's `Pattern::find_matches`
    /// returns them (consecutive `(start, end, isMatch)` spans covering the text), and appends the
    /// resulting non-empty pieces to `out`.
    func split(_ text: UnsafeBufferPointer<UInt8>, spans: [(Int, Int, Bool)], isFirst: Bool,
               into out: inout PieceList) {
        var result: [(Int, Int)] = []
        result.reserveCapacity(spans.count)
        switch self {
        case .removed:
            for (s, e, m) in spans where !m { result.append((s, e)) }
        case .isolated:
            for (s, e, _) in spans { result.append((s, e)) }
        case .mergedWithPrevious:
            var previousMatch = false
            for (s, e, m) in spans {
                if m && !previousMatch, !result.isEmpty { result[result.count - 1].1 = e } else { result.append((s, e)) }
                previousMatch = m
            }
        case .mergedWithNext:
            var previousMatch = false
            for (s, e, m) in spans.reversed() {
                if m && !previousMatch, !result.isEmpty { result[result.count - 1].0 = s } else { result.append((s, e)) }
                previousMatch = m
            }
            result.reverse()
        case .contiguous:
            var previousMatch = false
            for (s, e, m) in spans {
                if m == previousMatch, !result.isEmpty { result[result.count - 1].1 = e } else { result.append((s, e)) }
                previousMatch = m
            }
        }
        for (s, e) in result { out.append(text, from: s, to: e, isFirst: isFirst && s == 0) }
    }
}

/// A `tokenizer.json` pattern: `{"String": ...}` (a literal) or `{"Regex": ...}` (Oniguruma).
enum Pattern: Sendable {
    case literal([UInt8])
    case regex(OnigurumaRegex)

    /// The spans of `text` as the library's `find_matches` gives them: matches and the gaps
    /// between them, in order, covering the text (an empty text gives one empty non-match).
    func spans(in text: UnsafeBufferPointer<UInt8>, searcher: OnigurumaRegex.Searcher?) -> [(Int, Int, Bool)] {
        if text.isEmpty { return [(0, 0, false)] }
        var out: [(Int, Int, Bool)] = []
        var previous = 0
        func add(_ s: Int, _ e: Int) {
            if previous != s { out.append((previous, s, false)) }
            out.append((s, e, true))
            previous = e
        }
        switch self {
        case .literal(let needle):
            if needle.isEmpty { return [(0, text.count, false)] }
            needle.withUnsafeBufferPointer { n in
                var i = 0
                let first = n[0]
                let limit = text.count - n.count
                while i <= limit {
                    if text[i] == first && memoryEqual(text, i, n) { add(i, i + n.count); i += n.count } else { i += 1 }
                }
            }
        case .regex(let regex):
            let searcher = searcher ?? OnigurumaRegex.Searcher()
            regex.forEachMatch(in: text, using: searcher) { s, e in add(s, e) }
        }
        if previous != text.count { out.append((previous, text.count, false)) }
        return out
    }

    /// Spans for a per-character predicate: every matching character is its own match.
    static func spans(in text: UnsafeBufferPointer<UInt8>, where matches: (Unicode.Scalar) -> Bool) -> [(Int, Int, Bool)] {
        if text.isEmpty { return [(0, 0, false)] }
        var out: [(Int, Int, Bool)] = []
        var last = 0
        var i = 0
        while i < text.count {
            let (s, n) = UTF8Scan.decode(text, at: i)
            if matches(s) {
                if last < i { out.append((last, i, false)) }
                out.append((i, i + n, true))
                last = i + n
            }
            i += n
        }
        if text.count > last { out.append((last, text.count, false)) }
        return out
    }
}

@inline(__always) func memoryEqual(_ a: UnsafeBufferPointer<UInt8>, _ at: Int, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
    if at + b.count > a.count { return false }
    for k in 0..<b.count where a[at + k] != b[k] { return false }
    return true
}
