import CJSONC

/// Why a JSON document was rejected.
public struct JSONError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Not valid JSON (json-c's own message is in `message`).
        case syntax
        /// The same key appears twice in one object.
        case duplicateKey
        /// A key contains U+0000, which json-c would silently truncate.
        case nulInKey
        /// An integer literal outside the 64-bit range (json-c would saturate it).
        case integerOutOfRange
        /// The document is larger than json-c can take in one call.
        case tooLarge
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

extension JSONValue {
    /// Parses one JSON document with json-c in strict mode, then applies the checks json-c does not
    /// make: duplicate keys (json-c keeps the last), keys containing U+0000 (json-c truncates them),
    /// integers beyond 64 bits (json-c saturates them), and trailing bytes after the value
    /// (leading and trailing JSON whitespace is accepted).
    ///
    /// - Parameter bytes: the UTF-8 text. The caller validates UTF-8 first when it must report
    ///   encoding errors separately.
    /// - Throws: ``JSONError``.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        guard bytes.count < Int(Int32.max) else {
            throw JSONError(.tooLarge, "JSON document of \(bytes.count) bytes is over json-c's 2 GiB limit")
        }
        // Trailing whitespace is not consumed by json-c in strict mode, so measure the content.
        var end = bytes.count
        while end > 0, isJSONWhitespace(bytes[end - 1]) { end -= 1 }
        var start = 0
        while start < end, isJSONWhitespace(bytes[start]) { start += 1 }
        guard start < end else { throw JSONError(.syntax, "empty JSON document") }

        guard let tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH) else {
            throw JSONError(.syntax, "json-c could not allocate a tokener")
        }
        defer { json_tokener_free(tok) }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT)
        let base = bytes.baseAddress!.advanced(by: start).assumingMemoryBound(to: CChar.self)
        var root = json_tokener_parse_ex(tok, base, Int32(end - start))
        var err = json_tokener_get_error(tok)
        var fedNul = false
        if root == nil, err == json_tokener_continue, json_tokener_get_parse_end(tok) == end - start {
            // A scalar at the top level (`5`, `true`, `-Infinity`) ends only where json-c sees the
            // terminating NUL, which a counted buffer does not have: hand json-c that byte.
            fedNul = true
            root = json_tokener_parse_ex(tok, "", 1)
            err = json_tokener_get_error(tok)
        }
        // json-c's null is a NULL object: a document `null` is a success with no object.
        guard err == json_tokener_success else {
            if let root { json_object_put(root) }
            let why = err == json_tokener_continue || fedNul
                ? "unexpected end of JSON" : String(cString: json_tokener_error_desc(err))
            let at = fedNul ? end : json_tokener_get_parse_end(tok) + start
            throw JSONError(.syntax, "invalid JSON at byte \(at): \(why)")
        }
        defer { if let root { json_object_put(root) } }
        let parsedEnd = fedNul ? end - start : json_tokener_get_parse_end(tok)
        guard parsedEnd == end - start else {
            throw JSONError(.syntax, "invalid JSON at byte \(parsedEnd + start): trailing characters after the value")
        }
        try StrictScan.check(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
        return convert(root)
    }

    /// Parses a JSON document held in a byte array.
    public static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSONValue {
        do {
            return try bytes.withUnsafeBytes { buffer in try parse(buffer) }
        } catch let e as JSONError {
            throw e
        } catch {
            throw JSONError(.syntax, "\(error)")
        }
    }

    /// Parses a JSON document held in a string.
    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    private static func convert(_ o: OpaquePointer?) -> JSONValue {
        guard let o else { return .null }
        switch json_object_get_type(o) {
        case json_type_null: return .null
        case json_type_boolean: return .bool(json_object_get_boolean(o) != 0)
        case json_type_double: return .double(json_object_get_double(o))
        case json_type_int:
            let i = json_object_get_int64(o)
            if i == Int64.max {
                let u = json_object_get_uint64(o)
                return u > UInt64(Int64.max) ? .uint(u) : .int(i)
            }
            return .int(i)
        case json_type_string:
            let n = Int(json_object_get_string_len(o))
            let p = json_object_get_string(o)!
            return .string(String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self))
        case json_type_array:
            let n = json_object_array_length(o)
            var out: [JSONValue] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(convert(json_object_array_get_idx(o, i))) }
            return .array(out)
        case json_type_object:
            var obj = JSONObject()
            var it = json_object_iter_begin(o)
            var last = json_object_iter_end(o)
            while json_object_iter_equal(&it, &last) == 0 {
                let name = String(cString: json_object_iter_peek_name(&it))
                obj[name] = convert(json_object_iter_peek_value(&it))
                json_object_iter_next(&it)
            }
            return .object(obj)
        default:
            return .null
        }
    }
}

@inline(__always) func isJSONWhitespace(_ c: UInt8) -> Bool {
    c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D
}

/// A single pass over JSON text that json-c has already accepted, checking what json-c does not:
/// duplicate keys, U+0000 in keys and integer literals beyond 64 bits.
enum StrictScan {
    private struct Frame {
        var isObject: Bool
        var expectKey: Bool
        var keys: Set<UTF8Key> = []
    }

    static func check(_ b: UnsafeRawBufferPointer) throws(JSONError) {
        var stack: [Frame] = []
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            switch c {
            case UInt8(ascii: "{"):
                stack.append(Frame(isObject: true, expectKey: true))
                i += 1
            case UInt8(ascii: "["):
                stack.append(Frame(isObject: false, expectKey: false))
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                i += 1
            case UInt8(ascii: ","):
                if let top = stack.indices.last, stack[top].isObject { stack[top].expectKey = true }
                i += 1
            case UInt8(ascii: "\""):
                let (key, next) = decodeString(b, from: i)
                i = next
                if let top = stack.indices.last, stack[top].isObject, stack[top].expectKey {
                    stack[top].expectKey = false
                    if key.utf8.contains(0) {
                        throw JSONError(.nulInKey, "invalid JSON: key \(quoted(key)) contains U+0000")
                    }
                    if !stack[top].keys.insert(UTF8Key(key)).inserted {
                        throw JSONError(.duplicateKey, "invalid JSON: duplicate key \(quoted(key))")
                    }
                }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                var j = i
                var isInteger = true
                while j < n {
                    let d = b[j]
                    if d == UInt8(ascii: ".") || d == UInt8(ascii: "e") || d == UInt8(ascii: "E") { isInteger = false }
                    else if !(d == UInt8(ascii: "-") || d == UInt8(ascii: "+") || (d >= 0x30 && d <= 0x39)) { break }
                    j += 1
                }
                // `-Infinity` (json-c reads it, and the writer spells negative overflow that way,
                // as Python's json does) is a bare minus here: not an integer literal.
                if j == i + 1, c == UInt8(ascii: "-") { isInteger = false }
                // Up to 18 digits always fits in 64 bits: only longer literals are converted.
                let digits = j - i - (c == UInt8(ascii: "-") ? 1 : 0)
                if isInteger && digits > 18 {
                    let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[i..<j]), as: UTF8.self)
                    let fits = text.hasPrefix("-") ? Int64(text) != nil : UInt64(text) != nil
                    if !fits {
                        throw JSONError(.integerOutOfRange, "invalid JSON: integer \(text) is out of the 64-bit range")
                    }
                }
                i = j
            default:
                i += 1
            }
        }
    }

    /// Decodes the string literal starting at the quote at `start`; returns it and the index after
    /// its closing quote. The text is known to be valid JSON.
    private static func decodeString(_ b: UnsafeRawBufferPointer, from start: Int) -> (String, Int) {
        var i = start + 1
        let n = b.count
        // Fast path: no escapes.
        var j = i
        while j < n, b[j] != UInt8(ascii: "\""), b[j] != UInt8(ascii: "\\") { j += 1 }
        if j < n, b[j] == UInt8(ascii: "\"") {
            return (String(decoding: UnsafeRawBufferPointer(rebasing: b[i..<j]), as: UTF8.self), j + 1)
        }
        var out: [UInt8] = []
        var pendingHigh: UInt32? = nil
        func hex4(_ k: Int) -> UInt32 {
            var v: UInt32 = 0
            for m in k..<min(k + 4, n) {
                let h = b[m]
                let d: UInt32 = switch h {
                case 0x30...0x39: UInt32(h - 0x30)
                case 0x41...0x46: UInt32(h - 0x41 + 10)
                case 0x61...0x66: UInt32(h - 0x61 + 10)
                default: 0
                }
                v = v << 4 | d
            }
            return v
        }
        func appendScalar(_ v: UInt32) {
            let scalar = Unicode.Scalar(v) ?? "\u{FFFD}"
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        }
        while i < n {
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c == UInt8(ascii: "\\"), i + 1 < n {
                let e = b[i + 1]
                if e == UInt8(ascii: "u") {
                    let v = hex4(i + 2)
                    i += 6
                    if let high = pendingHigh {
                        pendingHigh = nil
                        if v >= 0xDC00 && v <= 0xDFFF {
                            appendScalar(0x10000 + ((high - 0xD800) << 10) + (v - 0xDC00))
                            continue
                        }
                        appendScalar(0xFFFD)
                    }
                    if v >= 0xD800 && v <= 0xDBFF { pendingHigh = v } else { appendScalar(v) }
                    continue
                }
                if let high = pendingHigh { _ = high; pendingHigh = nil; appendScalar(0xFFFD) }
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                default: out.append(e)
                }
                i += 2
                continue
            }
            if pendingHigh != nil { pendingHigh = nil; appendScalar(0xFFFD) }
            out.append(c)
            i += 1
        }
        return (String(decoding: out, as: UTF8.self), i)
    }

    static func quoted(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            if u.value < 0x20 { r += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) }
            else if u == "\"" { r += "\\\"" } else { r.unicodeScalars.append(u) }
        }
        return r + "\""
    }
}
