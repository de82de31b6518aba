#if canImport(Glibc)
import Glibc
#endif

/// Progress on stderr for long work: bytes done, rate and ETA on a line that rewrites itself.
/// Silent when stderr is not a terminal, when `quiet`, and for runs shorter than a second.
final class Progress {
    let totalBytes: Int
    let label: String
    private let start = monotonicSeconds()
    private var lastPrint = 0.0
    private let enabled: Bool
    private var printed = false

    init(totalBytes: Int, label: String, quiet: Bool = false) {
        self.totalBytes = totalBytes
        self.label = label
        self.enabled = !quiet && isatty(2) != 0
    }

    /// The line for `done` bytes after `elapsed` seconds: "convert: 312.4 MB / 538.0 MB (58%), 210.3 MB/s, ETA 1 s".
    static func line(label: String, done: Int, total: Int, elapsed: Double) -> String {
        let pct = total > 0 ? Format.fixed(100 * Double(done) / Double(total), 0) : "100"
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var text = "\(label): \(Format.bytes(done)) / \(Format.bytes(total)) (\(pct)%), \(Format.bytes(Int(rate)))/s"
        if rate > 0, done < total { text += ", ETA \(Format.fixed(Double(total - done) / rate, 0)) s" }
        return text
    }

    func update(bytesDone done: Int) {
        guard enabled else { return }
        let now = monotonicSeconds()
        guard now - start > 1, now - lastPrint > 0.2 else { return }
        lastPrint = now
        printed = true
        StandardError.write("\r" + Progress.line(label: label, done: done, total: totalBytes, elapsed: now - start) + "   ")
    }

    func finish() {
        guard enabled, printed else { return }
        StandardError.write("\r" + Progress.line(label: label, done: totalBytes, total: totalBytes, elapsed: monotonicSeconds() - start) + "   \n")
    }
}
