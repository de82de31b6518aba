#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import CompactFormat
import Engine
import GGUF
import ModelArchitecture
import Pruning
import Crypto

/// Training settings of ``FineTuneJob`` (upstream LLM-Pruner's LoRA recovery by default).
public struct FineTuneSettings: Sendable, Equatable {
    public enum Loss: String, Sendable, CaseIterable { case ce, distill }

    public var lora = LoRASettings()
    public var learningRate = 1e-4
    /// Optimiser steps; nil: `epochs` passes over the data.
    public var steps: Int? = nil
    public var epochs = 1
    /// Sequences per optimiser step, and per micro-batch (gradient accumulation = batch / micro).
    public var batchSize = 64
    public var microBatchSize = 4
    /// Tokens per window cut from text data.
    public var seqLen = 256
    public var warmupSteps = 100
    public var seed: UInt64 = 0
    public var maxGradNorm = 1.0
    public var weightDecay = 0.0
    public var loss = Loss.ce
    public var temperature = 1.0
    public var ceWeight = 0.0
    /// Held-out perplexity every this many steps (with ``FineTuneJob/evalText``); 0: at the end only.
    public var evalEvery = 0
    /// Write the resumable state every this many steps; 0: never.
    public var checkpointEvery = 0

    public init() {}

    /// - Throws: `invalidArgument` naming the setting.
    public func validate() throws(CheckpointError) {
        do { try lora.validate() } catch { throw CheckpointError(.invalidUsage, error.message) }
        func bad(_ s: String) -> CheckpointError { CheckpointError(.invalidUsage, s) }
        guard learningRate.isFinite && learningRate > 0 else { throw bad("--lr \(learningRate) must be positive") }
        if let steps, steps < 1 { throw bad("--steps \(steps) must be at least 1") }
        guard epochs >= 1 else { throw bad("--epochs \(epochs) must be at least 1") }
        guard batchSize >= 1, microBatchSize >= 1 else { throw bad("--batch-size and --micro-batch-size must be at least 1") }
        guard batchSize % microBatchSize == 0 else { throw bad("--batch-size \(batchSize) must be a multiple of --micro-batch-size \(microBatchSize)") }
        guard seqLen >= 2 && seqLen <= 1 << 20 else { throw bad("--seq-len \(seqLen) must be between 2 and 1048576") }
        guard warmupSteps >= 0 else { throw bad("--warmup-steps must not be negative") }
        guard maxGradNorm.isFinite && maxGradNorm >= 0 else { throw bad("--max-grad-norm must be 0 (off) or positive") }
        guard weightDecay.isFinite && weightDecay >= 0 else { throw bad("--weight-decay must not be negative") }
        guard temperature.isFinite && temperature > 0 else { throw bad("--temperature must be positive") }
        guard ceWeight.isFinite && ceWeight >= 0 && ceWeight <= 1 else { throw bad("--ce-weight must be in [0, 1]") }
        guard evalEvery >= 0, checkpointEvery >= 0 else { throw bad("--eval-every and --checkpoint-every must not be negative") }
    }
}

/// LoRA fine-tuning as one call: open any model Shears reads, train adapters on token windows,
/// merge them (W ← W + (alpha/rank)·B·A, in each tensor's stored dtype) and write a dense
/// checkpoint of the model's shapes: a folder, a `.gguf` or a `.ctz` file by the output's name.
///
/// ```swift
/// var job = FineTuneJob(source: "pruned", output: "recovered")
/// job.settings.steps = 200
/// let result = try job.run { print($0) }
/// print(result.finalLoss)
/// ```
///
/// Resumable: with ``FineTuneSettings/checkpointEvery``, the adapters, AdamW moments, step and
/// dropout counter are written atomically to ``statePath`` (`OUT.finetune-state/state.safetensors`);
/// a later run with the same output and settings continues from there, bit for bit as an
/// uninterrupted run. The state is removed once the output is written.
public struct FineTuneJob {
    public var source: String
    public var output: String
    public var settings = FineTuneSettings()
    /// Text files cut into non-overlapping windows of ``FineTuneSettings/seqLen`` tokens (the
    /// bundled Austen training novels by default, never the held-out one).
    public var data: CalibrationSource = .bundled
    /// Training data files instead of ``data``: plain text (cut into windows as ``data``), JSONL
    /// `text` records or Alpaca records (JSONL or a JSON array), the format detected per file
    /// (``TrainingData``). Every file's name and SHA-256 go into the manifest's training record.
    public var dataFiles: [String] = []
    /// Ready sequences (token ids and loss masks) instead of ``data`` (JSONL / Alpaca readers).
    public var sequences: [TrainingSequence]? = nil
    /// Initial A and B per adapter (PEFT's `lora_A.weight`, `lora_B.weight`); nil: PEFT's default
    /// initialisation (Kaiming-uniform A, zero B) from the seed.
    public var initialAdapters: [LoRAKey: (a: [Float], b: [Float])]? = nil
    /// A PEFT LoRA adapter folder (``PEFTAdapterFolder``) to start from instead of
    /// ``initialAdapters``: its rank, alpha and target modules must be ``settings``' (the command
    /// defaults its options to the folder's: ``adapterSettings(folder:model:)``).
    public var initAdapterFolder: String? = nil
    /// Also write the trained adapter as a PEFT folder here (staged, then moved into place).
    public var saveAdapterFolder: String? = nil
    /// The teacher of ``FineTuneSettings/Loss/distill`` (any model path ``ModelSource`` opens,
    /// typically the unpruned model), with the same vocabulary.
    public var teacher: String? = nil
    /// Held-out text for perplexity (windows of ``evalSeqLen``, at most ``evalWindows``).
    public var evalText: String? = nil
    public var evalSeqLen = 128
    public var evalWindows = 60
    /// Replace an existing checkpoint at the output.
    public var force = false
    /// Stop after this step (counted over the whole run) with the resumable state written and no
    /// output: a time-boxed run that a later run with the same settings continues.
    public var stopAfterStep: Int? = nil
    /// Bytes the engine may keep of projection outputs between the forward and backward passes
    /// (the same results, fewer recomputed products). 0, the default, recomputes every layer as
    /// `prune` does, so memory stays at one layer plus activations; nil:
    /// ``defaultActivationMemory(_:rows:)``, a quarter of the memory limit, at most what the pass
    /// leaves free (on SmolLM2-135M 12% faster for 640 MiB more, docs/benchmarks.md).
    public var activationMemory: Int? = 0

    public init(source: String, output: String) {
        self.source = source
        self.output = output
    }

    public enum Event: Sendable {
        case message(String)
        /// After each optimiser step.
        /// Tokens per second and the time left count training steps only (not evaluations).
        case step(step: Int, total: Int, loss: Double, learningRate: Double, tokensPerSecond: Double, secondsLeft: Double)
        case evaluation(step: Int, tokens: Int, perplexity: Double)
        case checkpoint(step: Int, path: String)
    }

    public struct Result {
        public var steps: Int
        /// Tokens run (padding included) and counted (predicted) over the whole run, this
        /// process's and a resumed state's.
        public var tokens: Int
        public var finalLoss: Double
        public var losses: [Double]
        public var evaluations: [(step: Int, perplexity: Double)]
        /// The trained adapters (for a PEFT adapter folder).
        public var adapters: LoRAAdapters
        /// The merged tensors, by name.
        public var changedTensors: [String]
        public var outputBytes: Int
        /// Step the run resumed from (0: a fresh run).
        public var resumedFrom: Int
        /// Stopped at ``FineTuneJob/stopAfterStep`` (state written, no output).
        public var stopped = false
        /// The training data's name and SHA-256 (as the manifest records calibration data); nil
        /// for ready ``FineTuneJob/sequences``.
        public var dataFile: String? = nil, dataSHA256: String? = nil
        /// Every training data file as ``TrainingData`` read it (empty for ready sequences).
        public var data: [TrainingData.FileRecord] = []
        /// Tokens of the run's sequences without padding, and the positions the loss counted.
        public var sequenceTokens = 0, trainedTokens = 0
        /// The manifest written next to the output (a pruned MODEL's, carried over with a
        /// training record), or nil when MODEL has none.
        public var manifestPath: String? = nil
    }

    public enum OutputKind: Sendable { case folder, gguf, compact }

    public var outputKind: OutputKind {
        output.hasSuffix(".gguf") ? .gguf : output.hasSuffix("." + CompactLayout.fileExtension) ? .compact : .folder
    }

    /// Where the resumable state lives.
    public var statePath: String { output + ".finetune-state/state.safetensors" }

    // MARK: Data

    /// Training sequences: ``sequences``, or ``dataFiles`` read by ``TrainingData`` (any format),
    /// or ``data`` (the bundled novels by default) cut into non-overlapping windows.
    func trainingSequences(_ model: ModelSource) throws -> (sequences: [TrainingSequence], file: String?, sha256: String?, files: [TrainingData.FileRecord]) {
        if let sequences {
            guard !sequences.isEmpty else { throw CheckpointError(.invalidArgument, "no training sequences") }
            let v = model.description.vocabSize
            for s in sequences {
                guard s.tokens.count >= 2 else { throw CheckpointError(.invalidArgument, "a training sequence needs at least 2 tokens") }
                if let t = s.tokens.first(where: { $0 < 0 || Int($0) >= v }) {
                    throw CheckpointError(.invalidArgument, "token id \(t) is outside the vocabulary (0 ..< \(v))")
                }
            }
            return (sequences, nil, nil, [])
        }
        let loaded: TrainingData.Loaded
        switch (dataFiles.isEmpty, data) {
        case (false, _):
            loaded = try TrainingData.load(files: dataFiles, tokenizer: model.tokenizer(), seqLen: settings.seqLen)
        case (true, .bundled):
            loaded = try TrainingData.loadBundled(tokenizer: model.tokenizer(), seqLen: settings.seqLen)
        case (true, let source):
            let d = try source.documents(tokenizer: { try model.tokenizer() })
            let examples = try TrainingData.windows(d.documents, seqLen: settings.seqLen, textWindows: .consecutive, path: d.file)
            loaded = TrainingData.Loaded(examples: examples, files: [TrainingData.FileRecord(
                file: d.file, sha256: d.sha256, format: .text, examples: examples.count, skipped: 0, tokens: examples.reduce(0) { $0 + $1.tokens.count })])
        }
        guard !loaded.examples.isEmpty else {
            throw CheckpointError(.invalidArgument, "the training data holds no example with a trained position", path: dataFiles.first)
        }
        let v = model.description.vocabSize
        // TrainingExample.trained[i] flags the prediction made at i (of token i + 1); the engine's
        // flags the predicted token: pass predictedTokens. A fully trained window stays nil (all).
        let out = try loaded.examples.map { e throws -> TrainingSequence in
            if let t = e.tokens.first(where: { $0 < 0 || Int($0) >= v }) {
                throw CheckpointError(.invalidArgument, "token id \(t) is outside the vocabulary (0 ..< \(v))", path: dataFiles.first)
            }
            return TrainingSequence(tokens: e.tokens, trained: e.trainedCount == e.tokens.count - 1 ? nil : e.predictedTokens)
        }
        let name = loaded.files.count == 1 ? loaded.files[0].file : "\(loaded.files.count) files"
        let sha = loaded.files.count == 1 ? loaded.files[0].sha256
            : ModelSource.hex(SHA256.hash(data: Array(loaded.files.map { $0.file + " " + $0.sha256 + "\n" }.joined().utf8)))
        return (out, name, sha, loaded.files)
    }

    /// Optimiser steps of the run.
    func totalSteps(windows: Int) -> Int {
        if let s = settings.steps { return s }
        return max(1, settings.epochs * (windows / settings.batchSize))
    }

    /// The sequences of step `k` (0-based): epoch e's windows in an order shuffled from the
    /// seed and e, `batchSize` at a time, wrapping into the next epoch.
    static func batch(_ k: Int, of windows: Int, size: Int, seed: UInt64) -> [Int] {
        var out: [Int] = []
        var cachedEpoch = -1, order: [Int] = []
        for j in 0..<size {
            let n = k * size + j, e = n / windows
            if e != cachedEpoch {
                cachedEpoch = e
                order = Array(0..<windows)
                var rng = SplitMix64(seed: seed &+ 0x5EED &+ UInt64(e) &* 0x9E37_79B9)
                for i in stride(from: windows - 1, to: 0, by: -1) {
                    order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
                }
            }
            out.append(order[n % windows])
        }
        return out
    }

    // MARK: Run

    /// Runs the job.
    /// - Throws: ``CheckpointError``: `invalidArgument` for settings that do not apply (a usage
    ///   error), input and output errors naming the file and the tensor.
    @discardableResult
    public func run(_ report: @escaping (Event) -> Void = { _ in }) throws -> Result {
        try settings.validate()
        if settings.loss == .distill && teacher == nil {
            throw CheckpointError(.invalidUsage, "--loss distill needs a teacher model (--teacher)")
        }
        try OutputPlacement.checkOutside(output: output, source: source)
        if let teacher { try OutputPlacement.checkOutside(output: output, source: teacher) }
        try checkAdapterFolder()
        let model = try ModelSource.open(source)
        let lock = try OutputLock(destination: output, companions: [output + ".finetune-state"] + (outputKind == .folder ? [] : [PruneJob.manifestPath(forFile: output)]))
        let result = try runClaimed(model, report)
        lock.succeed()
        lock.release()
        return result
    }

    private func runClaimed(_ model: ModelSource, _ report: @escaping (Event) -> Void) throws -> Result {
        try checkOutput()
        let engine = try model.engineModel()
        let d = model.description
        let (windows, dataFile, dataSHA256, dataRecords) = try trainingSequences(model)
        let rows = settings.microBatchSize * (windows.map(\.tokens.count).max() ?? 0)
        engine.activationMemory = activationMemory ?? Self.defaultActivationMemory(engine, rows: rows)
        let total = totalSteps(windows: windows.count)
        let adapters: LoRAAdapters
        if let initAdapterFolder {
            let folder = try PEFTAdapterFolder.read(initAdapterFolder, model: d)
            try Self.checkAgreement(folder, settings.lora, path: initAdapterFolder)
            var weights: [LoRAKey: (a: [Float], b: [Float])] = [:]
            for (site, a) in folder.a { weights[site] = (a.values, folder.b[site]?.values ?? []) }
            adapters = try LoRAAdapters(model: d, settings: settings.lora, weights: weights)
            report(.message("finetune: starting from the adapter in \(initAdapterFolder)"))
        } else if let initialAdapters {
            adapters = try LoRAAdapters(model: d, settings: settings.lora, weights: initialAdapters)
        } else {
            adapters = try LoRAAdapters(model: d, settings: settings.lora, seed: settings.seed)
        }
        let schedule = LinearSchedule(base: settings.learningRate, warmup: settings.warmupSteps, total: total)
        var optimizer: AdamW? = nil, microBatches: UInt64 = 0, start = 0, tokensBefore = 0
        if FileSystem.isFile(statePath) {
            let s = try FineTuneState.read(statePath, into: adapters, fingerprint: fingerprint(windows: windows.count, total: total), total: total)
            (optimizer, microBatches, start, tokensBefore) = (s.optimizer, s.microBatches, s.step, s.tokens)
            report(.message("finetune: resuming from step \(start) of \(total) (\(statePath))"))
        }
        let trainer = LoRATrainer(model: engine, adapters: adapters, schedule: schedule,
                                  maxGradNorm: settings.maxGradNorm > 0 ? settings.maxGradNorm : nil, seed: settings.seed,
                                  optimizer: optimizer, microBatches: microBatches)
        trainer.optimizer.weightDecay = Float(settings.weightDecay)
        if settings.loss == .distill, let teacher {
            let t = try ModelSource.open(teacher)
            guard t.description.vocabSize == d.vocabSize else {
                throw CheckpointError(.invalidArgument, "the teacher's vocabulary has \(t.description.vocabSize) tokens, the model's \(d.vocabSize); distillation needs the same tokenizer", path: teacher)
            }
            trainer.teacher = DistillationTeacher(model: try t.engineModel(),
                                                  distillation: Distillation(temperature: Float(settings.temperature), ceWeight: Float(settings.ceWeight)))
            report(.message("finetune: distilling from \(teacher) (T = \(settings.temperature), CE weight \(settings.ceWeight))"))
        }
        report(.message("finetune: LoRA rank \(settings.lora.rank) on \(adapters.adapters.count) projections (\(adapters.parameterCount) parameters), \(windows.count) windows, \(total) steps of \(settings.batchSize) sequences"))

        let evalTokens: [Int32]? = try evalText.map { path in
            try CalibrationSource.text(path).documents(tokenizer: { try model.tokenizer() }).documents.flatMap { $0 }
        }
        if let evalTokens, evalTokens.count < evalSeqLen {
            throw CheckpointError(.invalidArgument, "has \(evalTokens.count) tokens, fewer than one evaluation window of \(evalSeqLen)", path: evalText)
        }
        var evaluations: [(step: Int, perplexity: Double)] = []
        func evaluate(_ step: Int, tokens: Int) throws {
            guard let evalTokens else { return }
            let p = try Perplexity.evaluate(engine, tokens: evalTokens, seqLen: evalSeqLen, maxWindows: evalWindows)
            evaluations.append((step, p.perplexity))
            report(.evaluation(step: step, tokens: tokens, perplexity: p.perplexity))
        }

        var losses: [Double] = [], tokens = tokensBefore
        var trainingSeconds = 0.0, tokensThisRun = 0
        for k in start..<total {
            let stepBegan = MonotonicClock.now
            let ids = Self.batch(k, of: windows.count, size: settings.batchSize, seed: settings.seed)
            let micro = stride(from: 0, to: ids.count, by: settings.microBatchSize).map { i in
                ids[i..<min(ids.count, i + settings.microBatchSize)].map { windows[$0] }
            }
            let r = try trainer.step(micro)
            guard r.loss.isFinite else {
                throw CheckpointError(.invalidArgument, "the loss became \(r.loss) at step \(k + 1); lower --lr")
            }
            losses.append(r.loss)
            tokens += r.tokens
            tokensThisRun += r.tokens
            trainingSeconds += MonotonicClock.seconds(since: stepBegan)
            let rate = Double(tokensThisRun) / max(trainingSeconds, 1e-9)
            let left = trainingSeconds / Double(k + 1 - start) * Double(total - k - 1)
            report(.step(step: k + 1, total: total, loss: r.loss, learningRate: r.learningRate, tokensPerSecond: rate, secondsLeft: left))
            if settings.evalEvery > 0 && (k + 1) % settings.evalEvery == 0 && k + 1 < total { try evaluate(k + 1, tokens: tokens) }
            let stopping = stopAfterStep.map { k + 1 >= $0 && k + 1 < total } ?? false
            if stopping || settings.checkpointEvery > 0 && (k + 1) % settings.checkpointEvery == 0 && k + 1 < total {
                try FileSystem.createDirectory(output + ".finetune-state")
                try FineTuneState.write(statePath, adapters: adapters, optimizer: trainer.optimizer, step: k + 1,
                                        microBatches: trainer.microBatches, tokens: tokens,
                                        fingerprint: fingerprint(windows: windows.count, total: total))
                report(.checkpoint(step: k + 1, path: statePath))
            }
            if stopping {
                return Result(steps: k + 1, tokens: tokens, finalLoss: r.loss, losses: losses, evaluations: evaluations,
                              adapters: adapters, changedTensors: [], outputBytes: 0, resumedFrom: start, stopped: true,
                              dataFile: dataFile, dataSHA256: dataSHA256)
            }
        }
        try evaluate(total, tokens: tokens)
        report(.message("finetune: merging the adapters and writing \(output)"))
        // Tokens without padding and counted positions over the whole run: the batches are a
        // function of the step, so a resumed run counts the earlier steps too.
        var sequenceTokens = 0, trainedTokens = 0
        for k in 0..<total {
            for i in Self.batch(k, of: windows.count, size: settings.batchSize, seed: settings.seed) {
                let w = windows[i]
                sequenceTokens += w.tokens.count
                trainedTokens += w.trained.map { f in f.dropFirst().reduce(0) { $0 + ($1 ? 1 : 0) } } ?? (w.tokens.count - 1)
            }
        }
        let finalLoss = losses.last ?? .nan
        // A pruned MODEL's manifest is carried over with this run's training record.
        let sourceManifest = Self.manifestPath(of: source)
        let record = sourceManifest == nil ? nil : trainingRecord(d, data: dataRecords, dataFile: dataFile, dataSHA256: dataSHA256, steps: total,
                                                                  tokens: sequenceTokens, trainedTokens: trainedTokens, finalLoss: finalLoss,
                                                                  changed: adapters.adapters.map { d.name($0.key.role, .weight, layer: $0.key.layer) })
        let manifest: ((_ files: [String: String]) throws -> [UInt8])? = sourceManifest.map { path in
            { files in try PruningManifest.carryOver(manifestAt: path, appending: record!, resultFiles: files) }
        }
        let (changed, bytes, manifestPath) = try LoRAMerge.write(model, adapters: adapters, to: output, kind: outputKind, manifest: manifest)
        if let saveAdapterFolder {
            try PEFTAdapterFolder.write(peftAdapter(adapters, model: d), to: saveAdapterFolder, model: d)
            report(.message("finetune: adapter written to \(saveAdapterFolder)"))
        }
        StagedFolder.removeFlat(output + ".finetune-state")
        var result = Result(steps: total, tokens: tokens, finalLoss: finalLoss, losses: losses, evaluations: evaluations,
                            adapters: adapters, changedTensors: changed, outputBytes: bytes, resumedFrom: start,
                            dataFile: dataFile, dataSHA256: dataSHA256)
        result.data = dataRecords
        result.sequenceTokens = sequenceTokens
        result.trainedTokens = trainedTokens
        result.manifestPath = manifestPath
        return result
    }

    /// The manifest beside a model: `pruning-manifest.json` in a folder, `NAME.pruning-manifest.json`
    /// next to a `.gguf` or `.ctz` file; nil when there is none.
    public static func manifestPath(of model: String) -> String? {
        let path: String
        if FileSystem.isDirectory(model) {
            path = FileSystem.join(model, PruningManifest.fileName)
        } else if model.hasSuffix(".gguf") || model.hasSuffix("." + CompactLayout.fileExtension) {
            path = PruneJob.manifestPath(forFile: model)
        } else {
            path = FileSystem.join(FileSystem.directoryName(model), PruningManifest.fileName)
        }
        return FileSystem.isFile(path) ? path : nil
    }

    /// The training record of this run (formats/manifest.md "training").
    func trainingRecord(_ d: ModelDescription, data: [TrainingData.FileRecord], dataFile: String?, dataSHA256: String?, steps: Int,
                        tokens: Int, trainedTokens: Int, finalLoss: Double, changed: [String]) -> TrainingRecord {
        let s = settings
        let files = !data.isEmpty ? data.map(\.record)
            : [TrainingRecord.DataFile(file: dataFile ?? "sequences", sha256: dataSHA256 ?? "", format: "sequences",
                                       examples: sequences?.count ?? 0, tokens: sequences?.reduce(0) { $0 + $1.tokens.count } ?? 0)]
        let teacherRecord = try? teacher.map { t in TrainingRecord.Teacher(model: t, files: try ModelSource.open(t).sourceFileHashes()) }
        var settingsRecord = TrainingRecord.Settings(
            rank: s.lora.rank, alpha: Double(s.lora.alpha), dropout: Double(s.lora.dropout),
            targets: TensorRole.projections.filter { s.lora.targets.contains($0) }.map { PEFTAdapterFolder.targetName($0, model: d) },
            learningRate: s.learningRate, steps: s.steps, epochs: s.steps == nil ? Double(s.epochs) : nil,
            batchSize: s.batchSize, microBatchSize: s.microBatchSize, seqLen: s.seqLen, warmupSteps: s.warmupSteps,
            weightDecay: s.weightDecay, maxGradNorm: s.maxGradNorm, seed: s.seed, loss: s.loss.rawValue,
            teacher: s.loss == .distill ? teacherRecord : nil,
            temperature: s.loss == .distill ? s.temperature : nil, ceWeight: s.loss == .distill ? s.ceWeight : nil)
        if let initAdapterFolder { settingsRecord.extra.append(("init_adapter", .string(FileSystem.baseName(initAdapterFolder)))) }
        return TrainingRecord(method: "lora", data: files, settings: settingsRecord, steps: steps, tokens: tokens,
                              trainedTokens: trainedTokens, finalLoss: finalLoss, changedTensors: changed)
    }

    /// The engine's adapters as a PEFT adapter (``PEFTAdapterFolder/write(_:to:model:)``).
    func peftAdapter(_ adapters: LoRAAdapters, model d: ModelDescription) -> PEFTAdapter {
        let l = adapters.settings
        var out = PEFTAdapter(rank: l.rank, alpha: Double(l.alpha), dropout: Double(l.dropout),
                              targets: TensorRole.projections.filter { l.targets.contains($0) }, baseModel: source)
        for a in adapters.adapters {
            let site = a.key
            out.a[site] = LoRAMatrix(rows: a.a.rows, cols: a.a.cols, values: a.a.values)
            out.b[site] = LoRAMatrix(rows: a.b.rows, cols: a.b.cols, values: a.b.values)
        }
        return out
    }

    /// The adapter settings a PEFT folder implies: its rank, alpha, dropout and targets.
    public static func adapterSettings(folder: String, model: ModelDescription) throws -> LoRASettings {
        let f = try PEFTAdapterFolder.read(folder, model: model)
        return LoRASettings(rank: f.rank, alpha: Float(f.alpha), dropout: Float(f.dropout), targets: f.targets)
    }

    /// Rank, alpha and targets define the adapter and must be the folder's; dropout is a training
    /// setting and may differ.
    static func checkAgreement(_ f: PEFTAdapter, _ l: LoRASettings, path: String) throws {
        var problems: [String] = []
        if f.rank != l.rank { problems.append("rank \(f.rank), not \(l.rank)") }
        if Float(f.alpha) != l.alpha { problems.append("lora_alpha \(f.alpha), not \(l.alpha)") }
        if Set(f.targets) != Set(l.targets) { problems.append("target modules \(f.targets.map { "\($0)" }), not \(l.targets.map { "\($0)" })") }
        guard problems.isEmpty else {
            throw CheckpointError(.invalidUsage, "the adapter folder has \(problems.joined(separator: ", ")); drop --lora-rank, --lora-alpha and --targets to use the folder's", path: path)
        }
    }

    /// The default of ``activationMemory``: a quarter of the model's memory limit, at most what a
    /// training pass over `rows` token rows leaves of it.
    public static func defaultActivationMemory(_ engine: LlamaModel, rows: Int) -> Int {
        let limit = engine.memory.bytes
        return max(0, min(limit / 4, limit - engine.memoryNeed(rows: rows, backward: true)))
    }

    /// What a saved state must agree with to be resumed.
    func fingerprint(windows: Int, total: Int) -> String {
        let s = settings, l = s.lora
        return "rank=\(l.rank) alpha=\(l.alpha) dropout=\(l.dropout) targets=\(l.targets.map { "\($0)" }.joined(separator: ",")) lr=\(s.learningRate) steps=\(total) batch=\(s.batchSize) micro=\(s.microBatchSize) seq=\(s.seqLen) warmup=\(s.warmupSteps) seed=\(s.seed) clip=\(s.maxGradNorm) wd=\(s.weightDecay) loss=\(s.loss.rawValue) T=\(s.temperature) ce=\(s.ceWeight) windows=\(windows)"
    }

    /// `saveAdapterFolder` may be new, empty, or an adapter folder (replaced with `force`); never an
    /// input (MODEL, the teacher, `initAdapterFolder`), OUT, or a folder inside or around OUT.
    private func checkAdapterFolder() throws(CheckpointError) {
        guard let folder = saveAdapterFolder else { return }
        try OutputPlacement.checkOutside(output: folder, source: source)
        if let teacher { try OutputPlacement.checkOutside(output: folder, source: teacher) }
        if let initAdapterFolder, let a = OutputPlacement.resolved(folder), a == OutputPlacement.resolved(initAdapterFolder) {
            throw CheckpointError(.invalidArgument, "is the --init-adapter folder; save the trained adapter to another folder (inputs are never modified)", path: folder)
        }
        if let a = OutputPlacement.resolved(folder), let o = OutputPlacement.resolved(output),
           a == o || a.hasPrefix(o + "/") || o.hasPrefix(a + "/") {
            throw CheckpointError(.invalidArgument, "overlaps the output \(output); save the adapter to a folder beside it", path: folder)
        }
        guard let kind = FileSystem.kind(of: folder) else { return }
        guard kind == .directory else { throw CheckpointError(.invalidArgument, "exists and is not a folder", path: folder) }
        let names = try FileSystem.contents(of: folder)
        if names.isEmpty { return }
        guard names.contains(PEFTAdapterFolder.configFile) else {
            throw CheckpointError(.invalidArgument, "is a folder that holds no PEFT adapter (\(PEFTAdapterFolder.configFile)); save the adapter to a new or empty folder", path: folder)
        }
        if !force { throw CheckpointError(.invalidArgument, "already holds an adapter; pass --force to replace it", path: folder) }
    }

    private func checkOutput() throws {
        guard let kind = FileSystem.kind(of: output) else { return }
        switch outputKind {
        case .folder:
            guard kind == .directory else { throw CheckpointError(.invalidArgument, "exists and is not a folder", path: output) }
            if !force, try FileSystem.contents(of: output).contains(where: { $0.hasSuffix(".safetensors") || $0 == "config.json" }) {
                throw CheckpointError(.invalidArgument, "folder already holds a checkpoint; pass --force to replace it", path: output)
            }
        case .gguf, .compact:
            if kind == .directory { throw CheckpointError(.invalidArgument, "is a folder; a file output must be a file path", path: output) }
            if !force { throw CheckpointError(.invalidArgument, "already exists; pass --force to replace it", path: output) }
        }
    }
}

/// A monotonic clock in seconds.
enum MonotonicClock {
    static var now: timespec {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t
    }
    static func seconds(since t0: timespec) -> Double {
        let t = now
        return Double(t.tv_sec - t0.tv_sec) + Double(t.tv_nsec - t0.tv_nsec) / 1e9
    }
}

/// Merging adapters into a model's weights and writing the dense checkpoint.
public enum LoRAMerge {
    /// Writes `model` with every adapted projection replaced by W + s·B·A (rounded once to the
    /// tensor's stored dtype; F32 for a quantized GGUF's tensors, as `prune` writes them) to
    /// `output`: a folder (staged, then moved into place, sharded past 5 GB), a `.gguf` or a `.ctz`
    /// file. Shapes, dtypes, the configuration (per-layer widths included) and the tokenizer files
    /// are the model's.
    public static func write(_ model: ModelSource, adapters: LoRAAdapters, to output: String,
                             kind: FineTuneJob.OutputKind) throws -> (changed: [String], bytes: Int) {
        let r = try write(model, adapters: adapters, to: output, kind: kind, manifest: nil)
        return (r.changed, r.bytes)
    }

    /// The same, with a manifest: `manifest`, given the output's files (name → SHA-256), makes the manifest's bytes: written
    /// into the staged folder before it is moved into place, or next to a file output
    /// (`NAME.pruning-manifest.json`).
    /// - Returns: the changed tensors' names, the bytes written and the manifest's path.
    public static func write(_ model: ModelSource, adapters: LoRAAdapters, to output: String, kind: FineTuneJob.OutputKind,
                             manifest: ((_ files: [String: String]) throws -> [UInt8])?) throws -> (changed: [String], bytes: Int, manifestPath: String?) {
        let staged = try StagedFolder(destination: output)
        let d = model.description
        let scratch = FileSystem.join(staged.path, ".shears-merge")
        try FileSystem.createDirectory(scratch)
        defer { StagedFolder.removeFlat(scratch) }
        var recovered = RecoveredTensors()
        for l in 0..<d.layerCount {
            let own = adapters.adapters.filter { $0.key.layer == l }
            guard !own.isEmpty else { continue }
            var specs: [TensorSpec] = [], data: [String: [Float]] = [:]
            for a in own {
                let name = d.name(a.key.role, .weight, layer: l)
                let w = try WeightLoader.matrix(model.store, name, rows: a.outFeatures, cols: a.inFeatures)
                specs.append(TensorSpec(name: name, dtype: .f32, shape: [a.outFeatures, a.inFeatures]))
                data[name] = a.merged(into: w).values
                recovered.changed.append(name)
            }
            let path = FileSystem.join(scratch, "layer-\(l).safetensors")
            try SafetensorsWriter.write(path: path, tensors: specs) { spec throws(CheckpointError) in .floats(data[spec.name]!) }
            let c = try Checkpoint.open(path)
            for s in specs { recovered.values[s.name] = c }
        }
        let folder = staged.path
        // The identity plan, layer by layer (a pruned model's widths differ per layer).
        var plan = PruningPlan(unpruned: d)
        for (i, s) in d.layers.enumerated() {
            plan.layers[i] = PruningPlan.Layer(keptHeads: Array(0..<s.numAttentionHeads), keptKeyValueHeads: Array(0..<s.numKeyValueHeads),
                                               keptChannels: Array(0..<s.intermediateSize))
        }
        var written = try PrunedFolder.write(model.store, configuration: d.configuration, plan: plan, to: folder,
                                             dtype: model.dequantizedDType, maxShardSize: 5_000_000_000,
                                             recovered: recovered, companionFolder: model.companionFolder,
                                             extraFiles: model.builtFiles.filter { $0.0 != "config.json" })
        // Per-layer widths: the shapes are the source's, so its configuration (in whichever of
        // the per-layer conventions it uses) is the output's, as written.
        if !d.isUniform {
            let sourceConfig: [UInt8]? = try model.store.configPath.map { try FileSystem.readFile($0, limit: 64 << 20) }
                ?? model.builtFiles.first { $0.0 == "config.json" }?.1
            if let sourceConfig { try AtomicFile.write(sourceConfig, to: FileSystem.join(folder, "config.json")) }
        }
        recovered.values = [:]
        StagedFolder.removeFlat(scratch)
        var bytes = 0, manifestPath: String? = nil
        switch kind {
        case .folder:
            for p in written { bytes += try FileSystem.size(of: p) }
            if let manifest {
                var files: [String: String] = [:]
                for f in try FileSystem.contents(of: folder) where f != PruningManifest.fileName && !f.hasPrefix(".") {
                    let p = FileSystem.join(folder, f)
                    if FileSystem.isFile(p) { files[f] = try ModelSource.sha256(p) }
                }
                try AtomicFile.write(try manifest(files), to: FileSystem.join(folder, PruningManifest.fileName))
                manifestPath = FileSystem.join(output, PruningManifest.fileName)
            }
            try staged.commit()
        case .gguf:
            let r = try HuggingFaceToGGUF.convert(folder: folder, to: output, options: .init(name: FileSystem.baseName(String(output.dropLast(5)))))
            bytes = r.fileSize
            written = []
        case .compact:
            try CompactConversion.write(try Checkpoint.open(folder), to: output)
            bytes = try FileSystem.size(of: output)
        }
        if kind != .folder, let manifest {
            let target = PruneJob.manifestPath(forFile: output)
            try AtomicFile.write(try manifest([FileSystem.baseName(output): try ModelSource.sha256(output)]), to: target)
            manifestPath = target
        }
        withExtendedLifetime(staged) {}
        return (recovered.changed, bytes, manifestPath)
    }
}

/// The resumable state file (see `formats/finetune-state.md`).
enum FineTuneState {
    struct Loaded {
        var optimizer: AdamW
        var step: Int, microBatches: UInt64, tokens: Int
    }

    static func names(_ a: LoRAAdapter) -> (String, String) { ("\(a.key.layer).\(a.key.role).A", "\(a.key.layer).\(a.key.role).B") }

    static func write(_ path: String, adapters: LoRAAdapters, optimizer: AdamW, step: Int, microBatches: UInt64, tokens: Int,
                      fingerprint: String) throws {
        var specs: [TensorSpec] = [], data: [String: [Float]] = [:]
        for (i, a) in adapters.adapters.enumerated() {
            let (an, bn) = names(a)
            for (n, m, j) in [(an, a.a, 2 * i), (bn, a.b, 2 * i + 1)] {
                specs += [TensorSpec(name: n, dtype: .f32, shape: [m.rows, m.cols]), TensorSpec(name: n + ".m", dtype: .f32, shape: [m.rows, m.cols]),
                          TensorSpec(name: n + ".v", dtype: .f32, shape: [m.rows, m.cols])]
                data[n] = m.values
                data[n + ".m"] = optimizer.m[j]
                data[n + ".v"] = optimizer.v[j]
            }
        }
        let meta = Metadata([("format", "shears-finetune-state/1"), ("step", "\(step)"), ("adam_step", "\(optimizer.step)"),
                             ("micro_batches", "\(microBatches)"), ("tokens", "\(tokens)"), ("settings", fingerprint)])
        try SafetensorsWriter.write(path: path, tensors: specs, metadata: meta) { spec throws(CheckpointError) in .floats(data[spec.name]!) }
    }

    static func read(_ path: String, into adapters: LoRAAdapters, fingerprint: String, total: Int) throws -> Loaded {
        let c = try Checkpoint.open(path)
        let meta = c.metadata
        guard meta?["format"] == "shears-finetune-state/1", let step = meta?["step"].flatMap({ Int($0) }),
              let adamStep = meta?["adam_step"].flatMap({ Int($0) }), let mb = meta?["micro_batches"].flatMap({ UInt64($0) }),
              let tokens = meta?["tokens"].flatMap({ Int($0) }) else {
            throw CheckpointError(.invalidArgument, "not a Shears fine-tuning state (format shears-finetune-state/1); remove it to start afresh", path: path)
        }
        guard step >= 1 && step <= total && adamStep >= 0 && adamStep <= step && tokens >= 0 else {
            throw CheckpointError(.invalidArgument, "step \(step), optimiser step \(adamStep) or token count \(tokens) is out of range for a run of \(total) steps; remove it to start afresh", path: path)
        }
        guard meta?["settings"] == fingerprint else {
            throw CheckpointError(.invalidArgument, "was written with other settings (\(meta?["settings"] ?? "none")); rerun with the same settings or remove it to start afresh", path: path)
        }
        var m: [[Float]] = [], v: [[Float]] = []
        for a in adapters.adapters {
            let (an, bn) = names(a)
            for (n, mat) in [(an, a.a), (bn, a.b)] {
                guard let info = c.info(named: n), info.shape == [mat.rows, mat.cols], info.dtype == .f32 else {
                    throw CheckpointError(.shapeMismatch, "missing or not F32 [\(mat.rows), \(mat.cols)]", path: path, tensor: n)
                }
                let vals = try c.tensor(named: n).floats()
                mat.withUnsafeMutableBufferPointer { dst in for i in 0..<min(dst.count, vals.count) { dst[i] = vals[i] } }
                for (suffix, isM) in [(".m", true), (".v", false)] {
                    guard let info = c.info(named: n + suffix), info.shape == [mat.rows, mat.cols], info.dtype == .f32 else {
                        throw CheckpointError(.shapeMismatch, "missing or not F32 [\(mat.rows), \(mat.cols)]", path: path, tensor: n + suffix)
                    }
                    let vals = try c.tensor(named: n + suffix).floats()
                    if isM { m.append(vals) } else { v.append(vals) }
                }
            }
        }
        let opt = try AdamW(sizes: adapters.adapters.flatMap { [$0.a.count, $0.b.count] }, step: adamStep, m: m, v: v)
        return Loaded(optimizer: opt, step: step, microBatches: mb, tokens: tokens)
    }
}
