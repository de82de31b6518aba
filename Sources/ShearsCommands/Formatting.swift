/// Number and size formatting for human-readable tables.
enum Format {
    /// 1234567 → "1,234,567".
    static func grouped(_ n: Int) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Bytes in decimal units: "538.0 MB".
    static func bytes(_ n: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB", "PB"]
        var v = Double(n)
        var u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(n) B" : fixed(v, 1) + " " + units[u]
    }

    /// 134515008 → "134.5M".
    static func count(_ n: Int) -> String {
        let units = ["", "K", "M", "B", "T"]
        var v = Double(n)
        var u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(n)" : fixed(v, 1) + units[u]
    }

    /// Fixed-point text with `digits` decimals.
    static func fixed(_ v: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (v * scale).rounded() / scale
        var s = "\(r)"
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
            if digits == 0 { s = String(s[..<dot]) }
        } else if digits > 0 {
            s += "." + String(repeating: "0", count: digits)
        }
        return s
    }

    /// Pads `s` on the right (or left) to `width` characters.
    static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let n = s.count
        guard n < width else { return s }
        let fill = String(repeating: " ", count: width - n)
        return right ? fill + s : s + fill
    }

    /// "[2, 3]" for a shape.
    static func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
}
