import CheckpointCore
import ModelArchitecture
import ShearsJSON

/// Converts a Hugging Face folder of a supported family (``ModelFamilies``; safetensors +
/// `config.json`, optionally `tokenizer.json` and `tokenizer_config.json`) into one GGUF file:
/// names mapped through the family, Q/K rows permuted for llama.cpp's interleaved rotary where the
/// family's GGUF architecture wants it, architecture and tokenizer metadata.
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
        /// The family's GGUF architecture, or `deci` (per-layer sizes).
        public var architecture: String
        /// The blocks as written.
        public var layout: GGUFLayerLayout
    }

    /// One output tensor and where it comes from.
    struct Plan {
        /// The source tensor; nil for a tensor written as zeros (the MLP of a layer that has none).
        var hfName: String?
        var spec: GGUFWriter.TensorSpec
        var permuteHeads: Int?
        var order: (Int, Int, Int)
        /// Added to every value (+1 for Gemma's norms: llama.cpp stores 1 + w).
        var offset: Float = 0
        /// The values of a tensor made from config.json (Phi-3's longrope factors), written as F32.
        var values: [Float]? = nil
    }

    /// llama.cpp's order of a block's tensors (`convert_hf_to_gguf.py`'s): the norms, the attention
    /// weights, their biases, the per-head q/k norms, the MLP weights, their biases.
    static let blockOrder: [TensorReference] =
        TensorRole.layerNorms.map { TensorReference($0) }
        + TensorRole.attentionProjections.map { TensorReference($0) } + TensorRole.attentionProjections.map { TensorReference($0, .bias) }
        + [TensorReference(.queryNorm), TensorReference(.keyNorm)]
        + TensorRole.mlpProjections.map { TensorReference($0) } + TensorRole.mlpProjections.map { TensorReference($0, .bias) }

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
    ///
    /// A folder whose layers differ in size (`*_per_layer` lists or `per_layer_config` in
    /// config.json, as `shears prune` writes them) is written with llama.cpp's `deci` architecture
    /// (see ``GGUFLayerLayout``); otherwise with the family's (``GGUFNaming/architecture``).
    public static func convert(folder: String, to path: String, options: Options = Options()) throws(CheckpointError) -> Report {
        let ckpt = try Checkpoint.open(folder)
        guard let configPath = ckpt.configPath else {
            throw CheckpointError(.invalidConfig, "no config.json next to the checkpoint; it is needed to write GGUF metadata", path: folder)
        }
        let cfg = try ModelConfiguration(path: configPath)
        // A config without model_type is read as LLaMA.
        let modelType = cfg.modelType ?? LlamaFamily().modelType
        guard let family = ModelFamilies.family(modelType: modelType) else {
            throw CheckpointError(.unsupportedArchitecture, "model_type '\(modelType)' is not supported for GGUF output; supported: \(ModelFamilies.modelTypes.joined(separator: ", "))", path: configPath)
        }
        guard GGUFModelMetadata.readsFusedTensors(family) else {
            throw CheckpointError(.unsupportedConversion, "model_type '\(modelType)' has fused tensors that have no llama.cpp name; use llama.cpp's convert_hf_to_gguf.py", path: configPath)
        }
        let fused = !family.gguf.fusedNames.isEmpty
        let names = family.tensors, ggufNames = family.gguf
        if family is Gemma3Family {
            throw CheckpointError(.unsupportedConversion, "a Gemma3ForConditionalGeneration folder holds a vision tower that llama.cpp keeps in a separate mmproj file; GGUF output of its language model is not supported; convert a Gemma3ForCausalLM (gemma3_text) folder", path: configPath)
        }
        // Gemma, Phi-3: the description holds what the config's defaults and spellings resolve to.
        var gemma: ModelDescription? = nil, phi3: ModelDescription? = nil
        if family.blocks.isGemma || fused {
            let d: ModelDescription
            do { d = try family.describe(cfg) } catch { throw error.inFile(configPath) }
            if family.blocks.isGemma { gemma = d } else { phi3 = d }
        }
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
        let headDim = gemma?.headDim ?? cfg.headDim ?? hidden / heads
        if let g = gemma {
            // llama.cpp scales Gemma's attention by head_dim^-0.5 (hidden / heads for the 27B models)
            // and reads no query_pre_attn_scalar.
            let big = layers == (modelType == "gemma2" ? 46 : 62)
            let scale = g.attentionScale ?? 1 / Double(headDim).squareRoot()
            let scalar = 1 / (scale * scale)
            let want = Double(big ? hidden / heads : headDim)
            guard abs(scalar - want) <= 1e-6 * want else {
                throw CheckpointError(.unsupportedConversion, "query_pre_attn_scalar is \(Int(scalar.rounded())), but llama.cpp's \(ggufNames.architecture) loader scales attention by \(big ? "(hidden_size / num_attention_heads)" : "head_dim") \(Int(want))^-0.5 and has no key for another scale; this model cannot be written as GGUF", path: configPath)
            }
        }
        _ = try need(cfg.intermediateSize, "intermediate_size")
        let sizes: [LayerSizes]
        do { sizes = try cfg.layerSizes(allowingEmpty: true) } catch { throw error.inFile(configPath) }
        guard sizes.count == layers else {
            throw CheckpointError(.invalidConfig, "num_hidden_layers is \(layers) but \(sizes.count) layer sizes were found", path: configPath)
        }
        let layout: GGUFLayerLayout
        do { layout = try GGUFLayerLayout(sizes: sizes) } catch { throw error.inFile(configPath) }
        let deci = !layout.isUniform
        if deci && fused {
            throw CheckpointError(.unsupportedConversion, "per-layer widths of a \(modelType) model cannot be written as GGUF: llama.cpp's \(ggufNames.architecture) loader sizes \(ggufNames.fusedNames.values.sorted().joined(separator: " and ")) and attn_output from one head count and feed-forward length for every block, and deci (which reads per-layer sizes) has no fused tensors; prune with --uniform", path: configPath)
        }
        if ggufNames.queryWidthIsHidden, let s = sizes.first, s.numAttentionHeads * headDim != hidden {
            throw CheckpointError(.unsupportedConversion, "\(s.numAttentionHeads) query heads × head_dim \(headDim) = \(s.numAttentionHeads * headDim) is not hidden_size \(hidden), but llama.cpp's \(ggufNames.architecture) loader sizes the query rows of attn_qkv and attn_output by embedding_length; a \(modelType) model whose heads or hidden channels were pruned cannot be written as GGUF; prune only MLP channels or layers (--strategy block --attention-layers 0:0, or --strategy layer) for llama.cpp", path: configPath)
        }
        if fused, let b = layout.blocks.first(where: \.zeroMLP) {
            throw CheckpointError(.unsupportedConversion, "layer \(b.source) has no MLP channels; llama.cpp's \(ggufNames.architecture) loader reads one feed-forward length for every block and the fused ffn_up cannot be written empty; keep MLP channels in every layer", path: configPath)
        }
        if deci && family.blocks != .llama {
            throw CheckpointError(.unsupportedConversion, "per-layer widths of a \(modelType) model cannot be written as GGUF: llama.cpp's \(ggufNames.architecture) loader reads one head count and MLP width for every block, and deci (which reads per-layer sizes) runs LLaMA blocks, without this family's layers (\(family.blocks.queryKeyNorm ? "per-head q/k norms" : "its blocks")); prune with --uniform", path: configPath)
        }
        let arch = deci ? "deci" : ggufNames.architecture
        // Q/K rows are permuted for llama.cpp's interleaved rotary (llama, deci); qwen2 uses NeoX
        // rotary unpermuted. Hugging Face qwen2 rotates like llama, so deci permutes it too.
        let permutes = deci || ggufNames.permutesQueryKey
        // All-zero biases carry nothing; they are left out for llama.cpp's llama and deci loaders,
        // which take every bias as optional (qwen2 requires its q/k/v biases).
        let dropsZeroBiases = deci || !ggufNames.requiresBiases
        var warnings = ckpt.warnings
        for l in layout.dropped {
            warnings.append("layer \(l) has neither attention heads nor MLP channels (the identity); it is not written and later layers are renumbered")
        }
        for b in layout.blocks where b.zeroMLP {
            warnings.append("layer \(b.source) has no MLP channels; written with an all-zero MLP of \(GGUFLayerLayout.zeroMLPWidth) channels (llama.cpp skips a block whose feed-forward length is 0)")
        }
        let blockOf = layout.blockOfLayer
        let mainSource = ckpt.entries.first(where: { $0.info.shape.count == 2 }).flatMap { ggmlType($0.info.dtype) } ?? .f32

        // Tensor plan.
        var plans: [Plan] = []
        func chooseType(_ shape: [Int], source: GGMLType, name: String) -> GGMLType {
            var type: GGMLType = shape.count < 2 ? .f32 : (options.type ?? source)
            if type.isQuantized && (shape.last ?? 0) % type.blockSize != 0 {
                warnings.append("\(name): row length \(shape.last ?? 0) is not a multiple of \(type.blockSize); written as F16")
                type = .f16
            }
            return type
        }
        func order(_ g: TensorReference) -> (Int, Int, Int) {
            guard let block = g.layer else { return g.role == .embedding ? (0, 0, 0) : g.role == .finalNorm ? (2, 0, 0) : (3, 0, 0) }
            return (1, block, blockOrder.firstIndex(of: TensorReference(g.role, g.kind)) ?? 99)
        }
        // The GGUF name of a tensor of output block `block` (nil: whole-model).
        func ggufName(_ role: TensorRole, _ kind: ParameterKind = .weight, block: Int?) -> String {
            ggufNames.name(TensorReference(role, kind, layer: block))!
        }
        for e in ckpt.entries {
            let name = e.info.name
            if name.hasSuffix(".rotary_emb.inv_freq") { continue }
            if let (group, layer, kind) = names.fusedReference(of: name) {
                // Phi-3's qkv_proj / gate_up_proj: stored as they are under llama.cpp's name.
                guard kind == .weight, let base = ggufNames.fusedNames[group.name] else {
                    throw CheckpointError(.unsupportedArchitecture, "no GGUF name for this \(modelType) tensor", path: folder, tensor: name)
                }
                guard layer < sizes.count else {
                    throw CheckpointError(.invalidConfig, "tensor of layer \(layer), but the config has \(sizes.count) layers", path: folder, tensor: name)
                }
                let s = sizes[layer]
                let rows = group.blocks.reduce(0) { n, role in
                    n + (role == .query ? s.numAttentionHeads * headDim : role.isAttention ? s.numKeyValueHeads * headDim : s.intermediateSize)
                }
                guard e.info.shape == [rows, hidden] else {
                    throw CheckpointError(.shapeMismatch, "shape \(e.info.shape) does not match layer \(layer)'s sizes in config.json (\(s)); expected \([rows, hidden])", path: folder, tensor: name)
                }
                guard let b = blockOf[layer] else { continue }
                let gName = GGUFNaming.layerPrefix + String(b) + "." + base + ".weight"
                let type = chooseType(e.info.shape, source: ggmlType(e.info.dtype) ?? .f32, name: name)
                plans.append(Plan(hfName: name, spec: GGUFWriter.TensorSpec(name: gName, shape: e.info.shape, type: type), permuteHeads: nil,
                                  order: order(TensorReference(group.blocks[0], layer: b))))
                continue
            }
            guard let ref = names.reference(of: name), ggufNames.name(ref) != nil else {
                throw CheckpointError(.unsupportedArchitecture, "no GGUF name for this \(modelType) tensor", path: folder, tensor: name)
            }
            if ref.role == .lmHead && cfg.tieWordEmbeddings { continue }  // tied: llama.cpp uses token_embd
            let shape = e.info.shape
            let isBias = ref.kind == .bias
            var block: GGUFLayerLayout.Block? = nil
            var blockIndex: Int? = nil
            if let layer = ref.layer {
                guard layer < sizes.count else {
                    throw CheckpointError(.invalidConfig, "tensor of layer \(layer), but the config has \(sizes.count) layers", path: folder, tensor: name)
                }
                let s = sizes[layer]
                let isAttention = ref.role.isAttention
                let isMLP = ref.role.isMLP
                // Shapes against the layer's sizes (llama.cpp checks them on load).
                let q = s.numAttentionHeads * headDim, kv = (s.numAttentionHeads == 0 ? 0 : s.numKeyValueHeads) * headDim, f = s.intermediateSize
                let expected: [Int]? = switch (ref.role, ref.kind) {
                case (.query, .weight): [q, hidden]
                case (.key, .weight), (.value, .weight): [kv, hidden]
                case (.output, .weight): [hidden, q]
                case (.query, .bias): [q]
                case (.key, .bias), (.value, .bias): [kv]
                case (.gate, .weight), (.up, .weight): [f, hidden]
                case (.down, .weight): [hidden, f]
                case (.gate, .bias), (.up, .bias): [f]
                default: nil
                }
                if let expected, shape != expected {
                    throw CheckpointError(.shapeMismatch, "shape \(shape) does not match layer \(layer)'s sizes in config.json (\(s)); expected \(expected)", path: folder, tensor: name)
                }
                guard let b = blockOf[layer] else {
                    // A dropped layer is the identity only if it adds no bias either.
                    if isBias, try ckpt.tensor(named: name).floats().contains(where: { $0 != 0 }) {
                        throw CheckpointError(.unsupportedConversion, "layer \(layer) has neither attention heads nor MLP channels but a non-zero bias (as prune --recover bias|ls|anchored-ls writes); llama.cpp cannot express it; prune with --recover none or keep a unit in that layer", path: folder, tensor: name)
                    }
                    continue
                }
                block = layout.blocks[b]
                blockIndex = b
                if isAttention && !block!.hasAttention && !isBias { continue }  // empty [0, h] tensors
                if isMLP && block!.zeroMLP && !(ref.role == .down && isBias) { continue }  // replaced by the zero MLP
                if ref.role == .inputNorm && !block!.hasAttention { continue }  // attention-free block has no norm
                if isBias {
                    let values = try ckpt.tensor(named: name).floats()
                    if dropsZeroBiases && values.allSatisfy({ $0 == 0 }) { continue }
                    if ref.role == .output && !block!.hasAttention {
                        throw CheckpointError(.unsupportedConversion, "layer \(layer) has no attention heads but a non-zero attention output-projection bias (as prune --recover bias|ls|anchored-ls writes); llama.cpp's attention-free deci blocks apply no bias, so this model cannot be written as GGUF; prune with --recover none or keep at least one head in that layer", path: folder, tensor: name)
                    }
                }
            }
            let g = TensorReference(ref.role, ref.kind, layer: blockIndex)
            let gName = ggufNames.name(g)!
            let type = chooseType(shape, source: ggmlType(e.info.dtype) ?? .f32, name: name)
            var permuteHeads: Int? = nil
            if permutes, ref.role == .query || ref.role == .key {
                let s = sizes[block?.source ?? 0]
                permuteHeads = ref.role == .query ? s.numAttentionHeads : s.numKeyValueHeads
                try RotaryPermutation.validate(rows: shape.first ?? 0, heads: permuteHeads!, tensor: name)
            }
            var plan = Plan(hfName: name, spec: GGUFWriter.TensorSpec(name: gName, shape: shape, type: type), permuteHeads: permuteHeads, order: order(g))
            if ggufNames.normWeightsPlusOne && ref.kind == .weight && names.declaration(ref.role).isVector { plan.offset = 1 }
            plans.append(plan)
        }
        // The all-zero MLP of layers that have none (and a zero norm when the folder has none).
        for (b, block) in layout.blocks.enumerated() where block.zeroMLP {
            let w = GGUFLayerLayout.zeroMLPWidth
            let zeroMLP: [(TensorRole, [Int])] = [(.gate, [w, hidden]), (.up, [w, hidden]), (.down, [hidden, w])]
            for (role, shape) in zeroMLP {
                let g = ggufName(role, block: b)
                plans.append(Plan(hfName: nil, spec: GGUFWriter.TensorSpec(name: g, shape: shape, type: chooseType(shape, source: mainSource, name: g)), permuteHeads: nil, order: order(TensorReference(role, layer: b))))
            }
            let norm = ggufName(.postAttentionNorm, block: b)
            if !plans.contains(where: { $0.spec.name == norm }) {
                plans.append(Plan(hfName: nil, spec: GGUFWriter.TensorSpec(name: norm, shape: [hidden], type: .f32), permuteHeads: nil, order: order(TensorReference(.postAttentionNorm, layer: b))))
            }
        }
        plans.sort { $0.order < $1.order }
        let mainType = plans.first(where: { $0.spec.dimensions.count == 2 })?.spec.type ?? .f32
        if deci { warnings += layout.quantizationWarnings }

        // Metadata.
        var md: [(key: String, value: GGUFValue)] = []
        md.append(("general.architecture", .string(GGUFString(arch))))
        md.append(("general.type", .string(GGUFString("model"))))
        md.append(("general.name", .string(GGUFString(options.name ?? FileSystem.baseName(ckpt.folder)))))
        md.append(("general.file_type", .uint32(fileType(mainType))))
        if plans.contains(where: { $0.spec.type.isQuantized }) { md.append(("general.quantization_version", .uint32(2))) }
        md.append(("\(arch).context_length", .uint32(try u32(cfg.maxPositionEmbeddings ?? 2048, "max_position_embeddings"))))
        md.append(("\(arch).embedding_length", .uint32(try u32(hidden, "hidden_size"))))
        md.append(("\(arch).block_count", .uint32(try u32(layout.blocks.count, "num_hidden_layers"))))
        if deci {
            // Per-block counts as int32 arrays (as the Python gguf package writes a list of ints).
            func array(_ key: String, _ values: [Int]) throws(CheckpointError) -> GGUFValue {
                var items: [GGUFValue] = []
                for v in values {
                    guard let i = Int32(exactly: v) else { throw CheckpointError(.invalidConfig, "\(key) \(v) is outside the int32 range", path: configPath) }
                    items.append(.int32(i))
                }
                return .array(.int32, items)
            }
            md.append(("deci.feed_forward_length", try array("intermediate_size", layout.blocks.map(\.feedForward))))
            md.append(("deci.rope.dimension_count", .uint32(try u32(headDim, "head_dim"))))
            md.append(("deci.attention.head_count", try array("num_attention_heads", layout.blocks.map(\.heads))))
            md.append(("deci.attention.head_count_kv", try array("num_key_value_heads", layout.blocks.map(\.kvHeads))))
        } else {
            md.append(("\(arch).feed_forward_length", .uint32(try u32(sizes[0].intermediateSize, "intermediate_size"))))
            md.append(("\(arch).rope.dimension_count", .uint32(try u32(phi3?.rotaryDimensions ?? headDim, "head_dim"))))
            md.append(("\(arch).attention.head_count", .uint32(try u32(sizes[0].numAttentionHeads, "num_attention_heads"))))
            md.append(("\(arch).attention.head_count_kv", .uint32(try u32(sizes[0].numKeyValueHeads, "num_key_value_heads"))))
        }
        md.append(("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(phi3?.rmsNormEps ?? cfg.rmsNormEps ?? 1e-6))))
        md.append(("\(arch).rope.freq_base", .float32(Float(gemma?.ropeTheta ?? phi3?.ropeTheta ?? cfg.ropeTheta ?? 10_000))))
        if let g = gemma {
            md += try gemmaMetadata(g, arch: arch, path: configPath)
        }
        // deci: always, or llama.cpp derives the head size from block 0's head count (Gemma: always,
        // as llama.cpp's converter writes it).
        if deci || gemma != nil || headDim != hidden / sizes[0].numAttentionHeads {
            md.append(("\(arch).attention.key_length", .uint32(try u32(headDim, "head_dim"))))
            md.append(("\(arch).attention.value_length", .uint32(try u32(headDim, "head_dim"))))
        }
        if let p = phi3 {
            let (keys, tensors) = try phi3Metadata(p, config: cfg, arch: arch, path: configPath)
            md += keys
            plans += tensors
            plans.sort { $0.order < $1.order }
        } else if let g = gemma {
            if case .linear(let f) = g.rotaryScaling {
                md.append(("\(arch).rope.scaling.type", .string(GGUFString("linear"))))
                md.append(("\(arch).rope.scaling.factor", .float32(Float(f))))
            } else if g.rotaryScaling != .none {
                throw CheckpointError(.unsupportedConversion, "Gemma's full-attention rope scaling \(g.rotaryScaling) has no llama.cpp gemma metadata; only linear scaling can be written", path: configPath)
            }
        } else if let s = cfg.ropeScaling, let type = s["rope_type"]?.stringValue ?? s["type"]?.stringValue {
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
            if let values = p.values {
                try writer.write(try Quantize.encode(values, as: .f32))
                continue
            }
            guard let hfName = p.hfName else {
                try writer.write(try Quantize.encode([Float](repeating: 0, count: p.spec.elementCount), as: p.spec.type))
                continue
            }
            let view = try ckpt.tensor(named: hfName)
            let bytes = try tensorBytes(view, p, allowOverflow: options.allowOverflow)
            try writer.write(bytes)
            done += view.byteCount
            options.progress?(done)
        }
        try writer.finish()
        return Report(tensorCount: plans.count, fileSize: writer.fileSize, warnings: warnings, architecture: arch, layout: layout)
    }

    /// The keys llama.cpp's gemma2 / gemma3 loaders read beyond the common ones: the sliding
    /// window, the per-block sliding flags (when they differ from the loader's default pattern),
    /// the local rope base (when it differs from the loader's default) and the soft-caps.
    /// - Throws: `unsupportedConversion` for what llama.cpp cannot express (a window on some layers
    ///   of differing sizes, local rotary scaling).
    static func gemmaMetadata(_ g: ModelDescription, arch: String, path: String) throws(CheckpointError) -> [(key: String, value: GGUFValue)] {
        var md: [(key: String, value: GGUFValue)] = []
        let gemma2 = arch == "gemma2"
        let windows = Set(g.layerAttention.compactMap(\.slidingWindow))
        guard windows.count <= 1 else {
            throw CheckpointError(.unsupportedConversion, "the sliding layers have different windows \(windows.sorted()); llama.cpp reads one", path: path)
        }
        let w = windows.first ?? 0
        let sliding = (0..<g.layerCount).map { g.attention(ofLayer: $0).isSliding }
        if w > 0 {
            md.append(("\(arch).attention.sliding_window", .uint32(UInt32(clamping: w))))
            let n = gemma2 ? 2 : 6
            if sliding != (0..<g.layerCount).map({ ($0 + 1) % n != 0 }) {
                md.append(("\(arch).attention.sliding_window_pattern", .array(.bool, sliding.map { .bool($0) })))
            }
        } else if gemma2 {
            // gemma2's loader slides every other block by default: say that none does.
            md.append(("\(arch).attention.sliding_window_pattern", .array(.bool, sliding.map { .bool($0) })))
        }
        if let local = g.layerAttention.first(where: \.isSliding) {
            if let s = local.rotaryScaling, s != .none {
                throw CheckpointError(.unsupportedConversion, "the sliding layers' rope scaling \(s) cannot be written for llama.cpp", path: path)
            }
            let base = local.ropeTheta ?? g.ropeTheta
            if base != (gemma2 ? g.ropeTheta : 10_000) { md.append(("\(arch).rope.freq_base_swa", .float32(Float(base)))) }
        }
        if gemma2 {
            guard let a = g.attentionLogitSoftcap, let f = g.finalLogitSoftcap else {
                throw CheckpointError(.unsupportedConversion, "llama.cpp's gemma2 graph always soft-caps attention and final logits (50 and 30 by default); a Gemma 2 without attn_logit_softcapping and final_logit_softcapping cannot be written as GGUF", path: path)
            }
            md.append(("\(arch).attn_logit_softcapping", .float32(Float(a))))
            md.append(("\(arch).final_logit_softcapping", .float32(Float(f))))
        } else {
            if g.attentionLogitSoftcap != nil {
                throw CheckpointError(.unsupportedConversion, "llama.cpp's gemma3 graph applies no attention logit soft-cap; this model's attn_logit_softcapping cannot be written as GGUF", path: path)
            }
            if let f = g.finalLogitSoftcap { md.append(("\(arch).final_logit_softcapping", .float32(Float(f)))) }
        }
        return md
    }

    /// The keys and tensors llama.cpp's phi3 loader reads beyond the common ones (as
    /// `convert_hf_to_gguf.py` Phi3MiniModel writes them): `rope.scaling.original_context_length`,
    /// `attention.sliding_window` (0: none; llama.cpp's phi3 graph runs without it), and for
    /// longrope `rope.scaling.attn_factor` and the F32 tensors `rope_factors_short` /
    /// `rope_factors_long` (rotary dimensions / 2 each), which llama.cpp picks by the context size
    /// as transformers picks by the sequence length.
    /// - Throws: `unsupportedConversion` for rotary scaling llama.cpp's phi3 cannot express.
    static func phi3Metadata(_ d: ModelDescription, config: ModelConfiguration, arch: String, path: String) throws(CheckpointError) -> ([(key: String, value: GGUFValue)], [Plan]) {
        var md: [(key: String, value: GGUFValue)] = []
        var plans: [Plan] = []
        var original = config.raw["original_max_position_embeddings"]?.intValue ?? config.maxPositionEmbeddings ?? 2048
        switch d.rotaryScaling {
        case .none: break
        case .longRope(let short, let long, let attention, let o):
            original = o
            md.append(("\(arch).rope.scaling.attn_factor", .float32(Float(attention))))
            if let names = d.family.gguf.longRopeFactorTensors {
                for (name, values) in [(names.short, short), (names.long, long)] {
                    var p = Plan(hfName: nil, spec: GGUFWriter.TensorSpec(name: name + ".weight", shape: [values.count], type: .f32), permuteHeads: nil, order: (0, 1, 0))
                    p.values = values.map { Float($0) }
                    plans.append(p)
                }
            }
        default:
            throw CheckpointError(.unsupportedConversion, "rope scaling \(d.rotaryScaling) has no llama.cpp \(arch) metadata; only longrope (or none) can be written", path: path)
        }
        guard let o = UInt32(exactly: original) else {
            throw CheckpointError(.invalidConfig, "original_max_position_embeddings \(original) is outside the uint32 range GGUF stores it in", path: path)
        }
        md.append(("\(arch).rope.scaling.original_context_length", .uint32(o)))
        let window = d.layerAttention.compactMap(\.slidingWindow).first ?? 0
        md.append(("\(arch).attention.sliding_window", .uint32(UInt32(clamping: window))))
        return (md, plans)
    }

    static func tensorBytes(_ view: TensorView, _ p: Plan, allowOverflow: Bool) throws(CheckpointError) -> [UInt8] {
        let rows = view.shape.first ?? 1
        if ggmlType(view.dtype) == p.spec.type && p.offset == 0 {
            // Same encoding: the bytes, rows moved if permuted. Exact.
            guard let heads = p.permuteHeads else { return view.bytes() }
            var out = [UInt8](repeating: 0, count: view.byteCount)
            view.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { dst in RotaryPermutation.permuteRows(src, into: dst, rows: rows, heads: heads, direction: .toGGUF) }
            }
            return out
        }
        var values = try view.floats()
        if p.offset != 0 { for i in values.indices { values[i] += p.offset } }
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
        } else { pre = "gpt-2" }  // llama.cpp's name for the GPT-2 split (it rejects "gpt2")
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
