#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import CKernels

/// A folder output built under a temporary name next to its destination and moved into place at
/// the end, so that an interrupted conversion leaves nothing at the destination.
///
/// When the destination does not exist (or is an empty folder) the staged folder is renamed onto
/// it in one step. When it exists with files (allowed with `--force`), the old files the new
/// output keeps (everything but the files it replaces and stale `.safetensors` shards and indexes)
/// are hard-linked into the staged folder, and the two folders are exchanged in one step
/// (`renameat2` `RENAME_EXCHANGE`); the old folder, now under the staging name, is then removed.
/// So an interrupted run leaves the old output or the new one, never a mix. Only when the old
/// folder holds sub-folders, or the file system cannot exchange or hard-link, are the new files
/// renamed in one by one (the old behaviour, documented in docs/robustness.md).
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
        if try exchange(existing: existing!, new: new) { return }
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

    /// The atomic replacement of a non-empty destination; false when it cannot be done (sub-folders,
    /// no hard links or no exchange on this file system), before anything at the destination changed.
    private func exchange(existing: [String], new: Set<String>) throws(CheckpointError) -> Bool {
        var kept: [String] = []
        for old in existing where !new.contains(old) {
            if old.hasSuffix(".safetensors") || old.hasSuffix(".safetensors.index.json") { continue }
            guard FileSystem.kind(of: FileSystem.join(destination, old)) == .file else { return false }
            kept.append(old)
        }
        var linked: [String] = []
        for old in kept {
            guard link(FileSystem.join(destination, old), FileSystem.join(path, old)) == 0 else {
                for l in linked { unlink(FileSystem.join(path, l)) }
                return false
            }
            linked.append(old)
        }
        guard shears_rename_exchange(path, destination) == 0 else {
            for l in linked { unlink(FileSystem.join(path, l)) }
            return false
        }
        // The old output now sits under the staging name.
        committed = true
        StagedFolder.removeFlat(path)
        return true
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
