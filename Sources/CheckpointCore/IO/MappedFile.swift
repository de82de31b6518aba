#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CKernels

/// A read-only memory map of a whole file, unmapped when the last reference goes away.
///
/// This type and ``TensorView`` hold the module's raw-pointer code. Callers get the bytes only
/// inside scoped closures (``withUnsafeBytes(_:)``, ``withUnsafeBytes(in:_:)``), with the range
/// checked against the file's size. Mapping touches no data: pages are read when first used.
public final class MappedFile: @unchecked Sendable {  // immutable after init
    /// The path the file was opened with.
    public let path: String
    /// The file's size in bytes at open time.
    public let count: Int
    private let base: UnsafeRawPointer?
    /// The mapping's slot in the SIGBUS guard (`mapguard.c`): a file truncated while mapped ends
    /// the process with an error naming it (exit 2) rather than a silent crash.
    private var guardSlot: Int32 = -1

    /// Access-pattern hints passed to `madvise`.
    public enum Advice: Sendable {
        case normal, sequential, random, willNeed
    }

    /// Maps `path` read-only.
    /// - Throws: ``CheckpointError`` with code `io` naming the path and the failing call.
    public init(path: String) throws(CheckpointError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.system("open", path: path) }
        defer { close(fd) }  // the mapping outlives the descriptor
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CheckpointError.system("fstat", path: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError(.io, (st.st_mode & S_IFMT) == S_IFDIR ? "is a folder, not a file" : "is not a regular file", path: path)
        }
        count = Int(st.st_size)
        if count == 0 { base = nil; return }  // mmap of length 0 is EINVAL
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw CheckpointError.system("mmap", path: path) }
        base = UnsafeRawPointer(p)
        guardSlot = shears_mapping_register(p, count, path)
    }

    deinit {
        shears_mapping_unregister(guardSlot)
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// Calls `body` with the whole mapping. Do not let the pointer escape the closure.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Calls `body` with the bytes in `range`, which must lie inside the file (a programmer error
    /// otherwise: ranges come from validated headers).
    public func withUnsafeBytes<R, E: Error>(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range \(range) outside file of \(count) bytes")
        if range.isEmpty { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base! + range.lowerBound, count: range.count))
    }

    /// Copies the bytes in `range` (checked) into a new array.
    public func bytes(in range: Range<Int>) -> [UInt8] {
        withUnsafeBytes(in: range) { Array($0) }
    }

    /// Tells the kernel how `range` (default: the whole file) will be read.
    public func advise(_ advice: Advice, range: Range<Int>? = nil) {
        guard let base else { return }
        let r = range ?? 0..<count
        guard r.lowerBound >= 0, r.upperBound <= count, !r.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = r.lowerBound / page * page
        let flag: Int32 = switch advice {
        case .normal: MADV_NORMAL
        case .sequential: MADV_SEQUENTIAL
        case .random: MADV_RANDOM
        case .willNeed: MADV_WILLNEED
        }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), r.upperBound - start, flag)
    }
}

extension CheckpointError {
    /// An `io` error for a failed system call, with `strerror(errno)`.
    static func system(_ call: String, path: String) -> CheckpointError {
        let e = errno
        let why = String(cString: strerror(e))
        return CheckpointError(.io, e == ENOENT ? "no such file or folder" : "\(call) failed: \(why) (errno \(e))", path: path)
    }
}
