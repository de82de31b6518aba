#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Whole-file reads and path checks with POSIX calls (no Foundation).
enum FileBytes {
    /// The contents of the file at `path`.
    /// - Throws: ``TokenizerError`` `.unreadable` naming the file and the system's reason.
    static func read(_ path: String) throws(TokenizerError) -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            throw TokenizerError(.unreadable, "cannot open: \(String(cString: strerror(errno)))", path: path)
        }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { out.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(f) != 0 {
                    throw TokenizerError(.unreadable, "read failed: \(String(cString: strerror(errno)))", path: path)
                }
                break
            }
        }
        return out
    }

    static func isDirectory(_ path: String) -> Bool {
        var s = stat()
        return stat(path, &s) == 0 && (s.st_mode & S_IFMT) == S_IFDIR
    }

    static func exists(_ path: String) -> Bool {
        var s = stat()
        return stat(path, &s) == 0
    }
}
