import Testing
@testable import ShearsJSON

@Suite struct JSONParseTests {
    @Test func parsesNestedDocumentInOrder() throws {
        let v = try JSONValue.parse(#" {"b":[1,-2,18446744073709551615],"a":{"x":"y\n\u00e9"},"c":1.5,"d":null,"e":true} "#)
        let o = try #require(v.objectValue)
        #expect(o.keys == ["b", "a", "c", "d", "e"])
        #expect(o["b"] == .array([.int(1), .int(-2), .uint(UInt64.max)]))
        #expect(o["a"]?["x"] == .string("y\né"))
        #expect(o["c"] == .double(1.5))
        #expect(o["d"] == .null)
        #expect(o["e"] == .bool(true))
    }

    @Test(arguments: [
        (#"{"a":1,"a":2}"#, JSONError.Kind.duplicateKey),
        (#"{"x":{"a":1,"\u0061":2}}"#, .duplicateKey),
        (#"{"a\u0000b":1}"#, .nulInKey),
        (#"{"a":18446744073709551616}"#, .integerOutOfRange),
        (#"{"a":-9223372036854775809}"#, .integerOutOfRange),
        (#"{"a":1,}"#, .syntax),
        (#"{"a":1} x"#, .syntax),
        (#"{"a":1"#, .syntax),
        ("", .syntax),
        ("   ", .syntax),
    ])
    func rejectsWhatJSONCAccepts(_ text: String, _ kind: JSONError.Kind) {
        #expect { try JSONValue.parse(text) } throws: { ($0 as? JSONError)?.kind == kind }
    }

    @Test func duplicateKeysInDifferentObjectsAreFine() throws {
        let v = try JSONValue.parse(#"{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}"#)
        #expect(v["b"]?["k"] == .int(2))
    }
}

@Suite struct JSONWriteTests {
    @Test func compactMatchesSerdeLayout() {
        var o = JSONObject()
        o["__metadata__"] = .object(JSONObject([("format", .string("pt"))]))
        o["w/a"] = .object(JSONObject([("dtype", .string("F32")), ("shape", .array([.int(2), .int(3)])),
                                      ("data_offsets", .array([.int(0), .uint(24)]))]))
        o["ctl"] = .string("tab\there \u{1}\"q\"\\ é")
        #expect(JSONValue.object(o).serialized() ==
            #"{"__metadata__":{"format":"pt"},"w/a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"ctl":"tab\there \u0001\"q\"\\ é"}"#)
    }

    @Test(arguments: [(1e-05, "1e-05"), (0.1, "0.1"), (10000.0, "10000.0"), (1e16, "1e+16"), (-2.5, "-2.5"), (500000.0, "500000.0")])
    func doublesUsePythonText(_ d: Double, _ text: String) {
        #expect(JSONValue.formatDouble(d) == text)
        #expect(JSONValue.array([.double(d)]).serialized() == "[\(text)]")
    }

    @Test func roundTripsThroughParse() throws {
        let v = try JSONValue.parse(#"{"a":[1,2.25,"x",null,false,{"b":{}}],"c":[]}"#)
        #expect(try JSONValue.parse(v.serialized()) == v)
        #expect(try JSONValue.parse(v.serialized(style: .pretty)) == v)
    }
}
