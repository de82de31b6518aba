#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Progress on stderr for long work: bytes done, rate and ETA on a line that rewrites itself.
/// When stderr is not a terminal (a log file, a CI job), a plain line every
/// ``logInterval`` seconds instead, so a long run redirected to a log still shows that it moves.
/// Silent when `quiet`, and for runs shorter than a second (shorter than ``logInterval`` in a log).
final class Progress {
    /// Seconds between lines when stderr is not a terminal.
    static let logInterval = 30.0
    let totalBytes: Int
    let label: String
    /// Counting items (tensors, percent) rather than bytes.
    private var items = false
    private let start = monotonicSeconds()
    private var lastPrint = 0.0
    private let enabled: Bool
    private let terminal: Bool
    private var printed = false
    private let write: (String) -> Void

    /// `terminal` defaults to whether stderr is one; `write` to writing stderr (both for tests).
    init(totalBytes: Int, label: String, quiet: Bool = false, terminal: Bool = isatty(2) != 0,
         write: @escaping (String) -> Void = { StandardError.write($0) }) {
        self.totalBytes = totalBytes
        self.label = label
        self.enabled = !quiet
        self.terminal = terminal
        self.write = write
    }

    /// Progress over `total` items (tensors, steps): "prune: writing 12/21 (57%), 3 s".
    convenience init(totalItems: Int, label: String, quiet: Bool = false, terminal: Bool = isatty(2) != 0,
                     write: @escaping (String) -> Void = { StandardError.write($0) }) {
        self.init(totalBytes: totalItems, label: label, quiet: quiet, terminal: terminal, write: write)
        items = true
    }

    /// Updates an item count (see ``init(totalItems:label:quiet:)``).
    func update(_ done: Int) { update(bytesDone: done) }

    private func text(_ done: Int, _ elapsed: Double) -> String {
        guard items else { return Progress.line(label: label, done: done, total: totalBytes, elapsed: elapsed) }
        let pct = totalBytes > 0 ? Format.fixed(100 * Double(done) / Double(totalBytes), 0) : "100"
        return "\(label) \(done)/\(totalBytes) (\(pct)%), \(Format.fixed(elapsed, 0)) s"
    }

    /// The line for `done` bytes after `elapsed` seconds: "convert: 312.4 MB / 538.0 MB (58%), 210.3 MB/s, ETA 1 s".
    static func line(label: String, done: Int, total: Int, elapsed: Double) -> String {
        let pct = total > 0 ? Format.fixed(100 * Double(done) / Double(total), 0) : "100"
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var text = "\(label): \(Format.bytes(done)) / \(Format.bytes(total)) (\(pct)%), \(Format.bytes(Int(rate)))/s"
        if rate > 0, done < total { text += ", ETA \(Format.fixed(Double(total - done) / rate, 0)) s" }
        return text
    }

    func update(bytesDone done: Int) { update(bytesDone: done, now: monotonicSeconds()) }

    /// ``update(bytesDone:)`` at time `now` (seconds on the monotonic clock; for tests).
    func update(bytesDone done: Int, now: Double) {
        guard enabled else { return }
        if terminal {
            guard now - start > 1, now - lastPrint > 0.2 else { return }
            lastPrint = now
            printed = true
            write("\r" + text(done, now - start) + "   ")
        } else {
            guard now - max(start, lastPrint) >= Progress.logInterval else { return }
            lastPrint = now
            printed = true
            write(text(done, now - start) + "\n")
        }
    }

    func finish() { finish(now: monotonicSeconds()) }

    /// ``finish()`` at time `now` (for tests). Prints the last line only if an earlier one was printed.
    func finish(now: Double) {
        guard enabled, printed else { return }
        write((terminal ? "\r" : "") + text(totalBytes, now - start) + (terminal ? "   \n" : "\n"))
    }

    /// The monotonic time this progress started (for tests).
    var startTime: Double { start }
}
