/// A `tokenizer.json` normalizer: rewrites each text piece before pre-tokenization, as the
/// library's normalizers do (it runs once per piece between added tokens).
indirect enum Normalizer: Sendable {
    case unicode(NormalizationForm)
    case lowercase
    case strip(left: Bool, right: Bool)
    case prepend([UInt8])
    case replace(Pattern, [UInt8])
    case sequence([Normalizer])

    /// Reads a normalizer object.
    /// - Throws: ``TokenizerError`` naming the field, `.unsupported` for unknown types.
    init(_ f: JSONFields) throws(TokenizerError) {
        let type = try f.type()
        switch type {
        case "NFC": self = .unicode(.nfc)
        case "NFD": self = .unicode(.nfd)
        case "NFKC": self = .unicode(.nfkc)
        case "NFKD": self = .unicode(.nfkd)
        case "Lowercase": self = .lowercase
        case "Strip":
            self = .strip(left: try f.bool("strip_left", default: true), right: try f.bool("strip_right", default: true))
        case "Prepend": self = .prepend(Array(try f.string("prepend").utf8))
        case "Replace": self = .replace(try f.pattern("pattern"), Array(try f.string("content").utf8))
        case "Sequence":
            var items: [Normalizer] = []
            for n in try f.objects("normalizers") { items.append(try Normalizer(n)) }
            self = .sequence(items)
        default:
            throw TokenizerError(.unsupported, "unsupported normalizer \(type) (\(f.where_))")
        }
    }

    /// Normalizes one piece of UTF-8 text.
    func apply(_ text: [UInt8]) -> [UInt8] {
        switch self {
        case .unicode(let form):
            return form.apply(text)
        case .lowercase:
            return Self.lowercase(text)
        case .strip(let left, let right):
            return Self.strip(text, left: left, right: right)
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content):
            return text.withUnsafeBufferPointer { b in
                let spans = pattern.spans(in: b, searcher: nil)
                if spans.count == 1 && !spans[0].2 { return text }
                var out: [UInt8] = []
                out.reserveCapacity(text.count)
                for (s, e, m) in spans {
                    if m { out.append(contentsOf: content) } else { out.append(contentsOf: b[s..<e]) }
                }
                return out
            }
        case .sequence(let items):
            var t = text
            for n in items { t = n.apply(t) }
            return t
        }
    }

    /// Per-character full lowercase mapping (Rust `char::to_lowercase`, which has no context rules:
    /// Σ always becomes σ).
    static func lowercase(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        text.withUnsafeBufferPointer { b in
            var i = 0
            while i < b.count {
                let c = b[i]
                if c < 0x80 {
                    out.append(c >= 0x41 && c <= 0x5A ? c + 32 : c)
                    i += 1
                    continue
                }
                let (s, n) = UTF8Scan.decode(b, at: i)
                out.append(contentsOf: s.properties.lowercaseMapping.utf8)
                i += n
            }
        }
        return out
    }

    /// Removes leading and/or trailing whitespace (Rust `char::is_whitespace`).
    static func strip(_ text: [UInt8], left: Bool, right: Bool) -> [UInt8] {
        let scalars = UTF8Scan.scalars(text)
        var lo = 0
        var hi = scalars.count
        if left { while lo < hi, CharacterClass.isWhitespace(scalars[lo]) { lo += 1 } }
        if right { while hi > lo, CharacterClass.isWhitespace(scalars[hi - 1]) { hi -= 1 } }
        if lo == 0 && hi == scalars.count { return text }
        var out: [UInt8] = []
        for s in scalars[lo..<hi] { UTF8Scan.append(s, to: &out) }
        return out
    }
}
