#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Keeps OpenBLAS's process-wide thread count steady under every product that does not ask to
/// change it.
///
/// OpenBLAS has one thread count for the whole process, and the count changes results, not only
/// speed: with one thread a mid-sized `sgemm` takes the "direct" AVX-512 kernel, with more the
/// packed, threaded one, and the two round differently. The engine drops the count to one while its
/// own threads make the small per-head products of attention (``BLAS/singleThreadedSection(_:)``).
/// Without this gate, a second model running in the same process (a library user's, or a
/// concurrent test) could make a product during that window and get a different last bit.
///
/// Every call into OpenBLAS holds the gate shared; a section that changes the count holds it
/// exclusive, so other threads' products wait for the section to end. The threads working for a
/// section are marked and pass through without locking (they run with the count the section set).
enum BLASThreadGate {
    nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_rwlock_t> = {
        let l = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        var attr = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attr)
        // Writers first, so that a section is not starved by a stream of products elsewhere.
        pthread_rwlockattr_setkind_np(&attr, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(l, &attr)
        pthread_rwlockattr_destroy(&attr)
        return l
    }()

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    nonisolated(unsafe) private static let mark = UnsafeMutableRawPointer(bitPattern: 1)

    /// Whether some thread holds a section (read by workers the holder started).
    nonisolated(unsafe) private(set) static var sectionHeld = false

    /// Whether the calling thread is working inside a section (its products skip the gate).
    static var insideSection: Bool { pthread_getspecific(key) != nil }

    /// Runs one call into OpenBLAS with the thread count held steady.
    @inline(__always) static func shared<R>(_ body: () throws -> R) rethrows -> R {
        if insideSection { return try body() }
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    /// Runs `body` alone: no other thread's product runs meanwhile. The calling thread is marked as
    /// inside the section; a nested call just runs `body`.
    static func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        if insideSection { return try body() }
        pthread_rwlock_wrlock(lock)
        pthread_setspecific(key, mark)
        sectionHeld = true
        defer {
            sectionHeld = false
            pthread_setspecific(key, nil)
            pthread_rwlock_unlock(lock)
        }
        return try body()
    }

    /// Marks the calling thread as working for the section its caller holds, for `body`'s duration.
    static func asWorker<R>(_ body: () throws -> R) rethrows -> R {
        if insideSection { return try body() }
        precondition(sectionHeld, "BLAS.sectionWorker called outside a single-threaded section")
        pthread_setspecific(key, mark)
        defer { pthread_setspecific(key, nil) }
        return try body()
    }
}
