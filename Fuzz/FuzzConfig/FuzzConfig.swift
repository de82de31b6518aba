import FuzzSupport
import CheckpointCore
import ModelArchitecture
import ShearsJSON

/// Tensors of a one-layer LLaMA (hidden 8, 2 heads, 1 KV head, head_dim 4, MLP 16, vocab 16), the
/// shapes of Fixtures/hostile/valid-one-layer, without data.
final class ShapesOnly: TensorStore, @unchecked Sendable {
    let path = "fuzz"
    let formatName = "fuzz"
    let tensorInfos: [TensorInfo]
    let metadataMap: Metadata? = nil
    let modelFolder: String? = nil
    let dataFiles: [String] = []
    init() {
        let p = "model.layers.0."
        let shapes: [(String, [Int])] = [
            ("model.embed_tokens.weight", [16, 8]), ("model.norm.weight", [8]), (p + "input_layernorm.weight", [8]),
            (p + "post_attention_layernorm.weight", [8]), (p + "self_attn.q_proj.weight", [8, 8]),
            (p + "self_attn.k_proj.weight", [4, 8]), (p + "self_attn.v_proj.weight", [4, 8]), (p + "self_attn.o_proj.weight", [8, 8]),
            (p + "mlp.gate_proj.weight", [16, 8]), (p + "mlp.up_proj.weight", [16, 8]), (p + "mlp.down_proj.weight", [8, 16]),
        ]
        tensorInfos = shapes.map { TensorInfo(name: $0.0, dtype: .f32, shape: $0.1, dataOffsets: 0..<0) }
    }
    func withTensorBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try body(UnsafeRawBufferPointer(start: nil, count: 0))
    }
    func deepValidate() -> [CheckpointError] { [] }
}

let store = ShapesOnly()

/// `config.json` into a model description, as every job resolves it: parsed, sizes checked
/// against the tensors, described by its family, validated; then every derived size computed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let json = try? JSONValue.parse(Fuzz.buffer(data, size)), let c = try? ModelConfiguration(json: json) else { return 0 }
    _ = c.summary
    _ = try? c.rotaryScaling()
    if let m = try? ModelDescription(c, store: store) {
        _ = m.parameterCount()
        _ = m.requiredTensors.map { m.shape(of: $0) }
    }
    return 0
}

@_cdecl("FuzzConfig_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Fuzz.run(argc, argv, fuzz)
}
