import CheckpointCore
import ModelArchitecture

/// What is pruned.
public enum PruningStrategy: String, Sendable, CaseIterable {
    /// Attention heads (or KV groups) and MLP channels inside layer ranges: the paper's method.
    case block
    /// Hidden channels everywhere (one global coupled group per channel).
    case channel
    /// Whole decoder layers.
    case layer
}

/// How grouped-query attention is pruned.
public enum GQAPolicy: String, Sendable, CaseIterable {
    /// Upstream's unit: one KV head with all of its query heads (scored over the query heads that
    /// really belong to it, fixing upstream's misalignment).
    case kvGroup = "kv-group"
    /// Keep every KV head; remove the same number of query heads from each KV group.
    case query
}

/// The importance estimator.
public enum ImportanceKind: String, Sendable, CaseIterable {
    case taylor, l1, l2, random
    /// Wanda-sp: ‖x_j‖₂ · mean_i |W_ij| on the output and down projections' inputs (formats/recovery.md §3).
    case wandaSP = "wanda-sp"
    /// FLAP's weighted input-feature variance: Var(x_j) · ‖W_{:,j}‖².
    case wifv
    /// Whether the estimator needs gradients from calibration data.
    public var needsGradients: Bool { self == .taylor }
    /// Whether the estimator needs activation statistics (a forward pass over calibration windows).
    public var needsActivations: Bool { self == .wandaSP || self == .wifv }
}

/// How many units each layer loses (formats/recovery.md §4).
public enum Allocation: String, Sendable, CaseIterable {
    /// Upstream's counts: the same fraction in every ranked layer.
    case uniform
    /// FLAP-style: per-layer standardized scores pooled with parameter costs.
    case adaptive
}

/// Retraining-free recovery of the pruned projections (formats/recovery.md §5).
public enum RecoveryMethod: String, Sendable, CaseIterable {
    case none
    /// FLAP's bias compensation.
    case bias
    /// Least-squares refit of the kept columns with ridge damping toward zero.
    case ls
    /// Least-squares refit with the damping pulling toward the original kept weights.
    case anchoredLS = "anchored-ls"
    /// Whether the input covariance is needed.
    public var needsCovariance: Bool { self == .ls || self == .anchoredLS }
    /// The default `--damping`.
    public var defaultDamping: Double? {
        switch self {
        case .ls: 0.01
        case .anchoredLS: 0.1
        default: nil
        }
    }
}

/// How the input covariance of ls / anchored-ls is accumulated (formats/recovery.md §2).
public enum CovariancePrecision: String, Sendable, CaseIterable {
    /// Products of float32 inputs summed in float32 over blocks of at most 1,024 rows, the blocks
    /// summed in float64: the float32 rate (1.67× float64's on a Llama-3-8B down_proj input,
    /// docs/scaling.md).
    case float32
    /// Every sum in float64 (`dsyrk` on float64 copies of the inputs).
    case float64
}

/// Upstream's `--taylor` variants (llm-pruner.md §2.2).
public enum TaylorVariant: String, Sendable, CaseIterable {
    /// |Σ W⊙g| per row/column.
    case vectorize
    /// Σ |W⊙g| (the code's default).
    case paramFirst = "param_first"
    /// Σ |W⊙F⊙W|.
    case paramSecond = "param_second"
    /// Σ |W⊙g − ½·W⊙F⊙W|.
    case paramMix = "param_mix"
    /// Whether the Fisher diagonal F is needed.
    public var needsFisher: Bool { self == .paramSecond || self == .paramMix }
}

/// How the coupled members' per-channel scores are combined (upstream's `--grouping_strategy`).
public enum GroupReduction: String, Sendable, CaseIterable {
    case sum, mean, max, prod, first
}

/// Local (per layer) or global ranking.
public enum RankingScope: String, Sendable, CaseIterable {
    /// Every layer in range loses the same count (upstream's default).
    case local
    /// One ranking across layers, each unit's score divided by the mean score of its kind
    /// (attention unit or MLP channel) over all ranked layers.
    case global
    /// One ranking across layers on the raw scores, as upstream's `--global_pruning`.
    case globalRaw = "global-raw"
}

/// A half-open range of decoder layers, `A:B` on the command line (end exclusive).
public struct LayerRange: Sendable, Equatable, CustomStringConvertible {
    public var start: Int
    public var end: Int
    public init(_ start: Int, _ end: Int) { self.start = start; self.end = end }
    public var range: Range<Int> { start..<max(start, end) }
    public func contains(_ i: Int) -> Bool { i >= start && i < end }
    public var description: String { "\(start):\(end)" }

    /// Parses `A:B`.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 0, b >= a else { return nil }
        self.init(a, b)
    }

    /// The default range for a model of `layers` layers: `4 : L−2` as upstream's published runs
    /// (4..30 for 32 layers), clamped for small models to `min(4, L/4) : L − min(2, L/8)`, so that
    /// a 2- or 3-layer model prunes every layer and an 8-layer one prunes 2..7.
    public static func defaultRange(layers: Int) -> LayerRange {
        LayerRange(min(4, layers / 4), layers - min(2, layers / 8))
    }
}

/// Every option that influences a pruning result.
public struct PruningSettings: Sendable, Equatable {
    public var strategy: PruningStrategy = .block
    /// Target fraction removed of each pruned structure (upstream's `--pruning_ratio`).
    public var ratio: Double = 0.25
    public var attentionLayers: LayerRange? = nil
    public var mlpLayers: LayerRange? = nil
    public var gqa: GQAPolicy = .kvGroup
    public var importance: ImportanceKind = .taylor
    public var taylor: TaylorVariant = .paramFirst
    /// nil: upstream's default for the estimator (sum for Taylor, mean for l1/l2).
    public var reduction: GroupReduction? = nil
    public var scope: RankingScope = .local
    public var iterativeSteps: Int = 1
    /// MLP widths rounded (up) to a multiple of this.
    public var roundTo: Int? = nil
    /// Same widths in every layer (the attention and MLP ranges become all layers).
    public var uniform: Bool = false
    /// `--strategy layer`: keep the first N layers.
    public var keepLayers: Int? = nil
    /// `--strategy layer`: remove the N least important layers.
    public var removeLayers: Int? = nil
    /// Seed of the random estimator and of calibration windows.
    public var seed: UInt64 = 42
    public var allocation: Allocation = .uniform
    public var recovery: RecoveryMethod = .none
    /// nil: the method's default.
    public var damping: Double? = nil
    /// nil: float32 (``CovariancePrecision``).
    public var covariancePrecision: CovariancePrecision? = nil
    /// Statistics of each layer on the already-pruned model's inputs.
    public var sequential = false
    /// Statistics windows (activation estimators and recovery).
    public var statisticsSamples = 128
    public var statisticsSeqLen = 128

    public init() {}

    /// The reduction in effect.
    public var effectiveReduction: GroupReduction {
        reduction ?? (importance == .taylor ? .sum : .mean)
    }

    /// The damping in effect (nil for methods without one).
    public var effectiveDamping: Double? { recovery.needsCovariance ? (damping ?? recovery.defaultDamping) : nil }

    /// The covariance precision in effect (nil for methods without a covariance).
    public var effectiveCovariancePrecision: CovariancePrecision? { recovery.needsCovariance ? (covariancePrecision ?? .float32) : nil }

    /// Whether a forward pass collects activation statistics.
    public var needsStatistics: Bool { importance.needsActivations || recovery != .none }

    /// Checks the settings against a model and fills in the default layer ranges.
    /// - Throws: `invalidArgument` naming the option that cannot apply.
    public func resolved(for shape: ModelDescription) throws(CheckpointError) -> PruningSettings {
        var s = self
        if strategy != .layer {
            guard ratio > 0, ratio < 1 else { throw CheckpointError(.invalidUsage, "the pruning ratio must be between 0 and 1 (exclusive), not \(ratio)") }
        }
        guard iterativeSteps >= 1 else { throw CheckpointError(.invalidUsage, "--iterative-steps must be at least 1") }
        if let r = roundTo, r < 1 { throw CheckpointError(.invalidUsage, "--round-to must be positive") }
        let all = LayerRange(0, shape.layerCount)
        if uniform {
            if attentionLayers != nil || mlpLayers != nil {
                throw CheckpointError(.invalidUsage, "--uniform prunes every layer; it cannot be combined with --attention-layers or --mlp-layers")
            }
            s.attentionLayers = all
            s.mlpLayers = all
            if scope != .local { throw CheckpointError(.invalidUsage, "--uniform ranks each layer locally; it cannot be combined with --global or --global-raw") }
        } else {
            s.attentionLayers = attentionLayers ?? .defaultRange(layers: shape.layerCount)
            s.mlpLayers = mlpLayers ?? .defaultRange(layers: shape.layerCount)
        }
        for (name, r) in [("--attention-layers", s.attentionLayers!), ("--mlp-layers", s.mlpLayers!)] where r.end > shape.layerCount {
            throw CheckpointError(.invalidUsage, "\(name) \(r) reaches past the model's \(shape.layerCount) layers")
        }
        if strategy == .layer {
            switch (keepLayers, removeLayers) {
            case (nil, nil): throw CheckpointError(.invalidUsage, "--strategy layer needs --keep-layers N or --remove-layers N")
            case (.some, .some): throw CheckpointError(.invalidUsage, "give either --keep-layers or --remove-layers, not both")
            case (let k?, nil):
                guard k >= 1, k <= shape.layerCount else { throw CheckpointError(.invalidUsage, "--keep-layers must be between 1 and \(shape.layerCount)") }
            case (nil, let r?):
                guard r >= 0, r < shape.layerCount else { throw CheckpointError(.invalidUsage, "--remove-layers must be between 0 and \(shape.layerCount - 1)") }
            }
            if iterativeSteps != 1 { throw CheckpointError(.invalidUsage, "--iterative-steps applies to block and channel pruning only") }
        }
        if strategy != .layer && (keepLayers != nil || removeLayers != nil) {
            throw CheckpointError(.invalidUsage, "--keep-layers and --remove-layers apply to --strategy layer only")
        }
        if strategy == .channel && scope != .local {
            throw CheckpointError(.invalidUsage, "channel pruning has a single group; --global does not apply")
        }
        if allocation == .adaptive {
            guard strategy == .block else { throw CheckpointError(.invalidUsage, "--allocation adaptive applies to --strategy block") }
            guard scope == .local else { throw CheckpointError(.invalidUsage, "--allocation adaptive is its own global ranking; it cannot be combined with --global or --global-raw") }
            guard !uniform else { throw CheckpointError(.invalidUsage, "--allocation adaptive gives each layer its own widths; it cannot be combined with --uniform") }
        }
        if recovery != .none && strategy != .block {
            throw CheckpointError(.invalidUsage, "--recover applies to --strategy block (the inputs of the output and down projections); \(strategy.rawValue) pruning has nothing to refit")
        }
        if strategy == .channel && shape.family.blocks.isGemma {
            throw CheckpointError(.invalidUsage, "\(shape.family.modelType) multiplies its embeddings by √hidden_size, so removing hidden channels changes every token's scale (and the tied LM head with it); no channel-pruned model computes what the source does; use --strategy block or layer")
        }
        if strategy == .block && gqa == .kvGroup && shape.isGroupedQuery, let l = s.attentionLayers, l.start < l.end,
           (l.start..<l.end).contains(where: { shape.layers[$0].numKeyValueHeads == 1 }) {
            throw CheckpointError(.invalidUsage, "the model has one KV head in a layer that --attention-layers \(l) prunes: removing a KV group there would remove the layer's whole attention; use --gqa query (removes query heads within the group) or leave the attention unpruned (--attention-layers 0:0)")
        }
        if recovery != .none && shape.family.blocks.isGemma {
            for (range, what, norm) in [(s.attentionLayers!, "attention", "post-attention"), (s.mlpLayers!, "mlp", "post-feedforward")] where range.start < range.end {
                throw CheckpointError(.invalidUsage, "--recover \(recovery.rawValue) adds a bias to the \(what == "mlp" ? "down" : "output") projection, but \(shape.family.modelType) normalises that projection's output (its \(norm) norm), so no bias can stand in for the removed channels; use --recover none, or leave the \(what == "mlp" ? "MLP" : "attention") unpruned (--\(what)-layers 0:0)")
            }
        }
        if recovery != .none {
            for (role, range, what) in [(TensorRole.output, s.attentionLayers!, "attention"), (.down, s.mlpLayers!, "mlp")]
            where range.start < range.end && !shape.tensors.declaration(role).mayHaveBias {
                throw CheckpointError(.invalidUsage, "--recover \(recovery.rawValue) adds a bias to the \(role == .output ? "output" : "down") projection, which \(shape.family.modelType) models cannot have (transformers would ignore it); use --recover none, or leave the \(what == "mlp" ? "MLP" : "attention") unpruned (--\(what)-layers 0:0)")
            }
        }
        if let d = damping {
            guard d >= 0, d.isFinite else { throw CheckpointError(.invalidUsage, "--damping must be zero or positive") }
            guard recovery.needsCovariance else { throw CheckpointError(.invalidUsage, "--damping applies to --recover ls and anchored-ls") }
        }
        if covariancePrecision != nil && !recovery.needsCovariance {
            throw CheckpointError(.invalidUsage, "--covariance-precision applies to --recover ls and anchored-ls")
        }
        if sequential {
            guard needsStatistics else { throw CheckpointError(.invalidUsage, "--sequential applies to activation statistics: use it with --recover or --importance wanda-sp/wifv") }
            guard strategy == .block else { throw CheckpointError(.invalidUsage, "--sequential applies to --strategy block") }
            if importance.needsActivations && (allocation == .adaptive || scope != .local) {
                throw CheckpointError(.invalidUsage, "--sequential decides each layer from its own statistics; it cannot be combined with --allocation adaptive or a global ranking")
            }
            if importance.needsActivations && iterativeSteps != 1 {
                throw CheckpointError(.invalidUsage, "--sequential with an activation estimator prunes in one pass; --iterative-steps does not apply")
            }
        }
        guard statisticsSamples >= 1, statisticsSeqLen >= 2 else {
            throw CheckpointError(.invalidUsage, "--statistics-samples must be at least 1 and --statistics-seq-len at least 2")
        }
        if gqa == .query && !shape.isGroupedQuery && strategy == .block {
            s.gqa = .kvGroup  // MHA: a head is its own group; the policies coincide.
        }
        return s
    }
}
