import FuzzSupport
import CheckpointCore
import ModelArchitecture
import Pruning
import ShearsJSON

/// A two-layer GQA LLaMA the fuzzed manifest is read against.
let shape = try! ModelDescription.uniform(layers: 2, hiddenSize: 16, attentionHeads: 4, keyValueHeads: 2, headDim: 4,
                                           intermediateSize: 32, vocabSize: 24)

/// The pruning manifest (`pruning-manifest.json`): kept/removed index lists per layer and group,
/// read into a plan for a fixed model.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let json = try? JSONValue.parse(Fuzz.buffer(data, size)) else { return 0 }
    _ = try? PruningPlan(manifest: json, shape: shape)
    return 0
}

@_cdecl("FuzzManifest_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
