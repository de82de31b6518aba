import FuzzSupport
import CheckpointCore
import ShearsPipeline

struct NoTokenizer: Error {}

/// `--calibration-tokens`: a JSON array of token-id arrays.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let path = Fuzz.file(Fuzz.buffer(data, size), suffix: ".tokens.json")
    _ = try? CalibrationSource.tokens(path).documents(tokenizer: { throw NoTokenizer() })
    return 0
}

@_cdecl("FuzzCalibrationTokens_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
