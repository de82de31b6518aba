#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import ModelArchitecture
import ShearsJSON

/// What llama.cpp's metadata (`{arch}.*` keys: `embedding_length`, `block_count`, `deci.*`
/// per-block arrays, rope, norm epsilon, tokenizer ids) says about the model in a GGUF file, and
/// the model family (``ModelFamilies``) its `general.architecture` belongs to.
public struct GGUFModelMetadata: Sendable {
    /// GGUF `general.architecture` as written (a family's architecture, one it also reads, or `deci`).
    public var architecture: String
    /// The family the architecture belongs to (``ModelFamilies/family(ggufArchitecture:)``):
    /// tensor names both ways, Q/K permutation and the `config.json` keys.
    public var family: any ModelFamily
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    /// Rope scaling as Hugging Face writes it (`{"rope_type": "linear", "factor": 2.0}`), if any.
    public var ropeScaling: JSONObject?
    public var tiedEmbeddings: Bool
    /// Any attention projection bias (`attention_bias`).
    public var attentionBias: Bool
    /// Any MLP projection bias (llama `mlp_bias`).
    public var mlpBias: Bool
    /// `deci` files: every block's query heads, KV heads and feed-forward length (then `heads`,
    /// `kvHeads` and `intermediateSize` are the largest of them). Nil for the uniform architectures.
    public var layerSizes: [LayerSizes]?
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var padTokenId: Int?
    /// Family-specific config keys (Gemma: windows, layer types, soft-caps, local rope base,
    /// query_pre_attn_scalar), as ``StockConfigValues/extra``.
    public var extra = JSONObject()

    /// Every `general.architecture` some family reads, for messages.
    public static var readableArchitectures: [String] {
        var out: [String] = []
        for f in ModelFamilies.all where readsFusedTensors(f) {
            for a in [f.gguf.architecture] + f.gguf.alsoReads where !out.contains(a) { out.append(a) }
        }
        return out
    }

    /// Whether every fused tensor of `family` has a llama.cpp name (``GGUFNaming/fusedNames``).
    static func readsFusedTensors(_ family: any ModelFamily) -> Bool {
        FusedTensorView.fusedGroups(family.tensors).allSatisfy { family.gguf.fusedNames[$0.name] != nil }
    }

    /// Whether the blocks differ in size (a pruned model: per-layer lists in config.json).
    public var hasPerLayerSizes: Bool {
        guard let l = layerSizes, let first = l.first else { return false }
        return !l.allSatisfy { $0 == first }
    }

    /// Reads the model metadata of a GGUF file.
    /// - Throws: `unsupportedArchitecture` for an architecture no family reads; `ggufMissingKey`
    ///   naming the key when a required one is absent or has the wrong type.
    public init(gguf f: GGUFFile) throws(CheckpointError) {
        guard let arch = f.architecture else {
            throw CheckpointError(.ggufMissingKey, "general.architecture is missing", path: f.path)
        }
        guard let family = ModelFamilies.family(ggufArchitecture: arch) else {
            throw CheckpointError(.unsupportedArchitecture, "architecture '\(arch)' is not supported for conversion; supported: \(Self.readableArchitectures.joined(separator: ", "))", path: f.path)
        }
        guard Self.readsFusedTensors(family) else {
            throw CheckpointError(.unsupportedArchitecture, "architecture '\(arch)' stores fused tensors (attn_qkv, ffn_up holding gate and up) that Shears does not convert from GGUF yet; convert the Hugging Face checkpoint instead", path: f.path)
        }
        architecture = arch
        self.family = family
        func int(_ key: String) throws(CheckpointError) -> Int {
            guard let v = f["\(arch).\(key)"] else {
                throw CheckpointError(.ggufMissingKey, "\(arch).\(key) is missing", path: f.path)
            }
            guard let i = v.intValue, i >= 0 else {
                let what = v.arrayValue != nil ? "an array (per-layer sizes are not supported for \(arch))" : v.type.name
                throw CheckpointError(.ggufMissingKey, "\(arch).\(key) is \(what), not a non-negative integer", path: f.path)
            }
            return i
        }
        func optionalInt(_ key: String) throws(CheckpointError) -> Int? { f["\(arch).\(key)"] == nil ? nil : try int(key) }
        hiddenSize = try int("embedding_length")
        let blockCount = try int("block_count")
        // block_count sizes per-block arrays and loops: it may not exceed the blocks the tensors have.
        var blocks = Set<Int>()
        for t in f.tensors where t.name.hasPrefix(GGUFNaming.layerPrefix) {
            let tail = t.name.dropFirst(GGUFNaming.layerPrefix.count)
            if let dot = tail.firstIndex(of: "."), let b = Int(tail[..<dot]), b >= 0 { blocks.insert(b) }
        }
        var firstMissing = 0
        while firstMissing < blockCount && blocks.contains(firstMissing) { firstMissing += 1 }
        // A file without tensors (metadata only) still bounds it: 8 bytes of file per block.
        guard blockCount <= f.fileSize / 8 else {
            throw CheckpointError(.ggufTruncated, "\(arch).block_count is \(blockCount), more blocks than a \(f.fileSize)-byte file can describe", path: f.path)
        }
        guard f.tensors.isEmpty || firstMissing == blockCount else {
            let name = GGUFNaming.layerPrefix + String(firstMissing) + ".attn_norm.weight"
            throw CheckpointError(.tensorNotFound, "\(arch).block_count is \(blockCount), but the file has no tensor '\(name)': its tensors hold \(firstMissing) block\(firstMissing == 1 ? "" : "s")", path: f.path, tensor: name)
        }
        layers = blockCount
        contextLength = try int("context_length")
        if arch == "deci" {
            // Per-block counts: an array of block_count integers, or one integer for every block.
            func perBlock(_ key: String, default fallback: [Int]? = nil) throws(CheckpointError) -> [Int] {
                guard let v = f["deci.\(key)"] else {
                    if let fallback { return fallback }
                    throw CheckpointError(.ggufMissingKey, "deci.\(key) is missing", path: f.path)
                }
                if let i = v.intValue, i >= 0 { return Array(repeating: i, count: blockCount) }
                guard let items = v.arrayValue, items.count == blockCount else {
                    throw CheckpointError(.ggufMissingKey, "deci.\(key) must be an integer or an array of \(blockCount) integers (block_count)", path: f.path)
                }
                var out: [Int] = []
                for (i, x) in items.enumerated() {
                    guard let n = x.intValue, n >= 0 else {
                        throw CheckpointError(.ggufMissingKey, "deci.\(key)[\(i)] is \(x.summary()), not a non-negative integer", path: f.path)
                    }
                    out.append(n)
                }
                return out
            }
            let h = try perBlock("attention.head_count")
            let kv = try perBlock("attention.head_count_kv", default: h)
            let ffn = try perBlock("feed_forward_length")
            var sizes: [LayerSizes] = []
            for i in 0..<blockCount {
                guard kv[i] == 0 || h[i] % kv[i] == 0 else {
                    throw CheckpointError(.ggufMissingKey, "block \(i): \(h[i]) query heads are not a multiple of \(kv[i]) key/value heads", path: f.path)
                }
                sizes.append(LayerSizes(numAttentionHeads: h[i], numKeyValueHeads: kv[i], intermediateSize: ffn[i]))
            }
            guard let first = sizes.first else {
                throw CheckpointError(.ggufMissingKey, "deci.block_count is 0", path: f.path)
            }
            layerSizes = sizes
            heads = sizes.map(\.numAttentionHeads).max()!
            kvHeads = sizes.map(\.numKeyValueHeads).max()!
            intermediateSize = sizes.map(\.intermediateSize).max()!
            guard heads > 0 else { throw CheckpointError(.ggufMissingKey, "no deci block has attention heads", path: f.path) }
            headDim = try optionalInt("attention.key_length") ?? (hiddenSize / max(first.numAttentionHeads, 1))
        } else {
            heads = try int("attention.head_count")
            kvHeads = try optionalInt("attention.head_count_kv") ?? heads
            intermediateSize = try int("feed_forward_length")
            guard heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
                throw CheckpointError(.ggufMissingKey, "head counts \(heads) (query) and \(kvHeads) (key/value) are inconsistent", path: f.path)
            }
            headDim = try optionalInt("attention.key_length") ?? (hiddenSize / heads)
            layerSizes = nil
        }
        guard let eps = f["\(arch).attention.layer_norm_rms_epsilon"]?.doubleValue else {
            throw CheckpointError(.ggufMissingKey, "\(arch).attention.layer_norm_rms_epsilon is missing", path: f.path)
        }
        // float32 metadata is written in its shortest decimal form (1e-05, not 9.99999974e-06).
        func shortest(_ v: GGUFValue?) -> Double? {
            if case .float32(let x) = v { return Double("\(x)") }
            return v?.doubleValue
        }
        rmsNormEps = shortest(f["\(arch).attention.layer_norm_rms_epsilon"]) ?? eps
        ropeTheta = shortest(f["\(arch).rope.freq_base"]) ?? 10_000
        var scaling: JSONObject? = nil
        if let type = f["\(arch).rope.scaling.type"]?.stringValue, type != "none" {
            var s = JSONObject()
            s["rope_type"] = .string(type)
            if let factor = shortest(f["\(arch).rope.scaling.factor"]) { s["factor"] = .double(factor) }
            if let orig = f["\(arch).rope.scaling.original_context_length"]?.intValue {
                s["original_max_position_embeddings"] = .int(Int64(orig))
            }
            scaling = s
        }
        ropeScaling = scaling
        let embedding = family.gguf.name(TensorReference(.embedding)).flatMap { f.tensorInfo(named: $0) }
        let tokenCount = f["tokenizer.ggml.tokens"]?.arrayValue?.count
        vocabSize = try optionalInt("vocab_size") ?? embedding?.shape.first ?? tokenCount ?? 0
        tiedEmbeddings = family.gguf.name(TensorReference(.lmHead)).flatMap { f.tensorInfo(named: $0) } == nil
        // Any attention (MLP) projection bias in the file switches attention_bias (mlp_bias) on.
        let biases = f.tensors.compactMap { family.gguf.reference(of: $0.name) }.filter { $0.kind == .bias }
        attentionBias = biases.contains { TensorRole.attentionProjections.contains($0.role) }
        mlpBias = biases.contains { TensorRole.mlpProjections.contains($0.role) }
        bosTokenId = f["tokenizer.ggml.bos_token_id"]?.intValue
        eosTokenId = f["tokenizer.ggml.eos_token_id"]?.intValue
        padTokenId = f["tokenizer.ggml.padding_token_id"]?.intValue
        if family.gguf.longRopeFactorTensors != nil {
            let (phi3, longRope) = try Self.phi3Extras(f, arch: arch, headDim: headDim, contextLength: contextLength)
            extra = phi3
            if let longRope { ropeScaling = longRope }
        }
        if family.blocks.isGemma { extra = try Self.gemmaExtras(f, arch: arch, layers: blockCount, hidden: hiddenSize, heads: heads, headDim: headDim, ropeTheta: ropeTheta) }
    }

    /// The Gemma settings llama.cpp's gemma2 / gemma3 loaders derive (src/models/gemma*.cpp):
    /// `attention.sliding_window` (gemma2: 4096 when absent; gemma3: none when absent),
    /// `attention.sliding_window_pattern` (an array of per-block flags, or every Nth block full;
    /// 2 / 6 by default), `rope.freq_base_swa` (gemma2: the full base; gemma3: 10,000), the
    /// soft-caps (gemma2: 50 and 30 by default; gemma3: a final cap only), and the attention
    /// scale, head_dim^-0.5 except for the 27B models (hidden / heads).
    static func gemmaExtras(_ f: GGUFFile, arch: String, layers: Int, hidden: Int, heads: Int, headDim: Int, ropeTheta: Double) throws(CheckpointError) -> JSONObject {
        let gemma2 = arch == "gemma2"
        func number(_ key: String) -> Double? {
            if case .float32(let x)? = f["\(arch).\(key)"] { return Double("\(x)") }
            return f["\(arch).\(key)"]?.doubleValue
        }
        var e = JSONObject()
        var window = f["\(arch).attention.sliding_window"]?.intValue ?? (gemma2 ? 4096 : nil)
        if window == 0 { window = nil }
        var sliding = [Bool](repeating: false, count: layers)
        if window != nil {
            if let items = f["\(arch).attention.sliding_window_pattern"]?.arrayValue {
                guard items.count == layers else {
                    throw CheckpointError(.ggufMissingKey, "\(arch).attention.sliding_window_pattern has \(items.count) entries for \(layers) blocks", path: f.path)
                }
                sliding = items.map { $0.boolValue ?? (($0.intValue ?? 0) != 0) }
            } else {
                let n = f["\(arch).attention.sliding_window_pattern"]?.intValue ?? (gemma2 ? 2 : 6)
                // llama.cpp's set_swa_pattern: block i slides unless (i + 1) % n == 0 (n 0: none slides).
                sliding = (0..<layers).map { n > 0 && ($0 + 1) % n != 0 }
            }
        }
        e["sliding_window"] = window.map { .int(Int64($0)) } ?? .null
        e["layer_types"] = .array(sliding.map { .string($0 ? "sliding_attention" : "full_attention") })
        let big = layers == (gemma2 ? 46 : 62)
        e["query_pre_attn_scalar"] = .int(Int64(big ? hidden / max(heads, 1) : headDim))
        if gemma2 {
            e["attn_logit_softcapping"] = .double(number("attn_logit_softcapping") ?? 50)
            e["final_logit_softcapping"] = .double(number("final_logit_softcapping") ?? 30)
        } else {
            let cap = number("final_logit_softcapping") ?? 0
            e["final_logit_softcapping"] = cap > 0 ? .double(cap) : .null
            e["attn_logit_softcapping"] = .null
            e["rope_local_base_freq"] = .double(number("rope.freq_base_swa") ?? 10_000)
        }
        return e
    }

    /// The Phi-3 settings llama.cpp's phi3 files carry (`convert_hf_to_gguf.py` Phi3MiniModel):
    /// `rope.dimension_count` (partial rotary: the rotated dimensions of a head),
    /// `rope.scaling.original_context_length`, `attention.sliding_window` (0: none), and for
    /// longrope the tensors `rope_factors_short` / `rope_factors_long` with
    /// `rope.scaling.attn_factor` (written as `attention_factor` only where it differs from the
    /// one transformers derives, sqrt(1 + ln(factor) / ln(original))).
    /// - Throws: `ggufMissingKey` for rotary dimensions outside the head, factor tensors of the
    ///   wrong size, or only one of the two.
    static func phi3Extras(_ f: GGUFFile, arch: String, headDim: Int, contextLength: Int) throws(CheckpointError) -> (JSONObject, JSONObject?) {
        var e = JSONObject()
        let rot = f["\(arch).rope.dimension_count"]?.intValue ?? headDim
        guard rot >= 2, rot % 2 == 0, rot <= headDim else {
            throw CheckpointError(.ggufMissingKey, "\(arch).rope.dimension_count is \(rot); it must be even, at least 2 and at most the head size \(headDim)", path: f.path)
        }
        // The factor whose rotated dimensions (Int(head_dim × factor), as Phi3 computes them) are rot.
        var factor = Double(rot) / Double(headDim)
        while Int(Double(headDim) * factor) < rot { factor = factor.nextUp }
        e["partial_rotary_factor"] = .double(factor)
        let original = f["\(arch).rope.scaling.original_context_length"]?.intValue ?? contextLength
        guard original > 0 else {
            throw CheckpointError(.ggufMissingKey, "\(arch).rope.scaling.original_context_length is 0", path: f.path)
        }
        e["original_max_position_embeddings"] = .int(Int64(original))
        let window = f["\(arch).attention.sliding_window"]?.intValue ?? 0
        e["sliding_window"] = window > 0 ? .int(Int64(window)) : .null
        guard let names = ModelFamilies.family(ggufArchitecture: arch)?.gguf.longRopeFactorTensors else { return (e, nil) }
        let short = f.tensorInfo(named: names.short + ".weight"), long = f.tensorInfo(named: names.long + ".weight")
        guard short != nil || long != nil else { return (e, nil) }
        var lists: [[JSONValue]] = []
        for (name, t) in [(names.short, short), (names.long, long)] {
            guard let t else {
                throw CheckpointError(.tensorNotFound, "the file has one of the longrope factor tensors but not \(name).weight", path: f.path, tensor: name + ".weight")
            }
            guard t.shape == [rot / 2], !t.type.isQuantized else {
                throw CheckpointError(.shapeMismatch, "shape \(t.shape) of type \(t.type.name); longrope factors are \(rot / 2) floats (half of \(arch).rope.dimension_count)", path: f.path, tensor: t.name)
            }
            let values = try f.floats(t)
            guard values.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw CheckpointError(.ggufMissingKey, "longrope factors must be positive numbers", path: f.path, tensor: t.name)
            }
            lists.append(values.map { .double(Double("\($0)") ?? Double($0)) })
        }
        var rope = JSONObject([("rope_type", .string("longrope")), ("long_factor", .array(lists[1])), ("short_factor", .array(lists[0]))])
        let scale = Double(contextLength) / Double(original)
        let derived = scale <= 1 ? 1 : (1 + Glibc.log(scale) / Glibc.log(Double(original))).squareRoot()
        if case .float32(let a)? = f["\(arch).rope.scaling.attn_factor"], a.isFinite, a > 0, abs(Double(a) - derived) > 1e-6 * derived {
            rope["attention_factor"] = .double(Double("\(a)") ?? Double(a))
        }
        return (e, rope)
    }

    /// The values of the family's stock `config.json` (``ModelFamily/stockConfig(_:)``).
    public func stockConfigValues(dtype: DType) -> StockConfigValues {
        var v = StockConfigValues(hiddenSize: hiddenSize, layers: layers, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                  intermediateSize: intermediateSize, vocabSize: vocabSize, contextLength: contextLength,
                                  rmsNormEps: rmsNormEps, ropeTheta: ropeTheta, ropeScaling: ropeScaling, tiedEmbeddings: tiedEmbeddings,
                                  attentionBias: attentionBias, mlpBias: mlpBias, bosTokenId: bosTokenId, eosTokenId: eosTokenId,
                                  padTokenId: padTokenId, dtype: dtype.torchName)
        v.extra = extra
        return v
    }

    /// `config.json` for the Hugging Face folder: the family's stock config, with the per-layer
    /// sizes of a `deci` file.
    public func configJSON(dtype: DType) -> JSONValue {
        var o = family.stockConfig(stockConfigValues(dtype: dtype))
        if hasPerLayerSizes, let l = layerSizes {
            // formats/pruned-config-output.md: the per-layer lists and the remote-code modeling file.
            o["num_attention_heads_per_layer"] = .array(l.map { .int(Int64($0.numAttentionHeads)) })
            o["num_key_value_heads_per_layer"] = .array(l.map { .int(Int64($0.numKeyValueHeads)) })
            o["intermediate_size_per_layer"] = .array(l.map { .int(Int64($0.intermediateSize)) })
            o["auto_map"] = .object(family.perLayerCode.autoMap)
        } else if let first = layerSizes?.first {
            o["num_attention_heads"] = .int(Int64(first.numAttentionHeads))
            o["num_key_value_heads"] = .int(Int64(first.numKeyValueHeads))
            o["intermediate_size"] = .int(Int64(first.intermediateSize))
        }
        return .object(o)
    }

    /// Checks that every block has a Hugging Face llama equivalent: attention with query heads a
    /// multiple of KV heads, and an MLP.
    /// - Throws: `unsupportedArchitecture` naming the block (deci attention-free, linear-attention
    ///   or MLP-free blocks).
    public func checkHuggingFaceLayers(path: String?) throws(CheckpointError) {
        for (i, s) in (layerSizes ?? []).enumerated() {
            guard s.numAttentionHeads > 0, s.numKeyValueHeads > 0 else {
                throw CheckpointError(.unsupportedArchitecture, "block \(i) has \(s.numAttentionHeads) query and \(s.numKeyValueHeads) key/value heads; attention-free and linear-attention deci blocks (Nemotron) have no Hugging Face llama equivalent", path: path)
            }
            guard s.intermediateSize > 0 else {
                throw CheckpointError(.unsupportedArchitecture, "block \(i) has feed-forward length 0 (no MLP); a Hugging Face llama layer needs one", path: path)
            }
        }
    }

    /// The sizes of one block (every block alike for the uniform architectures).
    public func sizes(ofLayer i: Int) -> LayerSizes {
        layerSizes?[i] ?? LayerSizes(numAttentionHeads: heads, numKeyValueHeads: kvHeads, intermediateSize: intermediateSize)
    }
}
