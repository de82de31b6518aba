import CBLAS
import Dispatch

/// Float64 matrix routines (row-major) for statistics and least-squares solves: OpenBLAS's
/// `dsyrk`/`dgemm` and LAPACK's Cholesky (`dpotrf`/`dpotrs`). Entry points check sizes; pointers
/// never leave these functions.
public enum DoubleBLAS {
    /// `c[w×w] += aᵀ·a` for `a` of `rows × w` (row-major), upper and lower triangles both filled
    /// (`dsyrk` into the lower triangle, then mirrored by ``symmetrize(_:n:)`` when asked).
    public static func addGram(_ a: [Double], rows: Int, width w: Int, into c: inout [Double]) {
        precondition(a.count == rows * w && c.count == w * w, "DoubleBLAS.addGram: sizes")
        guard rows > 0, w > 0 else { return }
        OpenBLASIdleWait.apply()
        BLASThreadGate.shared {
            a.withUnsafeBufferPointer { pa in
                c.withUnsafeMutableBufferPointer { pc in
                    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, Int32(w), Int32(rows), 1, pa.baseAddress, Int32(w), 1, pc.baseAddress, Int32(w))
                }
            }
        }
    }

    /// `c += aᵀ·a` into the lower triangle of a `w × w` row-major buffer (memory or a mapped file),
    /// as the array form does.
    public static func addGram(_ a: [Double], rows: Int, width w: Int, into c: UnsafeMutableBufferPointer<Double>) {
        precondition(a.count == rows * w && c.count == w * w, "DoubleBLAS.addGram: sizes")
        guard rows > 0, w > 0 else { return }
        OpenBLASIdleWait.apply()
        BLASThreadGate.shared {
            a.withUnsafeBufferPointer { pa in
                cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, Int32(w), Int32(rows), 1, pa.baseAddress, Int32(w), 1, c.baseAddress, Int32(w))
            }
        }
    }

    /// Rows of one float32 block of ``addGram(_:rows:width:into:panel:)``: the float32 sums run over
    /// at most this many rows before they are added to the float64 accumulator.
    public static let float32GramRows = 1024

    /// `c += aᵀ·a` into the lower triangle of a `w × w` row-major Float64 buffer, for `a` of
    /// `rows × w` Float32 (row-major): each block of at most ``float32GramRows`` rows is multiplied
    /// with `sgemm` in column panels of `panel` columns (float32 sums over the block's rows; each
    /// product of two float32 values is exact), and each panel is added to `c` in float64. The
    /// float32 rate (1.67× `dsyrk` on float64 copies in `shears-bench gram`), with a float32 panel of
    /// `w × panel` values as the only extra memory (formats/recovery.md §2).
    public static func addGram(_ a: [Float], rows: Int, width w: Int, into c: UnsafeMutableBufferPointer<Double>, panel: Int = 512) {
        precondition(a.count == rows * w && c.count == w * w && panel > 0, "DoubleBLAS.addGram: sizes")
        guard rows > 0, w > 0 else { return }
        let p = min(panel, w)
        var t = [Float](repeating: 0, count: w * p)
        OpenBLASIdleWait.apply()
        a.withUnsafeBufferPointer { pa in
            t.withUnsafeMutableBufferPointer { pt in
                guard let base = pa.baseAddress, let tb = pt.baseAddress, let cb = c.baseAddress else { return }
                var r0 = 0
                while r0 < rows {
                    let nr = min(float32GramRows, rows - r0)
                    let block = base + r0 * w
                    var j0 = 0
                    while j0 < w {
                        let np = min(p, w - j0), m = w - j0
                        // t[m × np] = a[r0.., j0..w]ᵀ · a[r0.., j0..j0+np]
                        BLASThreadGate.shared {
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(np), Int32(nr), 1,
                                        block + j0, Int32(w), block + j0, Int32(w), 0, tb, Int32(np))
                        }
                        // The float64 additions, split over the cores (memory-bound).
                        let parts = max(1, min(8, m / 256))
                        let cAddress = Int(bitPattern: cb), tAddress = Int(bitPattern: tb), first = j0
                        DispatchQueue.concurrentPerform(iterations: parts) { part in
                            let c = UnsafeMutablePointer<Double>(bitPattern: cAddress)!, t = UnsafePointer<Float>(bitPattern: tAddress)!
                            for i in (part * m / parts)..<((part + 1) * m / parts) {
                                let row = c + (first + i) * w + first, src = t + i * np
                                for j in 0..<min(np, i + 1) { row[j] += Double(src[j]) }
                            }
                        }
                        j0 += np
                    }
                    r0 += nr
                }
            }
        }
    }

    /// Copies the lower triangle of the `n × n` row-major matrix into the upper one.
    public static func symmetrize(_ c: inout [Double], n: Int) {
        precondition(c.count == n * n)
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { c[i * n + j] = c[j * n + i] } }
    }

    /// `c[m×n] = alpha·op(a)·op(b) + beta·c`, row-major.
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Double = 1,
                            _ a: [Double], _ b: [Double], beta: Double = 0, _ c: inout [Double]) {
        precondition(a.count == m * k && b.count == k * n && c.count == m * n, "DoubleBLAS.gemm: sizes")
        guard m > 0, n > 0 else { return }
        if k == 0 { for i in c.indices { c[i] *= beta }; return }
        OpenBLASIdleWait.apply()
        BLASThreadGate.shared {
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                    Int32(m), Int32(n), Int32(k), alpha, pa.baseAddress, Int32(transA ? m : k),
                                    pb.baseAddress, Int32(transB ? k : n), beta, pc.baseAddress, Int32(n))
                    }
                }
            }
        }
    }

    /// Factors the symmetric positive definite `n × n` matrix `a` in place (Cholesky, LAPACK
    /// `dpotrf`, lower triangle in row-major terms); use it with ``choleskySolve(factored:n:columnMajor:nrhs:)``.
    /// - Returns: false when `a` is not positive definite.
    public static func choleskyFactor(_ a: inout [Double], n: Int) -> Bool {
        LAPACKCholesky.factor(&a, n: n, dpotrf_)
    }

    /// Solves `A·X = B` with `A` factored by ``choleskyFactor(_:n:)``; `b` holds `nrhs` right-hand
    /// sides of `n` values each, one after the other (column-major `n × nrhs`, i.e. row-major
    /// `nrhs × n`), and is overwritten by `X` in the same layout.
    public static func choleskySolve(factored f: [Double], n: Int, columnMajor b: inout [Double], nrhs: Int) -> Bool {
        LAPACKCholesky.solve(factored: f, n: n, columnMajor: &b, nrhs: nrhs, dpotrs_)
    }

    /// Solves `A·X = B` for a symmetric positive definite `A` (`n × n`) and `B` (`n × nrhs`,
    /// row-major) by Cholesky; `B` is overwritten by `X`.
    /// - Returns: false when `A` is not positive definite (the factorization failed).
    public static func choleskySolve(_ a: [Double], n: Int, _ b: inout [Double], nrhs: Int) -> Bool {
        precondition(a.count == n * n && b.count == n * nrhs, "DoubleBLAS.choleskySolve: sizes")
        guard n > 0, nrhs > 0 else { return true }
        // Row-major A is its own transpose (symmetric); row-major B (n × nrhs) is column-major
        // Bᵀ (nrhs × n), so solve with B transposed into column-major n × nrhs.
        var fa = a
        guard choleskyFactor(&fa, n: n) else { return false }
        var colMajor = [Double](repeating: 0, count: n * nrhs)
        for i in 0..<n { for j in 0..<nrhs { colMajor[j * n + i] = b[i * nrhs + j] } }
        guard choleskySolve(factored: fa, n: n, columnMajor: &colMajor, nrhs: nrhs) else { return false }
        for i in 0..<n { for j in 0..<nrhs { b[i * nrhs + j] = colMajor[j * n + i] } }
        return true
    }
}
