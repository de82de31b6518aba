import ShearsJSON

/// What a calibration set was (for the manifest).
public struct CalibrationRecord: Sendable, Equatable {
    /// The text or token file's name (or "austen-calibration" for the bundled default).
    public var file: String
    public var sha256: String
    public var samples: Int
    public var seqLen: Int
    public var seed: UInt64
    /// Tokens the file held (text: after tokenization).
    public var tokenCount: Int

    public init(file: String, sha256: String, samples: Int, seqLen: Int, seed: UInt64, tokenCount: Int) {
        self.file = file
        self.sha256 = sha256
        self.samples = samples
        self.seqLen = seqLen
        self.seed = seed
        self.tokenCount = tokenCount
    }
}

/// `pruning-manifest.json` (formats/manifest.md): what was removed, from what, how, and the result.
/// Keys are sorted at every level, there are no timestamps, so the same run writes the same bytes.
public struct PruningManifest {
    public static let format = "shears-pruning-manifest"
    public static let version = 1

    public var plan: PruningPlan
    public var settings: PruningSettings
    /// File name → SHA-256 of the source's data files.
    public var sourceFiles: [String: String]
    public var sourceConfig: JSONValue
    /// File name → SHA-256 of the written files (empty for a dry run).
    public var resultFiles: [String: String]
    public var calibration: CalibrationRecord?
    /// The activation-statistics windows (activation estimators, recovery), or nil.
    public var statistics: CalibrationRecord?
    /// What recovery changed, or nil without `--recover`.
    public var recovered: RecoveredTensors?
    /// Extra settings recorded as given (dtype, shard size, ...).
    public var extraSettings: [(String, JSONValue)] = []
    public var dryRun = false
    /// Parameter counts to record; nil: the plan's closed forms. The command passes the counts of
    /// the actual tensors (which include every bias the checkpoint has).
    public var sourceParameters: Int? = nil
    public var resultParameters: Int? = nil

    public init(plan: PruningPlan, settings: PruningSettings, sourceFiles: [String: String], sourceConfig: JSONValue,
                resultFiles: [String: String], calibration: CalibrationRecord?) {
        self.plan = plan
        self.settings = settings
        self.sourceFiles = sourceFiles
        self.sourceConfig = sourceConfig
        self.resultFiles = resultFiles
        self.calibration = calibration
    }

    static func ints(_ a: [Int]) -> JSONValue { .array(a.map { .int(Int64($0)) }) }
    static func scores(_ a: [Double]) -> JSONValue { .array(a.map { $0.isNaN ? .null : .double($0) }) }
    static func files(_ d: [String: String]) -> JSONValue { .object(JSONObject(d.map { ($0.key, JSONValue.string($0.value)) })) }

    public var json: JSONValue {
        let s = settings, shape = plan.shape
        var settingsObject: [(String, JSONValue)] = [
            ("strategy", .string(s.strategy.rawValue)),
            ("ratio", .double(s.ratio)),
            ("attention_layers", s.attentionLayers.map { Self.ints([$0.start, $0.end]) } ?? .null),
            ("mlp_layers", s.mlpLayers.map { Self.ints([$0.start, $0.end]) } ?? .null),
            ("gqa", .string(s.gqa.rawValue)),
            ("importance", .string(s.importance.rawValue)),
            ("taylor", s.importance == .taylor ? .string(s.taylor.rawValue) : .null),
            ("reduction", s.importance.needsActivations ? .null : .string(s.effectiveReduction.rawValue)),
            ("allocation", .string(s.allocation.rawValue)),
            ("recover", .string(s.recovery.rawValue)),
            ("damping", s.effectiveDamping.map { .double($0) } ?? .null),
            ("sequential", .bool(s.sequential)),
            ("statistics_samples", s.needsStatistics ? .int(Int64(s.statisticsSamples)) : .null),
            ("statistics_seq_len", s.needsStatistics ? .int(Int64(s.statisticsSeqLen)) : .null),
            ("scope", .string(s.scope.rawValue)),
            ("iterative_steps", .int(Int64(s.iterativeSteps))),
            ("round_to", s.roundTo.map { .int(Int64($0)) } ?? .null),
            ("uniform", .bool(s.uniform)),
            ("keep_layers", s.keepLayers.map { .int(Int64($0)) } ?? .null),
            ("remove_layers", s.removeLayers.map { .int(Int64($0)) } ?? .null),
            ("seed", .uint(s.seed)),
            ("dry_run", .bool(dryRun)),
        ]
        settingsObject += extraSettings
        let layers: [JSONValue] = (0..<shape.layerCount).map { i in
            let l = plan.layers[i]
            return .object(JSONObject([
                ("layer", .int(Int64(i))),
                ("attention", .object(JSONObject([
                    ("heads", .int(Int64(shape.attentionHeads))),
                    ("kv_heads", .int(Int64(shape.keyValueHeads))),
                    ("kept_heads", Self.ints(l.keptHeads)),
                    ("removed_heads", Self.ints(plan.removedHeads(i))),
                    ("kept_kv_heads", Self.ints(l.keptKeyValueHeads)),
                    ("removed_kv_heads", Self.ints(plan.removedKeyValueHeads(i))),
                    ("score_unit", .string(s.gqa == .query || !shape.isGroupedQuery ? "query_head" : "kv_head")),
                    ("scores", Self.scores(l.attentionScores)),
                ]))),
                ("mlp", .object(JSONObject([
                    ("channels", .int(Int64(shape.intermediateSize))),
                    ("kept_channels", Self.ints(l.keptChannels)),
                    ("removed_channels", Self.ints(plan.removedChannels(i))),
                    ("scores", Self.scores(l.mlpScores)),
                ]))),
            ]))
        }
        func record(_ r: CalibrationRecord?) -> JSONValue {
            r.map { c in
                .object(JSONObject([
                    ("file", .string(c.file)), ("sha256", .string(c.sha256)), ("samples", .int(Int64(c.samples))),
                    ("seq_len", .int(Int64(c.seqLen))), ("seed", .uint(c.seed)), ("token_count", .int(Int64(c.tokenCount))),
                ]))
            } ?? .null
        }
        let cal = record(calibration)
        let recovery: JSONValue = s.recovery == .none ? .null : .object(JSONObject([
            ("method", .string(s.recovery.rawValue)),
            ("damping", s.effectiveDamping.map { .double($0) } ?? .null),
            ("covariance_precision", s.effectiveCovariancePrecision.map { .string($0.rawValue) } ?? .null),
            ("statistics", .string(s.sequential ? "sequential" : "original")),
            ("changed_tensors", .array((recovered?.changed ?? []).map { .string($0) })),
            ("added_tensors", .array((recovered?.added ?? []).map { .string($0) })),
        ]))
        let root = JSONValue.object(JSONObject([
            ("format", .string(Self.format)),
            ("version", .int(Int64(Self.version))),
            ("source", .object(JSONObject([
                ("files", Self.files(sourceFiles)),
                ("parameters", .int(Int64(sourceParameters ?? plan.sourceParameters))),
                ("config", sourceConfig),
            ]))),
            ("result", .object(JSONObject([
                ("parameters", .int(Int64(resultParameters ?? plan.resultParameters))),
                ("files", Self.files(resultFiles)),
                ("uniform", .bool(plan.isUniform)),
                ("layers", .array(plan.outputWidths.map { w in
                    .object(JSONObject([("num_attention_heads", .int(Int64(w.numAttentionHeads))), ("num_key_value_heads", .int(Int64(w.numKeyValueHeads))),
                                        ("intermediate_size", .int(Int64(w.intermediateSize)))]))
                })),
            ]))),
            ("settings", .object(JSONObject(settingsObject))),
            ("calibration", cal),
            ("statistics", record(statistics)),
            ("recovery", recovery),
            ("layers", .array(layers)),
            ("hidden", .object(JSONObject([("size", .int(Int64(shape.hiddenSize)))]
                // The channel strategy's kept width is a multiple of the heads (absent otherwise, so
                // that other manifests keep their bytes).
                + (s.strategy == .channel ? [("round_to", JSONValue.int(Int64(shape.attentionHeads)))] : [])
                + [("kept_channels", Self.ints(plan.keptHidden)),
                   ("removed_channels", Self.ints(plan.removedHidden)),
                   ("scores", Self.scores(plan.hiddenScores))]))),
            ("removed_layers", Self.ints(plan.removedLayers)),
            ("layer_scores", Self.scores(plan.layerScores)),
        ]))
        return root.sortingKeys()
    }

    /// The file's bytes: JSON indented by two spaces, sorted keys, arrays of numbers (indices,
    /// scores) on one line each, and a final newline.
    public var bytes: [UInt8] { Self.bytes(of: json) }

    /// A manifest document's bytes in the same layout (for a manifest edited after it was built,
    /// as `prune … OUT.gguf` does to describe the GGUF file instead of the staged folder).
    public static func bytes(of json: JSONValue) -> [UInt8] { Array((render(json, indent: "") + "\n").utf8) }

    static func render(_ v: JSONValue, indent: String) -> String {
        let inner = indent + "  "
        switch v {
        case .object(let o):
            if o.isEmpty { return "{}" }
            let members = o.members.map { inner + JSONValue.string($0.key).serialized() + ": " + render($0.value, indent: inner) }
            return "{\n" + members.joined(separator: ",\n") + "\n" + indent + "}"
        case .array(let a):
            if a.allSatisfy({ $0.objectValue == nil && $0.arrayValue == nil }) { return "[" + a.map { $0.serialized() }.joined(separator: ", ") + "]" }
            return "[\n" + a.map { inner + render($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        default:
            return v.serialized()
        }
    }
}

extension JSONValue {
    /// The same value with every object's keys in byte order (arrays keep their order).
    public func sortingKeys() -> JSONValue {
        switch self {
        case .array(let a): return .array(a.map { $0.sortingKeys() })
        case .object(let o):
            let members = o.members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            return .object(JSONObject(members.map { ($0.key, $0.value.sortingKeys()) }))
        default: return self
        }
    }
}
