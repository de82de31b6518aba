import CheckpointCore
import Glibc
import ShearsJSON

extension ModelConfiguration {
    /// The key under which a pruned model's per-layer sizes are stored (see formats/pruned-config.md):
    /// an object mapping a layer index ("0", "1", ...) to the attributes that differ from the
    /// top-level ones, as transformers' heterogeneous configurations (PR #45333) do.
    public static let perLayerConfigKey = "per_layer_config"

    /// The attributes a `per_layer_config` entry may override.
    public static let perLayerAttributes: Set<String> = ["num_attention_heads", "num_key_value_heads", "intermediate_size"]

    /// Every layer's sizes: the top-level `num_attention_heads`, `num_key_value_heads` and
    /// `intermediate_size`, overridden per layer by `per_layer_config` (transformers' heterogeneous
    /// form) and by the `*_per_layer` lists that `shears prune` writes.
    /// - Parameter allowingEmpty: accept 0 in the `*_per_layer` lists (a layer whose attention or
    ///   MLP is gone entirely; GGUF output handles those, the engine does not). A layer with 0 query
    ///   heads then has 0 KV heads.
    /// - Throws: `invalidConfig` when a size is missing, a layer index is out of range, an entry
    ///   overrides an unknown attribute, or a layer's query heads are not a multiple of its KV heads.
    public func layerSizes(allowingEmpty: Bool = false) throws(CheckpointError) -> [LayerSizes] {
        guard let n = numHiddenLayers, let heads = numAttentionHeads, let kv = numKeyValueHeads, let inter = intermediateSize else {
            throw CheckpointError(.invalidConfig, "config lacks num_hidden_layers, num_attention_heads or intermediate_size")
        }
        var sizes = [LayerSizes](repeating: LayerSizes(numAttentionHeads: heads, numKeyValueHeads: kv, intermediateSize: inter), count: n)
        if let v = raw[Self.perLayerConfigKey], !v.isNull {
            guard let o = v.objectValue else {
                throw CheckpointError(.invalidConfig, "\(Self.perLayerConfigKey) is \(v.serialized()), not an object of layer index → sizes")
            }
            for (key, entry) in o.members {
                guard let i = Int(key), String(i) == key, i >= 0, i < n else {
                    throw CheckpointError(.invalidConfig, "\(Self.perLayerConfigKey) has key '\(key)', not a layer index below \(n)")
                }
                guard let e = entry.objectValue else {
                    throw CheckpointError(.invalidConfig, "\(Self.perLayerConfigKey)[\(key)] is not an object")
                }
                for (attr, value) in e.members {
                    guard Self.perLayerAttributes.contains(attr) else {
                        throw CheckpointError(.invalidConfig, "\(Self.perLayerConfigKey)[\(key)] sets '\(attr)'; only num_attention_heads, num_key_value_heads and intermediate_size may differ per layer")
                    }
                    guard let x = value.intValue, x > 0 else {
                        throw CheckpointError(.invalidConfig, "\(Self.perLayerConfigKey)[\(key)].\(attr) is \(value.serialized()), not a positive integer")
                    }
                    switch attr {
                    case "num_attention_heads": sizes[i].numAttentionHeads = x
                    case "num_key_value_heads": sizes[i].numKeyValueHeads = x
                    default: sizes[i].intermediateSize = x
                    }
                }
            }
        }
        // The list form `shears prune` writes (formats/pruned-config-output.md): one entry per layer.
        let lists: [(String, WritableKeyPath<LayerSizes, Int>)] = [
            ("num_attention_heads_per_layer", \.numAttentionHeads), ("num_key_value_heads_per_layer", \.numKeyValueHeads),
            ("intermediate_size_per_layer", \.intermediateSize),
        ]
        for (key, path) in lists {
            guard let v = raw[key], !v.isNull else { continue }
            guard let list = v.arrayValue, list.count == n else {
                throw CheckpointError(.invalidConfig, "\(key) must list one size per layer (\(n) entries)")
            }
            for (i, x) in list.enumerated() {
                guard let k = x.intValue, k > 0 || (allowingEmpty && k == 0) else {
                    throw CheckpointError(.invalidConfig, "\(key)[\(i)] is \(x.serialized()), not a positive integer")
                }
                sizes[i][keyPath: path] = k
            }
        }
        for (i, s) in sizes.enumerated() {
            if allowingEmpty && s.numAttentionHeads == 0 {
                sizes[i].numKeyValueHeads = 0
                continue
            }
            guard s.numKeyValueHeads > 0, s.numAttentionHeads % s.numKeyValueHeads == 0 else {
                throw CheckpointError(.invalidConfig, "layer \(i): \(s.numAttentionHeads) query heads are not a multiple of \(s.numKeyValueHeads) KV heads")
            }
        }
        return sizes
    }

    /// The rotary scaling `rope_scaling` (or `rope_parameters`) asks for.
    /// - Throws: `invalidConfig` for scaling types the engine does not implement (dynamic, yarn,
    ///   ...) or missing llama3 / longrope parameters.
    /// - Parameter rotaryPairs: the rotated pairs per head (half the rotary dimensions), which
    ///   longrope's factor lists must match; nil skips that check.
    public func rotaryScaling(rotaryPairs: Int? = nil) throws(CheckpointError) -> RotaryScaling {
        if let s = ropeScaling, (s["rope_type"]?.stringValue ?? s["type"]?.stringValue) == "longrope" {
            return try longRope(s, rotaryPairs: rotaryPairs)
        }
        return try RotaryScaling(ropeScaling)
    }
}

extension RotaryScaling {
    /// The scaling a `rope_scaling` / `rope_parameters` object asks for (nil: none). longrope,
    /// which needs the rest of the configuration, is read by
    /// ``ModelConfiguration/rotaryScaling(rotaryPairs:)``.
    /// - Throws: `invalidConfig` for scaling types the engine does not implement (dynamic, yarn,
    ///   ...) or missing llama3 parameters.
    public init(_ s: JSONObject?) throws(CheckpointError) {
        guard let s else { self = .none; return }
        let type = s["rope_type"]?.stringValue ?? s["type"]?.stringValue ?? "default"
        func number(_ key: String) throws(CheckpointError) -> Double {
            guard let d = s[key]?.doubleValue else {
                throw CheckpointError(.invalidConfig, "rope_scaling of type \(type) needs a numeric '\(key)'")
            }
            return d
        }
        switch type {
        case "default": self = .none
        case "linear":
            let f = try number("factor")
            guard f > 0 else { throw CheckpointError(.invalidConfig, "rope_scaling factor must be positive") }
            self = .linear(factor: f)
        case "llama3":
            let f = try number("factor"), lo = try number("low_freq_factor"), hi = try number("high_freq_factor")
            let orig = try number("original_max_position_embeddings")
            guard f > 0, lo > 0, hi > lo, orig > 0, orig < 1e15 else {
                throw CheckpointError(.invalidConfig, "llama3 rope_scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0")
            }
            self = .llama3(factor: f, lowFrequencyFactor: lo, highFrequencyFactor: hi, originalMaxPositions: Int(orig))
        default:
            throw CheckpointError(.invalidConfig, "rope_scaling type '\(type)' is not supported (supported: default, linear, llama3, longrope)")
        }
    }
}

extension ModelConfiguration {
    /// The fraction of each head's dimensions the rotary embedding turns (`partial_rotary_factor`
    /// in `rope_parameters` or at the top level, as Phi3Config reads it; 1 when absent).
    /// - Throws: `invalidConfig` when it is not a number in (0, 1].
    public func partialRotaryFactor() throws(CheckpointError) -> Double {
        let v = ropeScaling?["partial_rotary_factor"] ?? raw["rope_parameters"]?["partial_rotary_factor"] ?? raw["partial_rotary_factor"]
        guard let v, !v.isNull else { return 1 }
        guard let f = v.doubleValue, f > 0, f <= 1 else {
            throw CheckpointError(.invalidConfig, "partial_rotary_factor is \(v.serialized()), not a number in (0, 1]")
        }
        return f
    }

    /// longrope as transformers resolves it: `original_max_position_embeddings` from the top level
    /// (Phi-3 keeps it there) or the scaling object, else `max_position_embeddings`; `factor`
    /// defaults to max_position_embeddings / original, `attention_factor` to
    /// sqrt(1 + ln(factor) / ln(original)) (1 when factor <= 1).
    private func longRope(_ s: JSONObject, rotaryPairs: Int?) throws(CheckpointError) -> RotaryScaling {
        func factors(_ key: String) throws(CheckpointError) -> [Double] {
            guard let list = s[key]?.arrayValue, !list.isEmpty else {
                throw CheckpointError(.invalidConfig, "longrope rope_scaling needs '\(key)', a list of numbers")
            }
            var out: [Double] = []
            for x in list {
                guard let d = x.doubleValue, d.isFinite, d > 0 else {
                    throw CheckpointError(.invalidConfig, "longrope \(key) holds \(x.serialized()), not a positive number")
                }
                out.append(d)
            }
            if let rotaryPairs, out.count != rotaryPairs {
                throw CheckpointError(.invalidConfig, "longrope \(key) has \(out.count) entries; the rotary embedding turns \(rotaryPairs) pairs per head")
            }
            return out
        }
        let short = try factors("short_factor"), long = try factors("long_factor")
        let topOriginal = raw["original_max_position_embeddings"]?.intValue
        guard let original = topOriginal ?? s["original_max_position_embeddings"]?.intValue ?? maxPositionEmbeddings, original > 1 else {
            throw CheckpointError(.invalidConfig, "longrope needs original_max_position_embeddings (or max_position_embeddings) above 1")
        }
        var factor = s["factor"]?.doubleValue
        if factor == nil {
            guard let m = maxPositionEmbeddings else {
                throw CheckpointError(.invalidConfig, "longrope without 'factor' needs max_position_embeddings")
            }
            factor = Double(m) / Double(original)
        }
        var attention = s["attention_factor"]?.doubleValue
        if attention == nil {
            attention = factor! <= 1 ? 1 : (1 + Glibc.log(factor!) / Glibc.log(Double(original))).squareRoot()
        }
        guard let a = attention, a.isFinite, a > 0 else {
            throw CheckpointError(.invalidConfig, "longrope attention_factor must be a positive number")
        }
        return .longRope(shortFactors: short, longFactors: long, attentionFactor: a, originalMaxPositions: original)
    }
}
