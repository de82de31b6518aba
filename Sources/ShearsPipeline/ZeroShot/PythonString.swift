/// The few Python `str` operations lm-eval's task definitions use, with Python's semantics
/// (code points, Python's whitespace set).
enum PythonString {
    /// Python's `str.isspace` for one code point: Unicode White_Space plus the information
    /// separators U+001C–U+001F.
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        s.properties.isWhitespace || (0x1C...0x1F).contains(s.value)
    }

    static func strip(_ s: String) -> String { rstrip(lstrip(s)) }

    static func lstrip(_ s: String) -> String {
        let u = s.unicodeScalars
        guard let i = u.firstIndex(where: { !isSpace($0) }) else { return "" }
        return String(u[i...])
    }

    static func rstrip(_ s: String) -> String {
        let u = s.unicodeScalars
        guard let i = u.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(u[...i])
    }

    /// `str.capitalize()`: the first code point upper-cased (title case), the rest lower-cased.
    static func capitalize(_ s: String) -> String {
        let u = s.unicodeScalars
        guard let first = u.first else { return s }
        return first.properties.titlecaseMapping + String(u.dropFirst()).lowercased()
    }

    /// `str.replace(old, new)`: every non-overlapping occurrence, left to right.
    static func replace(_ s: String, _ old: String, _ new: String) -> String {
        let a = Array(s.unicodeScalars), o = Array(old.unicodeScalars)
        guard !o.isEmpty, a.count >= o.count else { return s }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < a.count {
            if i + o.count <= a.count, a[i..<(i + o.count)].elementsEqual(o) {
                out.append(contentsOf: new.unicodeScalars)
                i += o.count
            } else {
                out.append(a[i])
                i += 1
            }
        }
        return String(out)
    }

    /// `re.sub(r"\[.*?\]", "", s)`: removes each `[` … first following `]` with no newline in
    /// between (`.` does not match `\n`).
    static func removeBracketed(_ s: String) -> String {
        let a = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < a.count {
            if a[i] == "[" {
                var j = i + 1
                while j < a.count, a[j] != "]", a[j] != "\n" { j += 1 }
                if j < a.count, a[j] == "]" {
                    i = j + 1
                    continue
                }
            }
            out.append(a[i])
            i += 1
        }
        return String(out)
    }

    /// HellaSwag's `preprocess` (lm-eval `hellaswag/utils.py`).
    static func hellaswagPreprocess(_ text: String) -> String {
        var t = strip(text)
        t = replace(t, " [title]", ". ")
        t = removeBracketed(t)
        return replace(t, "  ", " ")
    }

    /// Python's `len`: code points.
    static func length(_ s: String) -> Int { s.unicodeScalars.count }
}
