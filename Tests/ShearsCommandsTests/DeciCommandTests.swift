import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import GGUF
import ModelArchitecture
import ShearsJSON

/// `prune MODEL OUT.gguf`, `convert` of a pruned folder to deci and back, `inspect` of a deci file.
@Suite(.serialized) struct DeciCommandTests {
    static let source = fixturesPath + "/safetensors/tiny-llama"

    static func tempDir() -> String {
        temporaryFolder("shears-deci-test")
    }

    /// Uneven widths: attention and MLP pruned in layer 1 only.
    static let pruneArgs = ["--importance", "l2", "--ratio", "0.5", "--attention-layers", "1:2", "--mlp-layers", "1:2"]

    @Test func pruneStraightIntoGGUF() throws {
        let dir = Self.tempDir()
        defer { _ = system("rm -rf '\(dir)'") }
        let r = CommandRunner.run(["prune", Self.source, dir + "/p.gguf"] + Self.pruneArgs)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("GGUF: \(dir)/p.gguf (deci"))
        let g = try GGUFFile(path: dir + "/p.gguf")
        #expect(g.architecture == "deci" && g["deci.block_count"]?.intValue == 2)
        #expect(FileSystem.isFile(dir + "/p.pruning-manifest.json"))
        // Only the file and its manifest remain: the staging folder is gone.
        #expect(try FileSystem.contents(of: dir).sorted() == ["p.gguf", "p.pruning-manifest.json"])
        // The manifest's result names the GGUF file and its SHA-256 (as `sha256sum` prints it).
        let manifest = try JSONValue.parse(FileSystem.readFile(dir + "/p.pruning-manifest.json", limit: 1 << 20))
        let files = manifest["result"]?["files"]?.objectValue
        #expect(files?.keys == ["p.gguf"])
        let pipe = popen("sha256sum '\(dir)/p.gguf'", "r")!
        var line = [CChar](repeating: 0, count: 256)
        _ = fgets(&line, 256, pipe)
        pclose(pipe)
        #expect(files?["p.gguf"]?.stringValue == String(String(cString: line).prefix(64)))
        #expect(manifest["result"]?["parameters"]?.intValue != nil && manifest["source"]?["files"]?.objectValue?.isEmpty == false)
        // The same tensors as prune into a folder + convert.
        #expect(CommandRunner.run(["prune", Self.source, dir + "/folder"] + Self.pruneArgs).status == 0)
        #expect(CommandRunner.run(["convert", "--quiet", dir + "/folder", dir + "/c.gguf"]).status == 0)
        let c = try GGUFFile(path: dir + "/c.gguf")
        #expect(g.tensors.map(\.name) == c.tensors.map(\.name))
        for t in g.tensors { #expect(try g.floats(named: t.name) == c.floats(named: t.name), "\(t.name)") }
        // The GGUF itself verifies against its manifest (read as its Hugging Face tensors: renamed,
        // Q/K un-permuted), and equals the folder pruned with the same options tensor for tensor.
        let v = CommandRunner.run(["verify", dir + "/p.gguf", "--source", Self.source, "--manifest", dir + "/p.pruning-manifest.json"])
        #expect(v.status == 0 && v.stdout.contains("PASSED  manifest"), "\(v.stdout)\(v.stderr)")
        let d = CommandRunner.run(["diff", dir + "/p.gguf", dir + "/folder"])
        #expect(d.status == 0 && d.stdout.contains("0 different; equal"), "\(d.stdout)\(d.stderr)")
        // An existing OUT needs --force.
        let again = CommandRunner.run(["prune", Self.source, dir + "/p.gguf"] + Self.pruneArgs)
        #expect(again.status == 2 && again.stderr.contains("--force"))
    }

    @Test func convertDeciRoundTripAndInspect() throws {
        let dir = Self.tempDir()
        defer { _ = system("rm -rf '\(dir)'") }
        #expect(CommandRunner.run(["prune", Self.source, dir + "/folder"] + Self.pruneArgs).status == 0)
        let w = CommandRunner.run(["convert", dir + "/folder", dir + "/m.gguf"])
        #expect(w.status == 0 && w.stderr.contains("deci architecture"), "\(w.stderr)")
        let i = CommandRunner.run(["inspect", dir + "/m.gguf"])
        #expect(i.status == 0 && i.stdout.contains("per layer:"))
        let j = try JSONValue.parse(CommandRunner.run(["inspect", "--json", dir + "/m.gguf"]).stdout)
        let cfg = try ModelConfiguration(path: dir + "/folder/config.json")
        let sizes = try cfg.layerSizes()
        #expect(j["config"]?["intermediate_size_per_layer"] == .array(sizes.map { .int(Int64($0.intermediateSize)) }))
        #expect(j["config"]?["num_attention_heads_per_layer"] == .array(sizes.map { .int(Int64($0.numAttentionHeads)) }))
        // Back to a folder: per-layer config, the modeling file, identical tensors.
        #expect(CommandRunner.run(["convert", "--quiet", dir + "/m.gguf", dir + "/back"]).status == 0)
        #expect(FileSystem.isFile(dir + "/back/modeling_shears_llama.py"))
        #expect(try ModelConfiguration(path: dir + "/back/config.json").layerSizes() == sizes)
        let a = try Checkpoint.open(dir + "/folder"), b = try Checkpoint.open(dir + "/back")
        #expect(Set(a.tensorNames) == Set(b.tensorNames))
        for n in a.tensorNames { #expect(try a.tensor(named: n).bytes() == b.tensor(named: n).bytes(), "\(n)") }
    }
}
