import CBLAS

/// LAPACK's Cholesky routines (`?potrf` / `?potrs`, `uplo = "L"`: the lower triangle in LAPACK's
/// column-major terms, which is the upper one of a row-major symmetric matrix) behind one checked
/// entry point per operation, for ``BLAS`` (float32, `s…`) and ``DoubleBLAS`` (float64, `d…`).
/// Sizes are checked against each other and against LAPACK's 32-bit integers; pointers never leave.
enum LAPACKCholesky {
    typealias Factor<T> = (UnsafePointer<CChar>?, UnsafePointer<Int32>?, UnsafeMutablePointer<T>?, UnsafePointer<Int32>?,
                           UnsafeMutablePointer<Int32>?) -> Void
    typealias Solve<T> = (UnsafePointer<CChar>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?, UnsafePointer<T>?, UnsafePointer<Int32>?,
                          UnsafeMutablePointer<T>?, UnsafePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> Void

    /// Factors the symmetric positive definite `n × n` matrix `a` in place.
    /// - Returns: false when `a` is not positive definite (LAPACK's `info` is not 0).
    static func factor<T>(_ a: inout [T], n: Int, _ potrf: Factor<T>) -> Bool {
        precondition(n >= 0 && n <= Int(Int32.max) && a.count == n * n, "Cholesky factor: sizes")
        guard n > 0 else { return true }
        OpenBLASIdleWait.apply()
        var info: Int32 = 0
        var nn = Int32(n), lda = Int32(n)
        var uplo = CChar(UInt8(ascii: "L"))
        BLASThreadGate.shared { a.withUnsafeMutableBufferPointer { potrf(&uplo, &nn, $0.baseAddress, &lda, &info) } }
        return info == 0
    }

    /// Solves `A·X = B` with `A` factored by ``factor(_:n:_:)``; `b` holds `nrhs` right-hand sides
    /// of `n` values each, one after the other (column-major `n × nrhs`), overwritten by `X`.
    static func solve<T>(factored f: [T], n: Int, columnMajor b: inout [T], nrhs: Int, _ potrs: Solve<T>) -> Bool {
        precondition(n >= 0 && nrhs >= 0 && n <= Int(Int32.max) && nrhs <= Int(Int32.max) && f.count == n * n
                     && b.count == n * nrhs, "Cholesky solve: sizes")
        guard n > 0, nrhs > 0 else { return true }
        OpenBLASIdleWait.apply()
        var info: Int32 = 0
        var nn = Int32(n), lda = Int32(n), r = Int32(nrhs), ldb = Int32(n)
        var uplo = CChar(UInt8(ascii: "L"))
        BLASThreadGate.shared {
            f.withUnsafeBufferPointer { pf in
                b.withUnsafeMutableBufferPointer { potrs(&uplo, &nn, &r, pf.baseAddress, &lda, $0.baseAddress, &ldb, &info) }
            }
        }
        return info == 0
    }
}
