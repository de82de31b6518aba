import CheckpointCore
import Engine
import Tokenizers

/// `shears eval --tasks`: reads each task's JSONL, scores its items and computes lm-eval's
/// metrics.
public struct ZeroShotEvaluation {
    public var tasks: [ZeroShotTask]
    /// The folder `Tools/fetch-tasks` printed.
    public var dataFolder: String
    /// Score only the first N items of each task.
    public var limit: Int?

    public init(tasks: [ZeroShotTask], dataFolder: String, limit: Int? = nil) {
        self.tasks = tasks
        self.dataFolder = dataFolder
        self.limit = limit
    }

    /// Reads every task's data first (so a missing file fails before any scoring), then scores.
    /// `progress(task, done, total)` follows each batch.
    public func run(_ scorer: ZeroShotScorer, progress: (ZeroShotTask, Int, Int) -> Void = { _, _, _ in }) throws -> ZeroShotReport {
        let data = try tasks.map { try TaskData(task: $0, folder: dataFolder, limit: limit) }
        var results: [TaskResult] = []
        for d in data {
            let scores = try scorer.score(d.items) { progress(d.task, $0, $1) }
            results.append(TaskResult(task: d.task, scores: scores, path: d.path, sha256: d.sha256, rowCount: d.rowCount))
        }
        return ZeroShotReport(results: results)
    }
}
