#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import Dispatch

/// Runs `body(worker)` for every worker index in `0 ..< workers` concurrently, and returns when all
/// have finished.
///
/// With `workers` ≤ 1 the body runs once, as worker 0, on the calling thread. Otherwise the workers
/// run through `DispatchQueue.concurrentPerform`, which uses at most one thread per core. How the
/// work is split is the body's business: a worker typically takes every `workers`-th item from its
/// index, a contiguous range, or the next item from a shared counter.
///
/// - Parameters:
///   - workers: the number of workers (the thread count the caller chose).
///   - body: the work of one worker, given its index.
///
/// ### See Also
/// - ``UnsafeSendable``, ``SharedSlots``, ``availableCores()``
public func parallelFor(workers: Int, _ body: @Sendable (Int) -> Void) {
    if workers <= 1 { body(0); return }
    DispatchQueue.concurrentPerform(iterations: workers, execute: body)
}

/// The number of cores online: the default thread count of the parallel commands.
///
/// - Returns: `sysconf(_SC_NPROCESSORS_ONLN)`, at least 1.
public func availableCores() -> Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}
