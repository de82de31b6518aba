import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import ShearsJSON
import CheckpointCore
@testable import ShearsCommands

@Suite struct InspectCommandTests {
    static let model = fixturesPath + "/safetensors/tiny-llama"

    @Test func jsonHasTheDocumentedKeysAndValues() throws {
        let r = CommandRunner.run(["inspect", "--json", Self.model])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONValue.parse(r.stdout)
        #expect(j["format"] == .string("safetensors-sharded"))
        #expect(j["files"]?.arrayValue?.count == 3)
        #expect(j["tensor_count"] == .int(21))
        #expect(j["parameter_count"] == .int(106_816))
        #expect(j["dtypes"]?["F32"]?["tensors"] == .int(21))
        #expect(j["dtypes"]?["F32"]?["parameters"] == .int(106_816))
        #expect(j["dtypes"]?["F32"]?["bytes"] == .int(427_264))
        #expect(j["metadata"]?["format"] == .string("pt"))
        #expect(j["config"]?["num_key_value_heads"] == .int(2))
        #expect(j["config"]?["head_dim"] == .int(16))
        let tensors = try #require(j["tensors"]?.arrayValue)
        #expect(tensors.count == 21)
        let emb = try #require(tensors.first { $0["name"] == .string("model.embed_tokens.weight") })
        #expect(emb["dtype"] == .string("F32") && emb["shape"] == .array([.int(256), .int(64)]) && emb["bytes"] == .int(65_536))
        #expect(emb["file"] == .string("model-00001-of-00003.safetensors"))
    }

    @Test func humanOutputNamesTheEssentials() {
        let r = CommandRunner.run(["inspect", "--tensors", Self.model])
        #expect(r.status == 0)
        for text in ["safetensors, sharded", "106,816", "F32", "format = pt", "llama (LlamaForCausalLM)", "4 query, 2 key/value, head dim 16",
                     "model.layers.1.mlp.down_proj.weight", "[64, 128]"] {
            #expect(r.stdout.contains(text), "missing \(text)")
        }
    }

    @Test func everyFixtureFileInspects() throws {
        for name in ["dtypes", "small", "names", "empty", "metadata-only", "conversions"] {
            let r = CommandRunner.run(["inspect", "--json", fixturesPath + "/safetensors/\(name).safetensors"])
            #expect(r.status == 0, "\(name): \(r.stderr)")
            #expect(try JSONValue.parse(r.stdout)["config"] == .null)
        }
    }

    @Test func malformedInputExitsTwoWithTheFileNamed() throws {
        let dir = "/tmp/shears-inspect-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.createDirectory(dir)
        defer { _ = CommandRunner.run(["--version"]); removeFolder(dir) }
        let bad = dir + "/bad.safetensors"
        try AtomicFile.write(Array("\u{8}\0\0\0\0\0\0\0{\"a\":1}".utf8), to: bad)
        let r = CommandRunner.run(["inspect", bad])
        #expect(r.status == 2)
        #expect(r.stderr.contains(bad) && r.stderr.contains("error"))
        #expect(r.stdout.isEmpty)
        let missing = CommandRunner.run(["inspect", dir + "/nope.safetensors"])
        #expect(missing.status == 2 && missing.stderr.contains("no such file"))
        let usage = CommandRunner.run(["inspect"])
        #expect(usage.status == 64)
    }
}

@Suite struct ConvertCommandTests {
    @Test func mergesShardsIntoTransformersBytes() throws {
        let dir = "/tmp/shears-convert-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.createDirectory(dir)
        defer { removeFolder(dir) }
        let out = dir + "/model.safetensors"
        let r = CommandRunner.run(["convert", InspectCommandTests.model, out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileSystem.readFile(out) == FileSystem.readFile(fixturesPath + "/safetensors/tiny-llama-single/model.safetensors"))
        let again = CommandRunner.run(["convert", InspectCommandTests.model, out])
        #expect(again.status == 2 && again.stderr.contains("--force"))
    }

    @Test func parsesSizes() {
        #expect(ByteSize.parse("5GB") == 5_000_000_000)
        #expect(ByteSize.parse("2GiB") == 2 << 30)
        #expect(ByteSize.parse("150KB") == 150_000)
        #expect(ByteSize.parse("1000") == 1000)
        #expect(ByteSize.parse("x") == nil && ByteSize.parse("-1GB") == nil)
    }
}

@Suite struct DoctorCommandTests {
    /// With OPENBLAS_CORETYPE unset, the executable picks an AVX-512 or AVX2 kernel family where the
    /// CPU has one (re-executing itself if OpenBLAS's own choice is older), and sgemm stays correct.
    @Test func choosesKernelsAndSgemmIsCorrect() throws {
        let r = CommandRunner.run(["doctor", "--json", "--size", "256"], unset: ["OPENBLAS_CORETYPE", "SHEARS_NO_REEXEC"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONValue.parse(r.stdout)
        #expect(j["sgemm_ok"] == .bool(true))
        let core = j["core"]!.stringValue!
        let flags = OpenBLASFlags.current
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) {
            #expect(["SkylakeX", "Cooperlake", "SapphireRapids"].contains(core), "core \(core)")
        }
    }

    /// A value the user set is never overridden.
    @Test func keepsTheUsersCoreType() throws {
        let r = CommandRunner.run(["doctor", "--json", "--size", "64"], environment: ["OPENBLAS_CORETYPE": "Haswell"])
        let j = try JSONValue.parse(r.stdout)
        #expect(j["core"] == .string("Haswell") && j["openblas_coretype"] == .string("Haswell") && j["sgemm_ok"] == .bool(true))
    }
}

func removeFolder(_ path: String) {
    guard path.hasPrefix("/tmp/shears-") else { return }
    for name in (try? FileSystem.contents(of: path)) ?? [] { _ = unlink(path + "/" + name) }
    _ = rmdir(path)
}
