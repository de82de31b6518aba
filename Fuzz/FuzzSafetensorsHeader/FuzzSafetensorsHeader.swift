import FuzzSupport
import CheckpointCore

/// The safetensors header: length prefix, JSON, every tensor entry and the offsets' checks; then
/// the whole file opened from disk as a checkpoint, every tensor decoded to Float.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Fuzz.buffer(data, size)
    guard (try? SafetensorsHeader.parse(bytes)) != nil else { return 0 }
    let path = Fuzz.file(bytes, suffix: ".safetensors")
    if let c = try? Checkpoint.open(path) {
        for info in c.tensorInfos where info.elementCount <= 1 << 20 { _ = try? c.floats(info.name) }
    }
    return 0
}

@_cdecl("FuzzSafetensorsHeader_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
