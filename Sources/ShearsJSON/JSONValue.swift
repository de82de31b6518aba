/// A parsed JSON value.
///
/// Objects keep their keys in document order (``JSONObject``), integers keep their full
/// 64-bit range (`int` for values that fit `Int64`, `uint` above that), so that a file's
/// numbers are never silently rounded through `Double`.
///
/// Parse with ``JSONValue/parse(_:)`` (json-c underneath, with the strictness checks json-c
/// lacks) and write with ``JSONValue/serialized()``.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The string, when this is a string.
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    /// The object, when this is an object.
    public var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }
    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    /// The Boolean, when this is a Boolean.
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    /// Whether this is `null`.
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The value as a non-negative integer, when it is an integer in `UInt64` range.
    /// Doubles are not accepted: a file that says `1.0` where a count belongs is malformed.
    public var uint64Value: UInt64? {
        switch self {
        case .int(let v): v >= 0 ? UInt64(v) : nil
        case .uint(let v): v
        default: nil
        }
    }

    /// The value as an `Int`, when it is an integer that fits.
    public var intValue: Int? {
        switch self {
        case .int(let v): Int(exactly: v)
        case .uint(let v): Int(exactly: v)
        default: nil
        }
    }

    /// The value as a `Double`, when it is any number.
    public var doubleValue: Double? {
        switch self {
        case .int(let v): Double(v)
        case .uint(let v): Double(v)
        case .double(let v): v
        default: nil
        }
    }

    /// A short name of the value's type, for error messages ("string", "array", ...).
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .uint: "integer"
        case .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// The member named `key`, when this is an object that has it.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }
}

/// A JSON object: members in document order, with keyed lookup.
public struct JSONObject: Sendable, Equatable {
    /// The members in document (or insertion) order.
    public private(set) var members: [(key: String, value: JSONValue)] = []
    private var index: [UTF8Key: Int] = [:]

    public init() {}

    /// Builds an object from members in order; a repeated key replaces the earlier value.
    public init(_ members: [(String, JSONValue)]) {
        for (k, v) in members { self[k] = v }
    }

    public var keys: [String] { members.map(\.key) }
    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }

    public subscript(key: String) -> JSONValue? {
        get { index[UTF8Key(key)].map { members[$0].value } }
        set {
            if let i = index[UTF8Key(key)] {
                if let newValue { members[i].value = newValue } else {
                    members.remove(at: i)
                    index = Dictionary(uniqueKeysWithValues: members.enumerated().map { (UTF8Key($1.key), $0) })
                }
            } else if let newValue {
                index[UTF8Key(key)] = members.count
                members.append((key, newValue))
            }
        }
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.members.count == b.members.count
            && zip(a.members, b.members).allSatisfy { UTF8Key($0.key) == UTF8Key($1.key) && $0.value == $1.value }
    }
}
