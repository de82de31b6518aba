import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsJSON

/// `shears finetune` on the bundled model: a few steps on a slice of a training novel lower the
/// loss; the output is a loadable checkpoint with the source's tensors, shapes and dtypes, only
/// the adapted projections changed; usage and input errors exit 64 and 2.
@Suite(.serialized) struct FineTuneCommandTests {
    static let model = fixturesPath + "/models/austen-llama"

    /// The first `bytes` bytes of Pride and Prejudice (a training novel), as a text file in `dir`.
    static func slice(_ dir: String, bytes: Int = 3_000) throws -> String {
        let text = try FileSystem.readFile(fixturesPath + "/text/austen-calibration/prideprejudice.txt")
        let path = dir + "/train.txt"
        try AtomicFile.write(Array(text.prefix(bytes)), to: path)
        return path
    }

    @Test func trainsMergesAndKeepsShapesAndDTypes() throws {
        let dir = temporaryFolder("shears-finetune")
        defer { _ = system("rm -rf '\(dir)'") }
        let data = try Self.slice(dir)
        let r = CommandRunner.run(["finetune", Self.model, dir + "/out", "--data", data, "--steps", "8", "--batch-size", "4",
                                   "--micro-batch-size", "2", "--seq-len", "32", "--warmup-steps", "1", "--lr", "1e-2",
                                   "--lora-dropout", "0", "--targets", "q_proj,v_proj,down_proj", "--eval-text", data, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("tokens/s") && r.stderr.contains("ETA"))
        let summary = try JSONValue.parse(Array(r.stdout.utf8))
        let losses = summary["losses"]!.arrayValue!.map { $0.doubleValue! }
        #expect(losses.count == 8)
        // Trained on the slice (about 20 windows, each seen about twice), the model's perplexity
        // on it falls well below the source's.
        let base = CommandRunner.run(["eval", Self.model, "--text", data, "--seq-len", "128", "--max-windows", "60", "--json"])
        let before = try JSONValue.parse(Array(base.stdout.utf8))["perplexity"]!.doubleValue!
        let after = summary["evaluations"]!.arrayValue!.last!["perplexity"]!.doubleValue!
        #expect(after < 0.9 * before, "perplexity \(before) → \(after); losses \(losses)")
        #expect(summary["changed_tensors"]!.intValue == 3 * 4)
        let source = try Checkpoint.open(Self.model), output = try Checkpoint.open(dir + "/out")
        #expect(Set(source.tensorNames) == Set(output.tensorNames))
        var changed = 0
        for t in source.tensorNames {
            let a = source.info(named: t)!, b = output.info(named: t)!
            #expect(a.dtype == b.dtype && a.shape == b.shape, "\(t)")
            if try source.tensor(named: t).floats() != output.tensor(named: t).floats() {
                changed += 1
                #expect(t.contains("q_proj") || t.contains("v_proj") || t.contains("down_proj"), "\(t) changed")
            }
        }
        #expect(changed == 12)
        // The output loads and evaluates.
        let e = CommandRunner.run(["eval", dir + "/out", "--text", data, "--seq-len", "32", "--max-windows", "4"])
        #expect(e.status == 0, "\(e.stderr)")
    }

    /// Distilling a model from itself: the adapters start with B = 0, so student and teacher agree
    /// bit for bit, the KL divergence and its gradient are exactly 0, AdamW moves nothing, and the
    /// output's tensors are the source's.
    @Test func selfDistillationIsTheIdentity() throws {
        let dir = temporaryFolder("shears-finetune-distill")
        defer { _ = system("rm -rf '\(dir)'") }
        let data = try Self.slice(dir)
        let r = CommandRunner.run(["finetune", Self.model, dir + "/out", "--data", data, "--steps", "2", "--batch-size", "2",
                                   "--micro-batch-size", "1", "--seq-len", "32", "--warmup-steps", "0", "--lr", "1e-2",
                                   "--loss", "distill", "--teacher", Self.model, "--temperature", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let losses = try JSONValue.parse(Array(r.stdout.utf8))["losses"]!.arrayValue!.map { $0.doubleValue! }
        #expect(losses == [0, 0])
        let source = try Checkpoint.open(Self.model), output = try Checkpoint.open(dir + "/out")
        for t in source.tensorNames { #expect(try source.tensor(named: t).floats() == output.tensor(named: t).floats(), "\(t)") }
    }

    /// A `.gguf` output (converted from the merged folder, as prune's file outputs are) loads and
    /// evaluates; an existing output is refused without --force.
    @Test func ggufOutput() throws {
        let dir = temporaryFolder("shears-finetune-gguf")
        defer { _ = system("rm -rf '\(dir)'") }
        let data = try Self.slice(dir)
        let args = ["finetune", Self.model, dir + "/out.gguf", "--data", data, "--steps", "1", "--batch-size", "2",
                    "--micro-batch-size", "2", "--seq-len", "32", "--warmup-steps", "0", "--lr", "1e-2"]
        let r = CommandRunner.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let e = CommandRunner.run(["eval", dir + "/out.gguf", "--text", data, "--seq-len", "32", "--max-windows", "2"])
        #expect(e.status == 0, "\(e.stderr)")
        let again = CommandRunner.run(args)
        #expect(again.status == 2 && again.stderr.contains("--force"), "\(again.stderr)")
    }

    /// Alpaca JSONL data on the bundled model with --save-adapter: the summary names the file's
    /// format and counts only response tokens; the adapter folder is PEFT's layout.
    @Test func alpacaDataAndSavedAdapter() throws {
        let dir = temporaryFolder("shears-finetune-alpaca")
        defer { _ = system("rm -rf '\(dir)'") }
        let r = CommandRunner.run(["finetune", Self.model, dir + "/out", "--data", fixturesPath + "/lora/data/alpaca.jsonl",
                                   "--steps", "2", "--batch-size", "4", "--micro-batch-size", "2", "--seq-len", "128",
                                   "--warmup-steps", "0", "--lr", "1e-2", "--save-adapter", dir + "/adapter", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try JSONValue.parse(Array(r.stdout.utf8))
        #expect(summary["data"]?.arrayValue?.first?["format"]?.stringValue == "jsonl-alpaca")
        #expect(summary["data"]?.arrayValue?.first?["examples"]?.intValue == 6)  // 7 records, one prompt over the cut-off
        #expect(summary["data"]?.arrayValue?.first?["skipped"]?.intValue == 1)
        let trained = summary["trained_tokens"]!.intValue!, tokens = summary["tokens"]!.intValue!
        #expect(trained > 0 && trained < tokens)
        #expect(summary["manifest"] == .null)
        let config = try JSONValue.parse(FileSystem.readFile(dir + "/adapter/adapter_config.json"))
        #expect(config["r"]?.intValue == 8 && config["peft_type"]?.stringValue == "LORA")
        let weights = try Checkpoint.open(dir + "/adapter/adapter_model.safetensors")
        #expect(weights.tensorNames.count == 2 * 7 * 4)
        #expect(weights.info(named: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")?.shape.first == 8)
    }

    /// Prune, finetune, verify: the carried-over manifest lets `verify --source --manifest` accept
    /// the training-changed tensors (and report them) while every other tensor is checked bit for
    /// bit: one changed byte in an unlisted tensor fails with exit 1.
    @Test func prunedFinetunedOutputVerifies() throws {
        let dir = temporaryFolder("shears-finetune-verify")
        defer { _ = system("rm -rf '\(dir)'") }
        let p = CommandRunner.run(["prune", Self.model, dir + "/p", "--importance", "l2", "--ratio", "0.5"])
        #expect(p.status == 0, "\(p.stderr)")
        let f = CommandRunner.run(["finetune", dir + "/p", dir + "/t", "--data", try Self.slice(dir), "--steps", "1", "--batch-size", "2",
                                   "--micro-batch-size", "2", "--seq-len", "32", "--warmup-steps", "0", "--lr", "1e-2",
                                   "--targets", "q_proj,down_proj", "--json"])
        #expect(f.status == 0, "\(f.stderr)")
        #expect(try JSONValue.parse(Array(f.stdout.utf8))["manifest"]?.stringValue == dir + "/t/pruning-manifest.json")
        let args = ["verify", dir + "/t", "--source", Self.model, "--manifest", dir + "/t/pruning-manifest.json", "--threads", "2"]
        let v = CommandRunner.run(args)
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        #expect((v.stdout + v.stderr).contains("8 changed by training (lora)"), "\(v.stdout)\(v.stderr)")
        // One byte of an unlisted tensor (layer 1's key projection) changed.
        let c = try Checkpoint.open(dir + "/t")
        let name = "model.layers.1.self_attn.k_proj.weight"
        let offset = try c.tensor(named: name).range.lowerBound
        let fd = open(c.files[0].path, O_RDWR)
        var byte: UInt8 = 0
        _ = pread(fd, &byte, 1, off_t(offset))
        byte ^= 1
        _ = pwrite(fd, &byte, 1, off_t(offset))
        close(fd)
        let bad = CommandRunner.run(args)
        #expect(bad.status == 1 && (bad.stdout + bad.stderr).contains(name), "\(bad.stdout)\(bad.stderr)")
    }

    @Test func usageAndInputErrors() throws {
        let dir = temporaryFolder("shears-finetune-errors")
        defer { _ = system("rm -rf '\(dir)'") }
        let bad = [["--method", "dora"], ["--loss", "kl"], ["--loss", "distill"], ["--lora-dropout", "1"], ["--lora-rank", "0"],
                   ["--batch-size", "6", "--micro-batch-size", "4"], ["--targets", "qkv_proj"],
                   ["--init-adapter", fixturesPath + "/lora/peft-adapter", "--lora-rank", "4"],
                   ["--init-adapter", fixturesPath + "/lora/peft-adapter", "--targets", "q_proj"]]
        for extra in bad {
            let r = CommandRunner.run(["finetune", Self.model, dir + "/out", "--steps", "1"] + extra)
            #expect(r.status == 64, "\(extra): status \(r.status), \(r.stderr)")
        }
        let missing = CommandRunner.run(["finetune", Self.model, dir + "/out", "--steps", "1", "--data", dir + "/nothing.txt"])
        #expect(missing.status == 2 && missing.stderr.contains("nothing.txt"), "\(missing.stderr)")
        let help = CommandRunner.run(["finetune", "--help"])
        #expect(help.stdout.contains("--lora-rank") && help.stdout.contains("ce (next-token"))
    }

    /// `--save-adapter` never lands on an input or on OUT, and never replaces a folder that holds
    /// no adapter: a folder commit drops stale `.safetensors` files, so it would delete a model.
    @Test func saveAdapterFolderIsChecked() throws {
        let dir = temporaryFolder("shears-finetune-adapter-place")
        defer { _ = system("rm -rf '\(dir)'") }
        _ = system("cp -r '\(Self.model)' '\(dir)/model' && mkdir -p '\(dir)/user' && echo x > '\(dir)/user/model.safetensors'")
        let model = dir + "/model"
        let cases: [(String, String)] = [
            (model, "is the input folder"), (model + "/adapter", "inside the input folder"),
            (dir + "/out", "overlaps the output"), (dir + "/out/adapter", "overlaps the output"),
            (dir + "/user", "holds no PEFT adapter"), (model + "/config.json", "inside the input folder"),
        ]
        for (folder, message) in cases {
            let r = CommandRunner.run(["finetune", model, dir + "/out", "--steps", "1", "--save-adapter", folder])
            #expect(r.status == 2 && r.stderr.contains(message), "\(folder): \(r.status) \(r.stderr)")
        }
        // Nothing was written, and the inputs are whole.
        #expect(FileSystem.kind(of: dir + "/out") == nil)
        #expect(FileSystem.kind(of: model + "/model.safetensors") == .file)
        #expect(FileSystem.kind(of: dir + "/user/model.safetensors") == .file)
    }
}
