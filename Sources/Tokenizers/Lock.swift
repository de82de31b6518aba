#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// A pthread mutex (the `Synchronization` module's `Mutex` needs macOS 15, above the package's
/// deployment target).
struct Lock: ~Copyable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
