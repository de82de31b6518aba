import CheckpointCore
import Engine
import ModelArchitecture
import ShearsJSON

/// A float32 matrix, row-major, with its shape.
public struct LoRAMatrix: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var values: [Float]

    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(rows >= 0 && cols >= 0 && values.count == rows * cols, "values must hold rows × cols floats")
        self.rows = rows
        self.cols = cols
        self.values = values
    }
}

/// A LoRA adapter as plain arrays, as a PEFT folder holds it (the engine's trainable form is
/// ``LoRAAdapters``): for each site (``LoRAKey``), A `[rank, in]` and B `[out, rank]` (PEFT's
/// `lora_A.weight` and `lora_B.weight`), and the update W ← W + (alpha / rank)·B·A.
public struct PEFTAdapter: Sendable, Equatable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    /// The projections adapted, in ``TensorRole/projections`` order.
    public var targets: [TensorRole]
    /// `base_model_name_or_path` (PEFT records where the base model came from; may be nil).
    public var baseModel: String?
    public var a: [LoRAKey: LoRAMatrix]
    public var b: [LoRAKey: LoRAMatrix]

    public init(rank: Int, alpha: Double, dropout: Double, targets: [TensorRole], baseModel: String? = nil,
                a: [LoRAKey: LoRAMatrix] = [:], b: [LoRAKey: LoRAMatrix] = [:]) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = TensorRole.projections.filter { targets.contains($0) }
        self.baseModel = baseModel
        self.a = a
        self.b = b
    }

    /// alpha / rank (PEFT's `scaling` without rsLoRA).
    public var scaling: Double { alpha / Double(rank) }

    /// The sites an adapter with these targets has on `model`: every layer holding the projection.
    public static func sites(targets: [TensorRole], model: ModelDescription) -> [LoRAKey] {
        model.requiredTensors.compactMap { r in
            guard let l = r.layer, r.kind == .weight, targets.contains(r.role) else { return nil }
            return LoRAKey(layer: l, role: r.role)
        }.sorted()
    }
}

/// A PEFT LoRA adapter folder (docs/finetune.md "Adapter folders"): `adapter_config.json` and
/// `adapter_model.safetensors`, as PEFT's `save_pretrained` writes them and `PeftModel.from_pretrained`
/// loads them. Tensor keys are `base_model.model.<module>.lora_A.weight` / `.lora_B.weight`, the
/// module being the family's tensor name without `.weight` (``ModelDescription/name(_:_:layer:)``);
/// `target_modules` holds the modules' last name components.
public enum PEFTAdapterFolder {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"
    /// Largest rank accepted on read.
    public static let maximumRank = 4096

    /// The module name of a projection (`model.layers.3.self_attn.q_proj`).
    public static func module(_ site: LoRAKey, model: ModelDescription) -> String {
        String(model.name(site.role, layer: site.layer).dropLast(".weight".count))
    }

    /// The `target_modules` name of a role (`q_proj`): the last component of its module name.
    public static func targetName(_ role: TensorRole, model: ModelDescription) -> String {
        let layer = model.requiredTensors.first { $0.role == role && $0.layer != nil }?.layer ?? 0
        let m = module(LoRAKey(layer: layer, role: role), model: model)
        return String(m.split(separator: ".").last ?? Substring(m))
    }

    /// The safetensors keys of a site's A and B.
    public static func keys(_ site: LoRAKey, model: ModelDescription) -> (a: String, b: String) {
        let m = "base_model.model." + module(site, model: model)
        return (m + ".lora_A.weight", m + ".lora_B.weight")
    }

    static func checkSupported(_ model: ModelDescription, targets: [TensorRole], path: String) throws {
        for role in targets {
            guard TensorRole.projections.contains(role) else {
                throw CheckpointError(.invalidArgument, "LoRA targets only the seven projections, not \(role.rawValue)", path: path)
            }
            if model.family.tensors.declaration(role).fused != nil {
                throw CheckpointError(.invalidArgument, "the \(model.family.modelType) family stores \(role.rawValue) in a fused tensor, which PEFT adapter folders of separate projections cannot describe", path: path)
            }
        }
    }

    /// The expected shapes of a site's A `[rank, in]` and B `[out, rank]`.
    static func shapes(_ site: LoRAKey, rank: Int, model: ModelDescription) -> (a: [Int], b: [Int]) {
        let w = model.shape(of: TensorReference(site.role, layer: site.layer))
        return ([rank, w[1]], [w[0], rank])
    }

    // MARK: - Read

    /// Reads and validates an adapter folder for `model`.
    /// - Throws: ``CheckpointError`` naming the file and the key or field: an unsupported setting
    ///   (DoRA, rsLoRA, bias training, per-module ranks, fan-in-fan-out, layers subset, modules
    ///   to save), a target that is not one of the model's projections, a missing or unknown tensor,
    ///   a shape not implied by the model and the rank, a non-float dtype or a non-finite value.
    public static func read(_ folder: String, model: ModelDescription) throws -> PEFTAdapter {
        let configPath = FileSystem.join(folder, configFile)
        let weightsPath = FileSystem.join(folder, weightsFile)
        guard FileSystem.isFile(configPath) else {
            throw CheckpointError(.invalidArgument, "not a PEFT adapter folder: \(configFile) is missing", path: folder)
        }
        guard FileSystem.isFile(weightsPath) else {
            let pickle = FileSystem.isFile(FileSystem.join(folder, "adapter_model.bin"))
            throw CheckpointError(.invalidArgument, pickle ? "the adapter is a pickle (adapter_model.bin), which Shears does not read; save it again with safe_serialization=True"
                                                           : "\(weightsFile) is missing", path: folder)
        }
        let config: JSONObject
        do {
            guard let o = try JSONValue.parse(FileSystem.readFile(configPath, limit: 1 << 20)).objectValue else {
                throw CheckpointError(.invalidArgument, "not a JSON object", path: configPath)
            }
            config = o
        } catch let e as JSONError {
            throw CheckpointError(.invalidArgument, "not valid JSON: \(e.message)", path: configPath)
        }
        func field(_ key: String) -> JSONValue? { config[key].flatMap { $0.isNull ? nil : $0 } }
        func bad(_ key: String, _ rule: String) -> CheckpointError {
            CheckpointError(.invalidArgument, "`\(key)`: \(rule)", path: configPath)
        }
        guard field("peft_type")?.stringValue == "LORA" else { throw bad("peft_type", "must be \"LORA\" (only LoRA adapters are read)") }
        if let t = field("task_type"), t.stringValue != "CAUSAL_LM" { throw bad("task_type", "must be \"CAUSAL_LM\"") }
        guard let rank = field("r")?.intValue, rank >= 1, rank <= maximumRank else { throw bad("r", "must be an integer in 1 … \(maximumRank)") }
        guard let alpha = field("lora_alpha")?.doubleValue, alpha.isFinite, alpha > 0 else { throw bad("lora_alpha", "must be a positive number") }
        let dropout = field("lora_dropout")?.doubleValue ?? 0
        guard dropout >= 0, dropout < 1 else { throw bad("lora_dropout", "must be in [0, 1)") }
        if let b = field("bias"), b.stringValue != "none" { throw bad("bias", "must be \"none\" (bias training is not supported)") }
        for key in ["fan_in_fan_out", "use_rslora", "use_dora", "use_qalora", "lora_bias", "use_bdlora"] {
            if let v = field(key), v != .bool(false) { throw bad(key, "must be false (not supported)") }
        }
        for key in ["layer_replication", "target_parameters", "trainable_token_indices", "alora_invocation_tokens"] {
            if field(key) != nil { throw bad(key, "must be null (not supported)") }
        }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let v = field(key), v.objectValue?.isEmpty != true { throw bad(key, "must be empty (one rank and alpha for every module)") }
        }
        for key in ["layers_to_transform", "modules_to_save", "layers_pattern", "exclude_modules"] {
            if let v = field(key), v.arrayValue?.isEmpty != true { throw bad(key, "must be null (adapters on every layer, nothing else trained)") }
        }
        guard let names = field("target_modules")?.arrayValue?.compactMap(\.stringValue), !names.isEmpty,
              names.count == field("target_modules")?.arrayValue?.count else {
            throw bad("target_modules", "must be a non-empty list of module names (a regex string or \"all-linear\" is not read)")
        }
        let byName = Dictionary(TensorRole.projections.filter { model.family.tensors.declaration($0).fused == nil }
                                    .map { (targetName($0, model: model), $0) }, uniquingKeysWith: { a, _ in a })
        var targets: [TensorRole] = []
        for n in names {
            guard let role = byName[n] else {
                throw bad("target_modules", "\"\(n)\" is not a projection of this \(model.family.modelType) model (its projections: \(byName.keys.sorted().joined(separator: ", ")))")
            }
            if !targets.contains(role) { targets.append(role) }
        }
        try checkSupported(model, targets: targets, path: configPath)

        let file = try SafetensorsFile(path: weightsPath)
        var adapter = PEFTAdapter(rank: rank, alpha: alpha, dropout: dropout, targets: targets,
                                  baseModel: field("base_model_name_or_path")?.stringValue)
        var expected: [String: (LoRAKey, Bool, [Int])] = [:]
        for site in PEFTAdapter.sites(targets: adapter.targets, model: model) {
            let k = keys(site, model: model), s = shapes(site, rank: rank, model: model)
            expected[k.a] = (site, true, s.a)
            expected[k.b] = (site, false, s.b)
        }
        for info in file.tensors where expected[info.name] == nil {
            throw CheckpointError(.invalidArgument, "unknown tensor: not a lora_A/lora_B weight of the configured target modules on this model (r \(rank), targets \(names.joined(separator: ",")))", path: weightsPath, tensor: info.name)
        }
        for (name, (site, isA, shape)) in expected.sorted(by: { $0.key < $1.key }) {
            guard let info = file.info(named: name) else {
                throw CheckpointError(.invalidArgument, "missing: every layer's \(targetName(site.role, model: model)) needs its lora_A and lora_B", path: weightsPath, tensor: name)
            }
            guard info.shape == shape else {
                throw CheckpointError(.shapeMismatch, "shape \(info.shape), expected \(shape) (\(isA ? "A is [r, in]" : "B is [out, r]") with r = \(rank) from \(configFile))", path: weightsPath, tensor: name)
            }
            guard info.dtype == .f32 || info.dtype == .f16 || info.dtype == .bf16 || info.dtype == .f64 else {
                throw CheckpointError(.invalidArgument, "dtype \(info.dtype.rawValue) is not a float type", path: weightsPath, tensor: name)
            }
            let values: [Float]
            do { values = try file.tensor(named: name).floats() } catch { throw error.inFile(weightsPath) }
            guard values.allSatisfy(\.isFinite) else {
                throw CheckpointError(.invalidArgument, "holds NaN or infinity", path: weightsPath, tensor: name)
            }
            let m = LoRAMatrix(rows: shape[0], cols: shape[1], values: values)
            if isA { adapter.a[site] = m } else { adapter.b[site] = m }
        }
        return adapter
    }

    // MARK: - Write

    /// The `adapter_config.json` object PEFT writes for `adapter` (keys sorted; `target_modules`
    /// in the family's projection order, where PEFT writes a set's order).
    public static func configJSON(_ adapter: PEFTAdapter, model: ModelDescription) -> JSONValue {
        var members: [(String, JSONValue)] = defaultConfig
        func set(_ k: String, _ v: JSONValue) {
            if let i = members.firstIndex(where: { $0.0 == k }) { members[i].1 = v } else { members.append((k, v)) }
        }
        set("r", .int(Int64(adapter.rank)))
        set("lora_alpha", adapter.alpha == adapter.alpha.rounded() && abs(adapter.alpha) < 1e15 ? .int(Int64(adapter.alpha)) : .double(adapter.alpha))
        set("lora_dropout", .double(adapter.dropout))
        set("target_modules", .array(adapter.targets.map { .string(targetName($0, model: model)) }))
        set("base_model_name_or_path", adapter.baseModel.map(JSONValue.string) ?? .null)
        return JSONValue.object(JSONObject(members)).sortingKeys()
    }

    /// The other fields of PEFT's `LoraConfig` with their defaults (as `save_pretrained` writes
    /// them; PEFT 0.21.2).
    static let defaultConfig: [(String, JSONValue)] = [
        ("alora_invocation_tokens", .null),
        ("alpha_pattern", .object(JSONObject())),
        ("arrow_config", .null),
        ("auto_mapping", .null),
        ("base_model_name_or_path", .null),
        ("bias", .string("none")),
        ("corda_config", .null),
        ("ensure_weight_tying", .bool(false)),
        ("eva_config", .null),
        ("exclude_modules", .null),
        ("fan_in_fan_out", .bool(false)),
        ("inference_mode", .bool(true)),
        ("init_lora_weights", .bool(true)),
        ("kasa_config", .null),
        ("layer_replication", .null),
        ("layers_pattern", .null),
        ("layers_to_transform", .null),
        ("loftq_config", .object(JSONObject())),
        ("lora_alpha", .int(8)),
        ("lora_bias", .bool(false)),
        ("lora_dropout", .double(0.0)),
        ("lora_ga_config", .null),
        ("megatron_config", .null),
        ("megatron_core", .string("megatron.core")),
        ("modules_to_save", .null),
        ("monteclora_config", .null),
        ("peft_type", .string("LORA")),
        ("peft_version", .string("0.21.2")),
        ("qalora_group_size", .int(16)),
        ("r", .int(8)),
        ("rank_pattern", .object(JSONObject())),
        ("revision", .null),
        ("target_modules", .array([])),
        ("target_parameters", .null),
        ("task_type", .string("CAUSAL_LM")),
        ("trainable_token_indices", .null),
        ("use_bdlora", .null),
        ("use_dora", .bool(false)),
        ("use_qalora", .bool(false)),
        ("use_rslora", .bool(false)),
        ("velora_config", .null),
    ]

    /// Writes `adapter` as a PEFT folder at `folder`, atomically (staged, then moved into place).
    /// - Throws: when the adapter does not fit `model` (a missing site, a shape, the rank).
    public static func write(_ adapter: PEFTAdapter, to folder: String, model: ModelDescription) throws {
        guard adapter.rank >= 1, adapter.rank <= maximumRank else {
            throw CheckpointError(.invalidArgument, "rank \(adapter.rank) is outside 1 … \(maximumRank)", path: folder)
        }
        try checkSupported(model, targets: adapter.targets, path: folder)
        var specs: [TensorSpec] = []
        var data: [String: [Float]] = [:]
        let sites = PEFTAdapter.sites(targets: adapter.targets, model: model)
        for site in sites {
            let k = keys(site, model: model), s = shapes(site, rank: adapter.rank, model: model)
            for (key, matrix, shape) in [(k.a, adapter.a[site], s.a), (k.b, adapter.b[site], s.b)] {
                guard let matrix else { throw CheckpointError(.invalidArgument, "the adapter has no matrix for this site", path: folder, tensor: key) }
                guard [matrix.rows, matrix.cols] == shape else {
                    throw CheckpointError(.shapeMismatch, "shape [\(matrix.rows), \(matrix.cols)], expected \(shape)", path: folder, tensor: key)
                }
                specs.append(TensorSpec(name: key, dtype: .f32, shape: shape))
                data[key] = matrix.values
            }
        }
        let siteSet = Set(sites)
        for site in Set(adapter.a.keys).union(adapter.b.keys) where !siteSet.contains(site) {
            throw CheckpointError(.invalidArgument, "the adapter has a matrix for layer \(site.layer) \(site.role.rawValue), which its targets do not include on this model", path: folder)
        }
        let staged = try StagedFolder(destination: folder)
        var metadata = Metadata()
        metadata["format"] = "pt"
        try SafetensorsWriter.write(path: FileSystem.join(staged.path, weightsFile), tensors: specs, metadata: metadata) { spec in
            .floats(data[spec.name]!)
        }
        try AtomicFile.write(Array(pythonJSON(configJSON(adapter, model: model), indent: "").utf8),
                             to: FileSystem.join(staged.path, configFile))
        try staged.commit()
    }

    /// `json.dumps(value, indent=2, sort_keys=True)` of Python (PEFT's writer): keys as given (the
    /// caller sorts), ASCII only, no final newline.
    static func pythonJSON(_ v: JSONValue, indent: String) -> String {
        let inner = indent + "  "
        switch v {
        case .object(let o):
            if o.isEmpty { return "{}" }
            return "{\n" + o.members.map { inner + pythonString($0.key) + ": " + pythonJSON($0.value, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "}"
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { inner + pythonJSON($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .string(let s): return pythonString(s)
        case .double(let d): return d.isFinite ? "\(d)" : (d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity"))
        default: return v.serialized()
        }
    }

    static func pythonString(_ s: String) -> String {
        var out = "\""
        for u in s.utf16 {
            switch u {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(u)))
            default:
                let h = String(u, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            }
        }
        return out + "\""
    }
}
