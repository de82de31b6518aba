import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsJSON
@testable import ShearsCommands

/// `shears prune` with wanda-sp / wifv, adaptive allocation, recovery and sequential statistics,
/// end to end through the engine's own float32 forward pass, against the PyTorch reference
/// (Fixtures/recovery, formats/recovery.md §6), then `verify --source --manifest` on the result.
@Suite(.serialized) struct RecoveryCommandTests {
    static let recovery = fixturesPath + "/recovery"

    static func goldens(_ model: String) throws -> JSONValue {
        try JSONValue.parse(try FileSystem.readFile(recovery + "/\(model)/goldens.json"))
    }

    /// The prune arguments of a golden selection case.
    static func arguments(_ settings: JSONValue) -> [String] {
        var a = ["--importance", settings["importance"]!.stringValue!, "--gqa", settings["gqa"]!.stringValue!,
                 "--allocation", settings["allocation"]!.stringValue!]
        if let r = settings["ratio"]?.doubleValue { a += ["--ratio", String(r)] }
        if let r = settings["attention_layers"]?.arrayValue { a += ["--attention-layers", "\(r[0].intValue!):\(r[1].intValue!)"] }
        if let r = settings["mlp_layers"]?.arrayValue { a += ["--mlp-layers", "\(r[0].intValue!):\(r[1].intValue!)"] }
        if let r = settings["round_to"]?.intValue { a += ["--round-to", String(r)] }
        return a
    }

    static func prune(_ model: String, source: String, into dir: String, _ extra: [String]) throws -> JSONValue {
        let windows = try JSONValue.parse(try FileSystem.readFile(recovery + "/\(model)/windows.json")).arrayValue!
        let r = CommandRunner.run(["prune", source, dir, "--calibration-tokens", recovery + "/\(model)/windows.json",
                                   "--statistics-samples", String(windows.count), "--statistics-seq-len", String(windows[0].arrayValue!.count)] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONValue.parse(try FileSystem.readFile(dir + "/pruning-manifest.json"))
    }

    static func kept(_ manifest: JSONValue, _ l: Int, _ part: String, _ key: String) -> [Int] {
        manifest["layers"]!.arrayValue![l][part]![key]!.arrayValue!.map { $0.intValue! }
    }

    static func scale(_ b: [Double]) -> Double { max(b.map(abs).max() ?? 0, 1e-30) }

    /// Every |a − b| within `tolerance` × the largest |b|.
    static func agree(_ a: [Double], _ b: [Double], _ tolerance: Double) -> Bool {
        let bound = tolerance * scale(b)
        return a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= bound }
    }

    /// The bundled model's selections and scores from the engine's statistics (dry runs).
    @Test func bundledModelSelectionsMatchTheReference() throws {
        let source = fixturesPath + "/models/austen-llama"
        let g = try Self.goldens("austen-llama")
        var checked = 0
        for c in g["cases"]!.arrayValue! where c["settings"]!["strategy"]!.stringValue! == "block" {
            let dir = "/tmp/shears-recovery-\(UInt32.random(in: 0...UInt32.max))"
            defer { removeFolder(dir) }
            let name = c["name"]!.stringValue!
            let m = try Self.prune("austen-llama", source: source, into: dir, Self.arguments(c["settings"]!) + ["--dry-run"])
            let kept = c["kept"]!, scores = c["scores"]!
            for l in 0..<4 {
                #expect(Self.kept(m, l, "attention", "kept_heads") == kept["heads"]!.arrayValue![l].arrayValue!.map { $0.intValue! }, "\(name) layer \(l) heads")
                #expect(Self.kept(m, l, "mlp", "kept_channels") == kept["channels"]!.arrayValue![l].arrayValue!.map { $0.intValue! }, "\(name) layer \(l) channels")
                for (part, key) in [("attention", "attention"), ("mlp", "mlp")] {
                    let want = scores[key]!.arrayValue![l].arrayValue!.map { $0.doubleValue! }
                    let got = m["layers"]!.arrayValue![l][part]!["scores"]!.arrayValue!.map { $0.doubleValue ?? .nan }
                    #expect(Self.agree(got, want, 1e-4), "\(name) layer \(l) \(part) scores")
                }
            }
            checked += 1
        }
        #expect(checked >= 5)
    }

    /// Recovered weights written as float32 agree with the reference's float64 refits.
    @Test(arguments: ["bias", "ls", "anchored-ls"])
    func bundledModelRecovery(_ method: String) throws {
        let source = fixturesPath + "/models/austen-llama"
        let g = try Self.goldens("austen-llama")
        let entry = try #require(g["recovery"]!.arrayValue!.first { $0["method"]!.stringValue! == method })
        let c = try #require(g["cases"]!.arrayValue!.first { $0["name"] == entry["case"] })
        let dir = "/tmp/shears-recovery-\(UInt32.random(in: 0...UInt32.max))"
        defer { removeFolder(dir) }
        var extra = Self.arguments(c["settings"]!) + ["--recover", method, "--dtype", "float32"]
        if let d = entry["damping"]?.doubleValue { extra += ["--damping", String(d)] }
        let m = try Self.prune("austen-llama", source: source, into: dir, extra)
        #expect(m["recovery"]!["method"]!.stringValue == method)
        let out = try Checkpoint.open(dir)
        let golden = try Checkpoint.open(Self.recovery + "/austen-llama/" + entry["file"]!.stringValue!)
        var compared = 0
        for name in golden.tensorNames {
            // layers.{l}.{o_proj|down_proj}.{weight|bias}
            let parts = name.split(separator: ".")
            let l = parts[1], proj = parts[2], kind = parts[3]
            let outName = "model.layers.\(l).\(proj == "o_proj" ? "self_attn" : "mlp").\(proj).\(kind)"
            let want = try golden.tensor(named: name).withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            let got = try out.tensor(named: outName).floats().map(Double.init)
            #expect(Self.agree(got, want, 2e-4), "\(outName)")
            compared += 1
        }
        #expect(compared >= 2)
        // The recovered folder passes the manifest check with the refits reported, and transformers'
        // bias flags are set.
        let cfg = try JSONValue.parse(try FileSystem.readFile(dir + "/config.json"))
        #expect(cfg["attention_bias"]?.boolValue == true && cfg["mlp_bias"]?.boolValue == true)
        let v = CommandRunner.run(["verify", dir, "--source", source, "--manifest", dir + "/pruning-manifest.json"])
        #expect(v.status == 0, "\(v.stdout)")
        #expect(v.stdout.contains("changed by recovery (\(method))"))
    }

    /// Sequential statistics: each layer decided and refit on the pruned model's own inputs.
    @Test func sequentialSelectionAndRefitsMatchTheReference() throws {
        let source = fixturesPath + "/pruning/tiny-gqa"
        let g = try Self.goldens("tiny-gqa")
        let entry = try #require(g["recovery"]!.arrayValue!.first { $0["statistics"]!.stringValue! == "sequential" })
        let c = try #require(g["cases"]!.arrayValue!.first { $0["name"] == entry["case"] })
        let dir = "/tmp/shears-recovery-\(UInt32.random(in: 0...UInt32.max))"
        defer { removeFolder(dir) }
        let m = try Self.prune("tiny-gqa", source: source, into: dir, Self.arguments(c["settings"]!)
                               + ["--recover", entry["method"]!.stringValue!, "--damping", String(entry["damping"]!.doubleValue!), "--sequential"])
        let kept = entry["kept"]!
        for l in 0..<3 {
            #expect(Self.kept(m, l, "attention", "kept_heads") == kept["heads"]!.arrayValue![l].arrayValue!.map { $0.intValue! }, "layer \(l) heads")
            #expect(Self.kept(m, l, "mlp", "kept_channels") == kept["channels"]!.arrayValue![l].arrayValue!.map { $0.intValue! }, "layer \(l) channels")
        }
        #expect(m["recovery"]!["statistics"]!.stringValue == "sequential")
        let out = try Checkpoint.open(dir)
        let golden = try Checkpoint.open(Self.recovery + "/tiny-gqa/" + entry["file"]!.stringValue!)
        for l in 0..<3 {
            for (proj, full) in [("o_proj", "self_attn.o_proj"), ("down_proj", "mlp.down_proj")] {
                for kind in ["weight", "bias"] {
                    let want = try golden.tensor(named: "layers.\(l).\(proj).\(kind)").withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
                    let got = try out.tensor(named: "model.layers.\(l).\(full).\(kind)").floats().map(Double.init)
                    #expect(Self.agree(got, want, 2e-4), "layer \(l) \(proj) \(kind)")
                }
            }
        }
    }

    /// verify still catches what recovery did not do: a touched zero bias, a touched untouched weight.
    @Test func verifyCatchesChangesRecoveryDidNotMake() throws {
        let source = fixturesPath + "/pruning/tiny-gqa"
        let dir = "/tmp/shears-recovery-\(UInt32.random(in: 0...UInt32.max))"
        defer { removeFolder(dir) }
        _ = try Self.prune("tiny-gqa", source: source, into: dir, ["--importance", "wanda-sp", "--ratio", "0.5", "--recover", "bias",
                                                                    "--attention-layers", "0:3", "--mlp-layers", "0:3"])
        func verify() -> (Int32, String) {
            let r = CommandRunner.run(["verify", dir, "--source", source, "--manifest", dir + "/pruning-manifest.json"])
            return (r.status, r.stdout)
        }
        var (status, out) = verify()
        #expect(status == 0, "\(out)")
        #expect(out.contains("changed by recovery (bias)"))
        let file = dir + "/model.safetensors"
        func edit(_ tensor: String, _ value: Float) throws {
            let f = try SafetensorsFile(path: file)
            let t = try #require(f.info(named: tensor))
            let fd = open(file, O_RDWR)
            var v = value
            _ = pwrite(fd, &v, 4, off_t(f.header.dataStart + t.dataOffsets.lowerBound))
            close(fd)
        }
        try edit("model.layers.1.self_attn.q_proj.bias", 0.5)
        (status, out) = verify()
        #expect(status == 1)
        #expect(out.contains("model.layers.1.self_attn.q_proj.bias was added as an all-zero bias but holds non-zero values"), "\(out)")
        try edit("model.layers.1.self_attn.q_proj.bias", 0)
        try edit("model.layers.2.mlp.up_proj.weight", 123)
        (status, out) = verify()
        #expect(status == 1)
        #expect(out.contains("model.layers.2.mlp.up_proj.weight is not the source's"), "\(out)")
    }

    /// transformers' Qwen2 has no bias on o_proj or the MLP, so recovery that adds one is refused
    /// before any work, as a usage error naming the family; pruning only the attention of a
    /// family whose output projection may not carry a bias is refused the same way.
    @Test func recoveryBiasesTheFamilyCannotHaveAreRefused() throws {
        let r = CommandRunner.run(["prune", fixturesPath + "/engine/qwen2-bias", "/tmp/shears-never-\(getpid())", "--importance", "l2", "--recover", "bias"])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("qwen2 models cannot have") && r.stderr.contains("--recover none"), "\(r.stderr)")
        #expect(!FileSystem.isDirectory("/tmp/shears-never-\(getpid())"))
    }

    /// Options that cannot apply are refused with the option named, as usage errors (exit 64).
    @Test func refusals() throws {
        let source = fixturesPath + "/pruning/tiny-gqa"
        for (args, message) in [(["--strategy", "channel", "--recover", "bias"], "--recover applies to --strategy block"),
                                (["--recover", "bias", "--damping", "0.1"], "--damping applies to --recover ls and anchored-ls"),
                                (["--importance", "wifv", "--sequential", "--allocation", "adaptive"], "--sequential"),
                                (["--allocation", "adaptive", "--global"], "--allocation adaptive"),
                                (["--sequential"], "--sequential applies to activation statistics")] {
            let r = CommandRunner.run(["prune", source, "/tmp/shears-never-\(getpid())", "--dry-run"] + args)
            #expect(r.status == 64, "\(args)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
    }
}
