import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsJSON
@testable import ShearsCommands

/// `verify --source --manifest`: a pruned model is the source with exactly the manifest's
/// structures removed; any other change is caught with the tensor named.
@Suite(.serialized) struct ManifestVerifyTests {
    static let source = fixturesPath + "/safetensors/tiny-llama"

    func pruned() throws -> String {
        let dir = "/tmp/shears-audit-\(UInt32.random(in: 0...UInt32.max))"
        let r = CommandRunner.run(["prune", Self.source, dir, "--importance", "l2", "--ratio", "0.5"])
        #expect(r.status == 0, "\(r.stderr)")
        return dir
    }

    func verify(_ dir: String, manifest: String? = nil) throws -> (Int32, JSONValue) {
        let r = CommandRunner.run(["verify", "--json", dir, "--source", Self.source, "--manifest", manifest ?? dir + "/pruning-manifest.json"])
        let check = try JSONValue.parse(r.stdout)["checks"]!.arrayValue!.first { $0["name"] == .string("manifest") }!
        return (r.status, check)
    }

    func edit(_ file: String, tensor: String, _ change: (inout [Float]) -> Void) throws {
        let f = try SafetensorsFile(path: file)
        let t = f.info(named: tensor)!
        var values = try f.tensor(named: tensor).floats()
        change(&values)
        let fd = open(file, O_RDWR)
        _ = values.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(f.header.dataStart + t.dataOffsets.lowerBound)) }
        close(fd)
    }

    @Test func correctPruningPasses() throws {
        let dir = try pruned()
        defer { removeFolder(dir) }
        let (status, check) = try verify(dir)
        #expect(status == 0 && check["status"] == .string("passed"))
    }

    @Test func swappedRowsAreCaught() throws {
        let dir = try pruned()
        defer { removeFolder(dir) }
        let name = "model.layers.1.mlp.gate_proj.weight"
        try edit(dir + "/model.safetensors", tensor: name) { v in
            for j in 0..<64 { v.swapAt(j, 64 + j) }  // rows 0 and 1
        }
        let (status, check) = try verify(dir)
        #expect(status == 1 && check["status"] == .string("failed") && check["detail"]!.stringValue!.contains(name))
    }

    @Test func rescaledTensorIsCaught() throws {
        let dir = try pruned()
        defer { removeFolder(dir) }
        let name = "model.layers.0.self_attn.o_proj.weight"
        try edit(dir + "/model.safetensors", tensor: name) { v in for i in v.indices { v[i] *= 1.0001 } }
        let (status, check) = try verify(dir)
        #expect(status == 1 && check["detail"]!.stringValue!.contains(name))
    }

    @Test func oneRowMoreOrLessIsCaught() throws {
        let dir = try pruned()
        defer { removeFolder(dir) }
        // A manifest that claims one more kept channel than the file holds.
        var m = try JSONValue.parse(FileSystem.readFile(dir + "/pruning-manifest.json")).objectValue!
        var layers = m["layers"]!.arrayValue!
        var l1 = layers[1].objectValue!, mlp = l1["mlp"]!.objectValue!
        var kept = mlp["kept_channels"]!.arrayValue!.compactMap(\.intValue)
        let removed = mlp["removed_channels"]!.arrayValue!.compactMap(\.intValue)
        kept = (kept + [removed[0]]).sorted()
        mlp["kept_channels"] = .array(kept.map { .int(Int64($0)) })
        l1["mlp"] = .object(mlp)
        layers[1] = .object(l1)
        m["layers"] = .array(layers)
        try AtomicFile.write(JSONValue.object(m).serializedBytes(), to: dir + "/edited-manifest.json")
        let (status, check) = try verify(dir, manifest: dir + "/edited-manifest.json")
        #expect(status == 1 && check["detail"]!.stringValue!.contains("model.layers.1.mlp.down_proj.weight"))
    }

    /// A finetuned copy (formats/manifest.md "training"): tensors a training record lists as
    /// changed may differ (reported, shape-checked); any other change still fails with exit 1.
    @Test func trainingChangedTensorsAreAccepted() throws {
        let dir = try pruned()
        defer { removeFolder(dir) }
        let listed = ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"]
        var m = try JSONValue.parse(FileSystem.readFile(dir + "/pruning-manifest.json")).objectValue!
        m["training"] = .array([.object(JSONObject([("method", .string("lora")), ("changed_tensors", .array(listed.map(JSONValue.string)))]))])
        try AtomicFile.write(JSONValue.object(m).serializedBytes(), to: dir + "/trained-manifest.json")
        for name in listed { try edit(dir + "/model.safetensors", tensor: name) { v in for i in v.indices { v[i] += 0.01 } } }
        var (status, check) = try verify(dir, manifest: dir + "/trained-manifest.json")
        #expect(status == 0 && check["status"] == .string("passed"), "\(check)")
        #expect(check["detail"]!.stringValue!.contains("2 changed by training (lora)"), "\(check)")
        // Without the training record the same model fails, naming both tensors.
        (status, check) = try verify(dir)
        #expect(status == 1 && listed.allSatisfy { check["detail"]!.stringValue!.contains($0) })
        // A tensor the record does not list is still checked bit for bit.
        let unlisted = "model.layers.0.self_attn.k_proj.weight"
        try edit(dir + "/model.safetensors", tensor: unlisted) { v in v[3] += 0.01 }
        (status, check) = try verify(dir, manifest: dir + "/trained-manifest.json")
        #expect(status == 1 && check["detail"]!.stringValue!.contains(unlisted))
        #expect(!listed.contains { check["detail"]!.stringValue!.contains($0) })
    }

    @Test func manifestCannotPointOutsideTheSource() throws {
        let dir = try pruned()
        defer { removeFolder(dir) }
        var m = try JSONValue.parse(FileSystem.readFile(dir + "/pruning-manifest.json")).objectValue!
        var source = m["source"]!.objectValue!
        source["files"] = .object(JSONObject([("../../etc/hostname", .string(String(repeating: "0", count: 64)))]))
        m["source"] = .object(source)
        try AtomicFile.write(JSONValue.object(m).serializedBytes(), to: dir + "/edited-manifest.json")
        let (status, check) = try verify(dir, manifest: dir + "/edited-manifest.json")
        #expect(status == 1 && check["detail"]!.stringValue!.contains("not a file of the source folder"))
    }

    /// A GGUF with no architecture cannot be read as a Hugging Face checkpoint: a clear error, exit 2.
    /// The engine's commands and prune, which read GGUF in place, say the same.
    @Test func ggufInputWithoutArchitectureIsRefusedClearly() throws {
        let dir = "/tmp/shears-audit-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.createDirectory(dir)
        defer { removeFolder(dir) }
        try AtomicFile.write(Array("GGUF".utf8) + [3, 0, 0, 0] + [UInt8](repeating: 0, count: 16), to: dir + "/m.gguf")
        let r = CommandRunner.run(["hash", dir + "/m.gguf"])
        #expect(r.status == 2 && r.stderr.contains("m.gguf") && r.stderr.contains("general.architecture is missing"))
        // eval and prune read GGUF in place, so they get the reader's complaint.
        let e = CommandRunner.run(["eval", dir + "/m.gguf", "--text", dir + "/m.gguf"])
        #expect(e.status == 2 && e.stderr.contains("m.gguf") && e.stderr.contains("general.architecture is missing"), "\(e.stderr)")
        let p = CommandRunner.run(["prune", dir + "/m.gguf", dir + "/out"])
        #expect(p.status == 2 && p.stderr.contains("m.gguf") && p.stderr.contains("general.architecture is missing"), "\(p.stderr)")
    }

    @Test func diffWithManifestShowsIdentity() throws {
        let dir = try pruned()
        defer { removeFolder(dir) }
        var r = CommandRunner.run(["diff", "--json", Self.source, dir, "--manifest", dir + "/pruning-manifest.json"])
        var j = try JSONValue.parse(r.stdout)
        #expect(r.status == 0 && j["equal"] == .bool(true))
        #expect(j["tensors"]!.arrayValue!.allSatisfy { $0["identical_bytes"] == .bool(true) })
        let name = "model.layers.1.self_attn.q_proj.weight"
        try edit(dir + "/model.safetensors", tensor: name) { v in v[5] += 0.5 }
        r = CommandRunner.run(["diff", "--json", Self.source, dir, "--manifest", dir + "/pruning-manifest.json"])
        j = try JSONValue.parse(r.stdout)
        #expect(r.status == 1)
        let t = j["tensors"]!.arrayValue!.first { $0["name"] == .string(name) }!
        #expect(t["beyond_tolerance"] == .int(1) && t["max_abs_diff"]!.doubleValue! > 0.49)
    }

    @Test func perplexitySmokeTest() throws {
        let model = fixturesPath + "/models/austen-llama"
        let text = fixturesPath + "/text/austen-evaluation/persuasion-head.txt"
        let ok = CommandRunner.run(["verify", "--json", model, "--ppl-text", text, "--max-ppl", "1000"])
        #expect(ok.status == 0, "\(ok.stdout)")
        let bad = CommandRunner.run(["verify", "--json", model, "--ppl-text", text, "--max-ppl", "10"])
        #expect(bad.status == 1)
        let check = try JSONValue.parse(bad.stdout)["checks"]!.arrayValue!.first { $0["name"] == .string("perplexity") }!
        #expect(check["status"] == .string("failed") && check["detail"]!.stringValue!.contains("bound 10.00"))
    }
}
