#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import ShearsConcurrency

/// Elementwise loops shared by the layers.
enum Kernels {
    /// y[r, :] += v for every row.
    static func addRowVector(_ y: Matrix, _ v: Matrix) {
        precondition(v.count == y.cols)
        let pv = UnsafeSendable(v.storage), py = UnsafeSendable(y.storage), n = y.cols
        Parallel.chunks(y.rows, costPerItem: n) { rows in
            for r in rows {
                let row = py.value + r * n, pv = pv.value
                for j in 0..<n { row[j] += pv[j] }
            }
        }
    }

    /// Σ p[j]² in Double (eight partial sums).
    @inline(__always) static func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
        var acc = SIMD8<Double>()
        var j = 0
        while j + 8 <= n {
            let d = SIMD8<Double>(UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<Float>.self))
            acc += d * d
            j += 8
        }
        var s = acc.sum()
        while j < n { s += Double(p[j]) * Double(p[j]); j += 1 }
        return s
    }

    /// Σ p[j] in Float (eight partial sums).
    @inline(__always) static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var j = 0
        while j + 8 <= n {
            acc += UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<Float>.self)
            j += 8
        }
        var s = acc.sum()
        while j < n { s += p[j]; j += 1 }
        return s
    }

    /// max_j p[j] (−∞ for none).
    @inline(__always) static func maximum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= n {
            acc = pointwiseMax(acc, UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<Float>.self))
            j += 8
        }
        var m = acc.max()
        while j < n { m = max(m, p[j]); j += 1 }
        return m
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
        let shifted = xc * 1.442_695_04 + magic
        let n = shifted - magic
        let r = xc - n * 0.693_359_375 + n * 2.121_944_4e-4
        var y: Float = 1.987_569_15e-4
        y = y * r + 1.398_199_95e-3
        y = y * r + 8.333_451_9e-3
        y = y * r + 4.166_579_59e-2
        y = y * r + 1.666_666_55e-1
        y = y * r + 5.000_000_12e-1
        y = y * (r * r) + r + 1
        // n as an integer from the low mantissa bits of `shifted` (1.5·2^23 + n, ulp 1): the same
        // value as Int32(n), without a checked float-to-int conversion that stops vectorization.
        let bits = (shifted.bitPattern &- magic.bitPattern &+ 127) << 23
        return y * Float(bitPattern: bits)
    }
}

/// Public access to the engine's scalar kernels, for tests and benchmarks.
public enum EngineMath {
    /// The engine's fast e^x (see `Kernels.exp`).
    public static func exp(_ x: Float) -> Float { Kernels.exp(x) }
}
