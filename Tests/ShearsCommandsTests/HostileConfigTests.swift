#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Testing

/// Sizes from files are never trusted (issue 21): a `config.json` whose counts and dimensions the
/// tensors cannot hold is refused at once (exit 2), naming the key and the tensor, in bounded time
/// and memory. The models are in Fixtures/hostile (Tools/make-hostile-fixtures).
@Suite struct HostileConfigTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var folder: String
        /// Strings the error message must contain: the key, and the tensor when one is to blame.
        var mentions: [String]
        var testDescription: String { folder }
    }

    static let cases: [Case] = [
        Case(folder: "layers-1e9", mentions: ["num_hidden_layers is 1000000000", "'model.layers.0.input_layernorm.weight'"]),
        Case(folder: "layers-1e9-one-layer", mentions: ["num_hidden_layers is 1000000000", "'model.layers.1.input_layernorm.weight'"]),
        Case(folder: "hidden-1e12", mentions: ["hidden_size is 1000000000000", "'model.embed_tokens.weight' has shape [16, 8]"]),
        Case(folder: "heads-1e12", mentions: ["num_attention_heads is 1000000000000", "'model.layers.0.self_attn.q_proj.weight'"]),
        Case(folder: "head-dim-overflow", mentions: ["num_attention_heads is 1000000000000", "overflows", "'model.layers.0.self_attn.q_proj.weight'"]),
        Case(folder: "vocab-1e12", mentions: ["vocab_size is 1000000000000", "'model.embed_tokens.weight' has shape [16, 8]"]),
        Case(folder: "intermediate-1e12", mentions: ["intermediate_size is 1000000000000", "'model.layers.0.mlp.gate_proj.weight'"]),
        Case(folder: "per-layer-list-1e6", mentions: ["intermediate_size_per_layer has 1000000 entries", "num_hidden_layers 1"]),
        Case(folder: "per-layer-list-1e6-layers", mentions: ["num_hidden_layers is 1000000", "'model.layers.1.input_layernorm.weight'"]),
        Case(folder: "per-layer-config-1e12", mentions: ["per_layer_config[0].intermediate_size is 1000000000000", "tensor '"]),
    ]

    /// What one run of `shears` cost, measured on the child process by /usr/bin/time.
    struct Measured {
        var status: Int32
        var stderr: String
        var seconds: Double
        var peakKilobytes: Int
    }

    /// Runs `shears` under `/usr/bin/time` (peak RSS of the child itself, not an estimate), killed
    /// after 60 s so a regression fails instead of hanging the suite.
    static func measure(_ arguments: [String]) throws -> Measured {
        let dir = temporaryFolder("shears-hostile")
        defer { _ = system("rm -rf '\(dir)'") }
        func quote(_ s: String) -> String { "'" + s.replacing("'", with: "'\\''") + "'" }
        let command = "timeout -s KILL 60 /usr/bin/time -f '%e %M' -o \(dir)/time \(quote(CommandRunner.executable)) "
            + arguments.map(quote).joined(separator: " ") + " >\(dir)/out 2>\(dir)/err </dev/null"
        let raw = system(command)
        let status = (raw >> 8) & 0xFF
        let err = String(decoding: (try? FileSystem.readFile(dir + "/err")) ?? [], as: UTF8.self)
        let time = String(decoding: (try? FileSystem.readFile(dir + "/time")) ?? [], as: UTF8.self)
        // The last line holds "<seconds> <peak KB>" (earlier lines: "Command exited with non-zero status").
        let fields = time.split(separator: "\n").last?.split(separator: " ") ?? []
        guard fields.count == 2, let s = Double(fields[0]), let kb = Int(fields[1]) else {
            Issue.record("no measurement (status \(status)): \(time) \(err)")
            return Measured(status: status, stderr: err, seconds: .infinity, peakKilobytes: .max)
        }
        return Measured(status: status, stderr: err, seconds: s, peakKilobytes: kb)
    }

    static let timeAvailable = access("/usr/bin/time", X_OK) == 0

    @Test(.enabled(if: timeAvailable, "needs /usr/bin/time to measure the child's peak memory"), arguments: cases)
    func evalAndPruneRefuseAtOnce(_ c: Case) throws {
        let model = fixturesPath + "/hostile/" + c.folder
        let text = temporaryFolder("shears-hostile-text")
        defer { _ = system("rm -rf '\(text)'") }
        try AtomicFile.write(Array("A few words of text.".utf8), to: text + "/t.txt")
        for args in [["eval", model, "--text", text + "/t.txt"], ["prune", model, text + "/out"]] {
            let m = try Self.measure(args)
            #expect(m.status == 2, "\(args[0]) \(c.folder): status \(m.status): \(m.stderr)")
            for s in c.mentions { #expect(m.stderr.contains(s), "\(args[0]) \(c.folder): '\(s)' not in: \(m.stderr)") }
            #expect(m.stderr.contains("config.json"), "\(args[0]) \(c.folder): the file is not named: \(m.stderr)")
            // Debug build, shared machine: generous bounds, far below what trusting the sizes costs
            // (before the fix: killed after 20 s holding several GB, or a trap).
            #expect(m.seconds < 10, "\(args[0]) \(c.folder) took \(m.seconds) s")
            #expect(m.peakKilobytes < 400_000, "\(args[0]) \(c.folder) peaked at \(m.peakKilobytes) KB")
            #expect(FileSystem.kind(of: text + "/out") == nil, "prune left an output behind")
        }
    }

    @Test(.enabled(if: timeAvailable, "needs /usr/bin/time to measure the child's peak memory"), arguments: cases)
    func inspectStaysFastAndWarns(_ c: Case) throws {
        let m = try Self.measure(["inspect", fixturesPath + "/hostile/" + c.folder])
        #expect(m.status == 0, "\(c.folder): \(m.stderr)")
        // inspect shows what the file says, and warns as eval and prune would refuse it.
        #expect(m.stderr.hasPrefix("shears: warning: ") && m.stderr.contains("config.json"), "\(c.folder): \(m.stderr)")
        for s in c.mentions { #expect(m.stderr.contains(s), "inspect \(c.folder): '\(s)' not in: \(m.stderr)") }
        #expect(m.seconds < 10 && m.peakKilobytes < 400_000, "\(c.folder): \(m.seconds) s, \(m.peakKilobytes) KB")
    }
}
