#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import CheckpointCore
import ModelArchitecture
import ShearsPipeline

/// The bundled model the adapter is read against (Tools/fuzz runs from the repository root).
let model = try! ModelSource.open("Fixtures/models/austen-llama").description
/// A scratch adapter folder: the fuzzed adapter_config.json beside PEFT's fixture tensors.
let folder: String = {
    let f = Fuzz.scratch + ".adapter"
    mkdir(f, 0o755)
    let weights = try! FileSystem.readFile("Fixtures/lora/peft-adapter/adapter_model.safetensors")
    try! AtomicFile.write(weights, to: f + "/adapter_model.safetensors")
    return f
}()

/// A PEFT adapter folder's `adapter_config.json` (PEFTAdapterFolder.read).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(Fuzz.buffer(data, size))
    try! AtomicFile.write(bytes, to: folder + "/adapter_config.json")
    _ = try? PEFTAdapterFolder.read(folder, model: model)
    return 0
}

@_cdecl("FuzzPEFTAdapter_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
