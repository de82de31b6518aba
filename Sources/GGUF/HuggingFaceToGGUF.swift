import CheckpointCore
import ModelArchitecture
import ShearsJSON

/// Converts a llama-family Hugging Face folder (safetensors + `config.json`, optionally
/// `tokenizer.json` and `tokenizer_config.json`) into one GGUF file: names mapped, Q/K rows
/// permuted for llama.cpp's interleaved rotary (not for qwen2), architecture and tokenizer metadata.
public enum HuggingFaceToGGUF {
    public struct Options {
        /// Type of the 2-D weights: F32, F16, BF16 or Q8_0; nil keeps the source type (F32 for
        /// types GGUF has no equal of). 1-D tensors (norms, biases) are always F32.
        public var type: GGMLType?
        public var name: String?
        public var allowOverflow = false
        public var progress: ((Int) -> Void)?
        public init(type: GGMLType? = nil, name: String? = nil, allowOverflow: Bool = false, progress: ((Int) -> Void)? = nil) {
            self.type = type
            self.name = name
            self.allowOverflow = allowOverflow
            self.progress = progress
        }
    }

    public struct Report: Sendable {
        public var tensorCount: Int
        public var fileSize: Int
        public var warnings: [String]
    }

    /// One output tensor and where it comes from.
    struct Plan {
        var hfName: String
        var spec: GGUFWriter.TensorSpec
        var permuteHeads: Int?
        var order: (Int, Int, Int)
    }

    static func ggmlType(_ d: DType) -> GGMLType? {
        switch d {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        default: nil
        }
    }

    /// GGUF `general.file_type` (llama_ftype) for the main weight type.
    static func fileType(_ t: GGMLType) -> UInt32 {
        switch t {
        case .f32: 0
        case .f16: 1
        case .q8_0: 7
        case .bf16: 32
        default: 0
        }
    }

    /// Converts the checkpoint at `folder` (a model folder) to `path`.
    public static func convert(folder: String, to path: String, options: Options = Options()) throws(CheckpointError) -> Report {
        let ckpt = try Checkpoint.open(folder)
        guard let configPath = ckpt.configPath else {
            throw CheckpointError(.invalidConfig, "no config.json next to the checkpoint; it is needed to write GGUF metadata", path: folder)
        }
        let cfg = try ModelConfiguration(path: configPath)
        let modelType = cfg.modelType ?? "llama"
        guard ["llama", "mistral", "qwen2"].contains(modelType) else {
            throw CheckpointError(.unsupportedArchitecture, "model_type '\(modelType)' is not supported for GGUF output; supported: llama, mistral, qwen2", path: configPath)
        }
        let arch = modelType == "qwen2" ? "qwen2" : "llama"
        func need(_ v: Int?, _ key: String) throws(CheckpointError) -> Int {
            guard let v else { throw CheckpointError(.invalidConfig, "\(key) is missing", path: configPath) }
            return v
        }
        // GGUF stores these as uint32.
        func u32(_ v: Int, _ key: String) throws(CheckpointError) -> UInt32 {
            guard let u = UInt32(exactly: v) else {
                throw CheckpointError(.invalidConfig, "\(key) is \(v), outside the uint32 range GGUF stores it in", path: configPath)
            }
            return u
        }
        let hidden = try need(cfg.hiddenSize, "hidden_size")
        let layers = try need(cfg.numHiddenLayers, "num_hidden_layers")
        let heads = try need(cfg.numAttentionHeads, "num_attention_heads")
        let kvHeads = cfg.numKeyValueHeads ?? heads
        guard heads > 0, kvHeads > 0 else {
            throw CheckpointError(.invalidConfig, "num_attention_heads and num_key_value_heads must be positive", path: configPath)
        }
        let headDim = cfg.headDim ?? hidden / heads
        let ffn = try need(cfg.intermediateSize, "intermediate_size")
        var warnings = ckpt.warnings

        // Tensor plan.
        var plans: [Plan] = []
        for e in ckpt.entries {
            let name = e.info.name
            if name.hasSuffix(".rotary_emb.inv_freq") { continue }
            if name == "lm_head.weight" && cfg.tieWordEmbeddings { continue }  // tied: llama.cpp uses token_embd
            guard let g = LlamaTensorNames.ggufName(name) else {
                throw CheckpointError(.unsupportedArchitecture, "no GGUF name for this \(modelType) tensor", path: folder, tensor: name)
            }
            let shape = e.info.shape
            let source = ggmlType(e.info.dtype) ?? .f32
            var type: GGMLType = shape.count < 2 ? .f32 : (options.type ?? source)
            if type.isQuantized && (shape.last ?? 0) % type.blockSize != 0 {
                warnings.append("\(name): row length \(shape.last ?? 0) is not a multiple of \(type.blockSize); written as F16")
                type = .f16
            }
            var heads: Int? = nil
            if arch == "llama", let p = LlamaTensorNames.rotaryProjection(gguf: g) {
                heads = p == .query ? cfg.numAttentionHeads! : kvHeads
                try RotaryPermutation.validate(rows: shape.first ?? 0, heads: heads!, tensor: name)
            }
            let order: (Int, Int, Int)
            if g == "token_embd.weight" { order = (0, 0, 0) }
            else if g == "output_norm.weight" { order = (2, 0, 0) }
            else if g == "output.weight" { order = (3, 0, 0) }
            else {
                let parts = g.split(separator: ".", maxSplits: 2)
                let suffix = String(parts[2])
                order = (1, Int(parts[1]) ?? 0, LlamaTensorNames.layer.firstIndex(where: { $0.0 == suffix }) ?? 99)
            }
            plans.append(Plan(hfName: name, spec: GGUFWriter.TensorSpec(name: g, shape: shape, type: type), permuteHeads: heads, order: order))
        }
        plans.sort { $0.order < $1.order }
        let mainType = plans.first(where: { $0.spec.dimensions.count == 2 })?.spec.type ?? .f32

        // Metadata.
        var md: [(key: String, value: GGUFValue)] = []
        md.append(("general.architecture", .string(GGUFString(arch))))
        md.append(("general.type", .string(GGUFString("model"))))
        md.append(("general.name", .string(GGUFString(options.name ?? FileSystem.baseName(ckpt.folder)))))
        md.append(("general.file_type", .uint32(fileType(mainType))))
        if plans.contains(where: { $0.spec.type.isQuantized }) { md.append(("general.quantization_version", .uint32(2))) }
        md.append(("\(arch).context_length", .uint32(try u32(cfg.maxPositionEmbeddings ?? 2048, "max_position_embeddings"))))
        md.append(("\(arch).embedding_length", .uint32(try u32(hidden, "hidden_size"))))
        md.append(("\(arch).block_count", .uint32(try u32(layers, "num_hidden_layers"))))
        md.append(("\(arch).feed_forward_length", .uint32(try u32(ffn, "intermediate_size"))))
        md.append(("\(arch).rope.dimension_count", .uint32(try u32(headDim, "head_dim"))))
        md.append(("\(arch).attention.head_count", .uint32(try u32(heads, "num_attention_heads"))))
        md.append(("\(arch).attention.head_count_kv", .uint32(try u32(kvHeads, "num_key_value_heads"))))
        md.append(("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(cfg.rmsNormEps ?? 1e-6))))
        md.append(("\(arch).rope.freq_base", .float32(Float(cfg.ropeTheta ?? 10_000))))
        if headDim != hidden / heads {
            md.append(("\(arch).attention.key_length", .uint32(try u32(headDim, "head_dim"))))
            md.append(("\(arch).attention.value_length", .uint32(try u32(headDim, "head_dim"))))
        }
        if let s = cfg.ropeScaling, let type = s["rope_type"]?.stringValue ?? s["type"]?.stringValue {
            if type == "linear" || type == "yarn" {
                md.append(("\(arch).rope.scaling.type", .string(GGUFString(type))))
                if let f = s["factor"]?.doubleValue { md.append(("\(arch).rope.scaling.factor", .float32(Float(f)))) }
                if let o = s["original_max_position_embeddings"]?.intValue, let o32 = UInt32(exactly: o) {
                    md.append(("\(arch).rope.scaling.original_context_length", .uint32(o32)))
                }
            } else {
                warnings.append("rope_scaling type '\(type)' is not written to GGUF metadata (llama.cpp expects a rope_freqs tensor for llama3 scaling)")
            }
        }
        if let v = cfg.vocabSize { md.append(("\(arch).vocab_size", .uint32(try u32(v, "vocab_size")))) }
        do {
            md += try tokenizerMetadata(folder: ckpt.folder, config: cfg, warnings: &warnings)
        } catch {
            warnings.append("no tokenizer metadata written: \(error.message)")
        }

        // Tensors.
        let writer = try GGUFWriter(path: path, metadata: md, tensors: plans.map(\.spec))
        var done = 0
        for p in plans {
            let view = try ckpt.tensor(named: p.hfName)
            let bytes = try tensorBytes(view, p, allowOverflow: options.allowOverflow)
            try writer.write(bytes)
            done += view.byteCount
            options.progress?(done)
        }
        try writer.finish()
        return Report(tensorCount: plans.count, fileSize: writer.fileSize, warnings: warnings)
    }

    static func tensorBytes(_ view: TensorView, _ p: Plan, allowOverflow: Bool) throws(CheckpointError) -> [UInt8] {
        let rows = view.shape.first ?? 1
        if ggmlType(view.dtype) == p.spec.type {
            // Same encoding: the bytes, rows moved if permuted. Exact.
            guard let heads = p.permuteHeads else { return view.bytes() }
            var out = [UInt8](repeating: 0, count: view.byteCount)
            view.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { dst in RotaryPermutation.permuteRows(src, into: dst, rows: rows, heads: heads, direction: .toGGUF) }
            }
            return out
        }
        var values = try view.floats()
        if let heads = p.permuteHeads { RotaryPermutation.permute(&values, rows: rows, heads: heads, direction: .toGGUF) }
        if !allowOverflow, let dt = Dequantize.plainDType(p.spec.type) {
            let bad = values.withUnsafeBufferPointer { DTypeRange.firstOverflow($0, as: dt) }
            if let i = bad {
                throw CheckpointError(.unrepresentableValue, "element \(i) is \(values[i]), outside the range of \(p.spec.type.name); pass --allow-overflow to write it as infinity", path: view.file.path, tensor: view.name)
            }
        }
        do { return try Quantize.encode(values, as: p.spec.type) } catch {
            var e = error
            e.tensor = view.name
            throw e
        }
    }

    /// `tokenizer.ggml.*` keys from a byte-level BPE `tokenizer.json` (and `tokenizer_config.json`).
    static func tokenizerMetadata(folder: String, config: ModelConfiguration, warnings: inout [String]) throws(CheckpointError) -> [(key: String, value: GGUFValue)] {
        let path = FileSystem.join(folder, "tokenizer.json")
        guard FileSystem.isFile(path) else {
            throw CheckpointError(.notACheckpoint, "the folder has no tokenizer.json", path: folder)
        }
        let json: JSONValue
        do { json = try JSONValue.parse(try FileSystem.readFile(path)) } catch let e as CheckpointError { throw e } catch {
            throw CheckpointError(.invalidConfig, "tokenizer.json is not valid JSON: \(error)", path: path)
        }
        var tokConfig: JSONObject? = nil
        let tcPath = FileSystem.join(folder, "tokenizer_config.json")
        if FileSystem.isFile(tcPath) { tokConfig = (try? JSONValue.parse(try FileSystem.readFile(tcPath)))?.objectValue }
        guard let model = json["model"], model["type"]?.stringValue == "BPE", let vocab = model["vocab"]?.objectValue else {
            throw CheckpointError(.unsupportedConversion, "tokenizer.json model is not BPE", path: path)
        }
        let serialized = (json["pre_tokenizer"] ?? .null).serialized() + (json["decoder"] ?? .null).serialized()
        guard serialized.contains("\"ByteLevel\"") else {
            throw CheckpointError(.unsupportedConversion, "only byte-level BPE tokenizers are written to GGUF (this one has no ByteLevel pre-tokenizer or decoder)", path: path)
        }
        var byId: [Int: String] = [:]
        for (token, v) in vocab.members { if let i = v.intValue { byId[i] = token } }
        var special = Set<Int>(), added = Set<Int>()
        for a in json["added_tokens"]?.arrayValue ?? [] {
            guard let i = a["id"]?.intValue, let c = a["content"]?.stringValue else { continue }
            byId[i] = c
            added.insert(i)
            if a["special"]?.boolValue == true { special.insert(i) }
        }
        let count = max((byId.keys.max() ?? -1) + 1, config.vocabSize ?? 0)
        guard count <= 1 << 24, byId.keys.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError(.invalidConfig, "token ids run from \(byId.keys.min() ?? 0) to \(count - 1); expected 0 ..< 16777216", path: path)
        }
        var tokens: [GGUFValue] = []
        var types: [GGUFValue] = []
        tokens.reserveCapacity(count)
        for i in 0..<count {
            if let t = byId[i] {
                tokens.append(.string(GGUFString(t)))
                types.append(.int32(special.contains(i) ? 3 : added.contains(i) ? 4 : 1))
            } else {
                tokens.append(.string(GGUFString("[PAD\(i)]")))
                types.append(.int32(4))
            }
        }
        var merges: [GGUFValue] = []
        for m in model["merges"]?.arrayValue ?? [] {
            if let s = m.stringValue { merges.append(.string(GGUFString(s))) }
            else if let pair = m.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                merges.append(.string(GGUFString(a + " " + b)))
            }
        }
        // The pre-tokenizer name llama.cpp knows this split by.
        let pre: String
        if serialized.contains("\\\\p{N}{1,3}") { pre = "llama-bpe" }
        else if serialized.contains("?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*") && serialized.contains("|\\\\p{N}|") { pre = "qwen2" }
        else if serialized.contains("\"Digits\"") { pre = "smollm" }
        else if serialized.contains("\"Split\"") {
            pre = "default"
            warnings.append("tokenizer.json splits with an expression llama.cpp may not know; tokenizer.ggml.pre is written as 'default'")
        } else { pre = "gpt2" }
        var md: [(key: String, value: GGUFValue)] = [
            ("tokenizer.ggml.model", .string(GGUFString("gpt2"))),
            ("tokenizer.ggml.pre", .string(GGUFString(pre))),
            ("tokenizer.ggml.tokens", .array(.string, tokens)),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
            ("tokenizer.ggml.merges", .array(.string, merges)),
        ]
        var index: [String: Int] = [:]
        for (i, t) in byId { if index[t] == nil || i < index[t]! { index[t] = i } }
        func specialId(_ key: String, fallback: Int?) -> Int? {
            if let v = tokConfig?[key] {
                if let s = v.stringValue ?? v["content"]?.stringValue, let i = index[s] { return i }
                if v.isNull { return nil }
            }
            return fallback
        }
        for (key, id) in [("bos", specialId("bos_token", fallback: config.bosTokenId)), ("eos", specialId("eos_token", fallback: config.eosTokenIds.first)),
                          ("unknown", specialId("unk_token", fallback: nil)), ("padding", specialId("pad_token", fallback: config.raw["pad_token_id"]?.intValue))] {
            if let id, id >= 0, id < count, let u = UInt32(exactly: id) { md.append(("tokenizer.ggml.\(key)_token_id", .uint32(u))) }
        }
        let template = json["post_processor"]
        var addBos = template?["type"]?.stringValue == "TemplateProcessing" && (template?["single"]?.arrayValue?.first?["SpecialToken"] != nil)
        if let flag = tokConfig?["add_bos_token"]?.boolValue, template == nil || template!.isNull { addBos = flag }
        md.append(("tokenizer.ggml.add_bos_token", .bool(addBos)))
        if let t = tokConfig?["chat_template"]?.stringValue { md.append(("tokenizer.chat_template", .string(GGUFString(t)))) }
        return md
    }
}
