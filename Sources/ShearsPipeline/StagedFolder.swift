#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore

/// A folder output built under a temporary name next to its destination and moved into place at
/// the end, so that an interrupted conversion leaves nothing at the destination.
///
/// When the destination does not exist (or is an empty folder) the staged folder is renamed onto
/// it in one step. When it exists with files (allowed with `--force`), the new files are renamed
/// into it one by one, after old checkpoint files that the new output does not replace are removed.
public final class StagedFolder {
    public let destination: String
    public let path: String
    private var committed = false

    public init(destination: String) throws(CheckpointError) {
        self.destination = destination
        let parent = FileSystem.directoryName(destination)
        try FileSystem.createDirectory(parent)
        var name = ""
        for attempt in 0..<100 {
            name = FileSystem.join(parent, ".\(FileSystem.baseName(destination)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            if mkdir(name, 0o755) == 0 { break }
            if errno != EEXIST || attempt == 99 { throw CheckpointError(.io, "cannot create a staging folder: \(String(cString: strerror(errno)))", path: name) }
        }
        path = name
    }

    deinit {
        if !committed { StagedFolder.removeFlat(path) }
    }

    /// Moves the staged files to the destination.
    public func commit() throws(CheckpointError) {
        let existing = FileSystem.isDirectory(destination) ? try FileSystem.contents(of: destination) : nil
        if existing == nil || existing!.isEmpty {
            guard rename(path, destination) == 0 else {
                if errno == ENOTEMPTY || errno == EEXIST {
                    throw CheckpointError(.io, "was written by another process while this run worked; it is left as it is (run again with --force to replace it)", path: destination)
                }
                throw CheckpointError(.io, "cannot move the output into place: \(String(cString: strerror(errno)))", path: destination)
            }
            committed = true
            return
        }
        let new = Set(try FileSystem.contents(of: path))
        for old in existing! where !new.contains(old) && (old.hasSuffix(".safetensors") || old.hasSuffix(".safetensors.index.json")) {
            unlink(FileSystem.join(destination, old))
        }
        for name in new.sorted() {
            guard rename(FileSystem.join(path, name), FileSystem.join(destination, name)) == 0 else {
                throw CheckpointError(.io, "cannot move \(name) into place: \(String(cString: strerror(errno)))", path: destination)
            }
        }
        rmdir(path)
        committed = true
    }

    /// Removes a folder of plain files (the staging folders are flat).
    public static func removeFlat(_ folder: String) {
        if let names = try? FileSystem.contents(of: folder) {
            for n in names { unlink(FileSystem.join(folder, n)) }
        }
        rmdir(folder)
    }
}

/// Whether two paths name the same file or folder (same device and inode).
public func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}
