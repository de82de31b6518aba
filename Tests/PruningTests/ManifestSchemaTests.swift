import CheckpointCore
import ModelArchitecture
import ShearsCommands
import ShearsJSON
import Testing
@testable import Pruning

/// Checks manifests against formats/pruning-manifest.schema.json with a small validator of the
/// keywords the schema uses (type, const, enum, required, properties, additionalProperties, items,
/// $ref, oneOf, minimum, pattern length).
@Suite(.serialized) struct ManifestSchemaTests {
    struct Validator {
        let root: JSONValue
        func check(_ v: JSONValue, _ schema: JSONValue, _ path: String, _ errors: inout [String]) {
            if let ref = schema["$ref"]?.stringValue {
                let name = String(ref.split(separator: "/").last!)
                return check(v, root["$defs"]![name]!, path, &errors)
            }
            if let options = schema["oneOf"]?.arrayValue {
                let ok = options.filter { var e: [String] = []; check(v, $0, path, &e); return e.isEmpty }.count
                if ok != 1 { errors.append("\(path): matches \(ok) of oneOf") }
                return
            }
            if let c = schema["const"], c != v { errors.append("\(path): \(v.serialized()) is not \(c.serialized())") }
            if let e = schema["enum"]?.arrayValue, !e.contains(v) { errors.append("\(path): \(v.serialized()) not in enum") }
            if let t = schema["type"] {
                let types = t.arrayValue?.compactMap(\.stringValue) ?? [t.stringValue!]
                let name: String = switch v {
                case .null: "null"
                case .bool: "boolean"
                case .int, .uint: "integer"
                case .double: "number"
                case .string: "string"
                case .array: "array"
                case .object: "object"
                }
                if !(types.contains(name) || (name == "integer" && types.contains("number"))) { errors.append("\(path): \(name) is not \(types)") }
            }
            if let m = schema["minimum"]?.doubleValue, let x = v.doubleValue, x < m { errors.append("\(path): below minimum") }
            if let s = v.stringValue, schema["pattern"] != nil, s.count != 64 { errors.append("\(path): not a SHA-256") }
            if case .object(let o) = v {
                for r in schema["required"]?.arrayValue ?? [] where o[r.stringValue!] == nil { errors.append("\(path): missing \(r.stringValue!)") }
                let props = schema["properties"]?.objectValue
                for (k, x) in o.members {
                    if let p = props?[k] { check(x, p, path + "." + k, &errors) }
                    else if schema["additionalProperties"] == .bool(false) { errors.append("\(path): unexpected \(k)") }
                    else if let ap = schema["additionalProperties"], ap.objectValue != nil { check(x, ap, path + "." + k, &errors) }
                }
            }
            if case .array(let a) = v, let items = schema["items"] {
                for (i, x) in a.enumerated() { check(x, items, "\(path)[\(i)]", &errors) }
            }
        }
    }

    @Test(arguments: [
        ["--importance", "l2", "--ratio", "0.5"],
        ["--importance", "random", "--gqa", "query", "--global-raw", "--round-to", "16", "--iterative-steps", "2"],
        ["--strategy", "channel", "--importance", "l1", "--dry-run"],
        ["--strategy", "layer", "--remove-layers", "1", "--importance", "l2", "--dtype", "f16"],
    ])
    func manifestsFollowTheSchema(_ args: [String]) throws {
        let schema = try JSONValue.parse(try FileSystem.readFile(repositoryRoot + "/formats/pruning-manifest.schema.json"))
        let out = temporaryFolder("schema-\(abs(args.joined().hashValue))")
        let c = try PruneCommand.parse([fixtures + "/safetensors/tiny-llama", out] + args)
        try c.run()
        let manifest = try JSONValue.parse(try FileSystem.readFile(out + "/pruning-manifest.json"))
        var errors: [String] = []
        Validator(root: schema).check(manifest, schema, "$", &errors)
        #expect(errors.isEmpty, "\(errors)")
        // A calibration record also validates.
        var m = PruningManifest(plan: PruningPlan(unpruned: try! ModelDescription.uniform(layers: 1, hiddenSize: 8, attentionHeads: 2, keyValueHeads: 1, headDim: 4,
                                                                       intermediateSize: 8, vocabSize: 4)),
                                settings: PruningSettings(), sourceFiles: [:], sourceConfig: .object(JSONObject()), resultFiles: [:],
                                calibration: CalibrationRecord(file: "a.txt", sha256: String(repeating: "0", count: 64), samples: 10, seqLen: 64, seed: 42, tokenCount: 1000))
        m.extraSettings = [("dtype", .null), ("shard_size", .int(1))]
        errors = []
        Validator(root: schema).check(m.json, schema, "$", &errors)
        #expect(errors.isEmpty, "\(errors)")
    }

    /// A pruned manifest carried over to a finetuned copy: `training` records appended, the
    /// result files replaced, everything else untouched, and the schema still holds.
    @Test func trainingRecordsFollowTheSchema() throws {
        let schema = try JSONValue.parse(try FileSystem.readFile(repositoryRoot + "/formats/pruning-manifest.schema.json"))
        let out = temporaryFolder("schema-training")
        try PruneCommand.parse([fixtures + "/safetensors/tiny-llama", out, "--importance", "l2", "--ratio", "0.5"]).run()
        let path = out + "/" + PruningManifest.fileName
        let original = try JSONValue.parse(try FileSystem.readFile(path))
        let sha = String(repeating: "ab", count: 32)
        let ce = TrainingRecord(
            method: "lora",
            data: [TrainingRecord.DataFile(file: "alpaca.jsonl", sha256: sha, format: "jsonl-alpaca", examples: 6, tokens: 550)],
            settings: TrainingRecord.Settings(rank: 8, alpha: 16, dropout: 0.05, targets: ["q_proj", "k_proj"], learningRate: 1e-4, steps: 10,
                                              epochs: nil, batchSize: 64, microBatchSize: 4, seqLen: 256, warmupSteps: 100, weightDecay: 0,
                                              maxGradNorm: 1, seed: 42, loss: "ce"),
            steps: 10, tokens: 163_840, trainedTokens: 160_000, finalLoss: 3.25,
            changedTensors: ["model.layers.1.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight"])
        var distill = ce
        distill.settings.loss = "distill"
        distill.settings.teacher = TrainingRecord.Teacher(model: "tiny-llama", files: ["model.safetensors": sha])
        distill.settings.temperature = 2
        distill.settings.ceWeight = 0.5
        distill.settings.steps = nil
        distill.settings.epochs = 2
        distill.finalLoss = .nan
        let files = ["model.safetensors": sha, "config.json": sha]
        let once = try PruningManifest.appendingTraining(ce, to: original, resultFiles: files)
        try AtomicFile.write(PruningManifest.bytes(of: once), to: path)
        let twice = try JSONValue.parse(PruningManifest.carryOver(manifestAt: path, appending: distill, resultFiles: files))
        for m in [once, twice] {
            var errors: [String] = []
            Validator(root: schema).check(m, schema, "$", &errors)
            #expect(errors.isEmpty, "\(errors)")
        }
        let records = twice["training"]!.arrayValue!
        // As written and read back (a whole number written as a double reads back as an integer).
        func reread(_ v: JSONValue) throws -> JSONValue { try JSONValue.parse(PruningManifest.bytes(of: v)) }
        #expect(try records.count == 2 && records[0] == reread(ce.json) && records[1] == reread(distill.json))
        #expect(records[0]["changed_tensors"] == .array([.string("model.layers.0.self_attn.q_proj.weight"), .string("model.layers.1.self_attn.q_proj.weight")]))
        #expect(records[1]["final_loss"] == .null && records[1]["settings"]!["teacher"]!["files"]!["model.safetensors"] == .string(sha))
        #expect(twice["result"]!["files"] == .object(JSONObject([("config.json", .string(sha)), ("model.safetensors", .string(sha))])))
        // Everything but `training` and `result.files` is the pruning run's.
        func strip(_ v: JSONValue) -> JSONValue {
            var o = v.objectValue!
            o["training"] = nil
            var r = o["result"]!.objectValue!
            r["files"] = nil
            o["result"] = .object(r)
            return .object(o)
        }
        #expect(strip(twice) == strip(original))
        // A record that breaks the schema is caught by it.
        var bad = ce
        bad.settings.loss = "mse"
        var errors: [String] = []
        Validator(root: schema).check(try PruningManifest.appendingTraining(bad, to: original, resultFiles: [:]), schema, "$", &errors)
        #expect(errors.contains { $0.contains("loss") })
        #expect(throws: CheckpointError.self) { _ = try PruningManifest.appendingTraining(ce, to: .object(JSONObject()), resultFiles: [:]) }
    }

    @Test func calibrationWindowsAreSeededAndFresh() throws {
        let docs: [[Int32]] = [Array(0..<100), Array(1000..<1010), Array(500..<700)]
        var a = try CalibrationSampler(documents: docs, samples: 4, seqLen: 16, seed: 42)
        var b = try CalibrationSampler(documents: docs, samples: 4, seqLen: 16, seed: 42)
        let a1 = a.batch(step: 1), b1 = b.batch(step: 1)
        #expect(a1 == b1 && a1.count == 4 && a1.allSatisfy { $0.count == 16 })
        #expect(a1.allSatisfy { w in zip(w, w.dropFirst()).allSatisfy { $1 == $0 + 1 } && w[0] < 1000 || w[0] >= 500 })
        #expect(a.batch(step: 2) != a1)
        var ready = try CalibrationSampler(documents: [[1, 2], [3, 4], [5, 6]], samples: 2, seqLen: 2, seed: 1)
        #expect(ready.batch(step: 1) == [[1, 2], [3, 4]] && ready.batch(step: 2) == [[5, 6], [1, 2]])
        #expect(throws: CheckpointError.self) { _ = try CalibrationSampler(documents: [[1, 2]], samples: 1, seqLen: 3, seed: 1) }
    }
}
