import FuzzSupport
import ShearsJSON

/// The JSON parser (json-c plus Shears' strictness checks), and writing back what it parsed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // A number beyond Double's range parses to ±infinity, which the writer spells Infinity as
    // Python's json does and strict JSON does not read back (Fixtures/fuzz/json/, JSONFuzzFindingTests).
    if let v = try? JSONValue.parse(Fuzz.buffer(data, size)), allFinite(v) {
        let again = try? JSONValue.parse(v.serializedBytes(style: .compact))
        precondition(again != nil, "parsed JSON does not re-parse after serialization")
    }
    return 0
}

@_cdecl("FuzzJSON_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}

func allFinite(_ v: JSONValue) -> Bool {
    switch v {
    case .double(let d): return d.isFinite
    case .array(let a): return a.allSatisfy(allFinite)
    case .object(let o): return o.members.allSatisfy { allFinite($0.1) }
    default: return true
    }
}
