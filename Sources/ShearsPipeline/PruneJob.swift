#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import CompactFormat
import Engine
import GGUF
import ModelArchitecture
import Pruning
import ShearsJSON

/// The whole pruning job as one call: open any model Shears reads, score, select, recover, and
/// write the pruned checkpoint (a Hugging Face folder, a GGUF file or a compact file, by the
/// output's name) with its manifest.
///
/// ```swift
/// var job = PruneJob(source: "SmolLM2-135M-Instruct.Q4_1.gguf", output: "pruned.gguf")
/// job.settings.ratio = 0.25
/// job.gradients = EngineGradientSource()          // Taylor importance needs gradients
/// let result = try job.run { event in print(event) }
/// print(result.manifest.resultParameters!)
/// ```
public struct PruneJob {
    /// Any model path ``ModelSource`` opens.
    public var source: String
    /// A folder, a `.gguf` file (llama.cpp's `deci` architecture when layer widths differ) or a
    /// `.ctz` file (tensors only, as `convert` writes it); the manifest of a file output is written
    /// next to it as `<name>.pruning-manifest.json`.
    public var output: String
    public var settings = PruningSettings()
    /// Calibration text for the Taylor gradients and the activation statistics.
    public var calibration: CalibrationSource = .bundled
    /// Taylor calibration: windows per step and tokens per window.
    public var samples = 10
    public var seqLen = 64
    /// Output dtype of floating-point tensors (nil: the source's; F32 for dequantized GGUF tensors).
    public var dtype: DType? = nil
    /// Shard the folder output past this many bytes of tensor data.
    public var shardSize: Int? = 5_000_000_000
    /// Plan only: write just the manifest.
    public var dryRun = false
    /// Replace an existing checkpoint at the output.
    public var force = false
    /// Gradients for `importance: .taylor` (the engine: ``EngineGradientSource``).
    public var gradients: (any GradientSource)? = nil
    /// Activations for `wanda-sp`, `wifv`, `--recover` and `--sequential` (``EngineActivationSource``).
    public var activations: (any ActivationSource)? = nil
    /// The memory recovery may plan for, in bytes (nil: the engine's ``MemoryBudget/current``):
    /// a layer's covariance accumulators are kept in memory up to a quarter of it and spilled to a
    /// file in the output's staging area beyond; the least-squares solves work in blocks of output
    /// rows of at most an eighth of it.
    public var memoryLimit: Int? = nil

    public init(source: String, output: String, settings: PruningSettings = PruningSettings()) {
        self.source = source
        self.output = output
        self.settings = settings
    }

    /// A job whose gradient and activation sources are the CPU engine.
    public static func withEngine(source: String, output: String, settings: PruningSettings = PruningSettings(),
                                  activationMemory: Int = 0) -> PruneJob {
        var job = PruneJob(source: source, output: output, settings: settings)
        job.gradients = EngineGradientSource(activationMemory: activationMemory)
        job.activations = EngineActivationSource()
        return job
    }

    /// What the job reports while it runs.
    public enum Event: Sendable {
        /// A phase begins (a line for a log).
        case message(String)
        /// Work done in a counted phase (`total` units; `phase` names them).
        case progress(phase: String, done: Int, total: Int)
        /// A counted phase ended.
        case finished(phase: String)
    }

    /// What the job wrote.
    public struct Result {
        public var manifest: PruningManifest
        public var source: ModelSource
        /// The manifest's path.
        public var manifestPath: String
        /// Bytes of the written checkpoint files (0 for a dry run).
        public var outputBytes: Int
        /// `general.architecture` of a GGUF output.
        public var ggufArchitecture: String?
        /// Conversion warnings (GGUF quantization notes).
        public var warnings: [String] = []
    }

    public enum OutputKind: Sendable { case folder, gguf, compact }

    public var outputKind: OutputKind {
        output.hasSuffix(".gguf") ? .gguf : output.hasSuffix("." + CompactLayout.fileExtension) ? .compact : .folder
    }

    /// The manifest's path for a file output.
    public static func manifestPath(forFile path: String) -> String {
        let base = path.hasSuffix(".gguf") ? String(path.dropLast(5)) : String(path.dropLast(CompactLayout.fileExtension.count + 1))
        return base + ".pruning-manifest.json"
    }

    /// Runs the job.
    /// - Throws: ``CheckpointError``: `invalidArgument` for settings that do not apply to the model
    ///   (a usage error), input and output errors naming the file and the tensor.
    @discardableResult
    public func run(_ report: @escaping (Event) -> Void = { _ in }) throws -> Result {
        let model = try ModelSource.open(source)
        return try run(model, report)
    }

    /// Runs the job on an opened model.
    @discardableResult
    public func run(_ model: ModelSource, _ report: @escaping (Event) -> Void = { _ in }) throws -> Result {
        try OutputPlacement.checkOutside(output: output, source: source)
        // One writer per output: a second shears on the same OUT fails here (and stale temporaries
        // of killed runs are swept).
        let lock = try OutputLock(destination: output, companions: outputKind == .folder ? [] : [Self.manifestPath(forFile: output)])
        let result = try runClaimed(model, report)
        lock.succeed()
        lock.release()
        return result
    }

    private func runClaimed(_ model: ModelSource, _ report: @escaping (Event) -> Void) throws -> Result {
        switch outputKind {
        case .folder:
            if !dryRun { try checkFolderOutput() }
            // Built in a staging folder next to OUT and moved into place when complete, so that a
            // failure (a full disk, an interrupted run) leaves OUT as it was.
            let staged = try StagedFolder(destination: output)
            var result = try pruneIntoFolder(model, folder: staged.path, report)
            try staged.commit()
            result.manifestPath = FileSystem.join(output, "pruning-manifest.json")
            return result
        case .gguf, .compact:
            if FileSystem.isDirectory(output) {
                throw CheckpointError(.invalidArgument, "is a folder; a .\(outputKind == .gguf ? "gguf" : CompactLayout.fileExtension) output must be a file path", path: output)
            }
            if !dryRun && !force && FileSystem.kind(of: output) != nil {
                throw CheckpointError(.invalidArgument, "already exists; pass --force to replace it", path: output)
            }
            let staged = try StagedFolder(destination: output)
            var result = try pruneIntoFolder(model, folder: staged.path, report)
            let target = Self.manifestPath(forFile: output)
            if !dryRun {
                if outputKind == .gguf {
                    report(.message("prune: converting to GGUF \(output)"))
                    let r = try HuggingFaceToGGUF.convert(folder: staged.path, to: output, options: .init(name: FileSystem.baseName(String(output.dropLast(5)))))
                    result.warnings = r.warnings
                    result.ggufArchitecture = r.architecture
                    result.outputBytes = r.fileSize
                } else {
                    report(.message("prune: writing compact \(output)"))
                    // Written under a temporary name and renamed into place (AtomicFile).
                    try CompactConversion.write(try Checkpoint.open(staged.path), to: output)
                    result.outputBytes = try FileSystem.size(of: output)
                }
                result.manifest.resultFiles = [FileSystem.baseName(output): try ModelSource.sha256(output)]
            }
            try AtomicFile.write(result.manifest.bytes, to: target)
            result.manifestPath = target
            return result
        }
    }

    private func checkFolderOutput() throws {
        guard FileSystem.kind(of: output) != nil else { return }
        guard FileSystem.isDirectory(output) else { throw CheckpointError(.invalidArgument, "exists and is not a folder", path: output) }
        if !force, try FileSystem.contents(of: output).contains(where: { $0.hasSuffix(".safetensors") || $0 == "pruning-manifest.json" }) {
            throw CheckpointError(.invalidArgument, "folder already holds a checkpoint or manifest; pass --force to replace it", path: output)
        }
    }

    /// Prunes `model` into `folder` (the output, or a staging folder for a file output) and writes
    /// its manifest there.
    private func pruneIntoFolder(_ model: ModelSource, folder output: String, _ report: @escaping (Event) -> Void) throws -> Result {
        let shape = model.description, source = model.store
        guard shape.isUniform else {
            throw CheckpointError(.invalidArgument, "the model's layers differ in width (an already pruned model); pruning starts from a model whose layers are all alike", path: model.path)
        }
        let settings = try self.settings.resolved(for: shape)
        let config = shape.configuration
        let target = dtype ?? model.dequantizedDType

        var calibrationRecord: CalibrationRecord? = nil
        var statisticsRecord: CalibrationRecord? = nil
        var plan: PruningPlan
        let needsScores = !(settings.strategy == .layer && settings.keepLayers != nil)
        let scratch = FileSystem.join(output, ".shears-prune-step")
        let materialize: (PruningPlan) throws -> MaterializedModel = { plan in
            if plan == PruningPlan(unpruned: shape) { return MaterializedModel(path: model.path, store: source) }
            try PrunedFolder.write(source, configuration: config, plan: plan, to: scratch, dtype: nil,
                                   maxShardSize: shardSize, companionFolder: model.companionFolder, extraFiles: model.builtFiles.filter { $0.0 != "config.json" })
            return MaterializedModel(path: scratch, store: try ModelSource.open(scratch).store)
        }
        defer { StagedFolder.removeFlat(scratch) }
        var documents: (documents: [[Int32]], file: String, sha256: String)? = nil
        func calibrationDocuments() throws -> (documents: [[Int32]], file: String, sha256: String) {
            if let documents { return documents }
            report(.message("prune: reading calibration data"))
            documents = try calibration.documents(tokenizer: { try model.tokenizer() })
            return documents!
        }
        // Activation-statistics windows (wanda-sp, wifv, recovery): step s's windows; step 1's are
        // the ones recovery uses.
        var statisticsWindows: [Int: [[Int32]]] = [:]
        var statisticsSampler: CalibrationSampler? = nil
        if settings.needsStatistics && needsScores || settings.recovery != .none {
            let d = try calibrationDocuments()
            statisticsSampler = try CalibrationSampler(documents: d.documents, samples: settings.statisticsSamples, seqLen: settings.statisticsSeqLen, seed: settings.seed)
            statisticsRecord = CalibrationRecord(file: d.file, sha256: d.sha256, samples: settings.statisticsSamples,
                                                 seqLen: settings.statisticsSeqLen, seed: settings.seed, tokenCount: statisticsSampler!.tokenCount)
        }
        func windows(_ step: Int) -> [[Int32]] {
            if let w = statisticsWindows[step] { return w }
            for s in (statisticsWindows.keys.max() ?? 0) + 1...step { statisticsWindows[s] = statisticsSampler!.batch(step: s) }
            return statisticsWindows[step]!
        }
        func activationSource() throws -> any ActivationSource {
            guard let activations else {
                throw CheckpointError(.invalidArgument, "\(settings.importance.needsActivations ? settings.importance.rawValue : "--recover") needs activation statistics; no activation source was given")
            }
            return activations
        }
        var reusable: ActivationStatistics? = nil
        let sequentialSelection = settings.sequential && settings.importance.needsActivations && needsScores
        // wanda-sp/wifv with ls/anchored-ls, when each layer's selection depends on its own scores
        // only: one statistics pass gives each layer's scores and covariances, and the layer is
        // selected and refit before the next (docs/scaling.md).
        let onePass = !sequentialSelection && !dryRun && settings.importance.needsActivations && needsScores
            && settings.recovery.needsCovariance && settings.strategy == .block && settings.scope == .local
            && settings.allocation == .uniform && settings.iterativeSteps == 1
        switch settings.importance {
        case _ where sequentialSelection || onePass:
            plan = PruningPlan(unpruned: shape)   // decided layer by layer below
        case .taylor where needsScores:
            guard let gradients else {
                throw CheckpointError(.invalidArgument, "taylor importance needs gradients; no gradient source was given (use the engine's, or --importance l1, l2 or random)")
            }
            let d = try calibrationDocuments()
            var sampler = try CalibrationSampler(documents: d.documents, samples: samples, seqLen: seqLen, seed: settings.seed)
            calibrationRecord = CalibrationRecord(file: d.file, sha256: d.sha256, samples: samples, seqLen: seqLen,
                                                  seed: settings.seed, tokenCount: sampler.tokenCount)
            let (samples, seqLen) = (self.samples, self.seqLen)
            var estimator = TaylorImportance(variant: settings.taylor, source: gradients, batch: { step in
                report(.message("prune: step \(step)/\(settings.iterativeSteps): gradients on \(samples) × \(seqLen) tokens"))
                return sampler.batch(step: step)
            }, materialize: materialize)
            plan = try Pruner.plan(shape: shape, settings: settings, estimator: &estimator)
        case .wandaSP, .wifv where needsScores:
            let phase = "prune: activation statistics (layers)"
            var estimator = ActivationImportance(kind: settings.importance, source: try activationSource(), windows: { step in
                report(.message("prune: step \(step)/\(settings.iterativeSteps): activation statistics on \(settings.statisticsSamples) × \(settings.statisticsSeqLen) tokens"))
                return windows(step)
            }, materialize: materialize, progress: { done, total in report(.progress(phase: phase, done: done, total: total)) })
            plan = try Pruner.plan(shape: shape, settings: settings, estimator: &estimator)
            report(.finished(phase: phase))
            if estimator.statisticsAreOnSource { reusable = estimator.statistics }
        case .l1, .l2:
            report(.message("prune: scoring with \(settings.importance.rawValue)"))
            let phase = "prune: scoring (%)"
            var estimator = MagnitudeImportance(power: settings.importance == .l1 ? 1 : 2, checkpoint: source) { done, total in
                report(.progress(phase: phase, done: done * 100 / max(total, 1), total: 100))
            }
            plan = try Pruner.plan(shape: shape, settings: settings, estimator: &estimator)
            report(.finished(phase: phase))
        default:
            var estimator = RandomImportance(seed: settings.seed)
            plan = try Pruner.plan(shape: shape, settings: settings, estimator: &estimator)
        }

        // Recovery (and sequential selection), one layer at a time.
        var recovered: RecoveredTensors? = nil
        let recoveryScratch = FileSystem.join(output, ".shears-recovery")
        defer { StagedFolder.removeFlat(recoveryScratch) }
        if (settings.recovery != .none && !dryRun) || sequentialSelection {
            let what = settings.recovery == .none ? "sequential selection"
                : onePass ? "\(settings.importance.rawValue) scores, selection and recovery (\(settings.recovery.rawValue)) in one statistics pass"
                : "recovery (\(settings.recovery.rawValue), \(settings.sequential ? "sequential" : "original") statistics)"
            report(.message("prune: \(what) on \(settings.statisticsSamples) × \(settings.statisticsSeqLen) tokens"))
            try FileSystem.createDirectory(output)
            var run = RecoveryRun(source: source, settings: settings)
            let limit = memoryLimit ?? MemoryBudget.current.bytes
            run.covarianceMemory = limit / 4
            run.solveMemory = limit / 8
            if sequentialSelection || onePass {
                let kind = settings.importance
                run.selectLayer = { l, stats, plan in
                    var s = settings
                    s.attentionLayers = (settings.attentionLayers?.contains(l) ?? false) ? LayerRange(l, l + 1) : LayerRange(l, l)
                    s.mlpLayers = (settings.mlpLayers?.contains(l) ?? false) ? LayerRange(l, l + 1) : LayerRange(l, l)
                    let scores = try ActivationImportance.unitScores(kind: kind, statistics: stats, weights: source, plan: plan, settings: s)
                    plan = try Selection.apply(scores, to: plan, settings: s, step: 1)
                }
            }
            let phase = "prune: recovery (layers)"
            let activations = try activationSource()
            run.progress = { done, total in report(.progress(phase: phase, done: done, total: total)) }
            var timing = RecoveryRun.Timing()
            recovered = try run.run(plan: &plan, openStream: { try activations.stream(model: model.path, windows: windows(1)) },
                                    scratch: recoveryScratch, reuse: reusable, timing: &timing)
            report(.finished(phase: phase))
            let spilled = timing.spilledSites == 0 ? "" : "; \(timing.spilledSites) covariance accumulators spilled to disk"
            report(.message("prune: recovery time: statistics \(Self.seconds(timing.statistics)) s, selection and solves \(Self.seconds(timing.solves)) s, scratch files \(Self.seconds(timing.scratch)) s\(spilled)"))
        }

        // Output.
        try FileSystem.createDirectory(output)
        var resultFiles: [String: String] = [:]
        var fileSizes = 0
        if !dryRun {
            report(.message("prune: writing \(self.output)"))
            let phase = "prune: writing"
            let written = try PrunedFolder.write(source, configuration: config, plan: plan, to: output, dtype: target, maxShardSize: shardSize,
                                                 recovered: recovered, companionFolder: model.companionFolder,
                                                 extraFiles: model.builtFiles.filter { $0.0 != "config.json" }) { done, total in
                report(.progress(phase: phase, done: done, total: total))
            }
            report(.finished(phase: phase))
            for path in written {
                resultFiles[FileSystem.baseName(path)] = try ModelSource.sha256(path)
                fileSizes += try FileSystem.size(of: path)
            }
        }
        var manifest = PruningManifest(plan: plan, settings: settings, sourceFiles: try model.sourceFileHashes(), sourceConfig: config.summary,
                                       resultFiles: resultFiles, calibration: calibrationRecord)
        manifest.dryRun = dryRun
        manifest.statistics = statisticsRecord
        manifest.recovered = recovered
        manifest.sourceParameters = source.parameterCount
        manifest.resultParameters = Surgery.slices(source, plan: plan).reduce(0) { $0 + $1.outputShape.reduce(1, *) }
            + (recovered?.added ?? []).reduce(0) { n, name in n + Self.biasSize(name, plan: plan) }
        manifest.extraSettings = [
            ("dtype", target.map { .string($0.rawValue) } ?? .null),
            ("shard_size", shardSize.map { .int(Int64($0)) } ?? .null),
        ]
        if let d = model.dequantizedDType { manifest.extraSettings.append(("dequantized_dtype", .string(d.rawValue))) }
        let manifestPath = FileSystem.join(output, "pruning-manifest.json")
        try AtomicFile.write(manifest.bytes, to: manifestPath)
        return Result(manifest: manifest, source: model, manifestPath: manifestPath, outputBytes: fileSizes)
    }

    static func seconds(_ t: Double) -> String {
        let tenths = Int((t * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// Elements of an added bias: the output width of its projection in `plan`'s result.
    static func biasSize(_ name: String, plan: PruningPlan) -> Int {
        let shape = plan.shape
        guard let ref = shape.tensors.reference(of: name), let l = ref.layer else { return 0 }
        return shape.shape(of: ref, hidden: plan.keptHidden.count, sizes: plan.layers[l].widths)[0]
    }
}
