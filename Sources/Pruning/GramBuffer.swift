#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore

/// A zero-filled buffer of Float64 for a Gram matrix being accumulated: anonymous memory, or a
/// shared mapping of a file (spilled): then the kernel writes its pages to disk and evicts them
/// under pressure, and they never count as the process's anonymous memory.
///
/// The spill file is created in the given folder (the output's staging area), its space reserved
/// with `posix_fallocate` (a full disk is an error here, not a `SIGBUS` later) and unlinked at
/// once: no file is left behind, whether the run succeeds, fails or is killed; the disk space
/// returns when the buffer is freed.
///
/// This type holds the module's raw-pointer code for it: callers get the values only inside scoped
/// closures. Sharing: copies of a ``SiteStatistics`` share their buffer (statistics are accumulated,
/// then read).
public final class GramBuffer: @unchecked Sendable {  // mutated only by its single owner
    /// Number of Float64 values.
    public let count: Int
    /// Whether the values live in a mapped file.
    public let isSpilled: Bool
    private let base: UnsafeMutablePointer<Double>

    /// An anonymous, zero-filled buffer.
    public init(count: Int) {
        precondition(count >= 0, "GramBuffer: count")
        self.count = count
        isSpilled = false
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    /// A zero-filled buffer in a new file of `folder` (removed from the folder at once).
    /// - Throws: ``CheckpointError`` `io` naming the file (no space, no folder).
    public init(count: Int, spillingInto folder: String) throws(CheckpointError) {
        precondition(count >= 0, "GramBuffer: count")
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Double>.stride)
        guard !overflow else { throw CheckpointError(.validationOverflow, "a Gram matrix of \(count) values is too large") }
        var path = ""
        var fd: Int32 = -1
        for attempt in 0..<100 {
            path = FileSystem.join(folder, ".gram-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt).spill")
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw Self.failure("open", path: path) }
        defer { close(fd) }  // the mapping outlives the descriptor
        unlink(path)  // nothing to clean up later, whatever happens
        let r = posix_fallocate(fd, 0, off_t(bytes))
        guard r == 0 else {
            throw CheckpointError(.io, "cannot reserve \(bytes) bytes for a spilled covariance: \(String(cString: strerror(r))); free disk space or raise --memory-limit", path: path)
        }
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else { throw Self.failure("mmap", path: path) }
        self.count = count
        isSpilled = true
        base = p.bindMemory(to: Double.self, capacity: max(count, 1))
    }

    private static func failure(_ call: String, path: String) -> CheckpointError {
        CheckpointError(.io, "\(call) failed for a spilled covariance: \(String(cString: strerror(errno))); check the output folder, or raise --memory-limit", path: path)
    }

    deinit {
        if isSpilled {
            munmap(UnsafeMutableRawPointer(base), max(count, 1) * MemoryLayout<Double>.stride)
        } else {
            base.deallocate()
        }
    }

    public func withUnsafeBufferPointer<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    public func withUnsafeMutableBufferPointer<R, E: Error>(_ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableBufferPointer(start: base, count: count))
    }

    /// The value at `index` (checked).
    public subscript(index: Int) -> Double {
        precondition(index >= 0 && index < count, "GramBuffer: index \(index) outside \(count)")
        return base[index]
    }

    /// The values as an array.
    public var values: [Double] { withUnsafeBufferPointer { Array($0) } }
}
