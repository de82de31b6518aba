#if canImport(Glibc)
import Glibc
#endif
import ShearsJSON

/// One task's metrics as lm-eval computes them.
public struct TaskResult: Sendable {
    public let task: ZeroShotTask
    public let scores: [ItemScore]
    /// The data file and its SHA-256.
    public let path: String
    public let sha256: String
    /// Rows in the file (items scored: ``n``).
    public let rowCount: Int

    public init(task: ZeroShotTask, scores: [ItemScore], path: String, sha256: String, rowCount: Int) {
        self.task = task
        self.scores = scores
        self.path = path
        self.sha256 = sha256
        self.rowCount = rowCount
    }

    public var n: Int { scores.count }

    /// Fraction of items whose argmax choice is gold.
    public var acc: Double { Self.mean(scores.map { $0.predicted == $0.gold }) }
    public var accStderr: Double { Self.meanStderr(scores.map { $0.predicted == $0.gold }) }

    /// The same with log-likelihoods divided by the choices' character lengths; nil for tasks
    /// where lm-eval does not report it.
    public var accNorm: Double? { task.reportsNormalizedAccuracy ? Self.mean(scores.map { $0.predictedNormalized == $0.gold }) : nil }
    public var accNormStderr: Double? { task.reportsNormalizedAccuracy ? Self.meanStderr(scores.map { $0.predictedNormalized == $0.gold }) : nil }

    /// LLM-Pruner's column: acc_norm where lm-eval reports it, else acc.
    public var paperMetric: Double { accNorm ?? acc }

    static func mean(_ v: [Bool]) -> Double {
        v.isEmpty ? .nan : Double(v.filter { $0 }.count) / Double(v.count)
    }

    /// lm-eval's `mean_stderr`: the sample standard deviation (n − 1) over √n.
    static func meanStderr(_ v: [Bool]) -> Double {
        let n = Double(v.count)
        guard v.count > 1 else { return .nan }
        let mu = mean(v)
        let ss = v.reduce(0.0) { $0 + (($1 ? 1.0 : 0.0) - mu) * (($1 ? 1.0 : 0.0) - mu) }
        return (ss / (n - 1)).squareRoot() / n.squareRoot()
    }

    /// `{"task", "version", "split", "n", "rows", "acc", "acc_stderr", ["acc_norm", "acc_norm_stderr"], "file", "sha256"}`.
    public var json: JSONValue {
        var o: [(String, JSONValue)] = [
            ("task", .string(task.name)), ("version", .string(task.version)), ("split", .string(task.split)),
            ("n", .int(Int64(n))), ("rows", .int(Int64(rowCount))),
            ("acc", .double(acc)), ("acc_stderr", .double(accStderr)),
        ]
        if let a = accNorm, let s = accNormStderr { o += [("acc_norm", .double(a)), ("acc_norm_stderr", .double(s))] }
        o += [("file", .string(path)), ("sha256", .string(sha256))]
        return .object(JSONObject(o))
    }
}

/// Every task's results and their averages.
public struct ZeroShotReport: Sendable {
    public let results: [TaskResult]

    public init(results: [TaskResult]) { self.results = results }

    /// Mean acc over the tasks.
    public var averageAcc: Double { results.isEmpty ? .nan : results.map(\.acc).reduce(0, +) / Double(results.count) }
    /// Mean of LLM-Pruner's column (acc_norm where reported, else acc).
    public var averagePaperMetric: Double { results.isEmpty ? .nan : results.map(\.paperMetric).reduce(0, +) / Double(results.count) }

    /// A note for tasks scored on another split than lm-eval's default, or nil.
    public var splitNote: String? {
        let differ = results.filter { $0.task.splitDiffersFromLMEval }.map(\.task.name)
        guard !differ.isEmpty else { return nil }
        return "\(differ.joined(separator: ", ")) use validation splits (lm-eval's default is test); numbers are not test-split numbers"
    }

    /// `{"tasks": [...], "average_acc", "average_acc_norm_or_acc", "note"}`.
    public var json: JSONValue {
        var o: [(String, JSONValue)] = [
            ("tasks", .array(results.map(\.json))),
            ("average_acc", .double(averageAcc)),
            ("average_acc_norm_or_acc", .double(averagePaperMetric)),
        ]
        if let splitNote { o.append(("note", .string(splitNote))) }
        return .object(JSONObject(o))
    }

    /// One JSON line per item: task, index, per-choice log-likelihoods, greedy flags, token counts,
    /// predicted (acc and acc_norm) and gold.
    public var samplesJSONL: String {
        var out = ""
        for r in results {
            for (i, s) in r.scores.enumerated() {
                let o = JSONObject([
                    ("task", .string(r.task.name)), ("index", .int(Int64(i))),
                    ("loglikelihoods", .array(s.logLikelihoods.map { .double($0) })),
                    ("greedy", .array(s.greedy.map { .bool($0) })),
                    ("continuation_tokens", .array(s.continuationTokens.map { .int(Int64($0)) })),
                    ("predicted", .int(Int64(s.predicted))), ("predicted_norm", .int(Int64(s.predictedNormalized))),
                    ("gold", .int(Int64(s.gold))),
                ])
                out += JSONValue.object(o).serialized() + "\n"
            }
        }
        return out
    }
}
