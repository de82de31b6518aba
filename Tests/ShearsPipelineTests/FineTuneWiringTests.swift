import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Engine
import ModelArchitecture
import Pruning
import ShearsJSON
@testable import ShearsPipeline

/// `FineTuneJob` wired to the data readers, PEFT adapter folders and the manifest: Alpaca records
/// reach the engine with their masks in the engine's convention, a saved adapter reads back as the
/// trained one, a PEFT folder is the starting point, and a pruned model's manifest is carried over.
@Suite(.serialized) struct FineTuneWiringTests {
    static let model = FineTuneJobTests.fixtures + "/models/austen-llama"
    static let alpaca = FineTuneJobTests.fixtures + "/lora/data/alpaca.jsonl"
    static let peft = FineTuneJobTests.fixtures + "/lora/peft-adapter"

    static func job(_ out: String, steps: Int = 2) -> FineTuneJob {
        var job = FineTuneJob(source: model, output: out)
        job.settings.steps = steps
        job.settings.batchSize = 4
        job.settings.microBatchSize = 2
        job.settings.seqLen = 128
        job.settings.warmupSteps = 0
        job.settings.learningRate = 1e-2
        job.settings.lora = LoRASettings(rank: 2, alpha: 4, dropout: 0, targets: [.query, .down])
        return job
    }

    /// Alpaca records: the sequences handed to the engine flag the predicted tokens
    /// (`predictedTokens`, not `trained`), records have their own lengths, and a text file gives
    /// the same windows as before (all trained: nil masks).
    @Test func alpacaSequencesUseTheEngineMaskConvention() throws {
        let source = try ModelSource.open(Self.model)
        var job = Self.job("/nonexistent/out")
        job.dataFiles = [Self.alpaca]
        let (seqs, file, _, records) = try job.trainingSequences(source)
        let loaded = try TrainingData.load(files: [Self.alpaca], tokenizer: source.tokenizer(), seqLen: 128)
        #expect(seqs.count == loaded.examples.count && seqs.count > 0)
        #expect(records.count == 1 && records[0].format == .jsonlAlpaca && file == "alpaca.jsonl")
        #expect(records[0].examples == 6 && records[0].skipped == 1)  // one prompt fills the cut-off
        for (s, e) in zip(seqs, loaded.examples) {
            #expect(s.tokens == e.tokens)
            #expect(s.trained == e.predictedTokens)
            // The first predicted token is the response's first: the position before it is trained.
            let firstPredicted = s.trained!.firstIndex(of: true)!
            #expect(e.trained[firstPredicted - 1] && !e.trained[..<(firstPredicted - 1)].contains(true))
        }
        #expect(Set(seqs.map(\.tokens.count)).count > 1)

        // Plain text: windows of seqLen, each fully trained, as the bundled default cuts them.
        job.dataFiles = []
        let (bundled, name, _, r) = try job.trainingSequences(source)
        #expect(name == "austen-calibration" && r.count == 1 && r[0].format == .text)
        #expect(bundled.allSatisfy { $0.tokens.count == 128 && $0.trained == nil })
        let docs = try CalibrationSource.bundled.documents(tokenizer: { try source.tokenizer() }).documents
        #expect(bundled.count == docs.reduce(0) { $0 + $1.count / 128 })
        #expect(bundled[0].tokens == Array(docs[0][0..<128]))
    }

    /// Training on Alpaca records with a saved adapter: the PEFT folder reads back as the trained
    /// adapter, value for value; the record counts only the response tokens.
    @Test func savedAdapterReadsBack() throws {
        let dir = FineTuneJobTests.temporary("shears-wire-save")
        defer { _ = system("rm -rf '\(dir)'") }
        var job = Self.job(dir + "/out")
        job.dataFiles = [Self.alpaca]
        job.saveAdapterFolder = dir + "/adapter"
        let r = try job.run()
        #expect(r.data.count == 1 && r.data[0].format == .jsonlAlpaca)
        #expect(r.trainedTokens > 0 && r.trainedTokens < r.sequenceTokens)
        #expect(r.manifestPath == nil)
        let d = try ModelSource.open(Self.model).description
        let back = try PEFTAdapterFolder.read(dir + "/adapter", model: d)
        #expect(back.rank == 2 && back.alpha == 4 && back.dropout == 0 && Set(back.targets) == [.query, .down])
        #expect(back.a.count == r.adapters.adapters.count)
        var nonZeroB = false
        for a in r.adapters.adapters {
            let site = LoRAKey(layer: a.key.layer, role: a.key.role)
            #expect(back.a[site]?.values == a.a.values && back.b[site]?.values == a.b.values, "\(site)")
            nonZeroB = nonZeroB || a.b.values.contains { $0 != 0 }
        }
        #expect(nonZeroB)
    }

    /// `initAdapterFolder`: a step at rate 0 (the warm-up's first) leaves the PEFT fixture's A and B
    /// as they are; an adapter setting other than the folder's is refused as a usage error.
    @Test func initAdapterFromPEFTFolder() throws {
        let dir = FineTuneJobTests.temporary("shears-wire-init")
        defer { _ = system("rm -rf '\(dir)'") }
        let d = try ModelSource.open(Self.model).description
        let folder = try PEFTAdapterFolder.read(Self.peft, model: d)
        var job = Self.job(dir + "/out", steps: 1)
        job.settings.warmupSteps = 1
        job.settings.lora = try FineTuneJob.adapterSettings(folder: Self.peft, model: d)
        #expect(job.settings.lora.rank == 2 && job.settings.lora.alpha == 5 && job.settings.lora.targets.count == 7)
        job.settings.lora.dropout = 0
        job.initAdapterFolder = Self.peft
        let r = try job.run()
        #expect(r.adapters.adapters.count == folder.a.count)
        for a in r.adapters.adapters {
            let site = LoRAKey(layer: a.key.layer, role: a.key.role)
            #expect(a.a.values == folder.a[site]!.values && a.b.values == folder.b[site]!.values, "\(site)")
        }
        var other = Self.job(dir + "/other", steps: 1)
        other.initAdapterFolder = Self.peft
        other.settings.lora.rank = 3
        let e = #expect(throws: CheckpointError.self) { try other.run() }
        #expect(e?.code == .invalidUsage && e?.message.contains("rank 2") == true, "\(String(describing: e))")
    }

    /// A pruned model's manifest is carried over with a training record that lists exactly the
    /// merged tensors; `ManifestVerification` against the original source accepts the output.
    @Test func prunedManifestCarriedOver() throws {
        let dir = FineTuneJobTests.temporary("shears-wire-manifest")
        defer { _ = system("rm -rf '\(dir)'") }
        var prune = PruneJob(source: Self.model, output: dir + "/p")
        prune.settings.importance = .l2
        prune.settings.ratio = 0.5
        try prune.run()
        var job = Self.job(dir + "/t")
        job.source = dir + "/p"
        job.dataFiles = [Self.alpaca]
        let r = try job.run()
        #expect(r.manifestPath == dir + "/t/" + PruningManifest.fileName)
        let m = try JSONValue.parse(FileSystem.readFile(r.manifestPath!))
        let training = m["training"]!.arrayValue!
        #expect(training.count == 1)
        let t = training[0]
        #expect(t["method"]?.stringValue == "lora" && t["steps"]?.intValue == 2)
        #expect(t["data"]?.arrayValue?.first?["format"]?.stringValue == "jsonl-alpaca")
        #expect(t["trained_tokens"]?.intValue == r.trainedTokens && t["tokens"]?.intValue == r.sequenceTokens)
        #expect(Set(t["changed_tensors"]!.arrayValue!.compactMap(\.stringValue)) == Set(r.changedTensors))
        #expect(t["settings"]?["targets"]?.arrayValue?.compactMap(\.stringValue) == ["q_proj", "down_proj"])
        let files = m["result"]!["files"]!.objectValue!
        #expect(files["model.safetensors"]?.stringValue == (try ModelSource.sha256(dir + "/t/model.safetensors")))
        let v = try ManifestVerification.run(pruned: Checkpoint.open(dir + "/t"), sourcePath: Self.model,
                                             manifestPath: r.manifestPath!, threads: 2)
        #expect(v.problems.isEmpty, "\(v.problems)")
        #expect(v.trainedTensors == r.changedTensors.count && v.trainingMethods == ["lora"])
    }

    /// The automatic activation memory (nil): a quarter of the limit, never more than the pass
    /// leaves; a run with it (projections kept) equals a run that recomputes every layer (the
    /// default, 0), bit for bit (dropout on).
    @Test func defaultActivationMemoryKeepsResults() throws {
        let engine = try ModelSource.open(Self.model).engineModel()
        let rows = 2 * 128
        engine.memory = MemoryBudget(bytes: 1 << 30)
        #expect(FineTuneJob.defaultActivationMemory(engine, rows: rows) == 1 << 28)
        // The need depends on the limit (blocked tables under small ones): scan the limits.
        var capped = 0
        for mib in 1...64 {
            engine.memory = MemoryBudget(bytes: mib << 20)
            let need = engine.memoryNeed(rows: rows, backward: true), d = FineTuneJob.defaultActivationMemory(engine, rows: rows)
            #expect(d >= 0 && d <= (mib << 20) / 4, "\(mib) MiB")
            if need > mib << 20 { #expect(d == 0, "\(mib) MiB") } else { #expect(need + d <= mib << 20, "\(mib) MiB") }
            if d > 0 && d < (mib << 20) / 4 { capped += 1 }
        }
        #expect(capped > 0)

        let dir = FineTuneJobTests.temporary("shears-wire-activations")
        defer { _ = system("rm -rf '\(dir)'") }
        var kept = Self.job(dir + "/kept")
        #expect(kept.activationMemory == 0, "the default recomputes, as prune does")
        kept.activationMemory = nil
        kept.dataFiles = [Self.alpaca]
        kept.settings.lora.dropout = 0.1
        var recomputed = kept
        recomputed.output = dir + "/recomputed"
        recomputed.activationMemory = 0
        let a = try kept.run(), b = try recomputed.run()
        // Bit for bit even with other suites running: products outside the engine's
        // single-threaded sections never see its thread count (BLASThreadGate).
        #expect(a.losses == b.losses)
        let x = try Checkpoint.open(dir + "/kept"), y = try Checkpoint.open(dir + "/recomputed")
        for t in x.tensorNames { #expect(try x.tensor(named: t).floats() == y.tensor(named: t).floats(), "\(t)") }
    }
}
