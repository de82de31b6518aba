/// A `tokenizer.json` decoder: turns the tokens of the ids back into text, as the library's
/// `decode_chain` does (each decoder maps the list of token strings to a new list).
indirect enum Decoder: Sendable {
    case byteLevel
    case metaspace(replacement: [UInt8], prependScheme: PreTokenizer.PrependScheme)
    case replace(Pattern, [UInt8])
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case sequence([Decoder])

    init(_ f: JSONFields) throws(TokenizerError) {
        let type = try f.type()
        switch type {
        case "ByteLevel": self = .byteLevel
        case "Metaspace":
            let replacement = try f.optionalString("replacement") ?? "\u{2581}"
            let scheme: PreTokenizer.PrependScheme
            if let s = try f.optionalString("prepend_scheme") {
                guard let p = PreTokenizer.PrependScheme(rawValue: s) else {
                    throw TokenizerError(.unsupported, "unsupported prepend_scheme \(s) (\(f.path("prepend_scheme")))")
                }
                scheme = p
            } else {
                scheme = try f.bool("add_prefix_space", default: true) ? .always : .never
            }
            self = .metaspace(replacement: Array(replacement.utf8), prependScheme: scheme)
        case "Replace": self = .replace(try f.pattern("pattern"), Array(try f.string("content").utf8))
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip":
            let content = try f.string("content")
            guard content.unicodeScalars.count == 1, let c = content.unicodeScalars.first else {
                throw TokenizerError(.malformed, "\(f.path("content")) should be one character")
            }
            self = .strip(content: c, start: try f.int("start", default: 0), stop: try f.int("stop", default: 0))
        case "Sequence":
            var items: [Decoder] = []
            for d in try f.objects("decoders") { items.append(try Decoder(d)) }
            self = .sequence(items)
        default:
            throw TokenizerError(.unsupported, "unsupported decoder \(type) (\(f.where_))")
        }
    }

    /// Decodes a list of tokens (UTF-8) into a new list.
    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        switch self {
        case .sequence(let items):
            var t = tokens
            for d in items { t = d.decodeChain(t) }
            return t

        case .byteLevel:
            // Each token's characters map back to bytes (a token with a character outside the
            // alphabet keeps its UTF-8 as is); the bytes of all tokens are then read as UTF-8 with
            // invalid sequences replaced by U+FFFD.
            var bytes: [UInt8] = []
            for t in tokens {
                let scalars = UTF8Scan.scalars(t)
                var mapped: [UInt8] = []
                mapped.reserveCapacity(scalars.count)
                var ok = true
                for s in scalars {
                    guard let b = ByteLevelAlphabet.byte(for: s) else { ok = false; break }
                    mapped.append(b)
                }
                bytes.append(contentsOf: ok ? mapped : t)
            }
            return [Array(String(decoding: bytes, as: UTF8.self).utf8)]

        case .metaspace(let replacement, let scheme):
            // The replacement character becomes a space, except in the first token, where it is
            // dropped unless the prepend scheme is `never`.
            let r = UTF8Scan.scalars(replacement).first
            return tokens.enumerated().map { i, t in
                var out: [UInt8] = []
                for s in UTF8Scan.scalars(t) {
                    if s == r {
                        if i == 0 && scheme != .never { continue }
                        out.append(0x20)
                    } else {
                        UTF8Scan.append(s, to: &out)
                    }
                }
                return out
            }

        case .replace(let pattern, let content):
            return tokens.map { t in Normalizer.replace(pattern, content).apply(t) }

        case .byteFallback:
            var out: [[UInt8]] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(Array(s.utf8))
                } else {
                    for _ in pending { out.append([0xEF, 0xBF, 0xBD]) }
                }
                pending.removeAll()
            }
            for t in tokens {
                if let b = Self.fallbackByte(t) { pending.append(b); continue }
                flush()
                out.append(t)
            }
            flush()
            return out

        case .fuse:
            return [tokens.flatMap { $0 }]

        case .strip(let content, let start, let stop):
            return tokens.map { t in
                let chars = UTF8Scan.scalars(t)
                var lo = 0
                for k in 0..<min(start, chars.count) {
                    if chars[k] == content { lo = k + 1 } else { break }
                }
                var hi = chars.count
                for k in 0..<min(stop, chars.count) {
                    let index = chars.count - k - 1
                    if chars[index] == content { hi = index } else { break }
                }
                var out: [UInt8] = []
                if lo < hi { for s in chars[lo..<hi] { UTF8Scan.append(s, to: &out) } }
                return out
            }
        }
    }

    /// The byte of a `<0xHH>` token (Rust's `u8::from_str_radix` on the two characters, which
    /// also accepts lowercase hex digits and a leading `+`).
    static func fallbackByte(_ t: [UInt8]) -> UInt8? {
        guard t.count == 6, t[0] == 0x3C, t[1] == 0x30, t[2] == 0x78, t[5] == 0x3E else { return nil }
        func digit(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        if t[3] == 0x2B, let d = digit(t[4]) { return d }
        guard let h = digit(t[3]), let l = digit(t[4]) else { return nil }
        return h << 4 | l
    }
}
