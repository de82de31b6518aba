/// A string compared and hashed by its UTF-8 bytes.
///
/// Swift's `String ==` uses Unicode canonical equivalence, so "é" (U+00E9) and "e\u{301}" are the
/// same `String` key; in a JSON object or a checkpoint they are different names. Dictionaries of
/// names from files are keyed by this type instead.
public struct UTF8Key: Hashable, Sendable, CustomStringConvertible {
    public let string: String
    public init(_ string: String) { self.string = string }

    public static func == (a: UTF8Key, b: UTF8Key) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    public func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    public var description: String { string }
}
