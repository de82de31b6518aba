import FuzzSupport
import ShearsJSON

/// The JSON parser (json-c plus Shears' strictness checks), and writing back what it parsed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if let v = try? JSONValue.parse(Fuzz.buffer(data, size)) {
        let again = try? JSONValue.parse(v.serializedBytes(style: .compact))
        precondition(again != nil, "parsed JSON does not re-parse after serialization")
    }
    return 0
}

@_cdecl("FuzzJSON_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
