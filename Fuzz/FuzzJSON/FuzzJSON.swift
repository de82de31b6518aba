import FuzzSupport
import ShearsJSON

/// The JSON parser (json-c plus Shears' strictness checks), and writing back what it parsed:
/// the text the writer produces parses again to an equal value (NaN aside, which equals nothing).
/// Overflowing numbers parse to ±infinity, written Infinity/-Infinity as Python's json does
/// (Fixtures/fuzz/json/, JSONFuzzFindingTests).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if let v = try? JSONValue.parse(Fuzz.buffer(data, size)) {
        let again = try? JSONValue.parse(v.serializedBytes(style: .compact))
        precondition(again != nil, "parsed JSON does not re-parse after serialization")
        if !containsNaN(v) { precondition(again == v, "parsed JSON re-parses to a different value") }
    }
    return 0
}

@_cdecl("FuzzJSON_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}

func containsNaN(_ v: JSONValue) -> Bool {
    switch v {
    case .double(let d): return d.isNaN
    case .array(let a): return a.contains(where: containsNaN)
    case .object(let o): return o.members.contains { containsNaN($0.1) }
    default: return false
    }
}
