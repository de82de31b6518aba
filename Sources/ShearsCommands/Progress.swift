#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Progress on stderr for long work: bytes done, rate and ETA on a line that rewrites itself.
/// Silent when stderr is not a terminal, when `quiet`, and for runs shorter than a second.
final class Progress {
    let totalBytes: Int
    let label: String
    /// Counting items (tensors, percent) rather than bytes.
    private var items = false
    private let start = monotonicSeconds()
    private var lastPrint = 0.0
    private let enabled: Bool
    private var printed = false

    init(totalBytes: Int, label: String, quiet: Bool = false) {
        self.totalBytes = totalBytes
        self.label = label
        self.enabled = !quiet && isatty(2) != 0
    }

    /// Progress over `total` items (tensors, steps): "prune: writing 12/21 (57%), 3 s".
    convenience init(totalItems: Int, label: String, quiet: Bool = false) {
        self.init(totalBytes: totalItems, label: label, quiet: quiet)
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

    func update(bytesDone done: Int) {
        guard enabled else { return }
        let now = monotonicSeconds()
        guard now - start > 1, now - lastPrint > 0.2 else { return }
        lastPrint = now
        printed = true
        StandardError.write("\r" + text(done, now - start) + "   ")
    }

    func finish() {
        guard enabled, printed else { return }
        StandardError.write("\r" + text(totalBytes, monotonicSeconds() - start) + "   \n")
    }
}
