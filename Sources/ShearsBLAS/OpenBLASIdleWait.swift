#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// How long OpenBLAS's idle worker threads spin before they sleep.
///
/// After each threaded product, OpenBLAS's pthreads build keeps its worker threads busy-waiting
/// (`sched_yield` in a loop) for 2^28 cycles, about a tenth of a second, in case another product
/// follows. Between products the engine runs its own threaded loops (norms, softmax, SwiGLU,
/// attention heads); on a machine with as many cores as threads the spinning workers take CPU
/// time from those loops. Measured on SmolLM2's forward+backward (2 cores, 10 × 128 tokens):
/// 2^12 cycles instead of 2^28 saves about 8% of the wall time (Tools/bench-engine).
///
/// OpenBLAS reads the setting (`OPENBLAS_THREAD_TIMEOUT`, an exponent from 4 to 30) when it
/// starts its thread pool, which happens before `main`. ``apply()`` runs once, before this module's
/// first call into OpenBLAS (every call goes through ``BLAS`` or ``DoubleBLAS``, which trigger it),
/// so no product is in flight: it sets the variable when the user has not, and restarts the pool
/// through OpenBLAS's exported `blas_thread_shutdown_` and `blas_thread_init` (looked up at run time;
/// when a build lacks them nothing changes). A value the user set (`OPENBLAS_THREAD_TIMEOUT` or
/// `GOTO_THREAD_TIMEOUT`) is left alone.
public enum OpenBLASIdleWait {
    /// The exponent Shears uses when the user has not chosen one.
    public static let defaultExponent = 12

    /// Whether the pool was restarted with ``defaultExponent`` (false when the user set a value or
    /// the OpenBLAS build does not export the functions needed).
    public static var restarted: Bool { once }

    /// The value to set, or nil to leave OpenBLAS's own: nil when either variable is present.
    public static func setting(environment: (String) -> String?) -> String? {
        if environment("OPENBLAS_THREAD_TIMEOUT") != nil || environment("GOTO_THREAD_TIMEOUT") != nil { return nil }
        return String(defaultExponent)
    }

    /// Runs the one-time set-up (idempotent; thread-safe through Swift's lazy global initialisation).
    /// The command line calls it first thing, while it has one thread; library users get it before
    /// their first product. Its `setenv` is the process's first in a library process (glibc then
    /// builds a new environment array and leaves the old one to concurrent `getenv` readers).
    @inline(__always) public static func apply() { _ = once }

    private static let once: Bool = {
        guard let value = setting(environment: { getenv($0).map { String(cString: $0) } }) else { return false }
        typealias Fn = @convention(c) () -> Int32
        guard let handle = dlopen(nil, RTLD_NOW) else { return false }
        defer { dlclose(handle) }
        guard let shutdown = dlsym(handle, "blas_thread_shutdown_"), let initialise = dlsym(handle, "blas_thread_init") else {
            return false
        }
        setenv("OPENBLAS_THREAD_TIMEOUT", value, 1)
        // Older releases read the variable in openblas_read_env (at load time) rather than in
        // blas_thread_init: read it again where that function exists.
        if let readEnv = dlsym(handle, "openblas_read_env") {
            unsafeBitCast(readEnv, to: (@convention(c) () -> Void).self)()
        }
        _ = unsafeBitCast(shutdown, to: Fn.self)()
        _ = unsafeBitCast(initialise, to: Fn.self)()
        return true
    }()
}
