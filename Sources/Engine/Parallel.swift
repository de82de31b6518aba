import ShearsBLAS
import ShearsConcurrency

/// The engine's own loops (norms, rotary, softmax, SwiGLU, Fisher folds, attention) split across
/// threads; large matrix products are threaded by OpenBLAS. Both follow `--threads` (``threads``).
public enum Parallel {
    nonisolated(unsafe) private static var configured: Int? = nil

    /// Threads for the engine's loops: the value set with ``setThreads(_:)``, else OpenBLAS's count.
    public static var threads: Int { configured ?? max(1, BLAS.threads) }

    /// Sets the engine's and OpenBLAS's thread counts (call before running the model).
    public static func setThreads(_ n: Int) {
        configured = max(1, n)
        BLAS.setThreads(n)
    }

    /// Runs `body(range)` over `0 ..< count` split into contiguous chunks, in parallel when the
    /// work is large enough (`count · costPerItem` ≥ ~64k operations).
    static func chunks(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let t = threads
        guard t > 1, count > 1, count * costPerItem >= 65_536 else {
            body(0..<count)
            return
        }
        run(parts: min(t, count), count: count, body)
    }

    /// Like ``chunks(_:costPerItem:_:)`` for loops whose items call sgemm themselves (attention
    /// heads): each thread runs its items' small matrix products on its own, with OpenBLAS set to
    /// one thread for the duration, instead of every small product being split and synchronised.
    /// ``BLASProfile`` does not count the products made inside (it is single-threaded).
    static func chunksCallingBLAS(_ count: Int, _ body: (Range<Int>) -> Void) {
        let t = threads
        guard t > 1, count > 1 else {
            body(0..<count)
            return
        }
        let profiling = BLASProfile.enabled
        BLASProfile.enabled = false
        defer { BLASProfile.enabled = profiling }
        // Other threads' products wait for the section, so a second model in the process never
        // makes one with the count at 1 (which would change its rounding).
        BLAS.singleThreadedSection {
            run(parts: min(t, count), count: count, worker: true, body)
        }
    }

    private static func run(parts: Int, count: Int, worker: Bool = false, _ body: (Range<Int>) -> Void) {
        withoutActuallyEscaping(body) { b in
            let box = UnsafeSendable(b)
            parallelFor(workers: parts) { i in
                let lo = count * i / parts, hi = count * (i + 1) / parts
                if worker { BLAS.sectionWorker { box.value(lo..<hi) } } else { box.value(lo..<hi) }
            }
        }
    }
}
