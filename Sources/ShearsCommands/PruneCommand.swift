import ArgumentParser
import CheckpointCore
import Crypto
import Engine
import ModelArchitecture
import Pruning
import ShearsJSON
import Tokenizers
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// `shears prune MODEL OUT`: LLM-Pruner-style structural pruning into a dense Hugging Face folder.
public struct PruneCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Structurally prune a LLaMA-family model (LLM-Pruner): heads, KV groups, MLP channels, hidden channels or layers.",
        discussion: """
            Scores every coupled group (attention head or KV group with its query heads, MLP channel, \
            hidden channel, layer) with the chosen estimator, removes the lowest-scoring ones in \
            upstream LLM-Pruner's counts (n = W0 − int(W0·(1−r)) channels, whole heads only), and \
            writes OUT: model.safetensors (sharded past --shard-size), config.json (stock keys when \
            every layer has the same widths, else per-layer lists with a remote-code modeling file), \
            tokenizer and generation files, and pruning-manifest.json with every kept and removed \
            index and score (formats/manifest.md). The same command writes the same files.

            --dry-run prints the plan and writes only the manifest. Exit status: 0 on success, 2 when \
            an input is unusable, 64 for a usage error (an unreadable option value).
            """)

    @Argument(help: "Source model folder (config.json + safetensors), or an index or .safetensors inside one.", completion: .file())
    var input: String

    @Argument(help: "Output folder, or a .gguf file (llama.cpp's deci architecture when layer widths differ).", completion: .file())
    var output: String

    @Option(help: "Fraction of each pruned structure to remove (upstream --pruning_ratio; 0.25 is the paper's \"20%\").")
    var ratio: Double = 0.25

    @Option(help: "block (heads and MLP channels in layer ranges), channel (hidden channels), layer (whole layers).")
    var strategy: String = "block"

    @Option(name: .customLong("attention-layers"), help: "Layers A:B (end exclusive) whose attention is pruned (default 4:L−2, clamped for small models).")
    var attentionLayers: String?

    @Option(name: .customLong("mlp-layers"), help: "Layers A:B (end exclusive) whose MLP is pruned (default 4:L−2, clamped for small models).")
    var mlpLayers: String?

    @Option(help: "Grouped-query attention: kv-group (a KV head with its query heads) or query (query heads inside each KV group).")
    var gqa: String = "kv-group"

    @Option(help: "taylor, l1, l2, random, or the forward-only wanda-sp and wifv (formats/recovery.md).")
    var importance: String = "taylor"

    @Option(help: "Taylor variant: vectorize, param_first, param_second, param_mix.")
    var taylor: String = "param_first"

    @Option(help: "Group reduction: sum, mean, max, prod, first (default: sum for taylor, mean for l1/l2).")
    var reduction: String?

    @Option(help: "Calibration text (tokenized with the model's tokenizer). Default: the bundled Austen novels.", completion: .file())
    var calibration: String?

    @Option(name: .customLong("calibration-tokens"), help: "Calibration as a JSON array of token-id arrays.", completion: .file())
    var calibrationTokens: String?

    @Option(name: .customLong("seq-len"), help: "Tokens per calibration window.")
    var seqLen = 64

    @Option(help: "Calibration windows per step.")
    var samples = 10

    @Option(help: "Seed of calibration windows and of the random estimator.")
    var seed: UInt64 = 42

    @Flag(name: .customLong("global"), help: "Rank all layers together, scores normalized by the mean of their kind (heads vs MLP channels).")
    var global = false

    @Flag(name: .customLong("global-raw"), help: "Rank all layers together on raw scores (upstream's --global_pruning).")
    var globalRaw = false

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

    @Option(help: ArgumentHelp("Retraining-free recovery of o_proj/down_proj: none, bias (FLAP), ls (least-squares refit), anchored-ls (refit damped toward the original weights).",
                               valueName: "method"))
    var recover: String = "none"

    @Option(help: "Ridge damping of ls / anchored-ls, relative to the mean diagonal of the kept inputs' covariance (default 0.01 for ls, 0.1 for anchored-ls).")
    var damping: Double?

    @Option(help: "uniform (upstream's counts per layer) or adaptive (FLAP-style: per-layer z-scores pooled with parameter costs; same parameter target).")
    var allocation: String = "uniform"

    @Flag(help: "Take each layer's activation statistics on the already pruned and recovered model's inputs.")
    var sequential = false

    @Option(name: .customLong("statistics-samples"), help: "Calibration windows of the activation-statistics pass (wanda-sp, wifv, --recover).")
    var statisticsSamples = 128

    @Option(name: .customLong("statistics-seq-len"), help: "Tokens per activation-statistics window.")
    var statisticsSeqLen = 128

    @Option(name: .customLong("activation-memory"),
            help: ArgumentHelp("Memory the taylor gradient pass may spend keeping the last layers' projection outputs instead of recomputing them (e.g. 512MB). Default 0: keep only each layer's input. The scores are bit for bit the same; the pass is faster, most on small models.",
                               valueName: "size"))
    var activationMemory: String = "0"

    @Option(help: "Threads for the engine's passes (OpenBLAS and its own loops; default: OpenBLAS's own choice, normally every core).")
    var threads: Int?

    @Option(help: "Output dtype for floating-point tensors (default: the source's).")
    var dtype: String?

    @Option(name: .customLong("shard-size"), help: "Shard the output past this much tensor data (e.g. 5GB).")
    var shardSize: String = "5GB"

    @Flag(name: .customLong("dry-run"), help: "Print the plan and write only pruning-manifest.json.")
    var dryRun = false

    @Flag(help: "Replace an existing checkpoint in OUT.")
    var force = false

    public init() {}

    /// `--activation-memory` in bytes (nil when unreadable).
    var activationMemoryBytes: Int? { activationMemory.trimmingSpaces == "0" ? 0 : ByteSize.parse(activationMemory) }

    /// The gradient source for `--importance taylor`: the CPU engine (tests may substitute
    /// recorded gradients). Its argument is `--activation-memory` in bytes.
    public nonisolated(unsafe) static var makeGradientSource: ((_ activationMemory: Int) throws -> any GradientSource)? = {
        EngineGradientSource(activationMemory: $0)
    }

    public func validate() throws {
        guard PruningStrategy(rawValue: strategy) != nil else { throw ValidationError("--strategy must be block, channel or layer") }
        guard GQAPolicy(rawValue: gqa) != nil else { throw ValidationError("--gqa must be kv-group or query") }
        guard ImportanceKind(rawValue: importance) != nil else { throw ValidationError("--importance must be taylor, l1, l2, random, wanda-sp or wifv") }
        guard RecoveryMethod(rawValue: recover) != nil else { throw ValidationError("--recover must be none, bias, ls or anchored-ls") }
        guard Allocation(rawValue: allocation) != nil else { throw ValidationError("--allocation must be uniform or adaptive") }
        guard TaylorVariant(rawValue: taylor) != nil else { throw ValidationError("--taylor must be vectorize, param_first, param_second or param_mix") }
        if let r = reduction, GroupReduction(rawValue: r) == nil { throw ValidationError("--reduction must be sum, mean, max, prod or first") }
        for (name, v) in [("--attention-layers", attentionLayers), ("--mlp-layers", mlpLayers)] {
            if let v, LayerRange(parsing: v) == nil { throw ValidationError("\(name) must be A:B with 0 ≤ A ≤ B, not '\(v)'") }
        }
        if global && globalRaw { throw ValidationError("choose --global or --global-raw, not both") }
        if calibration != nil && calibrationTokens != nil { throw ValidationError("choose --calibration or --calibration-tokens, not both") }
        if let d = dtype {
            guard let t = DType(userName: d), t.isFloatingPoint, t.convertsFromFloat32, t != .c64 else { throw ValidationError("unusable --dtype '\(d)'") }
        }
        guard ByteSize.parse(shardSize) != nil else { throw ValidationError("--shard-size: cannot read '\(shardSize)' as a size") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        guard activationMemoryBytes != nil else {
            throw ValidationError("--activation-memory: cannot read '\(activationMemory)' as a size (examples: 0, 512MB, 2GiB)")
        }
        guard seqLen >= 2, samples >= 1 else { throw ValidationError("--seq-len must be at least 2 and --samples at least 1") }
    }

    var settings: PruningSettings {
        var s = PruningSettings()
        s.strategy = PruningStrategy(rawValue: strategy)!
        s.ratio = ratio
        s.attentionLayers = attentionLayers.flatMap(LayerRange.init(parsing:))
        s.mlpLayers = mlpLayers.flatMap(LayerRange.init(parsing:))
        s.gqa = GQAPolicy(rawValue: gqa)!
        s.importance = ImportanceKind(rawValue: importance)!
        s.taylor = TaylorVariant(rawValue: taylor)!
        s.reduction = reduction.flatMap(GroupReduction.init(rawValue:))
        s.scope = global ? .global : globalRaw ? .globalRaw : .local
        s.iterativeSteps = iterativeSteps
        s.roundTo = roundTo
        s.uniform = uniform
        s.keepLayers = keepLayers
        s.removeLayers = removeLayers
        s.seed = seed
        s.recovery = RecoveryMethod(rawValue: recover)!
        s.damping = damping
        s.allocation = Allocation(rawValue: allocation)!
        s.sequential = sequential
        s.statisticsSamples = statisticsSamples
        s.statisticsSeqLen = statisticsSeqLen
        return s
    }

    public func run() throws {
        if let t = threads { Parallel.setThreads(t) }
        do { try prune() } catch { throw report(error) }
    }

    private func prune() throws {
        if output.hasSuffix(".gguf") { return try pruneIntoGGUF() }  // issue 10: via a staging folder
        let started = monotonicSeconds()
        try EngineArguments.refuseGGUF(input)
        let source = try Checkpoint.open(input)
        guard let configPath = source.configPath else {
            throw CheckpointError(.invalidConfig, "no config.json next to the weights; pruning needs the model's sizes", path: source.folder)
        }
        let config = try ModelConfiguration(path: configPath)
        let shape = try ModelShape(configuration: config)
        try checkTensors(source, shape)
        let settings = try self.settings.resolved(for: shape)
        if !dryRun { try checkOutput() }
        let target = dtype.flatMap { DType(userName: $0) }

        // Scores and selection.
        var calibrationRecord: CalibrationRecord? = nil
        var statisticsRecord: CalibrationRecord? = nil
        var plan: PruningPlan
        let needsScores = !(settings.strategy == .layer && settings.keepLayers != nil)
        let scratch = FileSystem.join(output, ".shears-prune-step")
        let sourceFolder = source.folder
        let materialize: (PruningPlan) throws -> String = { plan in
            if plan == PruningPlan(unpruned: shape) { return sourceFolder }
            try writeModel(source, plan: plan, config: config, to: scratch, dtype: nil, quiet: true)
            return scratch
        }
        defer { Self.removeFolder(scratch) }
        // Activation-statistics windows (wanda-sp, wifv, recovery): step s's windows; step 1's are
        // the ones recovery uses.
        var statisticsWindows: [Int: [[Int32]]] = [:]
        var statisticsSampler: CalibrationSampler? = nil
        if settings.needsStatistics && needsScores || settings.recovery != .none {
            StandardError.print("prune: reading calibration data")
            let (documents, record) = try calibrationDocuments(folder: source.folder)
            statisticsSampler = try CalibrationSampler(documents: documents, samples: settings.statisticsSamples, seqLen: settings.statisticsSeqLen, seed: settings.seed)
            statisticsRecord = CalibrationRecord(file: record.file, sha256: record.sha256, samples: settings.statisticsSamples,
                                                 seqLen: settings.statisticsSeqLen, seed: settings.seed, tokenCount: statisticsSampler!.tokenCount)
        }
        func windows(_ step: Int) -> [[Int32]] {
            if let w = statisticsWindows[step] { return w }
            for s in (statisticsWindows.keys.max() ?? 0) + 1...step { statisticsWindows[s] = statisticsSampler!.batch(step: s) }
            return statisticsWindows[step]!
        }
        var reusable: ActivationStatistics? = nil
        let sequentialSelection = settings.sequential && settings.importance.needsActivations && needsScores
        switch settings.importance {
        case _ where sequentialSelection:
            plan = PruningPlan(unpruned: shape)   // decided layer by layer below
        case .taylor where needsScores:
            guard let make = Self.makeGradientSource else {
                throw CheckpointError(.invalidArgument, "taylor needs the engine; not available in this build (use --importance l1, l2 or random)")
            }
            let gradients = try make(activationMemoryBytes!)
            StandardError.print("prune: reading calibration data")
            let (documents, record) = try calibrationDocuments(folder: source.folder)
            var sampler = try CalibrationSampler(documents: documents, samples: samples, seqLen: seqLen, seed: settings.seed)
            calibrationRecord = CalibrationRecord(file: record.file, sha256: record.sha256, samples: samples, seqLen: seqLen,
                                                  seed: settings.seed, tokenCount: sampler.tokenCount)
            var estimator = TaylorImportance(variant: settings.taylor, source: gradients, batch: { step in
                StandardError.print("prune: step \(step)/\(settings.iterativeSteps): gradients on \(samples) × \(seqLen) tokens")
                return sampler.batch(step: step)
            }, materialize: materialize)
            plan = try Pruner.plan(shape: shape, settings: settings, estimator: &estimator)
        case .wandaSP, .wifv where needsScores:
            let progress = Progress(totalItems: shape.layers, label: "prune: activation statistics (layers)")
            var estimator = ActivationImportance(kind: settings.importance, source: Self.makeActivationSource(), windows: { step in
                StandardError.print("prune: step \(step)/\(settings.iterativeSteps): activation statistics on \(settings.statisticsSamples) × \(settings.statisticsSeqLen) tokens")
                return windows(step)
            }, materialize: materialize, progress: { done, _ in progress.update(done) })
            plan = try Pruner.plan(shape: shape, settings: settings, estimator: &estimator)
            progress.finish()
            if estimator.statisticsAreOnSource { reusable = estimator.statistics }
        case .l1, .l2:
            StandardError.print("prune: scoring with \(settings.importance.rawValue)")
            let progress = Progress(totalItems: 100, label: "prune: scoring (%)")
            var estimator = MagnitudeImportance(power: settings.importance == .l1 ? 1 : 2, checkpoint: source) { done, total in
                progress.update(done * 100 / max(total, 1))
            }
            plan = try Pruner.plan(shape: shape, settings: settings, estimator: &estimator)
            progress.finish()
        default:
            var estimator = RandomImportance(seed: settings.seed)
            plan = try Pruner.plan(shape: shape, settings: settings, estimator: &estimator)
        }

        // Recovery (and sequential selection), one layer at a time.
        var recovered: RecoveredTensors? = nil
        let recoveryScratch = FileSystem.join(output, ".shears-recovery")
        defer { Self.removeFolder(recoveryScratch) }
        if (settings.recovery != .none && !dryRun) || sequentialSelection {
            let what = settings.recovery == .none ? "sequential selection" : "recovery (\(settings.recovery.rawValue), \(settings.sequential ? "sequential" : "original") statistics)"
            StandardError.print("prune: \(what) on \(settings.statisticsSamples) × \(settings.statisticsSeqLen) tokens")
            try FileSystem.createDirectory(output)
            var run = RecoveryRun(source: source, settings: settings)
            if sequentialSelection {
                let kind = settings.importance
                run.selectLayer = { l, stats, plan in
                    var s = settings
                    s.attentionLayers = (settings.attentionLayers?.contains(l) ?? false) ? LayerRange(l, l + 1) : LayerRange(l, l)
                    s.mlpLayers = (settings.mlpLayers?.contains(l) ?? false) ? LayerRange(l, l + 1) : LayerRange(l, l)
                    let scores = try ActivationImportance.unitScores(kind: kind, statistics: stats, weights: source, plan: plan, settings: s)
                    plan = try Selection.apply(scores, to: plan, settings: s, step: 1)
                }
            }
            let progress = Progress(totalItems: shape.layers, label: "prune: recovery (layers)")
            run.progress = { done, _ in progress.update(done) }
            recovered = try run.run(plan: &plan, openStream: { try Self.makeActivationSource().stream(modelFolder: source.folder, windows: windows(1)) },
                                    scratch: recoveryScratch, reuse: reusable)
            progress.finish()
        }

        // Output.
        try FileSystem.createDirectory(output)
        var resultFiles: [String: String] = [:]
        var fileSizes = 0
        if !dryRun {
            StandardError.print("prune: writing \(output)")
            let written = try writeModel(source, plan: plan, config: config, to: output, dtype: target, quiet: false, recovered: recovered)
            for path in written {
                resultFiles[FileSystem.baseName(path)] = try Self.sha256(path)
                fileSizes += try FileSystem.size(of: path)
            }
        }
        var sourceFiles: [String: String] = [:]
        for f in source.files { sourceFiles[FileSystem.baseName(f.path)] = try Self.sha256(f.path) }
        if let index = source.indexPath { sourceFiles[FileSystem.baseName(index)] = try Self.sha256(index) }
        sourceFiles["config.json"] = try Self.sha256(configPath)
        var manifest = PruningManifest(plan: plan, settings: settings, sourceFiles: sourceFiles, sourceConfig: config.summary,
                                       resultFiles: resultFiles, calibration: calibrationRecord)
        manifest.dryRun = dryRun
        manifest.statistics = statisticsRecord
        manifest.recovered = recovered
        manifest.sourceParameters = source.parameterCount
        manifest.resultParameters = Surgery.slices(source, plan: plan).reduce(0) { $0 + $1.outputShape.reduce(1, *) }
            + (recovered?.added ?? []).reduce(0) { n, name in n + Self.biasSize(name, plan: plan) }
        manifest.extraSettings = [
            ("dtype", target.map { .string($0.rawValue) } ?? .null),
            ("shard_size", .int(Int64(ByteSize.parse(shardSize)!))),
        ]
        let manifestPath = FileSystem.join(output, "pruning-manifest.json")
        try AtomicFile.write(manifest.bytes, to: manifestPath)
        StandardOutput.write(summary(plan, shape: shape, parameters: (manifest.sourceParameters!, manifest.resultParameters!), fileBytes: fileSizes, sourceBytes: source.fileBytes, seconds: monotonicSeconds() - started))
    }

    /// Writes the pruned folder with progress on stderr.
    @discardableResult
    private func writeModel(_ source: Checkpoint, plan: PruningPlan, config: ModelConfiguration, to folder: String,
                            dtype: DType?, quiet: Bool, recovered: RecoveredTensors? = nil) throws -> [String] {
        let progress = Progress(totalItems: source.tensorCount, label: "prune: writing", quiet: quiet)
        defer { progress.finish() }
        return try PrunedFolder.write(source, configuration: config, plan: plan, to: folder, dtype: dtype,
                                      maxShardSize: ByteSize.parse(shardSize), recovered: recovered) { done, _ in
            if !quiet { progress.update(done) }
        }
    }

    private func checkOutput() throws {
        guard FileSystem.kind(of: output) != nil else { return }
        guard FileSystem.isDirectory(output) else { throw CheckpointError(.invalidArgument, "exists and is not a folder", path: output) }
        if !force, try FileSystem.contents(of: output).contains(where: { $0.hasSuffix(".safetensors") || $0 == "pruning-manifest.json" }) {
            throw CheckpointError(.invalidArgument, "folder already holds a checkpoint or manifest; pass --force to replace it", path: output)
        }
    }

    /// Every tensor pruning slices must have the shape the config implies.
    private func checkTensors(_ c: Checkpoint, _ s: ModelShape) throws {
        let q = s.attentionHeads * s.headDim, kv = s.keyValueHeads * s.headDim, h = s.hiddenSize, i = s.intermediateSize
        var expected: [(String, [Int])] = [(ModelShape.embedding, [s.vocabSize, h]), (ModelShape.finalNorm, [h])]
        if !s.tiedEmbeddings && c.info(named: ModelShape.lmHead) != nil { expected.append((ModelShape.lmHead, [s.vocabSize, h])) }
        for l in 0..<s.layers {
            expected += [(ModelShape.attention(l, "q"), [q, h]), (ModelShape.attention(l, "k"), [kv, h]), (ModelShape.attention(l, "v"), [kv, h]),
                         (ModelShape.attention(l, "o"), [h, q]), (ModelShape.mlp(l, "gate"), [i, h]), (ModelShape.mlp(l, "up"), [i, h]),
                         (ModelShape.mlp(l, "down"), [h, i]), (ModelShape.norm(l, "input_layernorm"), [h]),
                         (ModelShape.norm(l, "post_attention_layernorm"), [h])]
        }
        for (name, shape) in expected {
            guard let info = c.info(named: name) else { throw CheckpointError(.tensorNotFound, "the model has no tensor of this name", path: c.path, tensor: name) }
            guard info.shape == shape else {
                throw CheckpointError(.shapeMismatch, "shape \(info.shape) does not match the config's \(shape)", path: c.path, tensor: name)
            }
        }
    }

    /// Calibration documents: token arrays, a text file, or the bundled Austen novels (one document each).
    private func calibrationDocuments(folder: String) throws -> ([[Int32]], (file: String, sha256: String)) {
        if let path = calibrationTokens {
            let bytes = try FileSystem.readFile(path)
            guard let arr = try JSONValue.parse(bytes).arrayValue else { throw CheckpointError(.invalidArgument, "not a JSON array of token-id arrays", path: path) }
            var docs: [[Int32]] = []
            for (i, d) in arr.enumerated() {
                guard let ids = d.arrayValue?.compactMap({ $0.intValue }), ids.count == d.arrayValue!.count,
                      ids.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }) else {
                    throw CheckpointError(.invalidArgument, "element \(i) is not an array of token ids", path: path)
                }
                docs.append(ids.map { Int32($0) })
            }
            return (docs, (FileSystem.baseName(path), try Self.sha256(path)))
        }
        let tokenizer = try Tokenizer(contentsOf: folder)
        let files: [String]
        let name: String
        if let calibration {
            files = [calibration]
            name = FileSystem.baseName(calibration)
        } else {
            guard let dir = Self.bundledCalibration() else {
                throw CheckpointError(.io, "cannot find the bundled calibration text (Fixtures/text/austen-calibration); set SHEARS_FIXTURES or pass --calibration")
            }
            files = try FileSystem.contents(of: dir).filter { $0.hasSuffix(".txt") }.map { FileSystem.join(dir, $0) }
            name = "austen-calibration"
        }
        var hasher = SHA256()
        var docs: [[Int32]] = []
        for f in files {
            let bytes = try FileSystem.readFile(f)
            if files.count > 1 { hasher.update(data: Array(FileSystem.baseName(f).utf8) + [0]) }
            hasher.update(data: bytes)
            docs.append(tokenizer.encode(bytes: bytes))
        }
        return (docs, (name, TensorHashes.hex(hasher.finalize())))
    }

    /// The bundled calibration folder: `$SHEARS_FIXTURES/text/austen-calibration`, else
    /// `Fixtures/text/austen-calibration` in the current folder or above the executable.
    static func bundledCalibration() -> String? {
        let rel = "text/austen-calibration"
        if let env = getenv("SHEARS_FIXTURES") {
            let p = FileSystem.join(String(cString: env), rel)
            if FileSystem.isDirectory(p) { return p }
        }
        if FileSystem.isDirectory("Fixtures/" + rel) { return "Fixtures/" + rel }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        var dir = FileSystem.directoryName(String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        for _ in 0..<6 {
            let p = FileSystem.join(dir, "Fixtures/" + rel)
            if FileSystem.isDirectory(p) { return p }
            dir = FileSystem.directoryName(dir)
        }
        return nil
    }

    /// The activation source for wanda-sp, wifv and recovery: the CPU engine (tests may substitute).
    public nonisolated(unsafe) static var makeActivationSource: () -> any ActivationSource = { EngineActivationSource() }

    /// Elements of an added bias: the output width of its projection in `plan`'s result.
    static func biasSize(_ name: String, plan: PruningPlan) -> Int {
        guard let (l, rest) = ModelShape.layerIndex(of: name) else { return 0 }
        let w = plan.layers[l].widths, d = plan.shape.headDim
        switch rest {
        case "self_attn.q_proj.bias": return w.numAttentionHeads * d
        case "self_attn.k_proj.bias", "self_attn.v_proj.bias": return w.numKeyValueHeads * d
        case "mlp.gate_proj.bias", "mlp.up_proj.bias": return w.intermediateSize
        default: return plan.keptHidden.count
        }
    }

    /// Deletes a flat scratch folder and its files.
    static func removeFolder(_ path: String) {
        guard FileSystem.isDirectory(path), let names = try? FileSystem.contents(of: path) else { return }
        for n in names { _ = unlink(FileSystem.join(path, n)) }
        _ = rmdir(path)
    }

    static func sha256(_ path: String) throws -> String {
        let m = try MappedFile(path: path)
        return m.withUnsafeBytes { TensorHashes.hex(SHA256.hash(data: $0)) }
    }

    private func summary(_ plan: PruningPlan, shape: ModelShape, parameters: (Int, Int), fileBytes: Int, sourceBytes: Int, seconds: Double) -> String {
        let (before, after) = parameters
        var s = dryRun ? "Plan (dry run; only pruning-manifest.json written)\n" : "Pruned \(input) → \(output)\n"
        s += "parameters: \(Format.grouped(before)) → \(Format.grouped(after)) (\(Format.fixed(100 * Double(after) / Double(before), 2))% kept)\n"
        if !dryRun { s += "files: \(Format.bytes(sourceBytes)) → \(Format.bytes(fileBytes))\n" }
        if plan.keptHidden.count != shape.hiddenSize { s += "hidden: \(shape.hiddenSize) → \(plan.keptHidden.count)\n" }
        if !plan.removedLayers.isEmpty { s += "removed layers: \(plan.removedLayers.map(String.init).joined(separator: ", "))\n" }
        s += "layer  heads    kv  mlp\n"
        for (i, l) in plan.keptLayers.enumerated() {
            let w = plan.layers[l].widths
            let scored = plan.layers[l].attentionScores.filter { !$0.isNaN }
            var line = Format.pad(String(i), 5, right: true) + "  "
                + Format.pad("\(shape.attentionHeads)→\(w.numAttentionHeads)", 7) + "  "
                + Format.pad("\(shape.keyValueHeads)→\(w.numKeyValueHeads)", 4) + "  "
                + "\(shape.intermediateSize)→\(w.intermediateSize)"
            if l != i { line += "  (source layer \(l))" }
            if let lo = scored.min(), let hi = scored.max() { line += "  attention scores \(Self.short(lo))…\(Self.short(hi))" }
            s += line + "\n"
        }
        s += plan.isUniform ? "config: uniform widths (stock config.json)\n" : "config: per-layer widths (\(PrunedConfiguration.modelingFileName), trust_remote_code)\n"
        s += "time: \(Format.fixed(seconds, 1)) s\n"
        return s
    }

    static func short(_ v: Double) -> String {
        let a = abs(v)
        if a != 0 && (a < 1e-3 || a >= 1e5) {
            var e = 0, m = a
            while m >= 10 { m /= 10; e += 1 }
            while m < 1 { m *= 10; e -= 1 }
            return (v < 0 ? "-" : "") + Format.fixed(m, 3) + "e" + String(e)
        }
        return Format.fixed(v, 4)
    }
}

// MARK: - OUT ending in .gguf (issue 10)

extension PruneCommand {
    /// Prunes into a staging folder next to OUT, converts it to GGUF there (PrunedGGUFOutput) and
    /// removes the folder.
    private func pruneIntoGGUF() throws {
        let staged = try PrunedGGUFOutput.staging(for: output, force: force, dryRun: dryRun)
        var folder = self
        folder.output = staged.path
        folder.force = true
        try folder.prune()
        try PrunedGGUFOutput.finish(folder: staged.path, gguf: output, dryRun: dryRun)
    }
}
