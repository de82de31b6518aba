import ModelArchitecture

/// One LLaMA decoder layer: pre-norm attention and pre-norm SwiGLU MLP, each with a residual.
///
/// By default the forward pass keeps nothing: the backward pass gets the layer's saved input and
/// recomputes the internals (norms, projections, rotary, attention probabilities) before
/// differentiating, so activation memory is one layer's working set plus one `[tokens, hidden]`
/// input per layer. A layer may instead keep its projections' outputs (``Projections``): its
/// backward pass then recomputes only the norms, the attention and the SwiGLU product from them,
/// bit for bit the same values, without the projections' matrix products.
struct DecoderLayer {
    let weights: LayerWeights
    let eps: Float

    var attention: Attention { Attention(sizes: weights.sizes, headDim: weights.headDim) }
    var mlp: MLP { MLP(gate: weights.gate, up: weights.up, down: weights.down) }

    /// The internals of a forward pass over a training batch.
    struct Internals {
        let h1: Matrix, inv1: [Float]
        let q: Matrix, k: Matrix, v: Matrix   // q, k after rotary
        /// With per-head q/k norms: q and k before them, and their reciprocal RMS per (row, head).
        let headNorms: HeadNormInputs?
        /// Attention probabilities, `batch·heads` blocks of `[seqLen, seqLen]`, when asked for.
        let p: Matrix?
        let attn: Matrix
        let x2: Matrix
        let h2: Matrix, inv2: [Float]
        let mlp: MLP.Saved
        /// The layer's output; nil when recomputed for the backward pass, which does not need it.
        let out: Matrix?

        /// The outputs of the layer's projections, for a backward pass without recomputing them.
        var projections: Projections { Projections(q: q, k: k, v: v, x2: x2, g: mlp.g, u: mlp.u, qRaw: headNorms?.q, kRaw: headNorms?.k) }
    }

    /// The inputs of the per-head q/k norms, for their backward pass.
    struct HeadNormInputs {
        let q: Matrix, k: Matrix, invQ: [Float], invK: [Float]
    }

    /// Everything of a forward pass that costs a matrix product to recompute: q, k (after rotary)
    /// and v, the residual after attention (o's output plus the input), and the MLP's gate and up
    /// outputs. The rest (norms, attention, SwiGLU product) is recomputed from these.
    struct Projections {
        let q: Matrix, k: Matrix, v: Matrix, x2: Matrix, g: Matrix, u: Matrix
        /// q and k before the per-head norms (families with q/k norms).
        let qRaw: Matrix?, kRaw: Matrix?

        /// Bytes kept for a layer of `sizes` in `model` over `rows` token rows (overflow-checked).
        static func bytes(_ sizes: LayerSizes, in model: ModelDescription, rows: Int) -> Int? {
            let d = model.headDim
            var perRow = sizes.queryWidth(headDim: d) + 2 * sizes.keyValueWidth(headDim: d) + model.hiddenSize + 2 * sizes.intermediateSize
            if model.family.blocks.queryKeyNorm { perRow += sizes.queryWidth(headDim: d) + sizes.keyValueWidth(headDim: d) }
            let (floats, o1) = perRow.multipliedReportingOverflow(by: rows)
            let (bytes, o2) = floats.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
            return o1 || o2 ? nil : bytes
        }
    }

    /// Forward over `layout.batch` sequences of `layout.seqLen` rows each, positions 0 ..< seqLen.
    /// `keepProbabilities` keeps the attention probabilities (for the backward pass).
    /// `reusing` takes the projections' outputs from an earlier forward pass over the same `x`
    /// instead of computing them.
    func forward(_ x: Matrix, layout: BatchLayout, rotary: Rotary, output: Bool = true, keepProbabilities: Bool = false,
                 reusing kept: Projections? = nil) -> Internals {
        let (h1, inv1) = RMSNorm.forward(x, weight: weights.inputNorm, eps: eps)
        let t = layout.seqLen, a = attention
        var q: Matrix, k: Matrix, v: Matrix
        var headNorms: HeadNormInputs? = nil
        if let kept {
            (q, k, v) = (kept.q, kept.k, kept.v)
            if let qn = weights.queryNorm, let kn = weights.keyNorm, let qRaw = kept.qRaw, let kRaw = kept.kRaw {
                let invQ = HeadNorm.forward(qRaw, weight: qn, heads: a.heads, eps: eps).inverseRMS
                let invK = HeadNorm.forward(kRaw, weight: kn, heads: a.kvHeads, eps: eps).inverseRMS
                headNorms = HeadNormInputs(q: qRaw, k: kRaw, invQ: invQ, invK: invK)
            }
        } else {
            (q, k, v) = (weights.q.forward(h1), weights.k.forward(h1), weights.v.forward(h1))
            if let qn = weights.queryNorm, let kn = weights.keyNorm {
                let (qRaw, kRaw) = (q, k)
                let invQ: [Float], invK: [Float]
                (q, invQ) = HeadNorm.forward(qRaw, weight: qn, heads: a.heads, eps: eps)
                (k, invK) = HeadNorm.forward(kRaw, weight: kn, heads: a.kvHeads, eps: eps)
                headNorms = HeadNormInputs(q: qRaw, k: kRaw, invQ: invQ, invK: invK)
            }
            rotary.apply(q.storage, rows: q.rows, ld: a.qDim, heads: a.heads, inverse: false) { $0 % t }
            rotary.apply(k.storage, rows: k.rows, ld: a.kvDim, heads: a.kvHeads, inverse: false) { $0 % t }
        }
        let attn = Matrix(uninitializedRows: x.rows, cols: a.qDim)
        let p = keepProbabilities ? Matrix(uninitializedRows: layout.batch * a.heads * t, cols: t) : nil
        a.forward(q: q.storage, k: k.storage, v: v.storage, sequences: layout.batch, t: t, out: attn.storage,
                  probabilities: p?.storage)
        let x2: Matrix
        if let kept {
            x2 = kept.x2
        } else {
            x2 = weights.o.forward(attn)
            x2.add(x)
        }
        let (h2, inv2) = RMSNorm.forward(x2, weight: weights.postAttentionNorm, eps: eps)
        let saved = kept.map { mlp.activations(gate: $0.g, up: $0.u) } ?? mlp.activations(h2)
        var out: Matrix? = nil
        if output {
            let m = mlp.down.forward(saved.a)
            m.add(x2)
            out = m
        }
        return Internals(h1: h1, inv1: inv1, q: q, k: k, v: v, headNorms: headNorms, p: p, attn: attn, x2: x2, h2: h2, inv2: inv2, mlp: saved, out: out)
    }

    /// Recomputes the layer on `x` (from `kept` projections when given), then returns dL/dx for
    /// output gradient `dOut`, adding weight gradients into `grads`.
    func backward(_ x: Matrix, dOut: Matrix, layout: BatchLayout, rotary: Rotary, grads: LayerGradients,
                  kept: Projections? = nil) -> Matrix {
        let f = forward(x, layout: layout, rotary: rotary, output: false, keepProbabilities: true, reusing: kept)
        let n = x.rows, t = layout.seqLen, a = attention
        // MLP branch: out = x2 + mlp(norm(x2)).
        let dh2 = Matrix(uninitializedRows: n, cols: weights.hidden)
        mlp.backward(x: f.h2, saved: f.mlp, dy: dOut, dx: dh2, accumulate: false, grads: grads)
        let dx2 = dOut.copy()
        RMSNorm.backward(x: f.x2, inverseRMS: f.inv2, weight: weights.postAttentionNorm, dy: dh2, dx: dx2, accumulate: true,
                         weightGradient: grads.postAttentionNorm)
        // Attention branch: x2 = x + o(attn(norm(x))).
        weights.o.backwardWeights(x: f.attn, dy: dx2, weightGradient: grads.o, biasGradient: grads.oBias)
        let dAttn = Matrix(uninitializedRows: n, cols: a.qDim)
        weights.o.backwardInput(dx2, into: dAttn, accumulate: false)
        let dq = Matrix(uninitializedRows: n, cols: a.qDim), dk = Matrix(rows: n, cols: a.kvDim), dv = Matrix(rows: n, cols: a.kvDim)
        a.backward(q: f.q.storage, k: f.k.storage, v: f.v.storage, dOut: dAttn.storage, sequences: layout.batch, t: t,
                   probabilities: f.p.map { UnsafePointer($0.storage) }, dq: dq.storage, dk: dk.storage, dv: dv.storage)
        withExtendedLifetime((f.p, dAttn)) {}
        rotary.apply(dq.storage, rows: n, ld: a.qDim, heads: a.heads, inverse: true) { $0 % t }
        rotary.apply(dk.storage, rows: n, ld: a.kvDim, heads: a.kvHeads, inverse: true) { $0 % t }
        var (dqRaw, dkRaw) = (dq, dk)
        if let hn = f.headNorms, let qn = weights.queryNorm, let kn = weights.keyNorm, let gq = grads.queryNorm, let gk = grads.keyNorm {
            dqRaw = HeadNorm.backward(x: hn.q, inverseRMS: hn.invQ, weight: qn, heads: a.heads, dy: dq, weightGradient: gq)
            dkRaw = HeadNorm.backward(x: hn.k, inverseRMS: hn.invK, weight: kn, heads: a.kvHeads, dy: dk, weightGradient: gk)
        }
        weights.q.backwardWeights(x: f.h1, dy: dqRaw, weightGradient: grads.q, biasGradient: grads.qBias)
        weights.k.backwardWeights(x: f.h1, dy: dkRaw, weightGradient: grads.k, biasGradient: grads.kBias)
        weights.v.backwardWeights(x: f.h1, dy: dv, weightGradient: grads.v, biasGradient: grads.vBias)
        let dh1 = Matrix(uninitializedRows: n, cols: weights.hidden)
        weights.q.backwardInput(dqRaw, into: dh1, accumulate: false)
        weights.k.backwardInput(dkRaw, into: dh1, accumulate: true)
        weights.v.backwardInput(dv, into: dh1, accumulate: true)
        RMSNorm.backward(x: x, inverseRMS: f.inv1, weight: weights.inputNorm, dy: dh1, dx: dx2, accumulate: true,
                         weightGradient: grads.inputNorm)
        return dx2
    }
}

/// The gradient accumulators of one layer, in the shapes of its weights.
final class LayerGradients {
    let inputNorm, postAttentionNorm: GradientAccumulator
    let queryNorm, keyNorm: GradientAccumulator?
    let q, k, v, o, gate, up, down: GradientAccumulator
    let qBias, kBias, vBias, oBias, gateBias, upBias, downBias: GradientAccumulator?

    init(_ w: LayerWeights, layout: BatchLayout, fisher: Bool) {
        func acc(_ m: Matrix) -> GradientAccumulator { GradientAccumulator(rows: m.rows, cols: m.cols, layout: layout, fisher: fisher) }
        func bias(_ l: Linear) -> GradientAccumulator? { l.bias.map(acc) }
        inputNorm = acc(w.inputNorm); postAttentionNorm = acc(w.postAttentionNorm)
        queryNorm = w.queryNorm.map(acc); keyNorm = w.keyNorm.map(acc)
        q = acc(w.q.weight); k = acc(w.k.weight); v = acc(w.v.weight); o = acc(w.o.weight)
        gate = acc(w.gate.weight); up = acc(w.up.weight); down = acc(w.down.weight)
        qBias = bias(w.q); kBias = bias(w.k); vBias = bias(w.v); oBias = bias(w.o)
        gateBias = bias(w.gate); upBias = bias(w.up); downBias = bias(w.down)
    }

    /// Accumulators in the order of ``LayerWeights/parameters``.
    var inParameterOrder: [GradientAccumulator] {
        var out = [inputNorm, postAttentionNorm]
        if let queryNorm { out.append(queryNorm) }
        if let keyNorm { out.append(keyNorm) }
        for (wgt, b) in [(q, qBias), (k, kBias), (v, vBias), (o, oBias), (gate, gateBias), (up, upBias), (down, downBias)] {
            out.append(wgt)
            if let b { out.append(b) }
        }
        return out
    }
}
