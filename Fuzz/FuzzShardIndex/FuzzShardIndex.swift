import FuzzSupport
import CheckpointCore

/// `model.safetensors.index.json`: the weight map, shard names, total size.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let path = Fuzz.file(Fuzz.buffer(data, size), suffix: ".index.json")
    _ = try? ShardIndex.read(path: path)
    return 0
}

@_cdecl("FuzzShardIndex_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
