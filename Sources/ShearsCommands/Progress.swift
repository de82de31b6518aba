#if canImport(Glibc)
import Glibc
#endif

/// Progress on stderr for long work: a line that rewrites itself on a terminal, a few plain lines
/// otherwise. Silent for short runs.
final class Progress {
    let total: Int
    let label: String
    private let start = monotonicSeconds()
    private var lastPrint = 0.0
    private let isTerminal = isatty(2) != 0
    private var printed = false

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    func update(_ done: Int) {
        let now = monotonicSeconds()
        guard now - start > 1, now - lastPrint > (isTerminal ? 0.2 : 10) else { return }
        lastPrint = now
        printed = true
        let pct = total > 0 ? Format.fixed(100 * Double(done) / Double(total), 0) : "100"
        let text = "\(label): \(done)/\(total) (\(pct)%), \(Format.fixed(now - start, 1)) s"
        if isTerminal { StandardError.write("\r" + text + "   ") } else { StandardError.print(text) }
    }

    func finish() {
        if printed && isTerminal { StandardError.write("\n") }
    }
}
