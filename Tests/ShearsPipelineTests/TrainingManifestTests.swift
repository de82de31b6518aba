import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Engine
import ModelArchitecture
import Pruning
import ShearsJSON
import ShearsPipeline

/// What the finetune job does around a pruned model, through the library alone: an adapter
/// folder for the pruned model's per-layer widths, and the manifest carried over with a training
/// record that `ManifestVerification` accepts.
@Suite struct TrainingManifestTests {
    static let model = fixtures + "/models/austen-llama"

    @Test func prunedModelAdapterAndManifest() throws {
        let dir = temporaryFolder("shears-train-manifest")
        defer { _ = system("rm -rf '\(dir)'") }
        var job = PruneJob(source: Self.model, output: dir + "/p")
        job.settings.importance = .l2
        job.settings.ratio = 0.5
        try job.run()
        let pruned = try ModelSource.open(dir + "/p").description
        #expect(pruned.layers != (try ModelSource.open(Self.model).description.layers))

        // An adapter on the pruned widths writes and reads back; the source model's shapes do not fit it.
        var adapter = PEFTAdapter(rank: 3, alpha: 6, dropout: 0, targets: [.query, .down], baseModel: dir + "/p")
        var seed: Float = 0.25
        for site in PEFTAdapter.sites(targets: adapter.targets, model: pruned) {
            let w = pruned.shape(of: TensorReference(site.role, layer: site.layer))
            seed += 0.5
            adapter.a[site] = LoRAMatrix(rows: 3, cols: w[1], values: (0..<(3 * w[1])).map { Float($0 % 7) * 0.01 - seed * 0.01 })
            adapter.b[site] = LoRAMatrix(rows: w[0], cols: 3, values: (0..<(3 * w[0])).map { Float($0 % 5) * -0.02 + seed * 0.01 })
        }
        #expect(adapter.a.count == 2 * pruned.layerCount)
        try PEFTAdapterFolder.write(adapter, to: dir + "/adapter", model: pruned)
        #expect(try PEFTAdapterFolder.read(dir + "/adapter", model: pruned) == adapter)
        // Tools/check-peft-adapter loads this pair (pruned model, adapter) in PEFT.
        if let keep = getenv("SHEARS_PEFT_PRUNED_OUT").map({ String(cString: $0) }) {
            try PEFTAdapterFolder.write(adapter, to: keep + "/adapter", model: pruned)
            try FileSystem.createDirectory(keep + "/model")
            for f in try FileSystem.contents(of: dir + "/p") { try AtomicFile.write(FileSystem.readFile(dir + "/p/" + f), to: keep + "/model/" + f) }
        }
        let e = #expect(throws: CheckpointError.self) { try PEFTAdapterFolder.read(dir + "/adapter", model: try ModelSource.open(Self.model).description) }
        #expect(e?.code == .shapeMismatch)

        // A "trained" copy: two listed tensors changed (one bf16 unit in the last place of one
        // element each), the manifest carried over with the record.
        let trained = dir + "/t"
        try FileSystem.createDirectory(trained)
        for f in try FileSystem.contents(of: dir + "/p") where f != PruningManifest.fileName {
            try AtomicFile.write(FileSystem.readFile(dir + "/p/" + f), to: trained + "/" + f)
        }
        let listed = [pruned.name(.query, layer: 1), pruned.name(.down, layer: 2)]
        func bump(_ name: String) throws {
            let c = try Checkpoint.open(trained)
            let offset = try c.tensor(named: name).range.lowerBound
            let fd = open(c.files[0].path, O_RDWR)
            var byte: UInt8 = 0
            _ = pread(fd, &byte, 1, off_t(offset))
            byte ^= 1
            _ = pwrite(fd, &byte, 1, off_t(offset))
            close(fd)
        }
        for n in listed { try bump(n) }
        var files: [String: String] = [:]
        for f in try FileSystem.contents(of: trained) { files[f] = try ModelSource.sha256(trained + "/" + f) }
        let record = TrainingRecord(
            method: "lora",
            data: [TrainingRecord.DataFile(file: "austen-calibration", sha256: String(repeating: "0", count: 64), format: "text", examples: 10, tokens: 2560)],
            settings: TrainingRecord.Settings(rank: 3, alpha: 6, dropout: 0, targets: ["q_proj", "down_proj"], learningRate: 1e-4, steps: 2,
                                              epochs: nil, batchSize: 4, microBatchSize: 2, seqLen: 64, warmupSteps: 0, weightDecay: 0,
                                              maxGradNorm: 1, seed: 0, loss: "ce"),
            steps: 2, tokens: 512, trainedTokens: 504, finalLoss: 5.1, changedTensors: listed)
        let bytes = try PruningManifest.carryOver(manifestAt: dir + "/p/" + PruningManifest.fileName, appending: record, resultFiles: files)
        try AtomicFile.write(bytes, to: trained + "/" + PruningManifest.fileName)
        let ok = try ManifestVerification.run(pruned: Checkpoint.open(trained), sourcePath: Self.model,
                                              manifestPath: trained + "/" + PruningManifest.fileName, threads: 2)
        #expect(ok.problems.isEmpty, "\(ok.problems)")
        #expect(ok.trainedTensors == 2 && ok.trainingMethods == ["lora"] && ok.tensorsChecked > 0)
        // The pruning manifest alone does not allow the change.
        let strict = try ManifestVerification.run(pruned: Checkpoint.open(trained), sourcePath: Self.model,
                                                  manifestPath: dir + "/p/" + PruningManifest.fileName, threads: 2)
        #expect(listed.allSatisfy { n in strict.problems.contains { $0.contains(n) } })
        // An unlisted tensor changed is found, bit for bit.
        let unlisted = pruned.name(.key, layer: 1)
        try bump(unlisted)
        let caught = try ManifestVerification.run(pruned: Checkpoint.open(trained), sourcePath: Self.model,
                                                  manifestPath: trained + "/" + PruningManifest.fileName, threads: 2)
        #expect(caught.problems.count == 1 && caught.problems[0].contains(unlisted), "\(caught.problems)")
    }
}
