/// The value type tag of a GGUF metadata value (`gguf_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Encoded size of one value, for the fixed-size types.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The fewest bytes one value of this type takes (strings: the 8-byte length; arrays: type + count).
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }

    /// Lower-case name as in the spec ("uint32", "string").
    public var name: String { String(describing: self) }
}

/// One GGUF metadata value. Strings are the file's bytes (not necessarily valid UTF-8: some
/// vocabularies hold partial byte sequences), shown as Swift strings via ``GGUFString``.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(GGUFString), uint64(UInt64), int64(Int64), float64(Double)
    /// An array: its element type (needed for empty arrays and nested arrays) and elements.
    case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        case .array: .array
        }
    }

    /// The value as an `Int`, for any integer type whose value fits.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(exactly: v)
        default: nil
        }
    }

    /// The value as a `Double`, for any integer or float type.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }

    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var stringValue: String? { if case .string(let s) = self { s.string } else { nil } }
    public var arrayValue: [GGUFValue]? { if case .array(_, let a) = self { a } else { nil } }

    /// A short human description: scalars as they are, arrays summarized ("[49152 strings]") when
    /// longer than `maxElements`.
    public func summary(maxElements: Int = 8) -> String {
        switch self {
        case .array(let t, let a):
            if a.count > maxElements {
                let noun = t == .string ? "strings" : t == .array ? "arrays" : "\(t.name)"
                return "[\(a.count) \(noun)]"
            }
            return "[" + a.map { $0.summary(maxElements: maxElements) }.joined(separator: ", ") + "]"
        case .string(let s): return s.string
        case .bool(let b): return b ? "true" : "false"
        case .float32(let f): return "\(f)"
        case .float64(let f): return "\(f)"
        default: return intValue.map(String.init) ?? "?"
        }
    }
}

/// A GGUF string: raw bytes, with a lossless `String` view when they are valid UTF-8.
public struct GGUFString: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    /// The text (invalid UTF-8 sequences replaced by U+FFFD).
    public var string: String { String(decoding: bytes, as: UTF8.self) }
    /// Whether the bytes are valid UTF-8.
    public var isValidUTF8: Bool { String(validating: bytes, as: UTF8.self) != nil }
    public var description: String { string }
}
