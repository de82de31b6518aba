import ArgumentParser
import CheckpointCore
import Engine
import ShearsPipeline
import Tokenizers
#if canImport(Glibc)
import Glibc
#endif

/// `--tasks`, `--task-data`, `--limit`, `--tokens-per-batch`: the zero-shot options of `eval` and
/// `verify`.
struct ZeroShotArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Zero-shot tasks, comma-separated, or all: \(ZeroShotTask.allCases.map(\.name).joined(separator: ", ")) (lm-eval 0.4 definitions).",
                               valueName: "list"))
    var tasks: String?

    @Option(name: .customLong("task-data"), help: "The folder Tools/fetch-tasks printed (default: $SHEARS_CACHE/tasks or ~/.cache/shears/tasks).", completion: .directory)
    var taskData: String?

    @Option(help: "Score only the first N items of each task.")
    var limit: Int?

    @Option(name: .customLong("tokens-per-batch"), help: "Tokens run through the model together (items are batched up to this).")
    var tokensPerBatch = 4096

    func validate() throws {
        if let tasks {
            do { _ = try ZeroShotTask.parseList(tasks) } catch { throw ValidationError(error.message) }
        }
        if let l = limit, l < 1 { throw ValidationError("--limit must be at least 1") }
        guard tokensPerBatch >= 1 else { throw ValidationError("--tokens-per-batch must be at least 1") }
    }

    var selected: [ZeroShotTask]? { tasks.flatMap { try? ZeroShotTask.parseList($0) } }

    var folder: String {
        if let taskData { return taskData }
        func env(_ k: String) -> String? { getenv(k).map { String(cString: $0) } }
        if let c = env("SHEARS_CACHE"), !c.isEmpty { return c + "/tasks" }
        return (env("HOME") ?? ".") + "/.cache/shears/tasks"
    }

    /// Scores the selected tasks with `model`, progress on standard error.
    func run(model: LlamaModel, tokenizer: Tokenizer) throws -> ZeroShotReport? {
        guard let list = selected else { return nil }
        let scorer = ZeroShotScorer(model: model, tokenizer: tokenizer, tokensPerBatch: tokensPerBatch)
        var progress: Progress? = nil
        var current: ZeroShotTask? = nil
        let report = try ZeroShotEvaluation(tasks: list, dataFolder: folder, limit: limit).run(scorer) { task, done, total in
            if current != task {
                progress?.finish()
                progress = Progress(totalItems: total, label: "eval: \(task.name)")
                current = task
            }
            progress?.update(done)
        }
        progress?.finish()
        return report
    }
}

/// lm-eval's results table (`make_table`), with the item count, the split, the averages and the
/// data files' SHA-256.
enum ZeroShotTable {
    static func render(_ r: ZeroShotReport) -> String {
        var rows: [[String]] = [["Tasks", "Version", "Split", "n", "Metric", "", "Value", "", "Stderr"]]
        for t in r.results {
            rows.append([t.task.name, t.task.version, t.task.split, "\(t.n)", "acc", "↑", Format.fixed(t.acc, 4), "±", Format.fixed(t.accStderr, 4)])
            if let a = t.accNorm, let s = t.accNormStderr {
                rows.append(["", "", "", "", "acc_norm", "↑", Format.fixed(a, 4), "±", Format.fixed(s, 4)])
            }
        }
        let right: Set<Int> = [1, 3, 6, 8]
        var widths = [5, 7, 10, 5, 8, 3, 6, 3, 6]
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ row: [String]) -> String {
            "|" + row.enumerated().map { Format.pad($1, widths[$0], right: right.contains($0)) }.joined(separator: "|") + "|\n"
        }
        var out = line(rows[0])
        out += "|" + widths.enumerated().map { String(repeating: "-", count: max(1, $1 - (right.contains($0) ? 1 : 0))) + (right.contains($0) ? ":" : "") }.joined(separator: "|") + "|\n"
        for row in rows.dropFirst() { out += line(row) }
        out += "\naverage acc \(Format.fixed(r.averageAcc, 4)); average of acc_norm (acc where not reported) \(Format.fixed(r.averagePaperMetric, 4)) over \(r.results.count) tasks\n"
        if let note = r.splitNote { out += "note: \(note)\n" }
        for t in r.results { out += "data: \(t.task.name) \(t.sha256) \(t.path) (\(t.n) of \(t.rowCount) rows)\n" }
        return out
    }
}
