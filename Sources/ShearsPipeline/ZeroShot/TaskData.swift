import CheckpointCore
import Crypto
import ShearsJSON

/// One task's rows as `Tools/fetch-tasks` writes them: `<task>.jsonl` in a folder, one raw row
/// (a JSON object) per line.
public struct TaskData: Sendable {
    public let task: ZeroShotTask
    public let path: String
    /// SHA-256 of the whole file (hex).
    public let sha256: String
    /// Rows in the file.
    public let rowCount: Int
    /// The items built from the first `limit` rows (all rows without a limit).
    public let items: [MultipleChoiceItem]

    /// Reads `task`'s file in `folder`, keeping the first `limit` rows.
    /// - Throws: `io` when the file is missing (the message says to run Tools/fetch-tasks);
    ///   `invalidFormat` naming the line for a row that is not JSON or lacks the task's columns.
    public init(task: ZeroShotTask, folder: String, limit: Int? = nil) throws {
        let path = folder.hasSuffix("/") ? folder + task.fileName : folder + "/" + task.fileName
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path, limit: 1 << 30) } catch {
            throw CheckpointError(.io, "cannot read \(task.name)'s data (\(error.message)); run Tools/fetch-tasks and pass its folder with --task-data", path: path)
        }
        try self.init(task: task, bytes: bytes, path: path, sha256: ModelSource.hex(SHA256.hash(data: bytes)), limit: limit)
    }

    /// Parses JSONL `bytes` (from `path`, used in messages).
    public init(task: ZeroShotTask, bytes: [UInt8], path: String, sha256: String, limit: Int? = nil) throws(CheckpointError) {
        self.task = task
        self.path = path
        self.sha256 = sha256
        var items: [MultipleChoiceItem] = []
        var rows = 0, line = 0, start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            line += 1
            let slice = Array(bytes[start..<end])
            start = end + 1
            if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            rows += 1
            if let limit, items.count >= limit { continue }
            do {
                let row = try JSONValue.parse(slice)
                items.append(try task.item(row))
            } catch let e as CheckpointError {
                throw CheckpointError(.invalidFormat, "line \(line): \(e.message)", path: path)
            } catch {
                throw CheckpointError(.invalidFormat, "line \(line) is not JSON (\(error))", path: path)
            }
        }
        rowCount = rows
        self.items = items
    }
}
