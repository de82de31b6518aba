#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ShearsBLAS

/// Causal scaled-dot-product attention with grouped-query heads, on one sequence at a time.
///
/// Query head h reads KV head h / (heads / kvHeads), as transformers' `repeat_kv` arranges. Query
/// row i sits at absolute position `start + i` and sees keys 0 ... start + i. Every product is an
/// sgemm on a strided head slice of the `[tokens, heads·head_dim]` buffers.
struct Attention {
    let sizes: LayerSizesAndDim
    var scale: Float { 1 / Float(sizes.headDim).squareRoot() }

    /// Softmax-normalised scores `P` (`[tq, tk]`) for query head `h`.
    private func probabilities(q: UnsafePointer<Float>, k: UnsafePointer<Float>, h: Int, tq: Int, tk: Int, start: Int,
                               into p: UnsafeMutablePointer<Float>) {
        let d = sizes.headDim, g = h / sizes.groupSize
        BLAS.sgemm(transB: true, m: tq, n: tk, k: d, alpha: scale, a: q + h * d, lda: sizes.qDim,
                   b: k + g * d, ldb: sizes.kvDim, c: p, ldc: tk)
        for i in 0..<tq {
            let row = p + i * tk
            let visible = min(tk, start + i + 1)
            var m = -Float.infinity
            for j in 0..<visible { m = max(m, row[j]) }
            var s: Float = 0
            for j in 0..<visible { let e = Kernels.exp(row[j] - m); row[j] = e; s += e }
            let inv = 1 / s
            for j in 0..<visible { row[j] *= inv }
            for j in visible..<tk { row[j] = 0 }
        }
    }

    /// out[tq, qDim] = attention of `q` rows over `tk` keys/values.
    func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, tq: Int, tk: Int, start: Int,
                 out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let d = sizes.headDim
        for h in 0..<sizes.heads {
            probabilities(q: q, k: k, h: h, tq: tq, tk: tk, start: start, into: scratch)
            let g = h / sizes.groupSize
            BLAS.sgemm(m: tq, n: d, k: tk, a: scratch, lda: tk, b: v + g * d, ldb: sizes.kvDim, c: out + h * d, ldc: sizes.qDim)
        }
    }

    /// Gradients of one sequence (start 0, tq = tk = t): dq = (overwritten), dk and dv (accumulated;
    /// zero them first) from dOut, recomputing the probabilities.
    func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, dOut: UnsafePointer<Float>, t: Int,
                  dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                  p: UnsafeMutablePointer<Float>, dp: UnsafeMutablePointer<Float>) {
        let d = sizes.headDim, qd = sizes.qDim, kvd = sizes.kvDim
        for h in 0..<sizes.heads {
            let g = h / sizes.groupSize
            probabilities(q: q, k: k, h: h, tq: t, tk: t, start: 0, into: p)
            // dP = dO · Vᵀ
            BLAS.sgemm(transB: true, m: t, n: t, k: d, a: dOut + h * d, lda: qd, b: v + g * d, ldb: kvd, c: dp, ldc: t)
            // dV += Pᵀ · dO
            BLAS.sgemm(transA: true, m: t, n: d, k: t, a: p, lda: t, b: dOut + h * d, ldb: qd, beta: 1, c: dv + g * d, ldc: kvd)
            // dS = P ∘ (dP − rowsum(P ∘ dP))
            for i in 0..<t {
                let pr = p + i * t, dr = dp + i * t
                var s: Float = 0
                for j in 0...i { s += pr[j] * dr[j] }
                for j in 0...i { dr[j] = pr[j] * (dr[j] - s) }
                for j in (i + 1)..<t { dr[j] = 0 }
            }
            // dQ = scale · dS · K ; dK += scale · dSᵀ · Q
            BLAS.sgemm(m: t, n: d, k: t, alpha: scale, a: dp, lda: t, b: k + g * d, ldb: kvd, c: dq + h * d, ldc: qd)
            BLAS.sgemm(transA: true, m: t, n: d, k: t, alpha: scale, a: dp, lda: t, b: q + h * d, ldb: qd, beta: 1, c: dk + g * d, ldc: kvd)
        }
    }
}
