import COniguruma

/// A compiled Oniguruma regular expression: the engine the Hugging Face `tokenizers` library uses
/// for its `Regex` patterns, with the same syntax (Oniguruma's default) and options, so that
/// `\p{L}`, `(?i:...)`, `\s+(?!\S)` and friends match exactly as they do there.
///
/// The compiled pattern is immutable after construction and Oniguruma searches with a caller-owned
/// region are thread-safe, so one instance may be shared across threads.
final class OnigurumaRegex: @unchecked Sendable {
    /// The pattern as written in `tokenizer.json`.
    let pattern: String
    private let regex: OnigRegex

    private static let initialized: Bool = {
        var encodings: [OnigEncoding?] = [shears_onig_encoding_utf8()]
        return encodings.withUnsafeMutableBufferPointer { onig_initialize($0.baseAddress, 1) } == ONIG_NORMAL
    }()

    /// Compiles `pattern`.
    /// - Throws: ``TokenizerError`` with code `.badPattern` and Oniguruma's message.
    init(_ pattern: String) throws(TokenizerError) {
        guard Self.initialized else { throw TokenizerError(.badPattern, "Oniguruma failed to initialize") }
        self.pattern = pattern
        var compiled: OnigRegex? = nil
        var info = OnigErrorInfo()
        let bytes = Array(pattern.utf8)
        let status = bytes.withUnsafeBufferPointer { p -> Int32 in
            let start = p.baseAddress ?? UnsafePointer(bitPattern: 1)!
            return onig_new(&compiled, start, start + p.count, ONIG_OPTION_NONE,
                            shears_onig_encoding_utf8(), shears_onig_syntax_default(), &info)
        }
        guard status == ONIG_NORMAL, let compiled else {
            var message = [UInt8](repeating: 0, count: Int(ONIG_MAX_ERROR_MESSAGE_LEN))
            let n = withUnsafeMutablePointer(to: &info) { infoPointer in
                message.withUnsafeMutableBufferPointer { buffer in
                    return shears_onig_error_string(buffer.baseAddress!, status, infoPointer)
                }
            }
            let text = String(decoding: message.prefix(max(0, Int(n))), as: UTF8.self)
            throw TokenizerError(.badPattern, "bad regular expression \(Self.quoted(pattern)): \(text)")
        }
        regex = compiled
    }

    deinit { onig_free(regex) }

    /// Calls `body` with the byte range of each match in `text`, left to right, as the
    /// `onig` crate's `find_iter` does: a search resumes at the end of the previous match, and an
    /// empty match right where the previous match ended is skipped by advancing one character.
    /// Lookarounds and anchors see the whole of `text`.
    func forEachMatch(in text: UnsafeBufferPointer<UInt8>, using searcher: Searcher, _ body: (Int, Int) -> Void) {
        let count = text.count
        guard let base = text.baseAddress else {
            // Empty text: Oniguruma still needs a valid pointer.
            var empty: UInt8 = 0
            withUnsafePointer(to: &empty) { p in
                let r = onig_search(regex, p, p, p, p, searcher.region, ONIG_OPTION_NONE)
                if r >= 0 { body(0, 0) }
            }
            return
        }
        let end = base + count
        var lastEnd = 0
        var lastMatchEnd = -1
        while lastEnd <= count {
            onig_region_clear(searcher.region)
            let r = onig_search(regex, base, end, base + lastEnd, end, searcher.region, ONIG_OPTION_NONE)
            if r < 0 { return }
            let s = Int(searcher.region.pointee.beg[0])
            let e = Int(searcher.region.pointee.end[0])
            if s == e && lastMatchEnd == e {
                lastEnd += lastEnd < count ? UTF8Scan.scalarLength(lead: text[lastEnd]) : 1
                continue
            }
            lastEnd = e
            lastMatchEnd = e
            body(s, e)
        }
    }

    /// A reusable match region; create one per batch of searches, on one thread.
    final class Searcher {
        let region: UnsafeMutablePointer<OnigRegion>
        init() { region = onig_region_new() }
        deinit { onig_region_free(region, 1) }
    }

    static func quoted(_ s: String) -> String {
        "\"" + s.unicodeScalars.map { $0 == "\"" ? "\\\"" : ($0.value < 0x20 ? "\\u{\(String($0.value, radix: 16))}" : String($0)) }.joined() + "\""
    }
}
