#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import CKernels

/// An exclusive claim on an output path for one run: `flock` on `.NAME.lock` next to the output.
///
/// A second `shears` writing the same output while the first runs fails at once with an error
/// naming the output and the first process, instead of both writing and one silently replacing
/// the other's files. Holding the claim, the run also removes what interrupted runs (`kill -9`, a
/// power loss) left for this output: staging folders and temporary files named
/// `.NAME.tmp-PID-N` whose process is gone. The lock file is removed when the claim is released;
/// one left by a killed process holds no lock (the kernel drops it) and is reused by the next run.
public final class OutputLock {
    public let destination: String
    public let lockPath: String
    private var fd: Int32 = -1
    /// Folders created for the output's parent, removed again when the run fails (if still empty).
    private var createdFolders: [String] = []
    private var succeeded = false
    private var cleanupSlot: Int32 = -1

    /// Claims `destination`, creating its parent folder if needed, and sweeps stale temporaries
    /// of it and of `companions` (files the run writes next to it, such as a manifest).
    /// - Throws: ``CheckpointError`` `.io` when another process holds the claim or the folder
    ///   cannot be written.
    public init(destination: String, companions: [String] = []) throws(CheckpointError) {
        self.destination = destination
        let parent = FileSystem.directoryName(destination)
        let base = FileSystem.baseName(destination)
        lockPath = FileSystem.join(parent, ".\(base).lock")
        try createParents(parent)
        for _ in 0..<10 {
            let d = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard d >= 0 else {
                let code = errno
                let e = CheckpointError(.io, "cannot be written: creating a file in its folder failed: \(String(cString: strerror(code))) (errno \(code))", path: destination)
                removeCreatedFolders()
                throw e
            }
            if flock(d, LOCK_EX | LOCK_NB) != 0 {
                // The holder writes its PID just after taking the lock: give it a moment.
                var holder = Self.readPID(d)
                for _ in 0..<50 where holder == nil {
                    usleep(1000)
                    holder = Self.readPID(d)
                }
                close(d)
                removeCreatedFolders()
                throw CheckpointError(.io, "is being written by another shears process\(holder.map { " (PID \($0))" } ?? ""); wait for it to finish or choose another output", path: destination)
            }
            // The file may have been unlinked by a run that just finished: lock the one in place.
            var a = stat(), b = stat()
            if fstat(d, &a) == 0, stat(lockPath, &b) == 0, a.st_dev == b.st_dev, a.st_ino == b.st_ino {
                fd = d
                break
            }
            close(d)
        }
        guard fd >= 0 else { removeCreatedFolders(); throw CheckpointError(.io, "cannot take the output lock", path: lockPath) }
        cleanupSlot = shears_cleanup_register(lockPath)  // gone on SIGINT/SIGTERM/SIGHUP/SIGBUS too
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        Self.sweep(folder: parent, base: base)
        for c in companions { Self.sweep(folder: FileSystem.directoryName(c), base: FileSystem.baseName(c)) }
    }

    deinit { release() }

    /// Marks the run as finished well (folders created for the output stay).
    public func succeed() { succeeded = true }

    /// Removes the lock file and releases the claim (also done on deinit).
    public func release() {
        guard fd >= 0 else { return }
        unlink(lockPath)
        shears_cleanup_unregister(cleanupSlot)
        cleanupSlot = -1
        close(fd)
        fd = -1
        if !succeeded { removeCreatedFolders() }
    }

    private func createParents(_ folder: String) throws(CheckpointError) {
        var missing: [String] = []
        var f = folder
        while !FileSystem.isDirectory(f) {
            missing.append(f)
            let up = FileSystem.directoryName(f)
            if up == f { break }
            f = up
        }
        for m in missing.reversed() {
            if mkdir(m, 0o755) != 0 && errno != EEXIST {
                let e = Self.failure("create the folder", path: m)
                removeCreatedFolders()
                throw e
            }
            createdFolders.append(m)
        }
    }

    private func removeCreatedFolders() {
        for f in createdFolders.reversed() { rmdir(f) }
        createdFolders = []
    }

    /// An `io` error for a failed system call on `path`, with `strerror(errno)`.
    private static func failure(_ what: String, path: String) -> CheckpointError {
        let e = errno
        return CheckpointError(.io, "cannot \(what): \(String(cString: strerror(e))) (errno \(e))", path: path)
    }

    private static func readPID(_ d: Int32) -> Int32? {
        var buf = [UInt8](repeating: 0, count: 16)
        let n = buf.withUnsafeMutableBytes { pread(d, $0.baseAddress, 15, 0) }
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n], as: UTF8.self).split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// The PID in a temporary name `.BASE.tmp-PID-N` (N decimal), or nil when `name` is not one.
    static func temporaryOwner(_ name: String, base: String) -> Int32? {
        let prefix = ".\(base).tmp-"
        guard name.hasPrefix(prefix) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let pid = Int32(parts[0]), UInt32(parts[1]) != nil else { return nil }
        return pid
    }

    /// Removes the temporaries of `base` in `folder` left by processes that no longer run.
    /// Returns the names removed.
    @discardableResult
    static func sweep(folder: String, base: String) -> [String] {
        guard let names = try? FileSystem.contents(of: folder) else { return [] }
        var removed: [String] = []
        for name in names {
            guard let pid = temporaryOwner(name, base: base), pid != getpid(),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            removeTree(FileSystem.join(folder, name), depth: 3)
            removed.append(name)
        }
        return removed
    }

    /// Removes a file, or a folder of files and folders `depth` levels deep (symbolic links are
    /// removed, never followed).
    static func removeTree(_ path: String, depth: Int) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if depth > 0, let names = try? FileSystem.contents(of: path) {
                for n in names { removeTree(FileSystem.join(path, n), depth: depth - 1) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}
