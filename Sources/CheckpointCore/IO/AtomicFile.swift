#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CKernels

/// A file written under a temporary name in its destination folder and renamed into place by
/// ``commit()``, so that an interrupted run leaves no half-written output and a reader that has
/// the old file mapped keeps its bytes. Dropped without `commit()`, the temporary file is removed;
/// so is it when SIGINT, SIGTERM or SIGHUP kills the process.
public final class AtomicFile {
    /// The final path.
    public let path: String
    /// The temporary path being written.
    public let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferCapacity = 1 << 20
    /// Bytes written so far.
    public private(set) var bytesWritten = 0
    private var committed = false
    /// The slot of the temporary path in the kill-signal cleanup table.
    private var cleanupSlot: Int32 = -1
    /// Whether ``commit()`` flushes the data to disk (fsync) before renaming. On by default: an
    /// output that is renamed into place should survive a crash. Benchmarks that compare with tools
    /// writing to the page cache turn it off.
    public let durable: Bool

    /// Creates the temporary file next to `path`.
    public init(path: String, durable: Bool = true) throws(CheckpointError) {
        self.path = path
        self.durable = durable
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var name = ""
        var descriptor: Int32 = -1
        for attempt in 0..<100 {
            name = (dir.isEmpty ? "" : dir + "/") + ".\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            descriptor = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if descriptor >= 0 || errno != EEXIST || attempt == 99 { break }
        }
        guard descriptor >= 0 else {
            let e = errno
            throw CheckpointError(.io, "cannot be written: creating a temporary file in its folder failed: \(String(cString: strerror(e))) (errno \(e))", path: path)
        }
        temporaryPath = name
        fd = descriptor
        cleanupSlot = shears_cleanup_register(name)
        buffer.reserveCapacity(bufferCapacity)
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporaryPath) }
        shears_cleanup_unregister(cleanupSlot)
    }

    /// Reserves `size` bytes of disk up front, so that a full disk fails early.
    public func preallocate(_ size: Int) {
        if size > 0 { _ = posix_fallocate(fd, 0, off_t(size)) }
    }

    /// Appends bytes (buffered; large writes go straight to the file).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard bytes.count > 0 else { return }
        if buffer.count + bytes.count <= bufferCapacity {
            buffer.append(contentsOf: bytes)
        } else {
            try flush()
            if bytes.count >= bufferCapacity { try writeAll(bytes) } else { buffer.append(contentsOf: bytes) }
        }
        bytesWritten += bytes.count
    }

    public func write(_ bytes: [UInt8]) throws(CheckpointError) {
        let r: Result<Void, CheckpointError> = bytes.withUnsafeBytes { raw in Result { () throws(CheckpointError) in try write(raw) } }
        try r.get()
    }

    private func flush() throws(CheckpointError) {
        guard !buffer.isEmpty else { return }
        let r: Result<Void, CheckpointError> = buffer.withUnsafeBytes { raw in Result { () throws(CheckpointError) in try writeAll(raw) } }
        try r.get()
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError.system("write", path: temporaryPath)
            }
            done += n
        }
    }

    /// Flushes, syncs and renames the file into place.
    public func commit() throws(CheckpointError) {
        try flush()
        if durable { guard fsync(fd) == 0 else { throw CheckpointError.system("fsync", path: temporaryPath) } }
        guard close(fd) == 0 else { fd = -1; throw CheckpointError.system("close", path: temporaryPath) }
        fd = -1
        guard rename(temporaryPath, path) == 0 else { throw CheckpointError.system("rename", path: path) }
        committed = true
        shears_cleanup_unregister(cleanupSlot)
        cleanupSlot = -1
        guard durable else { return }
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Writes `bytes` to `path` atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws(CheckpointError) {
        let f = try AtomicFile(path: path)
        try f.write(bytes)
        try f.commit()
    }
}
