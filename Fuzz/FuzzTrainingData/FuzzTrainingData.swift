import FuzzSupport
import CheckpointCore
import ShearsPipeline
import Tokenizers

/// The bundled model's tokenizer (Tools/fuzz runs from the repository root).
let tokenizer = try! Tokenizer(contentsOf: "Fixtures/models/austen-llama")

/// finetune's `--data` files (TrainingData): the first byte picks the file name's extension
/// (.jsonl, .json, .txt or none, which sniffs the content), the rest is the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0, let data else { return 0 }
    let suffix = [".jsonl", ".json", ".txt", ".data"][Int(data[0] % 4)]
    let path = Fuzz.file(UnsafeRawBufferPointer(start: data + 1, count: size - 1), suffix: suffix)
    _ = try? TrainingData.load(files: [path], tokenizer: tokenizer, seqLen: 32)
    return 0
}

@_cdecl("FuzzTrainingData_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
