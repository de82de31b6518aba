import CheckpointCore
import ModelArchitecture
import ShearsJSON

/// Converts a GGUF file of a supported family (``ModelFamilies``) into a Hugging Face model folder: safetensors weights
/// (dequantized, renamed, Q/K rows un-permuted), `config.json`, `generation_config.json`,
/// `tokenizer.json` and `tokenizer_config.json`.
public enum GGUFToHuggingFace {
    public struct Options {
        /// Output dtype; nil picks ``defaultDType(_:)``.
        public var dtype: DType?
        /// Bytes of tensor data per shard, or nil for one file.
        public var maxShardSize: Int?
        /// Accept values that overflow a narrower dtype (they become ±inf) instead of failing.
        public var allowOverflow = false
        /// Called after each tensor with the source bytes done so far.
        public var progress: ((Int) -> Void)?
        public init(dtype: DType? = nil, maxShardSize: Int? = nil, allowOverflow: Bool = false, progress: ((Int) -> Void)? = nil) {
            self.dtype = dtype
            self.maxShardSize = maxShardSize
            self.allowOverflow = allowOverflow
            self.progress = progress
        }
    }

    /// What a conversion wrote.
    public struct Report: Sendable {
        public var dtype: DType
        public var files: [String]
        public var tensorCount: Int
        public var warnings: [String]
    }

    /// One output tensor: where it comes from and how it is transformed.
    public struct TensorPlan: Sendable {
        /// The GGUF tensor; nil for an all-zero bias that the file leaves out (a llama folder with
        /// `attention_bias`/`mlp_bias` needs one on every projection).
        public var source: GGUFTensorInfo?
        public var spec: TensorSpec
        /// Head count for the rotary un-permutation, when this is a permuted Q or K projection.
        public var permuteHeads: Int?
        /// Added to every value (-1 for Gemma's norms, which llama.cpp stores as 1 + w).
        public var offset: Float = 0
    }

    /// F32 when any tensor is quantized; otherwise the type of the token embedding (the bulk of a
    /// float GGUF: F16 or BF16, with F32 norms), F32 when there is none.
    public static func defaultDType(_ f: GGUFFile) -> DType {
        if f.tensors.contains(where: { $0.type.isQuantized }) { return .f32 }
        let main = f.tensorInfo(named: "token_embd.weight") ?? f.tensors.max(by: { $0.byteCount < $1.byteCount })
        return main.flatMap { Dequantize.plainDType($0.type) }.flatMap { $0.isFloatingPoint ? $0 : nil } ?? .f32
    }

    /// GGUF tensors that have no Hugging Face counterpart (derived from the config on load).
    public static let derivedTensors: Set<String> = ["rope_freqs.weight"]

    /// Maps every tensor to its Hugging Face name (through the family: GGUF name → role → name),
    /// shape and transformation.
    /// - Throws: `unsupportedArchitecture` naming a tensor the family has no Hugging Face name for;
    ///   `shapeMismatch` when a Q/K projection does not split into its heads.
    public static func plan(_ f: GGUFFile, _ md: GGUFModelMetadata, dtype: DType) throws(CheckpointError) -> (tensors: [TensorPlan], warnings: [String]) {
        let family = md.family
        var out: [TensorPlan] = []
        var warnings: [String] = []
        for t in f.tensors {
            if derivedTensors.contains(t.name) {
                warnings.append("\(t.name) is not written: transformers derives rope frequencies from config.json (check rope_scaling)")
                continue
            }
            if let r = family.gguf.longRopeFactorTensors, t.name == r.short + ".weight" || t.name == r.long + ".weight" {
                continue  // longrope's factors: config.json's rope_parameters (GGUFModelMetadata)
            }
            // A fused tensor (Phi-3's attn_qkv, ffn_up): the same rows under the Hugging Face name.
            if let (fused, layer, kind) = family.gguf.fusedReference(of: t.name) {
                guard kind == .weight || family.tensors.layer.contains(where: { $0.fused?.name == fused && $0.mayHaveBias }) else {
                    throw CheckpointError(.unsupportedArchitecture, "no Hugging Face name for this \(md.architecture) tensor (the family's \(fused) has no bias)", path: f.path, tensor: t.name)
                }
                guard t.type.canDequantize else {
                    throw CheckpointError(.unsupportedQuantization, "cannot decode ggml type \(t.type.name)", path: f.path, tensor: t.name)
                }
                out.append(TensorPlan(source: t, spec: TensorSpec(name: family.tensors.fusedName(fused, kind, layer: layer), dtype: dtype, shape: t.shape), permuteHeads: nil))
                continue
            }
            // The Hugging Face side must have the tensor too (a norm or embedding has no bias).
            guard let ref = family.gguf.reference(of: t.name), family.tensors.reference(of: family.tensors.name(ref)) == ref else {
                throw CheckpointError(.unsupportedArchitecture, "no Hugging Face name for this \(md.architecture) tensor", path: f.path, tensor: t.name)
            }
            let hf = family.tensors.name(ref)
            guard t.type.canDequantize else {
                throw CheckpointError(.unsupportedQuantization, "cannot decode ggml type \(t.type.name)", path: f.path, tensor: t.name)
            }
            var heads: Int? = nil
            if family.gguf.permutesQueryKey, ref.role == .query || ref.role == .key {
                let s = md.sizes(ofLayer: min(ref.layer ?? 0, max(md.layers - 1, 0)))
                heads = ref.role == .query ? s.numAttentionHeads : s.numKeyValueHeads
                try RotaryPermutation.validate(rows: t.shape.first ?? 0, heads: heads!, tensor: t.name)
            }
            var p = TensorPlan(source: t, spec: TensorSpec(name: hf, dtype: dtype, shape: t.shape), permuteHeads: heads)
            if family.gguf.normWeightsPlusOne && ref.kind == .weight && family.tensors.declaration(ref.role).isVector { p.offset = -1 }
            out.append(p)
        }
        // A LLaMA folder with attention_bias / mlp_bias needs every projection's bias (LlamaConfig
        // switches them per group; Mistral's and Qwen2's configs do not): zeros where the file has
        // none (writers leave all-zero biases out).
        if family is LlamaFamily && (md.attentionBias || md.mlpBias) {
            let have = Set(out.map(\.spec.name))
            var added: [TensorPlan] = []
            for l in 0..<md.layers {
                let s = md.sizes(ofLayer: l)
                var wanted: [(TensorRole, Int)] = []
                if md.attentionBias {
                    wanted += [(.query, s.numAttentionHeads * md.headDim), (.key, s.numKeyValueHeads * md.headDim),
                               (.value, s.numKeyValueHeads * md.headDim), (.output, md.hiddenSize)]
                }
                if md.mlpBias {
                    wanted += [(.gate, s.intermediateSize), (.up, s.intermediateSize), (.down, md.hiddenSize)]
                }
                for (role, n) in wanted {
                    let name = family.tensors.name(role, .bias, layer: l)
                    if have.contains(name) { continue }
                    added.append(TensorPlan(source: nil, spec: TensorSpec(name: name, dtype: dtype, shape: [n]), permuteHeads: nil))
                }
            }
            out += added
        }
        return (out, warnings)
    }

    /// The bytes of one output tensor.
    public static func tensorBytes(_ f: GGUFFile, _ p: TensorPlan, allowOverflow: Bool) throws(CheckpointError) -> [UInt8] {
        guard let t = p.source else { return [UInt8](repeating: 0, count: try p.spec.byteCount()) }
        let rows = t.shape.first ?? 1
        // Same encoding, no permutation: the bytes as they are.
        if p.permuteHeads == nil, p.offset == 0, Dequantize.plainDType(t.type) == p.spec.dtype {
            return f.withUnsafeBytes(of: t) { Array($0) }
        }
        var values = try f.floats(t)
        if p.offset != 0 { for i in values.indices { values[i] += p.offset } }
        if let heads = p.permuteHeads {
            RotaryPermutation.permute(&values, rows: rows, heads: heads, direction: .toHuggingFace)
        }
        return try encode(values, as: p.spec.dtype, allowOverflow: allowOverflow, path: f.path, tensor: p.spec.name)
    }

    /// Encodes floats as `dtype`, failing on overflow unless allowed.
    public static func encode(_ values: [Float], as dtype: DType, allowOverflow: Bool, path: String? = nil, tensor: String? = nil) throws(CheckpointError) -> [UInt8] {
        if dtype == .f32 { return values.withUnsafeBytes { Array($0) } }
        guard let width = dtype.byteSize else {
            throw CheckpointError(.unsupportedConversion, "cannot encode \(dtype.rawValue)", path: path, tensor: tensor)
        }
        let r: Result<[UInt8], CheckpointError> = values.withUnsafeBufferPointer { src in
            if !allowOverflow, let i = DTypeRange.firstOverflow(src, as: dtype) {
                return .failure(CheckpointError(.unrepresentableValue, "element \(i) is \(src[i]), outside the range of \(dtype.rawValue); pass --allow-overflow to write it as infinity", path: path, tensor: tensor))
            }
            var out = [UInt8](repeating: 0, count: src.count * width)
            let e = out.withUnsafeMutableBytes { dst in Result { () throws(CheckpointError) in try DTypeConversion.encode(src, as: dtype, into: dst) } }
            return e.map { out }
        }
        return try r.get()
    }

    /// Reusable buffers for the tensor loop, grown to the largest tensor, so that converting a
    /// model allocates (and page-faults) them once instead of once per tensor. Owns its memory.
    final class Scratch {
        private(set) var decoded = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
        private(set) var permuted = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
        private(set) var bytes = UnsafeMutableRawBufferPointer(start: nil, count: 0)

        /// Makes room for `elements` floats (twice, when `permute`) and `byteCount` output bytes.
        func reserve(elements: Int, byteCount: Int, permute: Bool) {
            if decoded.count < elements { decoded.deallocate(); decoded = .allocate(capacity: elements) }
            if permute, permuted.count < elements { permuted.deallocate(); permuted = .allocate(capacity: elements) }
            if bytes.count < byteCount { bytes.deallocate(); bytes = .allocate(byteCount: byteCount, alignment: 64) }
        }

        deinit {
            decoded.deallocate()
            permuted.deallocate()
            bytes.deallocate()
        }
    }

    /// Encodes one tensor (in scratch buffers unless the bytes can be used as they are) and calls
    /// `body` with its bytes. Do not let the pointer escape.
    static func withTensorBytes(_ f: GGUFFile, _ p: TensorPlan, scratch: Scratch, allowOverflow: Bool,
                                _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Void) throws(CheckpointError) {
        guard let t = p.source else {
            // An all-zero tensor (the bit pattern of 0 is zero in every float dtype).
            let size = try p.spec.byteCount()
            scratch.reserve(elements: 0, byteCount: size, permute: false)
            let out = UnsafeMutableRawBufferPointer(rebasing: scratch.bytes[0..<size])
            out.initializeMemory(as: UInt8.self, repeating: 0)
            try body(UnsafeRawBufferPointer(out))
            return
        }
        let n = t.elementCount
        let rows = t.shape.first ?? 1
        if p.permuteHeads == nil, p.offset == 0, Dequantize.plainDType(t.type) == p.spec.dtype {
            try f.withUnsafeBytes(of: t, body)  // same encoding: straight from the mapping
            return
        }
        let width = p.spec.dtype.byteSize!
        scratch.reserve(elements: n, byteCount: n * width, permute: p.permuteHeads != nil)
        let decoded = UnsafeMutableBufferPointer(rebasing: scratch.decoded[0..<n])
        try f.dequantize(t, into: decoded)
        if p.offset != 0 { for i in decoded.indices { decoded[i] += p.offset } }
        var values = UnsafeBufferPointer(decoded)
        if let heads = p.permuteHeads {
            let permuted = UnsafeMutableBufferPointer(rebasing: scratch.permuted[0..<n])
            RotaryPermutation.permuteRows(UnsafeRawBufferPointer(values), into: UnsafeMutableRawBufferPointer(permuted),
                                          rows: rows, heads: heads, direction: .toHuggingFace)
            values = UnsafeBufferPointer(permuted)
        }
        if !allowOverflow, let i = DTypeRange.firstOverflow(values, as: p.spec.dtype) {
            throw CheckpointError(.unrepresentableValue, "element \(i) is \(values[i]), outside the range of \(p.spec.dtype.rawValue); pass --allow-overflow to write it as infinity", path: f.path, tensor: p.spec.name)
        }
        let out = UnsafeMutableRawBufferPointer(rebasing: scratch.bytes[0..<(n * width)])
        try DTypeConversion.encode(values, as: p.spec.dtype, into: out)
        try body(UnsafeRawBufferPointer(out))
    }

    /// Streams the tensors into one file or shards (``ShardedWriter``), reusing one set of buffers.
    static func writeTensors(_ f: GGUFFile, _ plans: [TensorPlan], folder: String, options: Options) throws(CheckpointError) -> [String] {
        let byName = Dictionary(uniqueKeysWithValues: plans.map { ($0.spec.name, $0) })
        let scratch = Scratch()
        var done = 0
        return try ShardedWriter.stream(folder: folder, tensors: plans.map(\.spec), maxShardSize: options.maxShardSize) { (spec, write) throws(CheckpointError) in
            let p = byName[spec.name]!
            try withTensorBytes(f, p, scratch: scratch, allowOverflow: options.allowOverflow, write)
            done += p.source?.byteCount ?? 0
            options.progress?(done)
        }
    }

    /// Writes the Hugging Face folder for `f` into `folder` (created if needed).
    public static func convert(_ f: GGUFFile, to folder: String, options: Options = Options()) throws(CheckpointError) -> Report {
        let md = try GGUFModelMetadata(gguf: f)
        try md.checkHuggingFaceLayers(path: f.path)
        let dtype = options.dtype ?? defaultDType(f)
        guard dtype == .f32 || dtype == .f16 || dtype == .bf16 else {
            throw CheckpointError(.unsupportedConversion, "Hugging Face output dtype must be f32, f16 or bf16, not \(dtype.rawValue)")
        }
        var (plans, warnings) = try plan(f, md, dtype: dtype)
        if md.tiedEmbeddings == false && f.tensorInfo(named: "output.weight") == nil {
            warnings.append("output.weight is missing")
        }
        let files = try writeTensors(f, plans, folder: folder, options: options)
        var written = files
        try AtomicFile.write(md.configJSON(dtype: dtype).serializedBytes(style: .pretty) + [0x0A], to: FileSystem.join(folder, "config.json"))
        written.append(FileSystem.join(folder, "config.json"))
        var generation = JSONObject()
        if let b = md.bosTokenId { generation["bos_token_id"] = .int(Int64(b)) }
        if let e = md.eosTokenId { generation["eos_token_id"] = .int(Int64(e)) }
        if let p = md.padTokenId { generation["pad_token_id"] = .int(Int64(p)) }
        try AtomicFile.write(JSONValue.object(generation).serializedBytes(style: .pretty) + [0x0A], to: FileSystem.join(folder, "generation_config.json"))
        written.append(FileSystem.join(folder, "generation_config.json"))
        do {
            let tok = try GGUFTokenizer(gguf: f)
            let json = try tok.tokenizerJSON()
            try AtomicFile.write(json.serializedBytes(style: .compact), to: FileSystem.join(folder, "tokenizer.json"))
            try AtomicFile.write(tok.tokenizerConfigJSON(contextLength: md.contextLength).serializedBytes(style: .pretty) + [0x0A],
                                 to: FileSystem.join(folder, "tokenizer_config.json"))
            written += [FileSystem.join(folder, "tokenizer.json"), FileSystem.join(folder, "tokenizer_config.json")]
        } catch where error.code == .unsupportedConversion || error.code == .ggufMissingKey {
            warnings.append("no tokenizer.json written: \(error.message)")
        }
        return Report(dtype: dtype, files: written, tensorCount: plans.count, warnings: warnings)
    }
}
