import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Engine
import ModelArchitecture
@testable import ShearsPipeline

/// `FineTuneJob` and `LoRAMerge`: merged checkpoints against PEFT's `merge_and_unload()`
/// (Fixtures/lora, Tools/lora/reference.py), and resuming a run bit for bit.
@Suite(.serialized) struct FineTuneJobTests {
    static let fixtures: String = {
        var p = #filePath
        for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
        return p + "/Fixtures"
    }()
    static let modules: [String: TensorRole] = ["q_proj": .query, "k_proj": .key, "v_proj": .value, "o_proj": .output,
                                                "gate_proj": .gate, "up_proj": .up, "down_proj": .down]

    static func temporary(_ prefix: String) -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        return String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
    }

    static func modelPath(_ name: String) -> String {
        name == "austen-llama" ? fixtures + "/models/austen-llama" : fixtures + "/engine/" + name
    }

    static func ints(_ c: Checkpoint, _ name: String) throws -> [Int32] {
        let v = try c.tensor(named: name)
        return v.withUnsafeBytes { raw in (0..<v.elementCount).map { Int32(truncatingIfNeeded: Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) } }
    }

    /// PEFT's merged model (weights rounded to the stored dtype) and Shears' merged checkpoint give
    /// the same logits within 1e-5 relative; every tensor keeps its shape and dtype, and only the
    /// adapted projections change.
    @Test(arguments: ["mha-untied-bias", "gqa-tied-llama3", "austen-llama"]) func mergedCheckpointMatchesPEFT(_ name: String) throws {
        let g = try Checkpoint.open(Self.fixtures + "/lora/\(name).safetensors")
        let source = try ModelSource.open(Self.modelPath(name))
        var weights: [LoRAKey: (a: [Float], b: [Float])] = [:]
        for t in g.tensorNames where t.hasPrefix("step10.") && t.hasSuffix(".A") {
            let parts = t.split(separator: ".")
            weights[LoRAKey(layer: Int(parts[1])!, role: Self.modules[String(parts[2])]!)] =
                (try g.tensor(named: t).floats(), try g.tensor(named: String(t.dropLast()) + "B").floats())
        }
        let meta = g.metadata!
        let adapters = try LoRAAdapters(model: source.description,
                                        settings: LoRASettings(rank: Int(meta["rank"]!)!, alpha: Float(meta["alpha"]!)!, dropout: 0), weights: weights)
        let out = Self.temporary("shears-merge") + "/out"
        defer { _ = system("rm -rf '\(FileSystem.directoryName(out))'") }
        let (changed, _) = try LoRAMerge.write(source, adapters: adapters, to: out, kind: .folder)
        #expect(changed.count == weights.count)
        let merged = try LlamaModel(path: out)
        let tokens = try Self.ints(g, "merge.tokens"), shape = g.info(named: "merge.tokens")!.shape
        let batch = try TokenBatch((0..<shape[0]).map { b in Array(tokens[(b * shape[1])..<((b + 1) * shape[1])]) })
        let logits = try merged.logits(batch).values, ref = try g.tensor(named: "merge.logits").floats()
        var d = 0.0, n = 0.0
        for i in 0..<ref.count { d += Double(logits[i] - ref[i]) * Double(logits[i] - ref[i]); n += Double(ref[i]) * Double(ref[i]) }
        #expect((d / n).squareRoot() < 1e-5, "\(name): merged logits relative error \((d / n).squareRoot())")
        let before = try Checkpoint.open(Self.modelPath(name)), after = try Checkpoint.open(out)
        #expect(Set(before.tensorNames) == Set(after.tensorNames))
        for t in before.tensorNames {
            let a = before.info(named: t)!, b = after.info(named: t)!
            #expect(a.dtype == b.dtype && a.shape == b.shape, "\(t)")
            let same = try before.tensor(named: t).floats() == after.tensor(named: t).floats()
            #expect(same != changed.contains(t), "\(t): changed \(!same), merged \(changed.contains(t))")
        }
    }

    /// A model with per-layer widths (a pruned model) stays one: the merged folder has the same
    /// per-layer configuration and tensor shapes, loads, and computes what the adapted source
    /// computes (to the BF16 rounding of the merged weights).
    @Test func prunedModelStaysLoadable() throws {
        let path = Self.fixtures + "/engine/uneven-pruned"
        let source = try ModelSource.open(path)
        let adapters = try LoRAAdapters(model: source.description, settings: LoRASettings(rank: 2, alpha: 4, dropout: 0), seed: 5)
        for a in adapters.adapters {
            let layer = a.key.layer
            a.b.withUnsafeMutableBufferPointer { b in for i in 0..<b.count { b[i] = Float((i * 7 + layer) % 11) / 11 - 0.5 } }
        }
        let out = Self.temporary("shears-merge-pruned") + "/out"
        defer { _ = system("rm -rf '\(FileSystem.directoryName(out))'") }
        _ = try LoRAMerge.write(source, adapters: adapters, to: out, kind: .folder)
        let merged = try LlamaModel(path: out)
        #expect(merged.description.layers == source.description.layers)
        let adapted = try LlamaModel(path: path)
        adapted.adapters = adapters
        let batch = try TokenBatch([[1, 7, 3, 9, 12, 4, 30, 2]])
        let x = try merged.logits(batch).values, y = try adapted.logits(batch).values
        var d = 0.0, n = 0.0
        for i in 0..<x.count { d += Double(x[i] - y[i]) * Double(x[i] - y[i]); n += Double(y[i]) * Double(y[i]) }
        #expect((d / n).squareRoot() < 1e-2, "relative error \((d / n).squareRoot())")
        let plain = try LlamaModel(path: path).logits(batch).values
        var d0 = 0.0
        for i in 0..<x.count { d0 += Double(plain[i] - y[i]) * Double(plain[i] - y[i]) }
        #expect(d0.squareRoot() > 10 * d.squareRoot(), "the adapters change the logits more than the rounding does")
    }

    /// An epoch visits every window once, in an order that depends on the seed and the epoch.
    @Test func epochsArePermutations() {
        let windows = 10, size = 4
        let order = (0..<5).flatMap { FineTuneJob.batch($0, of: windows, size: size, seed: 1) }   // 20 = two epochs
        #expect(Set(order[0..<10]) == Set(0..<10))
        #expect(Set(order[10..<20]) == Set(0..<10))
        #expect(Array(order[0..<10]) != Array(order[10..<20]))
        #expect(FineTuneJob.batch(0, of: windows, size: size, seed: 2) != FineTuneJob.batch(0, of: windows, size: size, seed: 1))
        var job = FineTuneJob(source: "m", output: "o")
        job.settings.batchSize = 4
        job.settings.epochs = 3
        #expect(job.totalSteps(windows: 10) == 6)
        job.settings.steps = 7
        #expect(job.totalSteps(windows: 10) == 7)
    }

    static func job(_ out: String) -> FineTuneJob {
        var job = FineTuneJob(source: modelPath("austen-llama"), output: out)
        var s = FineTuneSettings()
        s.lora = LoRASettings(rank: 2, alpha: 4, dropout: 0.1)
        s.steps = 4
        s.batchSize = 4
        s.microBatchSize = 2
        s.seqLen = 16
        s.warmupSteps = 1
        s.learningRate = 1e-3
        s.seed = 3
        job.settings = s
        var rng = SplitMix64(seed: 11)
        // Ten windows of 16 tokens, two of them shorter with a masked prompt (padding + masks).
        job.sequences = (0..<10).map { i in
            let n = i % 5 == 0 ? 11 : 16
            let tokens = (0..<n).map { _ in Int32(rng.next() % 8000) }
            return TrainingSequence(tokens: tokens, trained: i % 5 == 0 ? (0..<n).map { $0 >= 3 } : nil)
        }
        return job
    }

    /// Four steps in one run equal two steps, a stop with the state written, and a resumed run of
    /// the last two: the same losses and the same merged tensors, bit for bit (dropout on).
    @Test func resumedRunEqualsUninterruptedRun() throws {
        let dir = Self.temporary("shears-resume")
        defer { _ = system("rm -rf '\(dir)'") }
        let whole = try Self.job(dir + "/whole").run()
        #expect(whole.losses.count == 4 && !whole.stopped)
        var first = Self.job(dir + "/resumed")
        first.stopAfterStep = 2
        let a = try first.run()
        #expect(a.stopped && a.losses.count == 2)
        #expect(FileSystem.isFile(first.statePath))
        #expect(!FileSystem.isDirectory(dir + "/resumed"))
        let b = try Self.job(dir + "/resumed").run()
        #expect(b.resumedFrom == 2)
        #expect(a.losses + b.losses == whole.losses)
        #expect(b.tokens == whole.tokens)
        #expect(!FileSystem.isDirectory(dir + "/resumed.finetune-state"))
        let x = try Checkpoint.open(dir + "/whole"), y = try Checkpoint.open(dir + "/resumed")
        for t in x.tensorNames { #expect(try x.tensor(named: t).floats() == y.tensor(named: t).floats(), "\(t)") }
    }

    /// A state written with other settings is refused, naming the file.
    @Test func stateOfOtherSettingsIsRefused() throws {
        let dir = Self.temporary("shears-resume-other")
        defer { _ = system("rm -rf '\(dir)'") }
        var first = Self.job(dir + "/out")
        first.stopAfterStep = 1
        _ = try first.run()
        var other = Self.job(dir + "/out")
        other.settings.learningRate = 2e-3
        #expect(throws: CheckpointError.self) { try other.run() }
        // A state whose step lies beyond the run is refused too (not trusted to index the run).
        let path = first.statePath
        let c = try Checkpoint.open(path)
        var meta = c.metadata!
        meta["step"] = "99"
        let specs = c.tensorNames.map { TensorSpec(name: $0, dtype: .f32, shape: c.info(named: $0)!.shape) }
        var values: [String: [Float]] = [:]
        for n in c.tensorNames { values[n] = try c.tensor(named: n).floats() }
        try SafetensorsWriter.write(path: path, tensors: specs, metadata: meta) { spec throws(CheckpointError) in .floats(values[spec.name]!) }
        do {
            _ = try Self.job(dir + "/out").run()
            Issue.record("a state at step 99 of 4 was accepted")
        } catch let e as CheckpointError {
            #expect(e.message.contains("out of range") && e.path == path, "\(e)")
        }
    }
}
