#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Writing to stderr (progress, warnings, errors) without Foundation.
enum StandardError {
    static func print(_ s: String) { writeAll(2, s + "\n") }
    static func write(_ s: String) { writeAll(2, s) }
}

/// Writing to stdout in one piece.
enum StandardOutput {
    static func write(_ s: String) { writeAll(1, s) }
}

private func writeAll(_ fd: Int32, _ s: String) {
    var text = s
    text.withUTF8 { u in
        var done = 0
        while done < u.count {
            let n = Glibc.write(fd, u.baseAddress! + done, u.count - done)
            if n < 0 { if errno == EINTR { continue }; return }
            done += n
        }
    }
}
