import CBLAS
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Time and floating-point work spent inside ``BLAS/sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``
/// while ``enabled`` (off by default; for benchmarks, from one thread at a time). The engine turns
/// it off while its threads make small products concurrently (attention heads), so the figures
/// cover the products OpenBLAS threads itself.
public enum BLASProfile {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public static var seconds = 0.0
    nonisolated(unsafe) public static var flops = 0.0
    nonisolated(unsafe) public static var calls = 0

    public static func reset() { seconds = 0; flops = 0; calls = 0 }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}

/// OpenBLAS, the library every matrix product goes through.
public enum BLAS {
    /// Threads OpenBLAS uses (outside a ``singleThreadedSection(_:)``, the process's setting).
    public static var threads: Int { BLASThreadGate.shared { Int(openblas_get_num_threads()) } }
    /// Sets the OpenBLAS thread count (effective immediately; waits for products in flight).
    public static func setThreads(_ n: Int) {
        OpenBLASIdleWait.apply()
        BLASThreadGate.exclusive { openblas_set_num_threads(Int32(max(1, n))) }
    }

    /// Runs `body` with OpenBLAS set to one thread, for loops whose own threads each make small
    /// products (attention heads), and restores the count after. Products made elsewhere in the
    /// process wait until the section ends, so their results never depend on it (OpenBLAS's kernel
    /// choice, and so the rounding, follows the thread count). Threads that `body` starts must run
    /// their work inside ``sectionWorker(_:)``. A nested call just runs `body`.
    public static func singleThreadedSection<R>(_ body: () throws -> R) rethrows -> R {
        OpenBLASIdleWait.apply()
        return try BLASThreadGate.exclusive {
            let saved = openblas_get_num_threads()
            openblas_set_num_threads(1)
            defer { openblas_set_num_threads(saved) }
            return try body()
        }
    }

    /// Runs the work of one thread started by a ``singleThreadedSection(_:)``'s body: its products
    /// pass the gate the section holds.
    public static func sectionWorker<R>(_ body: () throws -> R) rethrows -> R {
        try BLASThreadGate.asWorker(body)
    }
    /// The kernel family OpenBLAS chose ("SkylakeX", "Haswell", "Prescott", ...).
    public static var coreName: String { String(cString: openblas_get_corename()) }
    /// OpenBLAS's build configuration string.
    public static var config: String { String(cString: openblas_get_config()) }

    /// `y[m,n] = x[m,k] · w[n,k]ᵀ`: an `nn.Linear` with PyTorch's [out, in] weight layout.
    public static func linear(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        precondition(m >= 0 && n >= 0 && k >= 0 && m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max))
        OpenBLASIdleWait.apply()
        BLASThreadGate.shared {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                        1, x, Int32(k), w, Int32(k), 0, y, Int32(n))
        }
    }

    /// `c[m,n] = alpha · a[m,k] · b[k,n] + beta · c` (row-major, no transposes).
    public static func gemm(m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>) {
        precondition(m >= 0 && n >= 0 && k >= 0 && m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max))
        OpenBLASIdleWait.apply()
        BLASThreadGate.shared {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                        alpha, a, Int32(k), b, Int32(n), beta, c, Int32(n))
        }
    }

    /// General `c = alpha · op(a) · op(b) + beta · c`, row-major with explicit leading dimensions,
    /// where op(x) is x or xᵀ. `op(a)` is m×k, `op(b)` is k×n, `c` is m×n. Strided sub-matrices
    /// (one attention head inside a [tokens, heads·head_dim] buffer) are passed with their
    /// parent's leading dimension.
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(m >= 0 && n >= 0 && k >= 0 && m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max))
        precondition(lda >= max(1, transA ? m : k) && ldb >= max(1, transB ? k : n) && ldc >= max(1, n),
                     "sgemm: leading dimensions too small")
        if m == 0 || n == 0 { return }
        OpenBLASIdleWait.apply()
        let t0 = BLASProfile.enabled ? BLASProfile.now() : 0
        BLASThreadGate.shared {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        if BLASProfile.enabled {
            BLASProfile.seconds += BLASProfile.now() - t0
            BLASProfile.flops += 2 * Double(m) * Double(n) * Double(k)
            BLASProfile.calls += 1
        }
    }

    /// Factors the symmetric positive definite `n × n` float32 matrix `a` in place (Cholesky,
    /// LAPACK `spotrf`, lower triangle in row-major terms); use it with
    /// ``choleskySolve(factored:n:columnMajor:nrhs:)``.
    /// - Returns: false when `a` is not positive definite in float32.
    public static func choleskyFactor(_ a: inout [Float], n: Int) -> Bool {
        LAPACKCholesky.factor(&a, n: n, spotrf_)
    }

    /// Solves `A·X = B` in float32 with `A` factored by ``choleskyFactor(_:n:)``; `b` holds `nrhs`
    /// right-hand sides of `n` values each, one after the other (column-major `n × nrhs`), and is
    /// overwritten by `X` in the same layout.
    public static func choleskySolve(factored f: [Float], n: Int, columnMajor b: inout [Float], nrhs: Int) -> Bool {
        LAPACKCholesky.solve(factored: f, n: n, columnMajor: &b, nrhs: nrhs, spotrs_)
    }

    /// Safe-array form of ``gemm(m:n:k:alpha:a:b:beta:c:)``.
    public static func matmul(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        precondition(a.count == m * k && b.count == k * n, "matmul: operand sizes do not match \(m)×\(k) · \(k)×\(n)")
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    gemm(m: m, n: n, k: k, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
                }
            }
        }
        return c
    }
}
