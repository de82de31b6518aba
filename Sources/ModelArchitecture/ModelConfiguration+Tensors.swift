import CheckpointCore
import ShearsJSON

extension ModelConfiguration {
    /// Checks every count and dimension `config.json` states against what the checkpoint's tensors
    /// can hold, before anything is allocated or looped over by them (issue 21: a config may come
    /// from a stranger). Runs in time linear in the number of tensors, whatever the config says.
    ///
    /// - `num_hidden_layers` may not exceed the layers the tensors have: the first missing layer's
    ///   tensor is named.
    /// - `hidden_size` and `vocab_size` must match the embedding's shape; the head counts, head_dim
    ///   and intermediate size of a uniform model must match layer 0's projections.
    /// - Every size (also per-layer lists and `per_layer_config`) is at most the largest dimension
    ///   of any tensor; per-layer lists must have exactly one entry per layer, checked before they
    ///   are walked.
    /// - Throws: `tensorNotFound` or `shapeMismatch` naming the key, the tensor and the rule.
    /// - Parameter dimensions: false checks only what sizes loops and allocations (the layer count
    ///   and the per-layer lists' lengths), for callers that compare every shape themselves.
    public func checkSizes(against infos: [TensorInfo], naming t: TensorNaming, path: String?, dimensions: Bool = true) throws(CheckpointError) {
        var byName: [String: TensorInfo] = [:]
        var present = Set<Int>()
        var largest = 0, largestName = "(no tensors)"
        for info in infos {
            byName[info.name] = info
            if let (l, _) = t.layerIndex(of: info.name) { present.insert(l) }
            for d in info.shape where d > largest { largest = d; largestName = info.name }
        }
        func mismatch(_ message: String, _ tensor: String) -> CheckpointError {
            CheckpointError(.shapeMismatch, message, path: path, tensor: tensor)
        }
        // Layer count: the first layer index below num_hidden_layers without any tensor.
        if let n = numHiddenLayers {
            var first = 0
            while first < n && present.contains(first) { first += 1 }
            if first < n {
                let name = t.name(TensorReference(TensorRole.layerNorms[0], layer: first))
                throw CheckpointError(.tensorNotFound,
                    "num_hidden_layers is \(n), but the checkpoint has no tensor '\(name)': its tensors hold \(first) layer\(first == 1 ? "" : "s")",
                    path: path, tensor: name)
            }
        }
        guard dimensions else {
            for key in ["num_attention_heads_per_layer", "num_key_value_heads_per_layer", "intermediate_size_per_layer"] {
                guard let c = raw[key]?.arrayValue?.count, c != (numHiddenLayers ?? 0) else { continue }
                throw CheckpointError(.invalidConfig, "\(key) has \(c) entries; it must list one size per layer (num_hidden_layers \(numHiddenLayers ?? 0))", path: path)
            }
            return
        }
        // Every size is bounded by the largest tensor dimension.
        func bounded(_ key: String, _ v: Int?) throws(CheckpointError) {
            guard let v, v > largest else { return }
            throw mismatch("\(key) is \(v), larger than any dimension of any tensor in the checkpoint (the largest is \(largest), in '\(largestName)')", largestName)
        }
        // The embedding fixes hidden_size and vocab_size.
        let embed = t.name(TensorReference(.embedding))
        if let e = byName[embed], e.shape.count == 2 {
            if let h = hiddenSize, h != e.shape[1] {
                throw mismatch("hidden_size is \(h), but '\(embed)' has shape \(e.shape), which implies hidden_size \(e.shape[1])", embed)
            }
            if let v = vocabSize, v != e.shape[0] {
                throw mismatch("vocab_size is \(v), but '\(embed)' has shape \(e.shape), which implies vocab_size \(e.shape[0])", embed)
            }
        }
        // A uniform model: layer 0's projections fix the heads, head_dim and intermediate size.
        let perLayer = (["num_attention_heads_per_layer", "num_key_value_heads_per_layer", "intermediate_size_per_layer", Self.perLayerConfigKey]).contains { raw[$0].map { !$0.isNull } ?? false }
        if !perLayer, (numHiddenLayers ?? 0) > 0, let hd = headDim {
            func rows(_ role: TensorRole, _ key: String, _ count: Int?, times: Int) throws(CheckpointError) {
                let name = t.name(TensorReference(role, layer: 0))
                guard let count, let info = byName[name], info.shape.count == 2 else { return }
                let (want, overflow) = count.multipliedReportingOverflow(by: times)
                guard overflow || want != info.shape[0] else { return }
                let product = overflow ? "\(count) × \(times) (overflows)" : "\(want)"
                throw mismatch("\(key) is \(count), so '\(name)' needs \(product) rows, but it has shape \(info.shape)", name)
            }
            try rows(.query, "num_attention_heads", numAttentionHeads, times: hd)
            try rows(.key, "num_key_value_heads", numKeyValueHeads, times: hd)
            try rows(.gate, "intermediate_size", intermediateSize, times: 1)
        }
        try bounded("hidden_size", hiddenSize)
        try bounded("vocab_size", vocabSize)
        try bounded("head_dim", headDim)
        // Per-layer sizes: lists of one entry per layer, checked before being walked.
        let n = numHiddenLayers ?? 0
        for key in ["num_attention_heads_per_layer", "num_key_value_heads_per_layer", "intermediate_size_per_layer"] {
            guard let v = raw[key], !v.isNull else { continue }
            guard let list = v.arrayValue else { continue }   // layerSizes() names the wrong type
            guard list.count == n else {
                throw CheckpointError(.invalidConfig, "\(key) has \(list.count) entries; it must list one size per layer (num_hidden_layers \(n))", path: path)
            }
            for (i, x) in list.enumerated() { try bounded("\(key)[\(i)]", x.intValue) }
        }
        if let v = raw[Self.perLayerConfigKey], !v.isNull {
            if let o = v.objectValue {
                guard o.count <= n else {
                    throw CheckpointError(.invalidConfig, "\(Self.perLayerConfigKey) has \(o.count) entries for \(n) layers", path: path)
                }
                for (key, entry) in o.members {
                    for (attr, x) in entry.objectValue?.members ?? [] { try bounded("\(Self.perLayerConfigKey)[\(key)].\(attr)", x.intValue) }
                }
            }
        }
        // The top-level sizes, unless every layer states its own (a pruned model keeps the source's).
        for (key, value, list) in [("num_attention_heads", numAttentionHeads, "num_attention_heads_per_layer"),
                                   ("num_key_value_heads", numKeyValueHeads, "num_key_value_heads_per_layer"),
                                   ("intermediate_size", intermediateSize, "intermediate_size_per_layer")] {
            if let v = raw[list], !v.isNull { continue }
            if let o = raw[Self.perLayerConfigKey]?.objectValue, o.count == n, n > 0,
               o.members.allSatisfy({ $0.1.objectValue?[key] != nil }) { continue }
            try bounded(key, value)
        }
    }
}

extension ModelDescription {
    /// Resolves `configuration` for the tensors of `store`: sizes checked against the tensors first
    /// (``ModelConfiguration/checkSizes(against:naming:path:)``), then the family's description,
    /// then every tensor's shape (``validate(_:computable:)``).
    public init(_ configuration: ModelConfiguration, store: any TensorStore, computable: Bool = false) throws(CheckpointError) {
        let family = try ModelFamilies.family(of: configuration)
        try configuration.checkSizes(against: store.tensorInfos, naming: family.tensors, path: store.path)
        self = try family.describe(configuration)
        try validate(store, computable: computable)
    }

    /// Reads `config.json` and resolves it for the tensors of `store` (errors name `configPath`
    /// for what the file says, the store for what its tensors say).
    public init(configPath: String, store: any TensorStore, computable: Bool = false) throws(CheckpointError) {
        let c = try ModelConfiguration(path: configPath)
        let family: any ModelFamily
        do { family = try ModelFamilies.family(of: c) } catch { throw error.inFile(configPath) }
        try c.checkSizes(against: store.tensorInfos, naming: family.tensors, path: configPath)
        do { self = try family.describe(c) } catch { throw error.inFile(configPath) }
        try validate(store, computable: computable)
    }
}
