import CheckpointCore
import ShearsJSON

/// The architecture a Hugging Face `config.json` describes, for the LLaMA family (LLaMA 1/2/3,
/// Mistral, Qwen2) and, with fields left nil where absent, for anything else.
///
/// Defaults follow transformers' config classes: KV heads default to attention heads, head_dim to
/// hidden_size / heads, rope_theta to 10,000, and tied embeddings to false for llama, mistral and
/// qwen2 (true for other model types, the `PretrainedConfig` default).
public struct ModelConfiguration: Sendable, Equatable {
    public var modelType: String?
    public var architectures: [String]
    public var numHiddenLayers: Int?
    public var hiddenSize: Int?
    public var numAttentionHeads: Int?
    public var numKeyValueHeads: Int?
    public var headDim: Int?
    public var intermediateSize: Int?
    public var vocabSize: Int?
    public var tieWordEmbeddings: Bool
    public var ropeTheta: Double?
    /// `rope_scaling` (or transformers 5's `rope_parameters`) as given, when it says more than the default.
    public var ropeScaling: JSONObject?
    public var rmsNormEps: Double?
    public var maxPositionEmbeddings: Int?
    public var torchDtype: String?
    public var hiddenAct: String?
    public var attentionBias: Bool
    public var mlpBias: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// The whole parsed file.
    public var raw: JSONObject

    /// transformers' config classes whose `tie_word_embeddings` defaults to false (every other
    /// `PretrainedConfig` defaults to true). A table of transformers' defaults, for any model type
    /// `inspect` shows, not a list of what Shears runs (that is ``ModelFamilies``).
    static let transformersUntiedByDefault: Set<String> = ["llama", "mistral", "qwen2", "mixtral", "qwen3", "phi3"]

    /// Parses `config.json` text.
    /// - Throws: `invalidConfig` naming the field that has the wrong type or an impossible value.
    public init(json: JSONValue) throws(CheckpointError) {
        guard let o = json.objectValue else { throw CheckpointError(.invalidConfig, "config is not a JSON object") }
        raw = o
        func int(_ key: String) throws(CheckpointError) -> Int? {
            guard let v = o[key], !v.isNull else { return nil }
            guard let i = v.intValue, i >= 0 else {
                throw CheckpointError(.invalidConfig, "\(key) is \(v.serialized()), not a non-negative integer")
            }
            return i
        }
        func double(_ key: String, in obj: JSONObject) throws(CheckpointError) -> Double? {
            guard let v = obj[key], !v.isNull else { return nil }
            guard let d = v.doubleValue else { throw CheckpointError(.invalidConfig, "\(key) is \(v.serialized()), not a number") }
            return d
        }
        func string(_ key: String) throws(CheckpointError) -> String? {
            guard let v = o[key], !v.isNull else { return nil }
            guard let s = v.stringValue else { throw CheckpointError(.invalidConfig, "\(key) is \(v.serialized()), not a string") }
            return s
        }
        func bool(_ key: String) throws(CheckpointError) -> Bool? {
            guard let v = o[key], !v.isNull else { return nil }
            guard let b = v.boolValue else { throw CheckpointError(.invalidConfig, "\(key) is \(v.serialized()), not true or false") }
            return b
        }
        modelType = try string("model_type")
        if let a = o["architectures"], !a.isNull {
            guard let arr = a.arrayValue, arr.allSatisfy({ $0.stringValue != nil }) else {
                throw CheckpointError(.invalidConfig, "architectures is not a list of names")
            }
            architectures = arr.compactMap(\.stringValue)
        } else {
            architectures = []
        }
        numHiddenLayers = try int("num_hidden_layers")
        hiddenSize = try int("hidden_size")
        numAttentionHeads = try int("num_attention_heads")
        numKeyValueHeads = try int("num_key_value_heads") ?? numAttentionHeads
        intermediateSize = try int("intermediate_size")
        vocabSize = try int("vocab_size")
        maxPositionEmbeddings = try int("max_position_embeddings")
        rmsNormEps = try double("rms_norm_eps", in: o)
        if let d = try string("torch_dtype") { torchDtype = d } else { torchDtype = try string("dtype") }
        hiddenAct = try string("hidden_act")
        attentionBias = try bool("attention_bias") ?? (modelType == "qwen2")   // Qwen2Config has biases and no key
        mlpBias = try bool("mlp_bias") ?? false
        tieWordEmbeddings = try bool("tie_word_embeddings") ?? !ModelConfiguration.transformersUntiedByDefault.contains(modelType ?? "")
        bosTokenId = try int("bos_token_id")
        if let e = o["eos_token_id"], !e.isNull {
            if let i = e.intValue { eosTokenIds = [i] }
            else if let arr = e.arrayValue, arr.allSatisfy({ $0.intValue != nil }) { eosTokenIds = arr.compactMap(\.intValue) }
            else { throw CheckpointError(.invalidConfig, "eos_token_id is \(e.serialized()), not an id or a list of ids") }
        } else {
            eosTokenIds = []
        }
        // RoPE: transformers 4 uses rope_theta + rope_scaling; transformers 5 rope_parameters.
        var theta = try double("rope_theta", in: o)
        var scaling: JSONObject? = nil
        for key in ["rope_scaling", "rope_parameters"] {
            guard let v = o[key], !v.isNull else { continue }
            guard let so = v.objectValue else { throw CheckpointError(.invalidConfig, "\(key) is \(v.serialized()), not an object") }
            if theta == nil { theta = try double("rope_theta", in: so) }
            var rest = so
            rest["rope_theta"] = nil
            let type = rest["rope_type"]?.stringValue ?? rest["type"]?.stringValue
            if rest.isEmpty || (rest.count == 1 && type == "default") { continue }
            if let type, !["default", "longrope"].contains(type), rest["factor"]?.doubleValue == nil {
                throw CheckpointError(.invalidConfig, "\(key) of type \(type) must contain a numeric 'factor'")
            }
            scaling = rest
        }
        ropeScaling = scaling
        ropeTheta = theta ?? (modelType == nil ? nil : 10_000)
        headDim = try int("head_dim")
        if headDim == nil, let h = hiddenSize, let n = numAttentionHeads, n > 0 {
            guard h % n == 0 else {
                throw CheckpointError(.invalidConfig, "hidden_size \(h) is not divisible by num_attention_heads \(n), and no head_dim is given")
            }
            headDim = h / n
        }
        if let n = numAttentionHeads, let kv = numKeyValueHeads {
            guard kv > 0, n % kv == 0 else {
                throw CheckpointError(.invalidConfig, "num_attention_heads \(n) is not a multiple of num_key_value_heads \(kv)")
            }
        }
    }

    /// Reads and parses a `config.json` file.
    public init(path: String) throws(CheckpointError) {
        let bytes = try FileSystem.readFile(path, limit: 64 << 20)
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch {
            throw CheckpointError(.invalidConfig, "config is not valid JSON: \(error.message)", path: path)
        }
        do { try self.init(json: json) } catch { throw error.inFile(path) }
    }

    /// The summary `inspect --json` prints under `config`.
    public var summary: JSONValue {
        func opt(_ i: Int?) -> JSONValue { i.map { .int(Int64($0)) } ?? .null }
        return .object(JSONObject([
            ("model_type", modelType.map { .string($0) } ?? .null),
            ("architectures", .array(architectures.map { .string($0) })),
            ("num_hidden_layers", opt(numHiddenLayers)),
            ("hidden_size", opt(hiddenSize)),
            ("num_attention_heads", opt(numAttentionHeads)),
            ("num_key_value_heads", opt(numKeyValueHeads)),
            ("head_dim", opt(headDim)),
            ("intermediate_size", opt(intermediateSize)),
            ("vocab_size", opt(vocabSize)),
            ("tie_word_embeddings", .bool(tieWordEmbeddings)),
            ("rope_theta", ropeTheta.map { .double($0) } ?? .null),
            ("rope_scaling", ropeScaling.map { .object($0) } ?? .null),
            ("rms_norm_eps", rmsNormEps.map { .double($0) } ?? .null),
            ("max_position_embeddings", opt(maxPositionEmbeddings)),
            ("torch_dtype", torchDtype.map { .string($0) } ?? .null),
        ]))
    }
}
