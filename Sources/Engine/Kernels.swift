#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Elementwise loops shared by the layers.
enum Kernels {
    /// y[r, :] += v for every row.
    static func addRowVector(_ y: Matrix, _ v: Matrix) {
        precondition(v.count == y.cols)
        let pv = v.storage
        for r in 0..<y.rows {
            let row = y.storage + r * y.cols
            for j in 0..<y.cols { row[j] += pv[j] }
        }
    }

    /// The logistic function.
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    /// e^x for the softmax and SiLU loops: Cephes' single-precision algorithm (range reduction by
    /// ln 2 in two parts, degree-6 polynomial, 2^n by exponent bits), written without calls or
    /// branches so that the loops vectorize; about 1 ulp from the correctly rounded value over the
    /// clamped range [−87.3, 88.0] (inputs beyond it saturate; no inf or NaN comes out).
    @inline(__always) static func exp(_ x: Float) -> Float {
        let xc = min(max(x, -87.33654), 88.0)
        // n = round(x / ln 2), by the 1.5·2^23 trick (no rounding instruction needed).
        let magic: Float = 12_582_912
        let n = (xc * 1.442_695_04 + magic) - magic
        let r = xc - n * 0.693_359_375 + n * 2.121_944_4e-4
        var y: Float = 1.987_569_15e-4
        y = y * r + 1.398_199_95e-3
        y = y * r + 8.333_451_9e-3
        y = y * r + 4.166_579_59e-2
        y = y * r + 1.666_666_55e-1
        y = y * r + 5.000_000_12e-1
        y = y * (r * r) + r + 1
        let bits = UInt32(truncatingIfNeeded: Int32(n) &+ 127) << 23
        return y * Float(bitPattern: bits)
    }
}

/// Public access to the engine's scalar kernels, for tests and benchmarks.
public enum EngineMath {
    /// The engine's fast e^x (see `Kernels.exp`).
    public static func exp(_ x: Float) -> Float { Kernels.exp(x) }
}
