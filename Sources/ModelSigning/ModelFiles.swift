#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore

/// The files of a model as model_signing's `files` serialization sees them: every regular file
/// under the model folder (hidden files included), recursively, except the ignored paths; a single
/// file is one resource named `.`. Names are relative POSIX paths. Symbolic links are refused
/// unless allowed, as model_signing does by default.
public struct ModelFiles: Sendable {
    /// The model path as given.
    public let root: String
    /// Whether the model is a single file (its one resource is named `.`).
    public let isSingleFile: Bool
    /// Resource names, in the order of the signature payload (see ``ModelFiles/precedes(_:_:)``).
    public let names: [String]
    /// The file behind each name.
    public let paths: [String]

    /// The paths git adds to a checkout; model_signing ignores them when signing and verifying.
    public static let gitPaths = [".git", ".gitattributes", ".github", ".gitignore"]

    /// Lists the files of `root`.
    ///
    /// - Parameters:
    ///   - root: a model folder or a single file.
    ///   - ignoring: paths relative to the folder; a folder ignores everything below it.
    ///   - allowSymlinks: follow symbolic links (to files) instead of refusing them.
    /// - Throws: ``CheckpointError`` naming a missing model, a symbolic link, a special file, or an
    ///   unreadable folder.
    public init(root: String, ignoring: [String], allowSymlinks: Bool) throws(CheckpointError) {
        self.root = root
        let ignored = Set(ignoring.compactMap(ModelFiles.normalized))
        switch try ModelFiles.kind(root, allowSymlinks: allowSymlinks) {
        case .file:
            isSingleFile = true
            names = ["."]
            paths = [root]
        case .directory:
            isSingleFile = false
            var found: [(components: [String], path: String)] = []
            try ModelFiles.walk(root, [], ignored, allowSymlinks, &found)
            found.sort { ModelFiles.precedes($0.components, $1.components) }
            names = found.map { $0.components.joined(separator: "/") }
            paths = found.map(\.path)
        }
    }

    /// Payload order: by path components, each compared by its UTF-8 bytes (Python's ordering of
    /// `PurePosixPath`), so `a/b` comes before `a.txt`.
    public static func precedes(_ a: [String], _ b: [String]) -> Bool {
        for (x, y) in zip(a, b) where x != y { return x.utf8.lexicographicallyPrecedes(y.utf8) }
        return a.count < b.count
    }

    /// `a/./b/` → `a/b`; nil for an empty path. `..` components are kept (they match nothing).
    static func normalized(_ path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if path.hasPrefix("/") { return nil }  // absolute: outside the model, as model_signing skips it
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }

    private enum Kind { case file, directory }

    private static func kind(_ path: String, allowSymlinks: Bool) throws(CheckpointError) -> Kind {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw systemError("lstat", path) }
        if (st.st_mode & S_IFMT) == S_IFLNK {
            guard allowSymlinks else {
                throw CheckpointError(.invalidArgument, "is a symbolic link; model signatures cover regular files only (model_signing's allow_symlinks is off)", path: path)
            }
            guard stat(path, &st) == 0 else { throw systemError("stat", path) }
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: throw CheckpointError(.invalidArgument, "is neither a regular file nor a folder", path: path)
        }
    }

    private static func systemError(_ call: String, _ path: String) -> CheckpointError {
        let e = errno
        return CheckpointError(.io, e == ENOENT ? "no such file or folder" : "\(call) failed: \(String(cString: strerror(e)))", path: path)
    }

    private static func walk(_ dir: String, _ prefix: [String], _ ignored: Set<String>, _ allowSymlinks: Bool,
                             _ found: inout [(components: [String], path: String)]) throws(CheckpointError) {
        for name in try FileSystem.contents(of: dir) {
            let components = prefix + [name]
            if isIgnored(components, ignored) { continue }
            let path = FileSystem.join(dir, name)
            switch try kind(path, allowSymlinks: allowSymlinks) {
            case .file: found.append((components, path))
            case .directory:
                guard components.count < 256 else { throw CheckpointError(.invalidArgument, "folders nest more than 256 deep", path: path) }
                try walk(path, components, ignored, allowSymlinks, &found)
            }
        }
    }

    /// Whether the path, or a folder above it, is ignored.
    static func isIgnored(_ components: [String], _ ignored: Set<String>) -> Bool {
        if ignored.isEmpty { return false }
        var prefix = ""
        for c in components {
            prefix = prefix.isEmpty ? c : prefix + "/" + c
            if ignored.contains(prefix) { return true }
        }
        return false
    }

    /// The model's name in a signature: the last component of its path (model_signing's
    /// `Path.name`), or of its resolved path when that is empty or `..`.
    public static func modelName(_ root: String) -> String {
        let trimmed = root.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if let last = trimmed.last, last != ".." { return String(last) }
        return FileSystem.baseName(resolved(root))
    }

    /// The canonical absolute path (realpath), or `path` itself when it cannot be resolved.
    public static func resolved(_ path: String) -> String {
        guard let p = realpath(path, nil) else { return path }
        defer { free(p) }
        return String(cString: p)
    }

    /// `path` relative to the model folder `root` when it lies inside it (the file need not exist
    /// yet; its folder must), or nil.
    public static func relativePath(of path: String, inside root: String) -> String? {
        let base = resolved(root)
        let parent = resolved(FileSystem.directoryName(path))
        let full = FileSystem.join(parent, FileSystem.baseName(path))
        guard full.hasPrefix(base + "/") else { return nil }
        return String(full.dropFirst(base.count + 1))
    }
}
