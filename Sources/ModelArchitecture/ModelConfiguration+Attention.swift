import CheckpointCore
import ShearsJSON

extension ModelConfiguration {
    /// `layer_types` ("sliding_attention" / "full_attention", one per layer), nil when absent.
    /// - Throws: `invalidConfig` for a list of the wrong length or an attention type the engine
    ///   does not run.
    public func layerTypes(layers n: Int) throws(CheckpointError) -> [Bool]? {
        guard let v = raw["layer_types"], !v.isNull else { return nil }
        guard let a = v.arrayValue, a.count == n else {
            throw CheckpointError(.invalidConfig, "layer_types must list one attention type per layer (\(n) entries)")
        }
        var out: [Bool] = []
        out.reserveCapacity(n)
        for (i, t) in a.enumerated() {
            switch t.stringValue {
            case "sliding_attention": out.append(true)
            case "full_attention": out.append(false)
            default:
                throw CheckpointError(.invalidConfig, "layer_types[\(i)] is \(t.serialized()); supported: sliding_attention, full_attention")
            }
        }
        return out
    }

    /// A positive `sliding_window` (nil when absent or null).
    /// - Throws: `invalidConfig` for a window that is not a positive integer.
    public func slidingWindow() throws(CheckpointError) -> Int? {
        guard let v = raw["sliding_window"], !v.isNull else { return nil }
        guard let w = v.intValue, w > 0 else {
            throw CheckpointError(.invalidConfig, "sliding_window is \(v.serialized()), not a positive integer")
        }
        return w
    }

    /// Per-layer attention of a Qwen2 / Qwen3 config, as transformers' Qwen2Config derives it: the
    /// window is `sliding_window` when `use_sliding_window` is true (else none); `layer_types` when
    /// given, else layers from `max_window_layers` (default 28) on slide.
    /// - Throws: `invalidConfig` when a layer slides without a window.
    public func qwenLayerAttention(layers n: Int) throws(CheckpointError) -> [LayerAttention] {
        let window = raw["use_sliding_window"]?.boolValue == true ? try slidingWindow() : nil
        let sliding: [Bool]
        if let t = try layerTypes(layers: n) {
            sliding = t
        } else {
            let from = raw["max_window_layers"]?.intValue ?? 28
            sliding = (0..<n).map { window != nil && $0 >= from }
        }
        guard sliding.contains(true) else { return [] }
        guard let window else {
            throw CheckpointError(.invalidConfig, "layer_types lists sliding_attention layers, but use_sliding_window is false or sliding_window is null (transformers refuses this too)")
        }
        return sliding.map { $0 ? LayerAttention(slidingWindow: window) : .full }
    }

    /// Per-layer attention of a Mistral config: `sliding_window` on every layer (MistralAttention
    /// ignores `layer_types`).
    public func mistralLayerAttention(layers n: Int) throws(CheckpointError) -> [LayerAttention] {
        guard let w = try slidingWindow() else { return [] }
        return Array(repeating: LayerAttention(slidingWindow: w), count: n)
    }
}

extension ModelDescription {
    /// `layer_types` as transformers writes it for this model's layers (nil when every layer is
    /// full attention and none is listed).
    public var layerTypesJSON: JSONValue {
        .array((0..<layerCount).map { .string(attention(ofLayer: $0).isSliding ? "sliding_attention" : "full_attention") })
    }
}
