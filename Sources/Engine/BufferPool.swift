#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import ShearsConcurrency

/// Large matrix buffers kept after their ``Matrix`` is freed, for the next matrix of the same size.
///
/// The engine works layer after layer with the same shapes: each layer's weights converted to F32,
/// its gradients, its activations. Without reuse every one of those buffers is fresh memory from
/// the kernel (glibc serves large requests with `mmap`), so every page is faulted in and cleared
/// again for each layer: on a 1B-parameter model that is about 14 GB of page faults per
/// forward+backward pass, and a fifth of its time (Tools/bench-engine --synthetic: 65.7 s without
/// reuse, 50.8 s with it). Buffers of at least ``minimumBytes`` are kept here, up to ``capacity`` bytes
/// in total (beyond that they are freed), and handed out again for a request of exactly the same
/// size. Memory therefore stays bounded: live matrices plus at most the cap, which is 64 MiB or
/// four times the largest decoder layer's F32 weights, whichever is larger, but at most a quarter
/// of the memory limit (``LlamaModel`` sets it from ``MemoryBudget``; the embedding and head are
/// not layers), and
/// the pool is emptied at the end of every forward+backward and loss pass.
final class BufferPool: @unchecked Sendable {
    /// `SHEARS_BUFFER_POOL=0` turns reuse off (for measuring what it saves).
    static let shared = BufferPool(capacity: getenv("SHEARS_BUFFER_POOL").map { String(cString: $0) } == "0" ? -1 : defaultCapacity)

    /// Smaller buffers go straight to `free` (malloc reuses them well).
    static let minimumBytes = 1 << 20
    /// The most the pool keeps by default (in buffers no matrix uses).
    static let defaultCapacity = 64 << 20

    private let lock = Lock()
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private(set) var keptBytes = 0
    /// Bytes of buffers handed out and not yet released.
    private(set) var liveBytes = 0
    /// The most that live and kept buffers held together since the last ``resetPeak()``.
    private var peak = 0
    /// Negative: nothing is kept (`SHEARS_BUFFER_POOL=0`).
    private var capacityBytes: Int

    /// The most the pool keeps, in bytes.
    var capacity: Int { lock.withLock { capacityBytes } }

    /// Raises the cap to `bytes` when it is lower (never lowers it).
    func reserve(atLeast bytes: Int) {
        lock.withLock { if capacityBytes >= 0 { capacityBytes = max(capacityBytes, bytes) } }
    }

    /// Sets the cap to `bytes` (raising or lowering it; kept buffers beyond it are freed).
    func setCapacity(_ bytes: Int) {
        lock.withLock { if capacityBytes >= 0 { capacityBytes = max(0, bytes) } }
        if keptBytes > bytes { drain() }
    }

    /// The most engine matrices (live, plus buffers kept for reuse) held at once since the last
    /// ``resetPeak()``: the engine's own share of the process's anonymous memory.
    var peakBytes: Int { lock.withLock { peak } }

    func resetPeak() { lock.withLock { peak = liveBytes + keptBytes } }

    /// A separate pool (tests); the engine's matrices use ``shared``.
    init(capacity: Int = BufferPool.defaultCapacity) {
        capacityBytes = capacity
    }

    /// A 64-byte-aligned buffer of `bytes` bytes (contents unspecified).
    func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= Self.minimumBytes, let p = lock.withLock({ () -> UnsafeMutableRawPointer? in
            guard let p = free[bytes]?.popLast() else { return nil }
            keptBytes -= bytes
            liveBytes += bytes
            return p
        }) {
            return p
        }
        lock.withLock {
            liveBytes += bytes
            peak = max(peak, liveBytes + keptBytes)
        }
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            // Memory may be held here for other sizes: give it back and try once more.
            drain()
            guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("Matrix: cannot allocate \(bytes) bytes") }
            return raw
        }
        return raw
    }

    /// Takes back a buffer from ``allocate(bytes:)``.
    func release(_ p: UnsafeMutableRawPointer, bytes: Int) {
        if lock.withLock({ () -> Bool in
            liveBytes -= bytes
            guard bytes >= Self.minimumBytes, keptBytes + bytes <= capacityBytes else { return false }
            free[bytes, default: []].append(p)
            keptBytes += bytes
            return true
        }) {
            return
        }
        Glibc.free(p)
    }

    /// Frees every kept buffer.
    func drain() {
        let buffers = lock.withLock { () -> [UnsafeMutableRawPointer] in
            let all = free.values.flatMap { $0 }
            free = [:]
            keptBytes = 0
            return all
        }
        for p in buffers { Glibc.free(p) }
    }
}
