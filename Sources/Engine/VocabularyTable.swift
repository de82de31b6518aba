import CheckpointCore
import ShearsBLAS
import ShearsConcurrency

/// An elementwise transform of the logits, applied to each block of them right after the LM head
/// (forward) and, through its derivative, to the gradient before it goes back through the head:
/// the one place where a family's final-logit transform (for example a soft cap `c·tanh(z/c)`)
/// belongs. ``identity`` for the LLaMA family.
public struct LogitTransform: Sendable {
    /// `y = f(z)` in place on `count` logits.
    public let forward: @Sendable (UnsafeMutablePointer<Float>, Int) -> Void
    /// `dz = dy·f'(z)` in place on `dy`, given the transformed logits `y` of the same block.
    public let backward: @Sendable (_ dy: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, Int) -> Void
    public let isIdentity: Bool

    public init(forward: @escaping @Sendable (UnsafeMutablePointer<Float>, Int) -> Void,
                backward: @escaping @Sendable (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void) {
        self.forward = forward
        self.backward = backward
        isIdentity = false
    }

    private init() {
        forward = { _, _ in }
        backward = { _, _, _ in }
        isIdentity = true
    }

    public static let identity = LogitTransform()
}

/// A `[vocab, hidden]` table of the checkpoint (the token embedding or the LM head), used either
/// whole in F32 or straight from the stored tensor: rows gathered per token, products taken in
/// blocks of ``blockRows`` vocabulary rows decoded into a reused F32 block, so that no whole F32
/// copy exists (for Llama-3-8B each table is 2.1 GB in F32).
///
/// With a whole matrix, each product is the single sgemm the engine always ran (bit for bit the
/// same results); in blocks, the logits are the same values (each element is the same dot
/// product) and the input gradient `dlogits·W` is summed block after block (float rounding apart,
/// the same).
final class VocabularyTable {
    let store: any TensorStore
    let name: String
    let rows: Int, cols: Int
    /// The whole table in F32, when it is kept.
    let whole: Matrix?
    /// Vocabulary rows per decoded block (`rows` with a whole table).
    let blockRows: Int
    private let dtype: DType
    private let rowBytes: Int

    /// `whole`: the table in F32 already (kept by the model), or nil to read the stored tensor.
    init(store: any TensorStore, name: String, rows: Int, cols: Int, whole: Matrix?, blockBytes: Int = 64 << 20) throws(CheckpointError) {
        guard let info = store.tensorInfo(named: name) else {
            throw CheckpointError(.tensorNotFound, "the checkpoint has no tensor '\(name)'", path: store.path, tensor: name)
        }
        guard info.shape == [rows, cols] else {
            throw CheckpointError(.shapeMismatch, "shape \(info.shape) does not match the configuration's \([rows, cols])", path: store.path, tensor: name)
        }
        guard info.dtype.isFloatingPoint, info.dtype.convertsToFloat32, let width = info.dtype.byteSize else {
            throw CheckpointError(.unsupportedConversion, "dtype \(info.dtype.rawValue) cannot be computed with (F32, F16, BF16, F64, F8 are)",
                                  path: store.path, tensor: name)
        }
        self.store = store
        self.name = name
        self.rows = rows
        self.cols = cols
        self.whole = whole
        dtype = info.dtype
        rowBytes = cols * width
        blockRows = whole != nil ? rows : max(1, min(rows, blockBytes / max(1, cols * MemoryLayout<Float>.stride)))
    }

    /// Calls `body` with the stored bytes, checked to hold `rows × cols` elements.
    private func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> R) throws(CheckpointError) -> R {
        do {
            return try store.withTensorBytes(name) { raw throws -> R in
                guard raw.count == rows * rowBytes else {
                    throw CheckpointError(.shapeMismatch, "\(raw.count) bytes do not hold \(rows)×\(cols) \(dtype.rawValue) elements",
                                          path: store.path, tensor: name)
                }
                return try body(raw)
            }
        } catch let e as CheckpointError {
            var e = e
            e.path = e.path ?? store.path
            e.tensor = e.tensor ?? name
            throw e
        } catch {
            throw CheckpointError(.io, "\(error)", path: store.path, tensor: name)
        }
    }

    /// Decodes rows `r0 ..< r0 + n` into `into` (`n × cols` floats).
    private func decode(_ raw: UnsafeRawBufferPointer, rows r0: Int, count n: Int, into: UnsafeMutablePointer<Float>) throws(CheckpointError) {
        let src = UnsafeRawBufferPointer(rebasing: raw[(r0 * rowBytes)..<((r0 + n) * rowBytes)])
        if n == 1 {
            try DTypeConversion.decode(src, as: dtype, into: UnsafeMutableBufferPointer(start: into, count: cols))
            return
        }
        // Large blocks: decode in parallel, a row range per worker.
        let out = UnsafeSendable(into), source = UnsafeSendable(src), dtype = dtype, cols = cols, rowBytes = rowBytes
        let failed = AtomicCounter()
        Parallel.chunks(n, costPerItem: cols) { r in
            let s = UnsafeRawBufferPointer(rebasing: source.value[(r.lowerBound * rowBytes)..<(r.upperBound * rowBytes)])
            do { try DTypeConversion.decode(s, as: dtype, into: UnsafeMutableBufferPointer(start: out.value + r.lowerBound * cols, count: r.count * cols)) }
            catch { _ = failed.increment() }
        }
        if failed.increment() > 0 {
            throw CheckpointError(.unsupportedConversion, "rows \(r0)..<\(r0 + n) could not be decoded from \(dtype.rawValue)", path: store.path, tensor: name)
        }
    }

    /// Rows `tokens` of the table, `[tokens.count, cols]` (the embedding lookup).
    func gather(_ tokens: [Int32]) throws(CheckpointError) -> Matrix {
        let x = Matrix(rows: tokens.count, cols: cols)
        if let whole {
            for (r, t) in tokens.enumerated() { (x.storage + r * cols).update(from: whole.storage + Int(t) * cols, count: cols) }
            return x
        }
        try withBytes { raw throws(CheckpointError) in
            for (r, t) in tokens.enumerated() {
                precondition(t >= 0 && Int(t) < rows, "VocabularyTable.gather: token \(t)")
                try decode(raw, rows: Int(t), count: 1, into: x.storage + r * cols)
            }
        }
        return x
    }

    /// Calls `body(v0, block)` for each block of rows in order, `block` holding rows
    /// `v0 ..< v0 + block.rows` in F32 (the whole matrix when kept; otherwise a reused buffer that
    /// is only valid during the call).
    func forEachBlock(_ body: (Int, Matrix) throws(CheckpointError) -> Void) throws(CheckpointError) {
        if let whole { return try body(0, whole) }
        try withBytes { raw throws(CheckpointError) in
            var v0 = 0
            var full: Matrix? = nil
            while v0 < rows {
                let n = min(blockRows, rows - v0)
                let block: Matrix
                if n == blockRows {
                    if full == nil { full = Matrix(uninitializedRows: blockRows, cols: cols) }
                    block = full!
                } else {
                    block = Matrix(uninitializedRows: n, cols: cols)
                }
                try decode(raw, rows: v0, count: n, into: block.storage)
                try body(v0, block)
                v0 += n
            }
        }
    }

    /// Logits `hidden[rows] · tableᵀ` into the first `rows.count` rows of `logits` (`[·, self.rows]`),
    /// each block transformed by `transform`.
    func logits(hidden: Matrix, rows r: Range<Int>, into logits: Matrix, transform: LogitTransform = .identity) throws(CheckpointError) {
        let h = cols, v = rows
        precondition(hidden.cols == h && logits.rows >= r.count && logits.cols == v)
        try forEachBlock { v0, block throws(CheckpointError) in
            let n = block.rows
            BLAS.sgemm(transB: true, m: r.count, n: n, k: h, a: hidden.storage + r.lowerBound * h, lda: h,
                       b: block.storage, ldb: h, c: logits.storage + v0, ldc: v)
        }
        if !transform.isIdentity {
            for i in 0..<r.count { transform.forward(logits.storage + i * v, v) }
        }
        withExtendedLifetime(hidden) {}
    }

    /// `dx[0 ..< count] = dlogits[0 ..< count] · table` (`dx` a `[count, cols]` region).
    func backwardInput(_ dlogits: Matrix, count: Int, into dx: UnsafeMutablePointer<Float>) throws(CheckpointError) {
        let h = cols, v = rows
        try forEachBlock { v0, block throws(CheckpointError) in
            BLAS.sgemm(m: count, n: h, k: block.rows, a: dlogits.storage + v0, lda: v, b: block.storage, ldb: h,
                       beta: v0 == 0 ? 0 : 1, c: dx, ldc: h)
        }
        withExtendedLifetime(dlogits) {}
    }
}
