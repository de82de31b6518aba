#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore

/// Where an output may go relative to its input: never inside a folder input (writing there would
/// change the input folder, and a staging rename could touch its files).
public enum OutputPlacement {
    /// The folder a checkpoint input lives in as a whole: the folder itself, or the folder of a
    /// shard index; nil for a single-file input (its neighbours are not part of it).
    static func inputFolder(of source: String) -> String? {
        if FileSystem.isDirectory(source) { return source }
        if source.hasSuffix(".index.json") { return FileSystem.directoryName(source) }
        return nil
    }

    /// The absolute path `path` names, with symbolic links resolved in the part that exists.
    static func resolved(_ path: String) -> String? {
        var head = path.isEmpty ? "." : path
        var tail: [String] = []
        while true {
            if let r = realpath(head, nil) {
                defer { free(r) }
                let base = String(cString: r)
                return tail.reversed().reduce(base) { $0 == "/" ? "/" + $1 : $0 + "/" + $1 }
            }
            guard errno == ENOENT || errno == ENOTDIR else { return nil }
            let name = FileSystem.baseName(head)
            if name == ".." { return nil }  // cannot tell without the missing part
            if name != "." && !name.isEmpty { tail.append(name) }
            let parent = FileSystem.directoryName(head)
            if parent == head { return nil }
            head = parent
        }
    }

    /// Refuses `output` when it is a folder input itself or lies inside one.
    /// - Throws: ``CheckpointError`` `.invalidArgument` (exit 2) naming the output and the input.
    public static func checkOutside(output: String, source: String) throws(CheckpointError) {
        guard let folder = inputFolder(of: source), let inside = resolved(folder), let out = resolved(output) else { return }
        if out == inside {
            throw CheckpointError(.invalidArgument, "is the input folder; write the output to another folder (inputs are never modified)", path: output)
        }
        if out.hasPrefix(inside == "/" ? "/" : inside + "/") {
            throw CheckpointError(.invalidArgument, "is inside the input folder \(folder); write the output outside it (inputs are never modified)", path: output)
        }
    }
}
