import CJSONC

extension JSONValue {
    /// Output layout for ``serialized(style:)``.
    public enum Style: Sendable {
        /// No whitespace at all: `{"a":[1,2]}` (the layout of safetensors headers, serde_json's compact form).
        case compact
        /// Two-space indented, one member per line, for files people read (config.json, manifests).
        case pretty
    }

    /// Serializes the value with json-c. Keys keep their order; `/` is not escaped; control
    /// characters are written as `\uXXXX` with lowercase hex, as serde_json and Python do; doubles
    /// use the shortest text that reads back to the same value.
    public func serialized(style: Style = .compact) -> String {
        let o = makeJSONC()
        defer { json_object_put(o) }
        var flags = JSON_C_TO_STRING_NOSLASHESCAPE
        switch style {
        case .compact: flags |= JSON_C_TO_STRING_PLAIN
        case .pretty: flags |= JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
        }
        var length = 0
        guard let p = json_object_to_json_string_length(o, Int32(flags), &length) else { return "null" }
        var text = String(decoding: UnsafeRawBufferPointer(start: p, count: length), as: UTF8.self)
        if style == .pretty {
            // json-c's spaced pretty layout writes `"key": value` but also `[ ]` and `{ }` for empties
            // and a space before `:` never; normalise the empty containers.
            text = text.replacing("[ ]", with: "[]").replacing("{ }", with: "{}")
        }
        return text
    }

    /// Serialized bytes (UTF-8).
    public func serializedBytes(style: Style = .compact) -> [UInt8] { Array(serialized(style: style).utf8) }

    private func makeJSONC() -> OpaquePointer? {
        switch self {
        case .null:
            return nil
        case .bool(let b):
            return json_object_new_boolean(b ? 1 : 0)
        case .int(let i):
            return json_object_new_int64(i)
        case .uint(let u):
            return json_object_new_uint64(u)
        case .double(let d):
            return json_object_new_double_s(d, JSONValue.formatDouble(d))
        case .string(let s):
            var s = s
            return s.withUTF8 { u in
                u.withMemoryRebound(to: CChar.self) { json_object_new_string_len($0.baseAddress, Int32($0.count)) }
            }
        case .array(let a):
            let arr = json_object_new_array_ext(Int32(clamping: a.count))
            for v in a { json_object_array_add(arr, v.makeJSONC()) }
            return arr
        case .object(let obj):
            let o = json_object_new_object()
            for (k, v) in obj.members {
                json_object_object_add_ex(o, k, v.makeJSONC(), UInt32(JSON_C_OBJECT_ADD_KEY_IS_NEW))
            }
            return o
        }
    }

    /// Python-compatible text for a double: shortest round-trip digits, with `.0` on integral
    /// values and exponent form for very small or large magnitudes (`1e-05`, `1e+16`).
    static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        var s = "\(d)"  // Swift: shortest round-trip, e.g. "1e-05", "0.1", "100000.0", "1e+16"
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            // Swift writes 1e-05 as "1e-05" already; ensure a sign and two digits like Python.
            let mantissa = s[..<e]
            var exp = String(s[s.index(after: e)...])
            var sign = "+"
            if exp.hasPrefix("-") { sign = "-"; exp.removeFirst() } else if exp.hasPrefix("+") { exp.removeFirst() }
            if exp.count < 2 { exp = "0" + exp }
            var m = String(mantissa)
            if m.hasSuffix(".0") { m.removeLast(2) }
            s = m + "e" + sign + exp
        }
        return s
    }
}
