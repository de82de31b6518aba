import ShearsJSON

/// Typed access to the fields of a `tokenizer.json` object, throwing ``TokenizerError`` with the
/// field's path (e.g. `pre_tokenizer.pretokenizers[1].behavior`) instead of crashing or guessing.
struct JSONFields {
    let object: JSONObject
    /// Where this object sits in the document, for error messages.
    let where_: String

    init(_ value: JSONValue, at where_: String) throws(TokenizerError) {
        guard let object = value.objectValue else {
            throw TokenizerError(.malformed, "\(where_) should be an object, not \(value.typeName)")
        }
        self.object = object
        self.where_ = where_
    }

    func path(_ key: String) -> String { where_.isEmpty ? key : "\(where_).\(key)" }

    /// The `type` field.
    func type() throws(TokenizerError) -> String { try string("type") }

    func has(_ key: String) -> Bool {
        if let v = object[key], !v.isNull { return true }
        return false
    }

    func string(_ key: String) throws(TokenizerError) -> String {
        guard let v = object[key] else { throw TokenizerError(.malformed, "\(path(key)) is missing") }
        guard let s = v.stringValue else {
            throw TokenizerError(.malformed, "\(path(key)) should be a string, not \(v.typeName)")
        }
        return s
    }

    func optionalString(_ key: String) throws(TokenizerError) -> String? {
        guard let v = object[key], !v.isNull else { return nil }
        guard let s = v.stringValue else {
            throw TokenizerError(.malformed, "\(path(key)) should be a string, not \(v.typeName)")
        }
        return s
    }

    func bool(_ key: String, default fallback: Bool) throws(TokenizerError) -> Bool {
        guard let v = object[key], !v.isNull else { return fallback }
        guard let b = v.boolValue else {
            throw TokenizerError(.malformed, "\(path(key)) should be a boolean, not \(v.typeName)")
        }
        return b
    }

    func int(_ key: String, default fallback: Int? = nil) throws(TokenizerError) -> Int {
        guard let v = object[key], !v.isNull else {
            if let fallback { return fallback }
            throw TokenizerError(.malformed, "\(path(key)) is missing")
        }
        guard let i = v.intValue else {
            throw TokenizerError(.malformed, "\(path(key)) should be an integer, not \(v.typeName)")
        }
        return i
    }

    func array(_ key: String) throws(TokenizerError) -> [JSONValue] {
        guard let v = object[key] else { throw TokenizerError(.malformed, "\(path(key)) is missing") }
        guard let a = v.arrayValue else {
            throw TokenizerError(.malformed, "\(path(key)) should be an array, not \(v.typeName)")
        }
        return a
    }

    func fields(_ key: String) throws(TokenizerError) -> JSONFields {
        guard let v = object[key] else { throw TokenizerError(.malformed, "\(path(key)) is missing") }
        return try JSONFields(v, at: path(key))
    }

    /// The elements of the array `key`, each as an object.
    func objects(_ key: String) throws(TokenizerError) -> [JSONFields] {
        var out: [JSONFields] = []
        for (i, v) in try array(key).enumerated() { out.append(try JSONFields(v, at: "\(path(key))[\(i)]")) }
        return out
    }

    /// A `{"String": "..."}` or `{"Regex": "..."}` pattern, compiled to a ``Pattern``.
    func pattern(_ key: String) throws(TokenizerError) -> Pattern {
        let p = try fields(key)
        if let s = try p.optionalString("String") { return .literal(Array(s.utf8)) }
        if let r = try p.optionalString("Regex") {
            do { return .regex(try OnigurumaRegex(r)) } catch { throw error.inField(p.where_) }
        }
        throw TokenizerError(.malformed, "\(p.where_) should hold \"String\" or \"Regex\"")
    }
}

extension TokenizerError {
    func inField(_ field: String) -> TokenizerError {
        TokenizerError(code, "\(field): \(message)", path: path)
    }
}
