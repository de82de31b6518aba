import FuzzSupport
import Tokenizers

/// `tokenizer.json`: loaded, then a fuzzed string encoded and the ids decoded. The input is the
/// tokenizer's JSON, then (after the first 0xFF byte, which UTF-8 JSON never holds) the text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(Fuzz.buffer(data, size))
    let cut = bytes.firstIndex(of: 0xFF) ?? bytes.count
    guard let t = try? Tokenizer(json: Array(bytes[..<cut])) else { return 0 }
    let text = cut < bytes.count ? Array(bytes[(cut + 1)...]) : Array("Hello, world! It is a truth universally acknowledged.".utf8)
    let ids = t.encode(bytes: text)
    _ = t.decode(ids)
    _ = t.decode(ids, skipSpecialTokens: true)
    _ = t.encode(String(decoding: text, as: UTF8.self), addSpecialTokens: false)
    return 0
}

@_cdecl("FuzzTokenizer_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
