import Dispatch
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Runs `body(worker)` on `workers` threads and waits; worker indices are 0..<workers.
func parallel(workers: Int, _ body: @Sendable (Int) -> Void) {
    if workers <= 1 { body(0); return }
    DispatchQueue.concurrentPerform(iterations: workers, execute: body)
}

/// Slots shared by worker threads that each write disjoint elements (no Array, so no exclusivity
/// or copy-on-write checks race between threads).
final class SharedSlots<T>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<T>
    let count: Int
    init(repeating value: T, count: Int) {
        self.count = count
        base = .allocate(capacity: max(1, count))
        base.initialize(repeating: value, count: count)
    }
    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }
    subscript(i: Int) -> T {
        get { precondition(i >= 0 && i < count); return base[i] }
        set { precondition(i >= 0 && i < count); base[i] = newValue }
    }
    var values: [T] { Array(UnsafeBufferPointer(start: base, count: count)) }
}

/// Number of cores online (the default thread count of parallel commands).
public func availableCores() -> Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}
