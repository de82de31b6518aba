import CheckpointCore
import ModelArchitecture
import ShearsJSON

/// The shape and settings of a llama-family model, as GGUF metadata (`{arch}.*` keys) and as
/// Hugging Face `config.json` express them.
public struct LlamaHyperparameters: Sendable, Equatable {
    /// GGUF `general.architecture`: `llama`, `qwen2` or `mistral`.
    public var architecture: String
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
    public var attentionBias: Bool
    /// Any `ffn_*.bias` tensor (llama `mlp_bias`).
    public var mlpBias: Bool
    /// `deci` files: every block's query heads, KV heads and feed-forward length (then `heads`,
    /// `kvHeads` and `intermediateSize` are the largest of them). Nil for the uniform architectures.
    public var layerSizes: [LayerSizes]?
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var padTokenId: Int?

    public static let supportedArchitectures = ["llama", "qwen2", "mistral", "deci"]

    /// Whether the blocks differ in size (a pruned model: per-layer lists in config.json).
    public var hasPerLayerSizes: Bool {
        guard let l = layerSizes, let first = l.first else { return false }
        return !l.allSatisfy { $0 == first }
    }

    /// Whether llama.cpp permutes this architecture's Q/K rows (interleaved rotary); qwen2 uses
    /// NeoX rotary and is stored unpermuted.
    public var permutesQK: Bool { architecture != "qwen2" }

    /// Hugging Face model type and class.
    /// (`deci` files become llama folders with per-layer sizes.)
    public var modelType: String { architecture == "qwen2" ? "qwen2" : architecture == "mistral" ? "mistral" : "llama" }
    public var architectureClass: String {
        architecture == "qwen2" ? "Qwen2ForCausalLM" : architecture == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM"
    }

    /// Reads the hyperparameters of a GGUF file.
    /// - Throws: `unsupportedArchitecture` for other architectures; `ggufMissingKey` naming the
    ///   key when a required one is absent or has the wrong type.
    public init(gguf f: GGUFFile) throws(CheckpointError) {
        guard let arch = f.architecture else {
            throw CheckpointError(.ggufMissingKey, "general.architecture is missing", path: f.path)
        }
        guard LlamaHyperparameters.supportedArchitectures.contains(arch) else {
            throw CheckpointError(.unsupportedArchitecture, "architecture '\(arch)' is not supported for conversion; supported: \(LlamaHyperparameters.supportedArchitectures.joined(separator: ", "))", path: f.path)
        }
        architecture = arch
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
        let embedding = f.tensorInfo(named: "token_embd.weight")
        let tokenCount = f["tokenizer.ggml.tokens"]?.arrayValue?.count
        vocabSize = try optionalInt("vocab_size") ?? embedding?.shape.first ?? tokenCount ?? 0
        tiedEmbeddings = f.tensorInfo(named: "output.weight") == nil
        if arch == "qwen2" {
            attentionBias = f.tensorInfo(named: "blk.0.attn_q.bias") != nil
            mlpBias = false
        } else {
            // llama folders with any attention (MLP) bias get one on every projection (zeros where
            // the file has none, e.g. dropped all-zero biases).
            let names = f.tensors.map(\.name)
            attentionBias = names.contains { n in ["attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias"].contains { n.hasSuffix("." + $0) } }
            mlpBias = names.contains { n in ["ffn_gate.bias", "ffn_up.bias", "ffn_down.bias"].contains { n.hasSuffix("." + $0) } }
        }
        bosTokenId = f["tokenizer.ggml.bos_token_id"]?.intValue
        eosTokenId = f["tokenizer.ggml.eos_token_id"]?.intValue
        padTokenId = f["tokenizer.ggml.padding_token_id"]?.intValue
    }

    /// `config.json` for the Hugging Face folder.
    public func configJSON(dtype: DType) -> JSONValue {
        var o = JSONObject()
        o["architectures"] = .array([.string(architectureClass)])
        o["model_type"] = .string(modelType)
        o["attention_bias"] = .bool(attentionBias)
        o["attention_dropout"] = .double(0)
        if let bosTokenId { o["bos_token_id"] = .int(Int64(bosTokenId)) }
        if let eosTokenId { o["eos_token_id"] = .int(Int64(eosTokenId)) }
        if let padTokenId { o["pad_token_id"] = .int(Int64(padTokenId)) }
        o["head_dim"] = .int(Int64(headDim))
        o["hidden_act"] = .string("silu")
        o["hidden_size"] = .int(Int64(hiddenSize))
        o["initializer_range"] = .double(0.02)
        o["intermediate_size"] = .int(Int64(intermediateSize))
        o["max_position_embeddings"] = .int(Int64(contextLength))
        if modelType == "llama" { o["mlp_bias"] = .bool(mlpBias) }
        o["num_attention_heads"] = .int(Int64(heads))
        o["num_hidden_layers"] = .int(Int64(layers))
        o["num_key_value_heads"] = .int(Int64(kvHeads))
        o["rms_norm_eps"] = .double(rmsNormEps)
        o["rope_scaling"] = ropeScaling.map { .object($0) } ?? .null
        o["rope_theta"] = .double(ropeTheta)
        o["tie_word_embeddings"] = .bool(tiedEmbeddings)
        o["dtype"] = .string(LlamaHyperparameters.torchName(dtype))
        o["use_cache"] = .bool(true)
        o["vocab_size"] = .int(Int64(vocabSize))
        if hasPerLayerSizes, let l = layerSizes {
            // formats/pruned-config-output.md: the per-layer lists and the remote-code modeling file.
            o["num_attention_heads_per_layer"] = .array(l.map { .int(Int64($0.numAttentionHeads)) })
            o["num_key_value_heads_per_layer"] = .array(l.map { .int(Int64($0.numKeyValueHeads)) })
            o["intermediate_size_per_layer"] = .array(l.map { .int(Int64($0.intermediateSize)) })
            o["auto_map"] = .object(JSONObject([
                ("AutoConfig", .string("\(Self.modelingModule).ShearsLlamaConfig")),
                ("AutoModelForCausalLM", .string("\(Self.modelingModule).ShearsLlamaForCausalLM")),
            ]))
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

    /// The module of the remote-code modeling file a per-layer config points to
    /// (`modeling_shears_llama.py`, written next to it by the caller).
    public static let modelingModule = "modeling_shears_llama"

    /// The sizes of one block (every block alike for the uniform architectures).
    public func sizes(ofLayer i: Int) -> LayerSizes {
        layerSizes?[i] ?? LayerSizes(numAttentionHeads: heads, numKeyValueHeads: kvHeads, intermediateSize: intermediateSize)
    }

    /// PyTorch's name of a dtype ("float32", "bfloat16").
    public static func torchName(_ d: DType) -> String {
        switch d {
        case .f32: "float32"
        case .f16: "float16"
        case .bf16: "bfloat16"
        case .f64: "float64"
        default: d.rawValue.lowercased()
        }
    }
}
