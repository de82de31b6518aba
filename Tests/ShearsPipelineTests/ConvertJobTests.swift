import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsPipeline

/// `convert` and `verify --source --manifest` as library calls, without ShearsCommands.
@Suite struct ConvertJobTests {
    @Test func convertJobWritesWhatTheCommandWrites() throws {
        let dir = temporaryFolder("shears-convert-job")
        defer { _ = system("rm -rf '\(dir)'") }
        var progressCalls = 0
        try ConvertJob(source: PruneJobTests.model, output: dir + "/c.gguf").run { _ in progressCalls += 1 }
        try ConvertJob(source: PruneJobTests.model, output: dir + "/c.ctz").run()
        var f32 = ConvertJob(source: PruneJobTests.model, output: dir + "/cf")
        f32.dtype = .f32
        try f32.run()
        // The bytes OutputPinTests pins for the same `shears convert` commands.
        #expect(try ModelSource.sha256(dir + "/c.gguf") == "4f25a8c43cbaaa60995a8eba4cba763c951f8164bd9cf5bff5e2bca2e56697d7")
        #expect(try ModelSource.sha256(dir + "/c.ctz") == "5895605b6124f3a87e8945ca3dd97031e0023c405f11265e57a28793c7006389")
        #expect(try ModelSource.sha256(dir + "/cf/model.safetensors") == "6bacc6474e3a2e1125d36851d0964ea060578a62bfe8a8a29b283e774a3971cb")
        #expect(progressCalls > 0)
        // Converting onto an existing output without force is refused, naming it.
        #expect { try ConvertJob(source: PruneJobTests.model, output: dir + "/c.gguf").run() } throws: {
            ($0 as? CheckpointError)?.path == dir + "/c.gguf"
        }
    }

    @Test func manifestVerificationFindsAChangedTensor() throws {
        let dir = temporaryFolder("shears-verify-job")
        defer { _ = system("rm -rf '\(dir)'") }
        var job = PruneJob(source: PruneJobTests.model, output: dir + "/p")
        job.settings.importance = .l2
        try job.run()
        let ok = try ManifestVerification.run(pruned: Checkpoint.open(dir + "/p"), sourcePath: PruneJobTests.model,
                                              manifestPath: dir + "/p/pruning-manifest.json", threads: 2)
        #expect(ok.problems.isEmpty && ok.tensorsChecked > 0 && ok.sourceFilesMatch)
        // Against a source of another shape the manifest cannot even apply: an error naming it.
        #expect(throws: CheckpointError.self) {
            try ManifestVerification.run(pruned: Checkpoint.open(dir + "/p"), sourcePath: fixtures + "/safetensors/tiny-llama",
                                         manifestPath: dir + "/p/pruning-manifest.json", threads: 2)
        }
        // A changed tensor in the pruned copy is found.
        let copy = dir + "/q"
        try FileSystem.createDirectory(copy)
        for f in try FileSystem.contents(of: dir + "/p") { try AtomicFile.write(FileSystem.readFile(dir + "/p/" + f), to: copy + "/" + f) }
        let c = try Checkpoint.open(copy)
        let name = c.tensorNames.first { c.info(named: $0)!.shape.count == 2 }!
        let offset = try c.tensor(named: name).range.lowerBound
        let fd = open(c.files[0].path, O_WRONLY)
        var byte: UInt8 = 0x5A
        _ = pwrite(fd, &byte, 1, off_t(offset))
        close(fd)
        let changed = try ManifestVerification.run(pruned: Checkpoint.open(copy), sourcePath: PruneJobTests.model,
                                                   manifestPath: copy + "/pruning-manifest.json", threads: 2)
        #expect(changed.problems.contains { $0.contains(name) }, "\(changed.problems)")
    }
}
