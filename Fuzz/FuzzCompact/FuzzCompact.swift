import FuzzSupport
import CheckpointCore
import CompactFormat

/// A compact (.ctz) file: footer, index, then every chunk decoded and checked (deepValidate) and
/// every tensor read back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Fuzz.buffer(data, size)
    _ = try? CompactIndex.parse(bytes, dataEnd: bytes.count)
    let path = Fuzz.file(bytes, suffix: ".ctz")
    guard let f = try? CompactFile(path: path) else { return 0 }
    _ = f.deepValidate()
    for info in f.tensorInfos where info.byteCount <= 1 << 20 { _ = try? f.withTensorBytes(info.name) { $0.count } }
    return 0
}

@_cdecl("FuzzCompact_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
