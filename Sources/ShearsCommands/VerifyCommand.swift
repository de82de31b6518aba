import ArgumentParser
import CheckpointCore
import CompactFormat
import Engine
import ModelArchitecture
import ModelSigning
import ShearsConcurrency
import ShearsJSON
import ShearsPipeline

/// `shears verify PATH`: every applicable check, each passed, failed or skipped with the reason.
public struct VerifyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a checkpoint: structure, values, config consistency, and hashes.",
        discussion: """
            Checks: structure (the format's full validation; for compact files every chunk is decoded \
            and every tensor's SHA-256 checked), values (no NaN or infinity in floating-point tensors, \
            no all-zero weight matrices), config (tensor shapes agree with config.json for LLaMA-family \
            models), hashes (with --hashes: every tensor's SHA-256 matches the list written by \
            `shears hash`; missing and extra tensors are failures), signature (with --signature and \
            --public-key: an OpenSSF model-signing bundle from `shears sign` or `model_signing sign \
            key`; the signature, and every file of PATH against it: changed, added, removed and \
            renamed files fail, as do bundles with an unknown predicate or serialization method and \
            keyless or certificate bundles, which need the network), zero-shot (with --tasks and \
            --min-acc: the tasks' average acc, scored as `shears eval --tasks` does, is at least the \
            bound; with --tasks, --max-drop and --baseline: no task's acc is more than --max-drop below \
            its acc in the --baseline file, the --json output of an earlier `shears eval --tasks`).

            Exit status: 0 when every check passes (or is skipped), 1 when any fails, 2 when an input \
            is malformed or missing. --json prints {"ok": bool, "checks": [{"name", "status", "detail"}]}.
            """)

    @Argument(help: "A .safetensors file, index, model folder, .ctz file, or a LLaMA-family .gguf file (read as its Hugging Face tensors).", completion: .file())
    var path: String

    @Option(help: "A hash list from `shears hash` to check every tensor against.", completion: .file())
    var hashes: String?

    @Option(help: "The checkpoint PATH was pruned from (with --manifest).", completion: .file())
    var source: String?

    @Option(help: "The pruning-manifest.json that `shears prune` wrote (with --source).", completion: .file())
    var manifest: String?

    @Option(name: .customLong("ppl-text"), help: "Text for a perplexity smoke test (with --max-ppl).", completion: .file())
    var pplText: String?

    @Option(name: .customLong("max-ppl"), help: "Fail when the perplexity on --ppl-text (seq-len 128, first 32 windows) is above this.")
    var maxPPL: Double?

    @OptionGroup var zeroShot: ZeroShotArguments

    @Option(name: .customLong("min-acc"), help: "With --tasks: fail when the average acc over the tasks is below this (0 … 1).")
    var minAcc: Double?

    @Option(name: .customLong("max-drop"), help: "With --tasks and --baseline: fail when any task's acc is more than this below the baseline's (absolute, 0 … 1).")
    var maxDrop: Double?

    @Option(help: "The --json output of an earlier `shears eval --tasks` (with --max-drop).", completion: .file())
    var baseline: String?

    @Option(help: "A model signature bundle (with --public-key) to check PATH's files against.", completion: .file())
    var signature: String?

    @Option(name: .customLong("public-key"), help: "The PEM public key the signature must verify with (with --signature).", completion: .file())
    var publicKey: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "Threads (default: all cores).")
    var threads = availableCores()

    public init() {}

    public func validate() throws {
        if (source == nil) != (manifest == nil) { throw ValidationError("--source and --manifest go together") }
        if (pplText == nil) != (maxPPL == nil) { throw ValidationError("--ppl-text and --max-ppl go together") }
        if (signature == nil) != (publicKey == nil) { throw ValidationError("--signature and --public-key go together") }
        if (maxDrop == nil) != (baseline == nil) { throw ValidationError("--max-drop and --baseline go together") }
        if zeroShot.tasks != nil && minAcc == nil && maxDrop == nil { throw ValidationError("--tasks needs --min-acc or --max-drop with --baseline") }
        if (minAcc != nil || maxDrop != nil) && zeroShot.tasks == nil { throw ValidationError("--min-acc and --max-drop go with --tasks") }
    }

    struct Check {
        enum Status: String { case passed, failed, skipped }
        var name: String
        var status: Status
        var detail: String
    }

    public func run() throws {
        var checks: [Check] = []
        var malformed = false
        let expected: TensorHashes?
        do { expected = try hashes.map { try TensorHashes.read(path: $0) } } catch { throw report(error) }
        let key: ModelVerificationKey?
        do { key = try publicKey.map { try ModelVerificationKey(path: $0) } } catch { throw report(error) }
        let store: (any TensorStore)?
        do {
            store = try ModelSource.openStore(path)
        } catch {
            store = nil
            malformed = true
            checks.append(Check(name: "structure", status: .failed, detail: "\(error)"))
        }
        if let store {
            let problems = store.deepValidate()
            checks.append(problems.isEmpty
                ? Check(name: "structure", status: .passed, detail: "\(store.formatName): \(store.tensorInfos.count) tensors, every rule of the format holds")
                : Check(name: "structure", status: .failed, detail: problems.prefix(10).map { "\($0)" }.joined(separator: "; ")))
            checks.append(valueCheck(store))
            checks.append(configCheck(store))
            if let expected {
                checks.append(hashCheck(store, expected))
            } else {
                checks.append(Check(name: "hashes", status: .skipped, detail: "no --hashes list given"))
            }
            if let source, let manifest {
                do {
                    let o = try ManifestVerification.run(pruned: store, sourcePath: source, manifestPath: manifest, threads: threads)
                    checks.append(o.problems.isEmpty
                        ? Check(name: "manifest", status: .passed, detail: "all \(o.tensorsChecked) tensors are the source's with exactly the manifest's rows and columns removed"
                                + (o.recoveryMethod.map { "; \(o.recoveredTensors) changed by recovery (\($0)): shapes and finite values checked" } ?? "")
                                + (o.trainingMethods.isEmpty ? "" : "; \(o.trainedTensors) changed by training (\(o.trainingMethods.joined(separator: ", "))): shapes and finite values checked")
                                + "; source files and parameter counts match")
                        : Check(name: "manifest", status: .failed, detail: o.problems.prefix(20).joined(separator: "; ") + (o.problems.count > 20 ? "; … \(o.problems.count - 20) more" : "")))
                } catch {
                    malformed = true
                    checks.append(Check(name: "manifest", status: .failed, detail: "\(error)"))
                }
            } else {
                checks.append(Check(name: "manifest", status: .skipped, detail: "no --source and --manifest given"))
            }
            if zeroShot.tasks != nil {
                checks.append(zeroShotCheck())
            }
            if let pplText, let maxPPL {
                checks.append(perplexityCheck(text: pplText, bound: maxPPL))
            } else {
                checks.append(Check(name: "perplexity", status: .skipped, detail: "no --ppl-text and --max-ppl given"))
            }
        }
        if let signature, let key {
            do {
                let r = try ModelSignature.verify(model: path, signaturePath: signature, publicKey: key, threads: threads)
                checks.append(r.verified
                    ? Check(name: "signature", status: .passed, detail: "\(FileSystem.baseName(signature)) verifies with \(FileSystem.baseName(publicKey ?? "")); " + (r.filesChecked == 1 ? "the file matches it" : "all \(r.filesChecked) files match it"))
                    : Check(name: "signature", status: .failed, detail: r.problems.prefix(20).joined(separator: "; ") + (r.problems.count > 20 ? "; … \(r.problems.count - 20) more" : "")))
            } catch {
                malformed = true
                checks.append(Check(name: "signature", status: .failed, detail: "\(error)"))
            }
        } else {
            checks.append(Check(name: "signature", status: .skipped, detail: "no --signature and --public-key given"))
        }
        let ok = checks.allSatisfy { $0.status != .failed }
        if json {
            let list = checks.map { c in JSONValue.object(JSONObject([("name", .string(c.name)), ("status", .string(c.status.rawValue)), ("detail", .string(c.detail))])) }
            StandardOutput.write(JSONValue.object(JSONObject([("ok", .bool(ok)), ("checks", .array(list))])).serialized(style: .pretty) + "\n")
        } else {
            var out = ""
            for c in checks { out += Format.pad(c.status.rawValue.uppercased(), 8) + Format.pad(c.name, 11) + c.detail + "\n" }
            out += ok ? "verify: all checks passed\n" : "verify: FAILED\n"
            StandardOutput.write(out)
        }
        if malformed { throw ShearsExit.badInput }
        if !ok { throw ExitCode(1) }
    }

    func perplexityCheck(text: String, bound: Double) -> Check {
        do {
            let (model, tokenizer) = try EngineArguments.load(path: path, threads: threads)
            let ids = tokenizer.encode(bytes: try FileSystem.readFile(text, limit: 1 << 31), addSpecialTokens: false)
            let r = try Perplexity.evaluate(model, tokens: ids, seqLen: 128, maxWindows: 32, batchSize: 4) { _, _ in }
            let detail = "perplexity \(Format.fixed(r.perplexity, 2)) on \(FileSystem.baseName(text)) (\(r.tokens) predicted tokens), bound \(Format.fixed(bound, 2))"
            return Check(name: "perplexity", status: r.perplexity <= bound ? .passed : .failed, detail: detail)
        } catch {
            return Check(name: "perplexity", status: .failed, detail: "\(error)")
        }
    }

    func zeroShotCheck() -> Check {
        do {
            let base = try baseline.map { try ZeroShotBaseline(path: $0) }
            let (model, tokenizer) = try EngineArguments.load(path: path, threads: threads)
            guard let report = try zeroShot.run(model: model, tokenizer: tokenizer) else {
                return Check(name: "zero-shot", status: .skipped, detail: "no --tasks given")
            }
            var problems: [String] = []
            var parts = report.results.map { "\($0.task.name) \(Format.fixed($0.acc, 4))" }
            parts.append("average \(Format.fixed(report.averageAcc, 4))")
            if let minAcc, !(report.averageAcc >= minAcc) {
                problems.append("average acc \(Format.fixed(report.averageAcc, 4)) is below --min-acc \(Format.fixed(minAcc, 4))")
            }
            if let base, let maxDrop {
                for r in report.results {
                    guard let b = base.acc[r.task.name] else {
                        problems.append("\(r.task.name) is not in the baseline \(FileSystem.baseName(base.path))")
                        continue
                    }
                    if !(b - r.acc <= maxDrop) {
                        problems.append("\(r.task.name) acc \(Format.fixed(r.acc, 4)) is \(Format.fixed(b - r.acc, 4)) below the baseline's \(Format.fixed(b, 4)) (--max-drop \(Format.fixed(maxDrop, 4)))")
                    }
                }
            }
            let detail = "acc " + parts.joined(separator: ", ") + (report.splitNote.map { "; \($0)" } ?? "")
            return problems.isEmpty ? Check(name: "zero-shot", status: .passed, detail: detail)
                : Check(name: "zero-shot", status: .failed, detail: problems.joined(separator: "; ") + " (" + detail + ")")
        } catch {
            return Check(name: "zero-shot", status: .failed, detail: "\(error)")
        }
    }

    func valueCheck(_ store: any TensorStore) -> Check {
        var nonFinite: [String] = []
        var zero: [String] = []
        var errors: [String] = []
        for info in store.tensorInfos where info.dtype.isFloatingPoint && info.dtype.convertsToFloat32 && info.elementCount > 0 {
            do {
                let f = try store.floats(info.name)
                let bad = f.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
                if bad > 0 { nonFinite.append("\(info.name) (\(bad) of \(f.count))") }
                if info.shape.count >= 2 && f.allSatisfy({ $0 == 0 }) { zero.append(info.name) }
            } catch {
                errors.append("\(error)")
            }
        }
        if !errors.isEmpty { return Check(name: "values", status: .failed, detail: errors.joined(separator: "; ")) }
        if nonFinite.isEmpty && zero.isEmpty { return Check(name: "values", status: .passed, detail: "no NaN or infinity, no all-zero weight matrix") }
        var parts: [String] = []
        if !nonFinite.isEmpty { parts.append("NaN or infinity in " + nonFinite.joined(separator: ", ")) }
        if !zero.isEmpty { parts.append("all-zero weight matrices: " + zero.joined(separator: ", ")) }
        return Check(name: "values", status: .failed, detail: parts.joined(separator: "; "))
    }

    func configCheck(_ store: any TensorStore) -> Check {
        guard let configPath = store.configPath else { return Check(name: "config", status: .skipped, detail: "no config.json next to the checkpoint") }
        let config: ModelConfiguration
        do { config = try ModelConfiguration(path: configPath) } catch { return Check(name: "config", status: .failed, detail: "\(error)") }
        // A layer count the tensors cannot hold is refused before anything is built per layer.
        if let family = try? ModelFamilies.family(of: config) {
            do { try config.checkSizes(against: store.tensorInfos, naming: family.tensors, path: configPath, dimensions: false) } catch {
                return Check(name: "config", status: .failed, detail: "\(error)")
            }
        }
        let expected: [String: [Int]]
        do { expected = try ExpectedShapes.of(config) } catch {
            return Check(name: "config", status: .skipped, detail: "\(error)")
        }
        var problems: [String] = []
        for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let info = store.tensorInfo(named: name) else {
                problems.append("\(name) is missing")
                continue
            }
            if info.shape != shape { problems.append("\(name) has shape \(Format.shape(info.shape)), config.json implies \(Format.shape(shape))") }
        }
        let layers = config.numHiddenLayers ?? 0
        let naming = (try? ModelDescription(config))?.tensors
        for info in store.tensorInfos {
            if let i = naming?.layerIndex(of: info.name)?.layer, i >= layers { problems.append("\(info.name) is beyond num_hidden_layers \(layers)") }
        }
        if problems.isEmpty {
            return Check(name: "config", status: .passed, detail: "\(expected.count) tensor shapes agree with config.json (\(config.modelType ?? "?"), \(layers) layers)")
        }
        return Check(name: "config", status: .failed, detail: problems.prefix(20).joined(separator: "; "))
    }

    func hashCheck(_ store: any TensorStore, _ expected: TensorHashes) -> Check {
        let actual: TensorHashes
        do { actual = try TensorHashes.compute(store, threads: threads, files: false) } catch {
            return Check(name: "hashes", status: .failed, detail: "\(error)")
        }
        var problems: [String] = []
        for name in TensorHashes.sortedKeys(expected.tensors) {
            guard let a = actual.tensors[name] else { problems.append("\(name) is missing"); continue }
            let e = expected.tensors[name]!
            if a.sha256 != e.sha256 { problems.append("\(name) differs (sha256 \(a.sha256.prefix(16))…, list has \(e.sha256.prefix(16))…)") }
            else if a.dtype != e.dtype || a.shape != e.shape { problems.append("\(name) has \(a.dtype) \(a.shape), list has \(e.dtype) \(e.shape)") }
        }
        for name in TensorHashes.sortedKeys(actual.tensors) where expected.tensors[name] == nil { problems.append("\(name) is not in the list") }
        if problems.isEmpty { return Check(name: "hashes", status: .passed, detail: "all \(expected.tensors.count) tensors match the list") }
        return Check(name: "hashes", status: .failed, detail: problems.prefix(20).joined(separator: "; ") + (problems.count > 20 ? "; … \(problems.count - 20) more" : ""))
    }
}

/// Tensor shapes a config.json implies, through its family's description.
enum ExpectedShapes {
    static func of(_ c: ModelConfiguration) throws -> [String: [Int]] {
        let m = try ModelDescription(c)
        var refs = m.requiredTensors
        if m.attentionBias {
            for l in 0..<m.layerCount { refs += [TensorRole.query, .key, .value].map { TensorReference($0, .bias, layer: l) } }
        }
        var s: [String: [Int]] = [:]
        for r in refs { s[m.tensors.name(r)] = m.shape(of: r) }
        return FusedTensorView.storedShapes(s, naming: m.tensors)
    }
}

/// The per-task acc of an earlier `shears eval --tasks --json` output (the zero-shot object, or
/// the perplexity object holding it under "zero_shot").
struct ZeroShotBaseline {
    let path: String
    let acc: [String: Double]

    init(path: String) throws {
        self.path = path
        let v = try JSONValue.parse(try FileSystem.readFile(path, limit: 64 << 20))
        let report = v["zero_shot"] ?? v
        guard let tasks = report["tasks"]?.arrayValue else {
            throw CheckpointError(.invalidFormat, "not a `shears eval --tasks --json` output: no \"tasks\" list", path: path)
        }
        var acc: [String: Double] = [:]
        for t in tasks {
            guard let name = t["task"]?.stringValue, let a = t["acc"]?.doubleValue else {
                throw CheckpointError(.invalidFormat, "a task entry lacks \"task\" or \"acc\"", path: path)
            }
            acc[name] = a
        }
        self.acc = acc
    }
}
