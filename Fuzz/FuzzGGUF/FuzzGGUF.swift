import FuzzSupport
import CheckpointCore
@testable import GGUF

/// A GGUF file: header, metadata, tensor infos; the model metadata, the tokenizer built from it,
/// the Hugging Face view; then every tensor dequantized (each supported type, from fuzzed bytes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Fuzz.buffer(data, size)
    dequantizeEveryType(bytes)
    guard (try? GGUFHeader.parse(bytes)) != nil else { return 0 }
    let path = Fuzz.file(bytes, suffix: ".gguf")
    guard let f = try? GGUFFile(path: path) else { return 0 }
    if let md = try? GGUFModelMetadata(gguf: f) { _ = md.configJSON(dtype: .f32) }
    if let t = try? GGUFTokenizer(gguf: f) { _ = try? t.tokenizerJSON() }
    _ = try? GGUFTensorStore(path: path)
    for info in f.tensors where info.elementCount <= 1 << 16 { _ = try? f.floats(info) }
    return 0
}

/// Every ggml type id: those with a decoder decode whatever whole blocks the fuzzed bytes hold.
let allTypes = (0..<64).map { GGMLType(rawValue: UInt32($0)) }.filter { $0.isKnown }

/// Dequantizes the fuzzed bytes as every supported type (called for every input, GGUF or not).
func dequantizeEveryType(_ bytes: UnsafeRawBufferPointer) {
    for type in allTypes where type.canDequantize || Dequantize.plainDType(type) != nil {
        let blocks = min(bytes.count / max(type.bytesPerBlock, 1), 64)
        let n = blocks * type.blockSize
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { o in
            _ = try? Dequantize.decode(UnsafeRawBufferPointer(rebasing: bytes[0..<blocks * type.bytesPerBlock]), type: type, into: o)
        }
    }
}

@_cdecl("FuzzGGUF_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
