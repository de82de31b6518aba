#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// The few file-system queries the formats core needs, without Foundation.
public enum FileSystem {
    public enum Kind: Sendable { case file, directory, other }

    /// What is at `path`, or nil when nothing is (symlinks are followed).
    public static func kind(of path: String) -> Kind? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    public static func isDirectory(_ path: String) -> Bool { kind(of: path) == .directory }
    public static func isFile(_ path: String) -> Bool { kind(of: path) == .file }

    /// Size of the file at `path`.
    public static func size(of path: String) throws(CheckpointError) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { throw CheckpointError.system("stat", path: path) }
        return Int(st.st_size)
    }

    /// Names in a folder (without "." and ".."), sorted by byte order.
    public static func contents(of path: String) throws(CheckpointError) -> [String] {
        guard let dir = opendir(path) else { throw CheckpointError.system("opendir", path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Reads a whole (small) file, refusing files over `limit` bytes.
    public static func readFile(_ path: String, limit: Int = 256 << 20) throws(CheckpointError) -> [UInt8] {
        let m = try MappedFile(path: path)
        guard m.count <= limit else {
            throw CheckpointError(.invalidArgument, "file is \(m.count) bytes, over the \(limit)-byte limit for this kind of file", path: path)
        }
        return m.withUnsafeBytes { Array($0) }
    }

    /// Creates a folder (and its parents) if missing.
    public static func createDirectory(_ path: String) throws(CheckpointError) {
        if isDirectory(path) { return }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try createDirectory(String(path[..<slash]))
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw CheckpointError.system("mkdir", path: path) }
    }

    /// `path` joined to `name`.
    public static func join(_ path: String, _ name: String) -> String {
        path.isEmpty ? name : path.hasSuffix("/") ? path + name : path + "/" + name
    }

    /// The folder part of `path` ("." when there is none).
    public static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The last component of `path`.
    public static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
