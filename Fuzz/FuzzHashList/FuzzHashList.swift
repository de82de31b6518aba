import FuzzSupport
@testable import ShearsCommands

/// The tensor hash list (`shears hash -o`, read by `verify --hashes`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let path = Fuzz.file(Fuzz.buffer(data, size), suffix: ".hashes.json")
    _ = try? TensorHashes.read(path: path)
    return 0
}

@_cdecl("FuzzHashList_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
