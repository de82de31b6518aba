#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import ModelArchitecture
import ShearsBLAS
import ShearsConcurrency

/// Causal scaled-dot-product attention with grouped-query heads.
///
/// Query head h reads KV head h / (heads / kvHeads), as transformers' `repeat_kv` arranges. Query
/// row i sits at absolute position `start + i` and sees keys 0 ... start + i. Every product is an
/// sgemm on a strided head slice of the `[tokens, heads·head_dim]` buffers. Over a training batch
/// (``forward(q:k:v:sequences:t:out:probabilities:)`` and ``backward(q:k:v:dOut:sequences:t:probabilities:dq:dk:dv:)``)
/// the (sequence, head) pairs are split across threads, each running its own small products.
struct Attention {
    /// Head dim, query heads, KV heads, query heads per KV head, query and key/value channels.
    let headDim: Int, heads: Int, kvHeads: Int, groupSize: Int, qDim: Int, kvDim: Int
    /// The score scale (head_dim^-0.5 unless the model says otherwise).
    let scale: Float
    /// Sliding window: row at position i sees keys at positions i - window < j <= i (nil: all j <= i).
    let window: Int?
    /// Attention logit soft-cap (scores become tanh(s / cap) · cap before the softmax).
    let softcap: Float?

    init(sizes: LayerSizes, headDim: Int, scale: Double? = nil, window: Int? = nil, softcap: Double? = nil) {
        self.scale = scale.map { Float($0) } ?? 1 / Float(headDim).squareRoot()
        self.window = window
        self.softcap = softcap.map { Float($0) }
        self.headDim = headDim
        heads = sizes.numAttentionHeads
        kvHeads = sizes.numKeyValueHeads
        groupSize = sizes.groupSize
        qDim = sizes.queryWidth(headDim: headDim)
        kvDim = sizes.keyValueWidth(headDim: headDim)
    }

    /// Softmax-normalised scores `P` (`[tq, tk]`) for query head `h`.
    private func scores(q: UnsafePointer<Float>, k: UnsafePointer<Float>, h: Int, tq: Int, tk: Int, start: Int,
                               into p: UnsafeMutablePointer<Float>) {
        let d = headDim, g = h / groupSize
        BLAS.sgemm(transB: true, m: tq, n: tk, k: d, alpha: scale, a: q + h * d, lda: qDim,
                   b: k + g * d, ldb: kvDim, c: p, ldc: tk)
        for i in 0..<tq {
            let row = p + i * tk
            let visible = min(tk, start + i + 1)
            let first = window.map { max(0, min(visible, start + i + 1 - $0)) } ?? 0
            if let softcap { GemmaKernels.softcap(row + first, visible - first, cap: softcap) }
            let m = Kernels.maximum(row + first, visible - first)
            for j in first..<visible { row[j] = Kernels.exp(row[j] - m) }
            let inv = 1 / Kernels.sum(row + first, visible - first)
            for j in first..<visible { row[j] *= inv }
            for j in 0..<first { row[j] = 0 }
            for j in visible..<tk { row[j] = 0 }
        }
    }

    /// The soft-capped scores tanh(s / cap) · cap of query head `h` (`[t, t]`, start 0), for the
    /// soft-cap's derivative in the backward pass.
    private func cappedScores(q: UnsafePointer<Float>, k: UnsafePointer<Float>, h: Int, t: Int, cap: Float,
                              into c: UnsafeMutablePointer<Float>) {
        let d = headDim, g = h / groupSize
        BLAS.sgemm(transB: true, m: t, n: t, k: d, alpha: scale, a: q + h * d, lda: qDim, b: k + g * d, ldb: kvDim, c: c, ldc: t)
        GemmaKernels.softcap(c, t * t, cap: cap)
    }

    /// Head `h` of out[tq, qDim] = attention of `q` rows over `tk` keys/values, `p` (`[tq, tk]`)
    /// receiving its probabilities.
    private func head(_ h: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, tq: Int, tk: Int,
                      start: Int, out: UnsafeMutablePointer<Float>, p: UnsafeMutablePointer<Float>) {
        let d = headDim, g = h / groupSize
        scores(q: q, k: k, h: h, tq: tq, tk: tk, start: start, into: p)
        BLAS.sgemm(m: tq, n: d, k: tk, a: p, lda: tk, b: v + g * d, ldb: kvDim, c: out + h * d, ldc: qDim)
    }

    /// out[tq, qDim] = attention of `q` rows over `tk` keys/values (one sequence; generation).
    func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, tq: Int, tk: Int, start: Int,
                 out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        for h in 0..<heads {
            head(h, q: q, k: k, v: v, tq: tq, tk: tk, start: start, out: out, p: scratch)
        }
    }

    /// Attention over `sequences` sequences of `t` rows each (positions 0 ..< t) of the
    /// `[sequences·t, ·]` buffers, into `out`. With `probabilities` (`sequences·heads` blocks of
    /// `[t, t]`, block `b·heads + h`), keeps every head's probabilities for the backward pass.
    func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, sequences: Int, t: Int,
                 out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>?) {
        let heads = self.heads, qd = self.qDim, kvd = self.kvDim
        let pq = UnsafeSendable(q), pk = UnsafeSendable(k), pv = UnsafeSendable(v), po = UnsafeSendable(out)
        let pp = UnsafeSendable(probabilities)
        Parallel.chunksCallingBLAS(sequences * heads) { items in
            let scratch: Matrix? = pp.value == nil ? Matrix(uninitializedRows: t, cols: t) : nil
            for item in items {
                let b = item / heads, h = item % heads, r0 = b * t
                let p = pp.value.map { $0 + item * t * t } ?? scratch!.storage
                head(h, q: pq.value + r0 * qd, k: pk.value + r0 * kvd, v: pv.value + r0 * kvd, tq: t, tk: t, start: 0,
                     out: po.value + r0 * qd, p: p)
            }
            withExtendedLifetime(scratch) {}
        }
    }

    /// Gradients over `sequences` sequences of `t` rows (start 0): dq (overwritten), dk and dv
    /// (accumulated; zero them first) from dOut. `probabilities` are the forward pass's (see
    /// ``forward(q:k:v:sequences:t:out:probabilities:)``); nil recomputes them.
    func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                  sequences: Int, t: Int, probabilities: UnsafePointer<Float>?,
                  dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>) {
        let heads = self.heads, kvHeads = self.kvHeads, qd = self.qDim, kvd = self.kvDim
        let pq = UnsafeSendable(q), pk = UnsafeSendable(k), pv = UnsafeSendable(v), pdo = UnsafeSendable(dOut)
        let pdq = UnsafeSendable(dq), pdk = UnsafeSendable(dk), pdv = UnsafeSendable(dv), pp = UnsafeSendable(probabilities)
        // One item per (sequence, KV head): the query heads sharing a KV head accumulate into the
        // same dk, dv columns, so they run in order on one thread.
        Parallel.chunksCallingBLAS(sequences * kvHeads) { items in
            let dp = Matrix(uninitializedRows: t, cols: t)
            let scratch: Matrix? = pp.value == nil ? Matrix(uninitializedRows: t, cols: t) : nil
            let capped: Matrix? = softcap == nil ? nil : Matrix(uninitializedRows: t, cols: t)
            for item in items {
                let b = item / kvHeads, g = item % kvHeads, r0 = b * t
                let q = pq.value + r0 * qd, k = pk.value + r0 * kvd, v = pv.value + r0 * kvd
                for h in (g * groupSize)..<((g + 1) * groupSize) {
                    let p: UnsafePointer<Float>
                    if let saved = pp.value {
                        p = saved + (b * heads + h) * t * t
                    } else {
                        scores(q: q, k: k, h: h, tq: t, tk: t, start: 0, into: scratch!.storage)
                        p = UnsafePointer(scratch!.storage)
                    }
                    if let capped, let cap = softcap { cappedScores(q: q, k: k, h: h, t: t, cap: cap, into: capped.storage) }
                    headBackward(h, q: q, k: k, v: v, dOut: pdo.value + r0 * qd, t: t, p: p,
                                 dq: pdq.value + r0 * qd, dk: pdk.value + r0 * kvd, dv: pdv.value + r0 * kvd, dp: dp.storage,
                                 capped: capped.map { UnsafePointer($0.storage) })
                }
            }
            withExtendedLifetime((dp, scratch, capped)) {}
        }
    }

    /// One head of one sequence: dq (overwritten), dk and dv (accumulated) from dOut and P.
    private func headBackward(_ h: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                              dOut: UnsafePointer<Float>, t: Int, p: UnsafePointer<Float>,
                              dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                              dp: UnsafeMutablePointer<Float>, capped: UnsafePointer<Float>? = nil) {
        let d = headDim, qd = qDim, kvd = kvDim, g = h / groupSize
        // dP = dO · Vᵀ
        BLAS.sgemm(transB: true, m: t, n: t, k: d, a: dOut + h * d, lda: qd, b: v + g * d, ldb: kvd, c: dp, ldc: t)
        // dV += Pᵀ · dO
        BLAS.sgemm(transA: true, m: t, n: d, k: t, a: p, lda: t, b: dOut + h * d, ldb: qd, beta: 1, c: dv + g * d, ldc: kvd)
        // dS = P ∘ (dP − rowsum(P ∘ dP))
        for i in 0..<t {
            let pr = p + i * t, dr = dp + i * t
            var acc = SIMD8<Float>()
            var j0 = 0
            while j0 + 8 <= i + 1 {
                acc += UnsafeRawPointer(pr + j0).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(dr + j0).loadUnaligned(as: SIMD8<Float>.self)
                j0 += 8
            }
            var s = acc.sum()
            while j0 <= i { s += pr[j0] * dr[j0]; j0 += 1 }
            for j in 0...i { dr[j] = pr[j] * (dr[j] - s) }
            for j in (i + 1)..<t { dr[j] = 0 }
            // Through the soft-cap: d(tanh(s / cap) · cap)/ds = 1 − (c / cap)².
            if let capped, let cap = softcap {
                let cr = capped + i * t, inv = 1 / cap
                for j in 0...i { let u = cr[j] * inv; dr[j] *= 1 - u * u }
            }
        }
        // dQ = scale · dS · K ; dK += scale · dSᵀ · Q
        BLAS.sgemm(m: t, n: d, k: t, alpha: scale, a: dp, lda: t, b: k + g * d, ldb: kvd, c: dq + h * d, ldc: qd)
        BLAS.sgemm(transA: true, m: t, n: d, k: t, alpha: scale, a: dp, lda: t, b: q + h * d, ldb: qd, beta: 1, c: dk + g * d, ldc: kvd)
    }
}
