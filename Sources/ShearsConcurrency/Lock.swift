#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// A mutual-exclusion lock over a `pthread_mutex_t`, shared by every module that needs one.
///
/// The mutex lives in its own heap allocation: a `pthread_mutex_t` must keep its address once
/// initialised, and a Swift stored property has none to give (`&property` may pass the address of a
/// temporary copy, so two threads could lock two different mutexes). The struct is `~Copyable`, so
/// the one allocation has one owner and is destroyed exactly once, in `deinit`.
///
/// ```swift
/// final class Counter: @unchecked Sendable {
///     private let lock = Lock()
///     private var value = 0
///     func next() -> Int { lock.withLock { defer { value += 1 }; return value } }
/// }
/// ```
public struct Lock: ~Copyable, @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    /// Creates an unlocked mutex with default attributes.
    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` while holding the lock, and releases it however `body` returns or throws.
    ///
    /// - Parameter body: the critical section; it must not take the same lock again (the mutex is
    ///   not recursive).
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws, with its type.
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
