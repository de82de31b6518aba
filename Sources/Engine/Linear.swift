import ShearsBLAS
import ShearsConcurrency

/// One linear layer's weight `[out, in]` (PyTorch layout) and optional bias `[1, out]` in F32.
public struct Linear: Sendable {
    public let weight: Matrix
    public let bias: Matrix?
    /// A LoRA adapter adding `s·B·A·dropout(x)` to the output (training and its evaluations).
    public var adapter: LoRAAdapter? = nil
    public var outFeatures: Int { weight.rows }
    public var inFeatures: Int { weight.cols }

    public init(weight: Matrix, bias: Matrix?) {
        precondition(bias == nil || bias!.count == weight.rows, "Linear: bias size \(bias!.count) for \(weight.rows) outputs")
        self.weight = weight
        self.bias = bias
    }

    /// `y = x · Wᵀ + b` for `x` of shape `[n, in]`; returns `[n, out]`.
    public func forward(_ x: Matrix) -> Matrix {
        precondition(x.cols == inFeatures, "Linear.forward: input width \(x.cols), weight \(weight.rows)×\(weight.cols)")
        let y = Matrix(uninitializedRows: x.rows, cols: outFeatures)
        BLAS.sgemm(transB: true, m: x.rows, n: outFeatures, k: inFeatures, a: x.storage, lda: inFeatures,
                   b: weight.storage, ldb: inFeatures, c: y.storage, ldc: outFeatures)
        if let b = bias { Kernels.addRowVector(y, b) }
        adapter?.addForward(x, into: y)
        return y
    }

    /// `dx (+)= dy · W` for `dy` of shape `[n, out]`; `accumulate` adds into `dx`.
    public func backwardInput(_ dy: Matrix, into dx: Matrix, accumulate: Bool) {
        precondition(dy.cols == outFeatures && dx.cols == inFeatures && dx.rows == dy.rows, "Linear.backwardInput: shapes")
        BLAS.sgemm(m: dy.rows, n: inFeatures, k: outFeatures, a: dy.storage, lda: outFeatures,
                   b: weight.storage, ldb: inFeatures, beta: accumulate ? 1 : 0, c: dx.storage, ldc: inFeatures)
        adapter?.addBackwardInput(dy, into: dx)
    }

    /// Adds this layer's weight (and bias) gradients for input `x` and output gradient `dy`, and
    /// its adapter's (when it has one); nil accumulators skip the base weight's gradients.
    func backwardWeights(x: Matrix, dy: Matrix, weightGradient: GradientAccumulator?, biasGradient: GradientAccumulator?) {
        adapter?.accumulateGradients(x: x, dy: dy)
        weightGradient?.addOuterProducts(dy: dy, x: x)
        biasGradient?.addColumnSums(dy)
    }
}

/// Gradient (and optionally per-sample squared-gradient) sums for one parameter, filled sample by
/// sample so that the empirical Fisher diagonal comes from the same pass.
///
/// For a linear layer the gradient is `dYᵀ·X` summed over token rows. Sample s contributes
/// `G_s = dY_sᵀ·X_s` (its own rows only), and the gradient of that sample's own mean loss is
/// `α_s·G_s`, where `α_s` = (tokens predicted in the batch) / (tokens predicted in sample s). When
/// the Fisher sum is wanted, each `G_s` is computed by its own sgemm (k = the sample's rows) into
/// a scratch matrix, then added to the gradient and, squared and scaled by `α_s²`, to the Fisher
/// sum: the same floating-point work as one batched sgemm, plus one elementwise pass per sample.
/// Without it, one sgemm over all rows accumulates the gradient directly.
final class GradientAccumulator {
    let gradient: Matrix
    let fisher: Matrix?
    let layout: BatchLayout
    private var scratch: Matrix?

    init(rows: Int, cols: Int, layout: BatchLayout, fisher: Bool) {
        gradient = Matrix(rows: rows, cols: cols)
        self.fisher = fisher ? Matrix(rows: rows, cols: cols) : nil
        self.layout = layout
    }

    private func sampleScratch() -> Matrix {
        if let s = scratch { return s }
        let s = Matrix(rows: gradient.rows, cols: gradient.cols)
        scratch = s
        return s
    }

    /// `G_s` into scratch → gradient += G_s, fisher += α_s²·G_s².
    private func fold(_ s: Matrix, sample: Int) {
        let a2 = layout.fisherScale[sample] * layout.fisherScale[sample]
        let g = UnsafeSendable(gradient.storage), f = UnsafeSendable(fisher!.storage), p = UnsafeSendable(s.storage)
        Parallel.chunks(gradient.count, costPerItem: 2) { r in
            let g = g.value, f = f.value, p = p.value
            for i in r {
                let x = p[i]
                g[i] += x
                f[i] += a2 * x * x
            }
        }
    }

    /// gradient += dyᵀ·x (dy `[n, rows]`, x `[n, cols]`).
    func addOuterProducts(dy: Matrix, x: Matrix) {
        precondition(dy.cols == gradient.rows && x.cols == gradient.cols && dy.rows == x.rows && x.rows == layout.rows,
                     "GradientAccumulator: dy \(dy.rows)×\(dy.cols), x \(x.rows)×\(x.cols), gradient \(gradient.rows)×\(gradient.cols)")
        let m = gradient.rows, n = gradient.cols
        guard fisher != nil else {
            BLAS.sgemm(transA: true, m: m, n: n, k: x.rows, a: dy.storage, lda: m, b: x.storage, ldb: n,
                       beta: 1, c: gradient.storage, ldc: n)
            return
        }
        let s = sampleScratch()
        for b in 0..<layout.batch {
            let r0 = layout.rowRange(b).lowerBound, t = layout.rowRange(b).count
            BLAS.sgemm(transA: true, m: m, n: n, k: t, a: dy.storage + r0 * m, lda: m, b: x.storage + r0 * n, ldb: n,
                       beta: 0, c: s.storage, ldc: n)
            fold(s, sample: b)
        }
    }

    /// Adds sample `sample`'s `dyᵀ·x` (its `rows` rows at the given pointers) to the gradient;
    /// with the Fisher sum, `inspect` sees G_s before it is folded in.
    func addSampleOuterProducts(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows t: Int, sample: Int,
                                inspect: ((Matrix) -> Void)? = nil) {
        let m = gradient.rows, n = gradient.cols
        guard fisher != nil else {
            BLAS.sgemm(transA: true, m: m, n: n, k: t, a: dy, lda: m, b: x, ldb: n, beta: 1, c: gradient.storage, ldc: n)
            return
        }
        let s = sampleScratch()
        BLAS.sgemm(transA: true, m: m, n: n, k: t, a: dy, lda: m, b: x, ldb: n, beta: 0, c: s.storage, ldc: n)
        inspect?(s)
        fold(s, sample: sample)
    }

    /// Releases the per-sample scratch matrix.
    func dropScratch() { scratch = nil }

    /// gradient[0, j] += Σ_rows dy[r, j] (a bias).
    func addColumnSums(_ dy: Matrix) {
        let p = UnsafeSendable(dy.storage), n = dy.cols
        addColumnReduction { r0, r1, cols, out in
            for r in r0..<r1 {
                let row = p.value + r * n
                for j in cols { out[j] += row[j] }
            }
        }
    }

    /// gradient[0, j] += Σ_rows a[r, j]·b[r, j].
    func addColumnDots(_ a: Matrix, _ b: Matrix) {
        precondition(a.rows == b.rows && a.cols == b.cols)
        let pa0 = UnsafeSendable(a.storage), pb0 = UnsafeSendable(b.storage), n = a.cols
        addColumnReduction { r0, r1, cols, out in
            for r in r0..<r1 {
                let pa = pa0.value + r * n, pb = pb0.value + r * n
                for j in cols { out[j] += pa[j] * pb[j] }
            }
        }
    }

    /// Runs a per-row reduction into this `[1, cols]` gradient, per sample when the Fisher sum is
    /// wanted: `reduce(r0, r1, columns, out)` adds rows `r0 ..< r1` of the given columns into
    /// `out`. Columns are split across threads (each column's rows are summed in order).
    func addColumnReduction(_ reduce: (Int, Int, Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        let cols = gradient.count
        let g = UnsafeSendable(gradient.storage)
        guard fisher != nil else {
            let rows = layout.rows
            Parallel.chunks(cols, costPerItem: rows) { c in reduce(0, rows, c, g.value) }
            return
        }
        let s = sampleScratch()
        let ps = UnsafeSendable(s.storage)
        for b in 0..<layout.batch {
            s.zero()
            let r = layout.rowRange(b)
            Parallel.chunks(cols, costPerItem: r.count) { c in reduce(r.lowerBound, r.upperBound, c, ps.value) }
            fold(s, sample: b)
        }
    }
}
