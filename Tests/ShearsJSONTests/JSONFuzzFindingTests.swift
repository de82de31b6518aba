#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ShearsJSON

/// Findings of `Tools/fuzz JSON`, with their reproducers in Fixtures/fuzz/json.
@Suite struct JSONFuzzFindingTests {
    static let folder: String = {
        var p = #filePath
        for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
        return p + "/Fixtures/fuzz/json"
    }()

    static func read(_ name: String) throws -> [UInt8] {
        guard let f = fopen(folder + "/" + name, "rb") else { throw JSONError(.syntax, "cannot open \(name)") }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n == 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    static func text(_ v: JSONValue) -> String {
        String(decoding: v.serializedBytes(style: .compact), as: UTF8.self)
    }

    /// A number beyond Double's range (-5.2e400186035156, found in a fuzzed copy of a golden
    /// file) parses to -infinity, as Python's json does, and the writer spells it -Infinity
    /// (Python's spelling). The parser used to refuse `-Infinity` (its integer-range pass took the
    /// bare minus for an integer literal); now what is written reads back equal.
    @Test(arguments: ["overflowing-number.json", "crash-overflowing-number.json"])
    func overflowingNumbersRoundTrip(_ name: String) throws {
        let v = try JSONValue.parse(try Self.read(name))
        if name == "overflowing-number.json" {
            #expect(v == .array([.double(-.infinity)]))
            #expect(Self.text(v) == "[-Infinity]")
        }
        let again = try JSONValue.parse(v.serializedBytes(style: .compact))
        #expect(again == v)
        #expect(Self.text(again) == Self.text(v))
    }

    /// Python's spellings of the non-finite doubles, inside containers and alone.
    @Test func nonFiniteSpellingsReadBack() throws {
        let v = try JSONValue.parse("{\"a\":[Infinity,-Infinity,1e999,-1e999],\"b\":-Infinity}")
        #expect(v == .object(JSONObject([("a", .array([.double(.infinity), .double(-.infinity),
                                                       .double(.infinity), .double(-.infinity)])),
                                          ("b", .double(-.infinity))])))
        #expect(Self.text(v) == "{\"a\":[Infinity,-Infinity,Infinity,-Infinity],\"b\":-Infinity}")
        #expect(try JSONValue.parse("-Infinity") == .double(-.infinity))
        #expect(try JSONValue.parse(" Infinity\n") == .double(.infinity))
        guard case .array(let a) = try JSONValue.parse("[NaN]"), case .double(let d) = a[0] else {
            Issue.record("[NaN] is not an array of one double"); return
        }
        #expect(d.isNaN)
        #expect(Self.text(.array([.double(.nan)])) == "[NaN]")
        // Python's json also refuses these.
        for bad in ["[-NaN]", "[-]", "[- Infinity]", "[infinity]", "[--1]"] {
            #expect(throws: JSONError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
    }

    /// A scalar document (RFC 8259 allows one) ends where json-c needs a terminating NUL; the
    /// parser supplies it, so `5` and `true` parse, and an unfinished document still fails.
    @Test func topLevelScalars() throws {
        let cases: [(String, JSONValue)] = [("5", .int(5)), ("-1.5 ", .double(-1.5)), ("true", .bool(true)), ("null", .null),
                                             ("\"x\"", .string("x")), ("18446744073709551615", .uint(UInt64.max))]
        for (text, value) in cases {
            do { #expect(try JSONValue.parse(text) == value, "\(text)") } catch { Issue.record("\(text): \(error)") }
        }
        for bad in ["[1,2", "{\"a\":", "\"abc", "tru", "99999999999999999999", "5 6"] {
            #expect(throws: JSONError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
        let e = #expect(throws: JSONError.self) { try JSONValue.parse("[1,2") }
        #expect(e?.message.contains("unexpected end of JSON") == true)
    }
}
