#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import ShearsConcurrency

/// A row-major matrix of `Float` in its own 64-byte-aligned buffer: the one owner of compute
/// memory in the engine.
///
/// A reference type on purpose: activations and gradients are large and are passed to kernels and
/// consumers without copying. Element access through ``subscript(_:_:)`` is bounds-checked; the
/// kernels reach the buffer through ``withUnsafeMutablePointer(_:)`` and friends, scoped so the
/// pointer cannot outlive the matrix.
public final class Matrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    /// Module-internal raw storage for the kernels in this module. A caller that reads it must keep
    /// the matrix alive while the pointer is in use (a parameter, a returned value, or
    /// `withExtendedLifetime`): Swift may release a local right after its last use.
    let storage: UnsafeMutablePointer<Float>

    /// A zero-filled `rows × cols` matrix.
    public convenience init(rows: Int, cols: Int) {
        self.init(uninitializedRows: rows, cols: cols)
        storage.update(repeating: 0, count: max(1, rows * cols))
    }

    /// A `rows × cols` matrix whose elements are unspecified (for outputs that are written in
    /// full before they are read, such as an sgemm result with beta 0).
    init(uninitializedRows rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0, "Matrix: negative size \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        let (n, overflow) = rows.multipliedReportingOverflow(by: cols)
        precondition(!overflow && n <= Int.max / MemoryLayout<Float>.stride, "Matrix: \(rows)×\(cols) is too large")
        let count = max(1, n)
        storage = BufferPool.shared.allocate(bytes: count * MemoryLayout<Float>.stride).bindMemory(to: Float.self, capacity: count)
    }

    /// A matrix holding `values` (row-major; `values.count` must be `rows · cols`).
    public convenience init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "Matrix: \(values.count) values for \(rows)×\(cols)")
        self.init(rows: rows, cols: cols)
        values.withUnsafeBufferPointer { storage.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { BufferPool.shared.release(UnsafeMutableRawPointer(storage), bytes: max(1, rows * cols) * MemoryLayout<Float>.stride) }

    public var count: Int { rows * cols }

    public subscript(row: Int, col: Int) -> Float {
        get {
            precondition(row >= 0 && row < rows && col >= 0 && col < cols, "Matrix: (\(row), \(col)) outside \(rows)×\(cols)")
            return storage[row * cols + col]
        }
        set {
            precondition(row >= 0 && row < rows && col >= 0 && col < cols, "Matrix: (\(row), \(col)) outside \(rows)×\(cols)")
            storage[row * cols + col] = newValue
        }
    }

    /// The elements, row-major, as an array (a copy).
    public var values: [Float] { Array(UnsafeBufferPointer(start: storage, count: count)) }

    /// Row `r` as an array (a copy).
    public func row(_ r: Int) -> [Float] {
        precondition(r >= 0 && r < rows)
        return Array(UnsafeBufferPointer(start: storage + r * cols, count: cols))
    }

    /// Calls `body` with the elements. Do not let the pointer escape.
    public func withUnsafeBufferPointer<R, E: Error>(_ body: (UnsafeBufferPointer<Float>) throws(E) -> R) throws(E) -> R {
        try body(UnsafeBufferPointer(start: storage, count: count))
    }

    /// Calls `body` with the mutable elements. Do not let the pointer escape.
    public func withUnsafeMutableBufferPointer<R, E: Error>(_ body: (UnsafeMutableBufferPointer<Float>) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableBufferPointer(start: storage, count: count))
    }

    /// Sets every element to zero.
    public func zero() { storage.update(repeating: 0, count: count) }

    /// A copy.
    public func copy() -> Matrix {
        let m = Matrix(uninitializedRows: rows, cols: cols)
        m.storage.update(from: storage, count: count)
        return m
    }

    /// `self += other` elementwise (same shape).
    public func add(_ other: Matrix) {
        precondition(rows == other.rows && cols == other.cols, "Matrix.add: \(rows)×\(cols) vs \(other.rows)×\(other.cols)")
        let a = UnsafeSendable(storage), b = UnsafeSendable(other.storage)
        Parallel.chunks(count) { r in
            let a = a.value, b = b.value
            for i in r { a[i] += b[i] }
        }
    }

    /// Euclidean norm, accumulated in Double.
    public var norm: Double {
        var s = 0.0
        for i in 0..<count { let x = Double(storage[i]); s += x * x }
        return s.squareRoot()
    }
}
