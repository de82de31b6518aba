import ArgumentParser
import CheckpointCore
import Engine
import ModelArchitecture
import Pruning
import ShearsPipeline

/// `shears prune MODEL OUT`: LLM-Pruner-style structural pruning (``PruneJob``) into a dense
/// checkpoint.
public struct PruneCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Structurally prune a decoder model (LLM-Pruner): heads, KV groups, MLP channels, hidden channels or layers.",
        discussion: """
            Scores every coupled group (attention head or KV group with its query heads, MLP channel, \
            hidden channel, layer) with the chosen estimator, removes the lowest-scoring ones in \
            upstream LLM-Pruner's counts (n = W0 − int(W0·(1−r)) channels, whole heads only), and \
            writes OUT. MODEL is any model Shears reads: a Hugging Face folder, a sharded index, a \
            .safetensors or .ctz file with config.json beside it, or a GGUF file of a supported family \
            (read in place; quantized tensors are dequantized to F32 layer by layer). Families: \
            \(ModelFamilies.modelTypes.joined(separator: ", ")).

            OUT is a folder (model.safetensors, sharded past --shard-size; config.json with stock keys \
            when every layer has the same widths and the heads divide the hidden size, else per-layer lists with a remote-code modeling \
            file; tokenizer and generation files; pruning-manifest.json with every kept and removed \
            index and score, formats/manifest.md), a .gguf file (llama.cpp's deci architecture when \
            widths differ) or a .ctz file (tensors only, as convert writes it); a file's manifest is \
            written next to it as <name>.pruning-manifest.json. The same command writes the same files.

            --dry-run prints the plan and writes only the manifest. Exit status: 0 on success, 2 when \
            an input is unusable, 64 for a usage error (an unreadable option value or options that \
            do not apply to the model).
            """)

    @Argument(help: "Source model: a folder, an index, a .safetensors or .ctz file (config.json beside it), or a GGUF file.", completion: .file())
    var input: String

    @Argument(help: "Output: a folder, a .gguf file or a .ctz file.", completion: .file())
    var output: String

    @OptionGroup(title: "Structure") var structure: StructureOptions
    @OptionGroup(title: "Importance and calibration") var scoring: ImportanceOptions
    @OptionGroup(title: "Recovery") var recovery: RecoveryOptions
    @OptionGroup(title: "Engine and output") var out: PruneOutputOptions

    public init() {}

    /// The settings the options describe (checked against the model by the job).
    var settings: PruningSettings {
        var s = PruningSettings()
        s.strategy = structure.strategy
        s.ratio = structure.ratio
        s.attentionLayers = structure.attentionLayers
        s.mlpLayers = structure.mlpLayers
        s.gqa = structure.gqa
        s.importance = scoring.importance
        s.taylor = scoring.taylor
        s.reduction = scoring.reduction
        s.scope = structure.global ? .global : structure.globalRaw ? .globalRaw : .local
        s.iterativeSteps = structure.iterativeSteps
        s.roundTo = structure.roundTo
        s.uniform = structure.uniform
        s.keepLayers = structure.keepLayers
        s.removeLayers = structure.removeLayers
        s.seed = scoring.seed
        s.recovery = recovery.recover
        s.damping = recovery.damping
        s.covariancePrecision = recovery.covariancePrecision
        s.allocation = structure.allocation
        s.sequential = scoring.sequential
        s.statisticsSamples = scoring.statisticsSamples
        s.statisticsSeqLen = scoring.statisticsSeqLen
        return s
    }

    /// The job the command runs.
    public var job: PruneJob {
        var job = PruneJob.withEngine(source: input, output: output, settings: settings, activationMemory: out.activationMemory.bytes)
        job.calibration = scoring.calibrationSource
        job.samples = scoring.samples
        job.seqLen = scoring.seqLen
        job.dtype = out.dtype?.dtype
        job.shardSize = out.shardSize.bytes
        job.dryRun = out.dryRun
        job.force = out.force
        return job
    }

    public func run() throws {
        if let t = out.threads { Parallel.setThreads(t) }
        out.memory.apply()
        let started = monotonicSeconds()
        var bars: [String: Progress] = [:]
        do {
            let result = try job.run { event in
                switch event {
                case .message(let m): StandardError.print(m)
                case .progress(let phase, let done, let total):
                    if bars[phase] == nil { bars[phase] = Progress(totalItems: total, label: phase) }
                    bars[phase]!.update(done)
                case .finished(let phase): bars.removeValue(forKey: phase)?.finish()
                }
            }
            for w in result.warnings { StandardError.print("shears: warning: \(w)") }
            StandardError.print(out.memory.report("prune"))
            StandardOutput.write(summary(result, seconds: monotonicSeconds() - started))
        } catch { throw report(error) }
    }

    private func summary(_ r: PruneJob.Result, seconds: Double) -> String {
        let m = r.manifest, plan = m.plan, shape = plan.shape
        let (before, after) = (m.sourceParameters ?? 0, m.resultParameters ?? 0)
        var s = out.dryRun ? "Plan (dry run; only the manifest written)\n" : "Pruned \(input) → \(output)\n"
        s += "parameters: \(Format.grouped(before)) → \(Format.grouped(after)) (\(Format.fixed(100 * Double(after) / Double(max(before, 1)), 2))% kept)\n"
        if let e = Self.expectedSpeedUp(before: before, after: after, shape: shape, keptHidden: plan.keptHidden.count) {
            s += "expected speed-up: \(Format.fixed(e, 2))× (an estimate: weights read per token, decoder layers and LM head, before/after; see docs/benchmarks.md for measured llama.cpp speeds)\n"
        }
        if !out.dryRun { s += "files: \(Format.bytes(r.source.store.dataFiles.reduce(0) { $0 + ((try? FileSystem.size(of: $1)) ?? 0) })) → \(Format.bytes(r.outputBytes))\n" }
        if plan.keptHidden.count != shape.hiddenSize { s += "hidden: \(shape.hiddenSize) → \(plan.keptHidden.count)\n" }
        if !plan.removedLayers.isEmpty { s += "removed layers: \(plan.removedLayers.map(String.init).joined(separator: ", "))\n" }
        s += "layer  heads    kv  mlp\n"
        for (i, l) in plan.keptLayers.enumerated() {
            let w = plan.layers[l].widths
            let scored = plan.layers[l].attentionScores.filter { !$0.isNaN }
            var line = Format.pad(String(i), 5, right: true) + "  " + Format.pad("\(shape.attentionHeads)→\(w.numAttentionHeads)", 7) + "  "
                + Format.pad("\(shape.keyValueHeads)→\(w.numKeyValueHeads)", 4) + "  " + "\(shape.intermediateSize)→\(w.intermediateSize)"
            if l != i { line += "  (source layer \(l))" }
            if let lo = scored.min(), let hi = scored.max() { line += "  attention scores \(Self.short(lo))…\(Self.short(hi))" }
            s += line + "\n"
        }
        if PrunedConfiguration.isStock(plan) {
            s += "config: uniform widths (stock config.json)\n"
        } else {
            let heads = plan.outputWidths.first?.numAttentionHeads ?? 0
            let why = !plan.isUniform ? "per-layer widths"
                : heads > 0 && plan.keptHidden.count % heads == 0
                ? "uniform widths, but \(shape.family.architectureClass)'s stock config checks the rotary settings against hidden_size / heads (\(plan.keptHidden.count) / \(heads)), not head_dim \(shape.headDim)"
                : "uniform widths, but \(plan.keptHidden.count) hidden channels are not a multiple of the heads, which a stock config must have"
            s += "config: \(why) (\(shape.family.perLayerCode.fileName), trust_remote_code)\n"
        }
        if let a = r.ggufArchitecture {
            s += "GGUF: \(output) (\(a == "deci" ? "deci (per-layer sizes)" : a), \(Format.bytes(r.outputBytes)))\n"
        }
        if r.manifestPath != FileSystem.join(output, "pruning-manifest.json") { s += "manifest: \(r.manifestPath)\n" }
        return s + "time: \(Format.fixed(seconds, 1)) s\n"
    }

    /// Generation and prompt processing both scale with the weights each token multiplies:
    /// every decoder layer and the LM head (the embedding is a lookup). The ratio of those before
    /// and after the prune; nil when the counts are unknown.
    static func expectedSpeedUp(before: Int, after: Int, shape: ModelDescription, keptHidden: Int) -> Double? {
        guard before > 0, after > 0 else { return nil }
        let tables = shape.tieWordEmbeddings ? 1 : 2
        let perToken = { (total: Int, hidden: Int) -> Int in total - tables * shape.vocabSize * hidden + shape.vocabSize * hidden }
        let b = perToken(before, shape.hiddenSize), a = perToken(after, keptHidden)
        guard a > 0, b > 0 else { return nil }
        return Double(b) / Double(a)
    }

    /// A score in 4 decimals, or 3 significant digits with an exponent when far from 1.
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
