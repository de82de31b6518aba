import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import ShearsJSON

/// `shears eval --tasks` and `shears verify --tasks` on the committed excerpts (Fixtures/zero-shot)
/// and the bundled model; the expected accuracies are lm-eval 0.4.13's in goldens.json.
@Suite struct ZeroShotCommandTests {
    static let model = fixturesPath + "/models/austen-llama"
    static let data = fixturesPath + "/zero-shot"

    func golden(_ task: String, _ key: String) throws -> Double? {
        let g = try JSONValue.parse(try FileSystem.readFile(Self.data + "/goldens.json"))
        return g["tasks"]?[task]?[key]?.doubleValue
    }

    @Test func evalPrintsLMEvalsMetricsWithPerplexityInOneRun() throws {
        let dir = temporaryFolder("shears-zs")
        defer { _ = system("rm -rf '\(dir)'") }
        let r = CommandRunner.run(["eval", Self.model, "--tasks", "boolq,piqa,winogrande", "--task-data", Self.data,
                                   "--text", fixturesPath + "/text/austen-evaluation/persuasion.txt", "--max-windows", "2",
                                   "--json", "--samples-out", dir + "/items.jsonl", "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try JSONValue.parse(r.stdout)
        #expect(o["windows"]?.intValue == 2 && o["perplexity"]?.doubleValue != nil)
        let tasks = try #require(o["zero_shot"]?["tasks"]?.arrayValue)
        #expect(tasks.map { $0["task"]?.stringValue } == ["boolq", "piqa", "winogrande"])
        for t in tasks {
            let name = t["task"]!.stringValue!
            #expect(t["acc"]?.doubleValue == (try golden(name, "acc")), "\(name)")
            #expect(t["acc_norm"]?.doubleValue == (try golden(name, "acc_norm")), "\(name)")
            #expect(t["sha256"]?.stringValue == (try ShearsPipelineSHA.of(Self.data + "/\(name).jsonl")))
        }
        let lines = try FileSystem.readFile(dir + "/items.jsonl").split(separator: 0x0A)
        #expect(lines.count == 4 + 3 + 3)
        let first = try JSONValue.parse(Array(lines[0]))
        #expect(first["loglikelihoods"]?.arrayValue?.count == 2 && first["gold"]?.intValue != nil)

        let table = CommandRunner.run(["eval", Self.model, "--tasks", "all", "--task-data", Self.data, "--limit", "2", "--threads", "2"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("|arc_challenge|") && table.stdout.contains("|acc_norm|"))
        #expect(table.stdout.contains("arc_easy, arc_challenge, openbookqa use validation splits"))
        #expect(table.stdout.contains("(2 of 5 rows)"))
    }

    @Test func verifyGatesOnAccuracy() throws {
        let dir = temporaryFolder("shears-zs-verify")
        defer { _ = system("rm -rf '\(dir)'") }
        let common = ["verify", Self.model, "--tasks", "boolq,winogrande", "--task-data", Self.data, "--threads", "2"]
        let pass = CommandRunner.run(common + ["--min-acc", "0.5"])
        #expect(pass.status == 0 && pass.stdout.contains("PASSED  zero-shot"), "\(pass.stdout)\(pass.stderr)")
        let fail = CommandRunner.run(common + ["--min-acc", "0.9"])
        #expect(fail.status == 1 && fail.stdout.contains("below --min-acc"), "\(fail.stdout)")
        // A baseline 0.3 above the model's boolq acc (0.5): boolq fails --max-drop 0.1, winogrande passes.
        try AtomicFile.write(Array(#"{"tasks":[{"task":"boolq","acc":0.8},{"task":"winogrande","acc":0.6}]}"#.utf8), to: dir + "/base.json")
        let drop = CommandRunner.run(common + ["--max-drop", "0.1", "--baseline", dir + "/base.json"])
        #expect(drop.status == 1 && drop.stdout.contains("boolq acc 0.5000 is 0.3000 below") && !drop.stdout.contains("winogrande acc 0.6667 is"), "\(drop.stdout)")
        let usage = CommandRunner.run(common)
        #expect(usage.status == 64)
        let unknown = CommandRunner.run(["eval", Self.model, "--tasks", "mmlu"])
        #expect(unknown.status == 64 && unknown.stderr.contains("unknown task 'mmlu'"))
        let missing = CommandRunner.run(["eval", Self.model, "--tasks", "piqa", "--task-data", "/nonexistent"])
        #expect(missing.status == 2 && missing.stderr.contains("Tools/fetch-tasks"))
    }
}

import Crypto

enum ShearsPipelineSHA {
    static func of(_ path: String) throws -> String {
        let digest = SHA256.hash(data: try FileSystem.readFile(path))
        let digits = Array("0123456789abcdef")
        return String(digest.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}
