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
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
}
