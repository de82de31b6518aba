import ArgumentParser
import CheckpointCore
import Pruning
import ShearsPipeline

// The option groups of `shears prune`, each a part of ``PruningSettings`` or ``PruneJob``. Choice
// options are the library's enums: `--help` lists their values and ArgumentParser refuses others.

extension PruningStrategy: ExpressibleByArgument {}
extension GQAPolicy: ExpressibleByArgument {}
extension ImportanceKind: ExpressibleByArgument {}
extension TaylorVariant: ExpressibleByArgument {}
extension GroupReduction: ExpressibleByArgument {}
extension RecoveryMethod: ExpressibleByArgument {}
extension CovariancePrecision: ExpressibleByArgument {}
extension Allocation: ExpressibleByArgument {}

extension LayerRange: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

/// A floating-point dtype an output can be converted to.
struct FloatDType: ExpressibleByArgument {
    let dtype: DType
    init?(argument: String) {
        guard let t = DType(userName: argument), t.isFloatingPoint, t.convertsFromFloat32, t != .c64 else { return nil }
        dtype = t
    }
    static var allValueStrings: [String] { ["f32", "f16", "bf16", "f64", "f8_e4m3", "f8_e5m2"] }
}

/// A size such as `512MB`, `2GiB` or `0`.
struct SizeArgument: ExpressibleByArgument {
    let bytes: Int
    init(bytes: Int) { self.bytes = bytes }
    init?(argument: String) {
        if argument.trimmingSpaces == "0" { bytes = 0; return }
        guard let b = ByteSize.parse(argument) else { return nil }
        bytes = b
    }
    var defaultValueDescription: String { "\(bytes)" }
}

struct StructureOptions: ParsableArguments {
    @Option(help: "Fraction of each pruned structure to remove (upstream --pruning_ratio; 0.25 is the paper's \"20%\").")
    var ratio: Double = 0.25
    @Option(help: "block: heads and MLP channels in layer ranges; channel: hidden channels (the kept count is rounded up to a multiple of num_attention_heads, as transformers requires of a stock config); layer: whole layers.")
    var strategy: PruningStrategy = .block
    @Option(name: .customLong("attention-layers"), help: ArgumentHelp("Layers A:B (end exclusive) whose attention is pruned (default 4:L−2, clamped for small models).", valueName: "A:B"))
    var attentionLayers: LayerRange?
    @Option(name: .customLong("mlp-layers"), help: ArgumentHelp("Layers A:B (end exclusive) whose MLP is pruned (default 4:L−2, clamped for small models).", valueName: "A:B"))
    var mlpLayers: LayerRange?
    @Option(help: "Grouped-query attention: kv-group (a KV head with its query heads) or query (query heads inside each KV group).")
    var gqa: GQAPolicy = .kvGroup
    @Flag(name: .customLong("global"), help: "Rank all layers together, scores normalized by the mean of their kind (heads vs MLP channels).")
    var global = false
    @Flag(name: .customLong("global-raw"), help: "Rank all layers together on raw scores (upstream's --global_pruning).")
    var globalRaw = false
    @Option(help: "uniform (upstream's counts per layer) or adaptive (FLAP-style: per-layer z-scores pooled with parameter costs; same parameter target).")
    var allocation: Allocation = .uniform
    @Option(name: .customLong("iterative-steps"), help: "Prune in K rounds reaching the ratio linearly, with fresh calibration each round.")
    var iterativeSteps = 1
    @Option(name: .customLong("round-to"), help: "Round kept MLP widths up to a multiple of N.")
    var roundTo: Int?
    @Flag(help: "Prune every layer to the same widths, so that config.json is a stock one.")
    var uniform = false
    @Option(name: .customLong("keep-layers"), help: "--strategy layer: keep the first N layers.")
    var keepLayers: Int?
    @Option(name: .customLong("remove-layers"), help: "--strategy layer: remove the N least important layers.")
    var removeLayers: Int?

    func validate() throws {
        if global && globalRaw { throw ValidationError("choose --global or --global-raw, not both") }
    }
}

struct ImportanceOptions: ParsableArguments {
    @Option(help: "Importance estimator: taylor (gradients), l1, l2, random, or the forward-only wanda-sp and wifv (formats/recovery.md).")
    var importance: ImportanceKind = .taylor
    @Option(help: "Taylor variant.")
    var taylor: TaylorVariant = .paramFirst
    @Option(help: "Group reduction (default: sum for taylor, mean for l1/l2).")
    var reduction: GroupReduction?
    @Option(help: "Calibration text (tokenized with the model's tokenizer). Default: the bundled Austen novels.", completion: .file())
    var calibration: String?
    @Option(name: .customLong("calibration-tokens"), help: "Calibration as a JSON array of token-id arrays.", completion: .file())
    var calibrationTokens: String?
    @Option(name: .customLong("seq-len"), help: "Tokens per Taylor calibration window.")
    var seqLen = 64
    @Option(help: "Taylor calibration windows per step.")
    var samples = 10
    @Option(help: "Seed of calibration windows and of the random estimator.")
    var seed: UInt64 = 42
    @Option(name: .customLong("statistics-samples"), help: "Calibration windows of the activation-statistics pass (wanda-sp, wifv, --recover).")
    var statisticsSamples = 128
    @Option(name: .customLong("statistics-seq-len"), help: "Tokens per activation-statistics window.")
    var statisticsSeqLen = 128
    @Flag(help: "Take each layer's activation statistics on the already pruned and recovered model's inputs.")
    var sequential = false

    func validate() throws {
        if calibration != nil && calibrationTokens != nil { throw ValidationError("choose --calibration or --calibration-tokens, not both") }
        guard seqLen >= 2, samples >= 1 else { throw ValidationError("--seq-len must be at least 2 and --samples at least 1") }
    }

    var calibrationSource: CalibrationSource {
        calibrationTokens.map { .tokens($0) } ?? calibration.map { .text($0) } ?? .bundled
    }
}

struct RecoveryOptions: ParsableArguments {
    @Option(help: "Retraining-free recovery of the output and down projections: none, bias (FLAP), ls (least-squares refit), anchored-ls (refit damped toward the original weights).")
    var recover: RecoveryMethod = .none
    @Option(help: "Ridge damping of ls / anchored-ls, relative to the mean diagonal of the kept inputs' covariance (default 0.01 for ls, 0.1 for anchored-ls).")
    var damping: Double?
    @Option(help: ArgumentHelp("Precision of ls / anchored-ls: float32 (covariance products summed in float32 over blocks of 1,024 rows, the blocks in float64, and the anchored-ls solve in float32: the float32 rate, for refits within 2e-4 of float64 ones) or float64 (every sum and solve in float64). Default float32.", valueName: "precision"))
    var covariancePrecision: CovariancePrecision?
}

struct PruneOutputOptions: ParsableArguments {
    @Option(name: .customLong("activation-memory"),
            help: ArgumentHelp("Memory the taylor gradient pass may spend keeping the last layers' projection outputs instead of recomputing them (e.g. 512MB). Default 0: keep only each layer's input. The scores are bit for bit the same; the pass is faster, most on small models.", valueName: "size"))
    var activationMemory = SizeArgument(bytes: 0)
    @Option(help: "Threads for the engine's passes (OpenBLAS and its own loops; default: OpenBLAS's own choice, normally every core).")
    var threads: Int?
    @OptionGroup var memory: MemoryLimitOption
    @Option(help: "Output dtype for floating-point tensors (default: the source's; F32 for dequantized GGUF tensors).")
    var dtype: FloatDType?
    @Option(name: .customLong("shard-size"), help: "Shard the output past this much tensor data (e.g. 5GB).")
    var shardSize = SizeArgument(bytes: 5_000_000_000)
    @Flag(name: .customLong("dry-run"), help: "Print the plan and write only the manifest.")
    var dryRun = false
    @Flag(help: "Replace an existing checkpoint at OUT.")
    var force = false

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        guard shardSize.bytes > 0 else { throw ValidationError("--shard-size must be positive") }
    }
}
