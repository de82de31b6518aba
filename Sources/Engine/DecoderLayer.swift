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

    var attention: Attention {
        let m = weights.model
        return Attention(sizes: weights.sizes, headDim: weights.headDim, scale: m.attentionScale,
                         window: m.attention(ofLayer: weights.index).slidingWindow, softcap: m.attentionLogitSoftcap)
    }
    var mlp: MLP { MLP(gate: weights.gate, up: weights.up, down: weights.down, gelu: weights.model.family.blocks.mlp == .gatedGELUTanh) }
    /// What the norms add to their weights (Gemma's 1 + w).
    var offset: Float { weights.model.family.blocks.normWeightOffset }

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
        /// Gemma: the attention output (o_proj's) and the MLP output (down_proj's) before their
        /// norms, and the norms' reciprocal RMS per row.
        var attnOut: Matrix? = nil, invA: [Float] = [], mlpOut: Matrix? = nil, invM: [Float] = []

        /// The outputs of the layer's projections, for a backward pass without recomputing them.
        var projections: Projections {
            Projections(q: q, k: k, v: v, x2: x2, g: mlp.g, u: mlp.u, qRaw: headNorms?.q, kRaw: headNorms?.k, attnOut: attnOut, mlpOut: mlpOut)
        }
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
        /// Gemma: o_proj's and down_proj's outputs before their norms.
        let attnOut: Matrix?, mlpOut: Matrix?

        /// Bytes kept for a layer of `sizes` in `model` over `rows` token rows (overflow-checked).
        static func bytes(_ sizes: LayerSizes, in model: ModelDescription, rows: Int) -> Int? {
            let d = model.headDim
            var perRow = sizes.queryWidth(headDim: d) + 2 * sizes.keyValueWidth(headDim: d) + model.hiddenSize + 2 * sizes.intermediateSize
            if model.family.blocks.queryKeyNorm { perRow += sizes.queryWidth(headDim: d) + sizes.keyValueWidth(headDim: d) }
            if model.family.blocks.isGemma { perRow += 2 * model.hiddenSize }
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
        let off = offset
        let (h1, inv1) = RMSNorm.forward(x, weight: weights.inputNorm, eps: eps, offset: off)
        let t = layout.seqLen, a = attention
        var q: Matrix, k: Matrix, v: Matrix
        var headNorms: HeadNormInputs? = nil
        if let kept {
            (q, k, v) = (kept.q, kept.k, kept.v)
            if let qn = weights.queryNorm, let kn = weights.keyNorm, let qRaw = kept.qRaw, let kRaw = kept.kRaw {
                let invQ = HeadNorm.forward(qRaw, weight: qn, heads: a.heads, eps: eps, offset: off).inverseRMS
                let invK = HeadNorm.forward(kRaw, weight: kn, heads: a.kvHeads, eps: eps, offset: off).inverseRMS
                headNorms = HeadNormInputs(q: qRaw, k: kRaw, invQ: invQ, invK: invK)
            }
        } else {
            (q, k, v) = (weights.q.forward(h1), weights.k.forward(h1), weights.v.forward(h1))
            if let qn = weights.queryNorm, let kn = weights.keyNorm {
                let (qRaw, kRaw) = (q, k)
                let invQ: [Float], invK: [Float]
                (q, invQ) = HeadNorm.forward(qRaw, weight: qn, heads: a.heads, eps: eps, offset: off)
                (k, invK) = HeadNorm.forward(kRaw, weight: kn, heads: a.kvHeads, eps: eps, offset: off)
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
        var attnOut: Matrix? = nil, invA: [Float] = []
        if let kept {
            x2 = kept.x2
            if let an = weights.attentionOutputNorm, let ao = kept.attnOut {
                attnOut = ao
                invA = RMSNorm.forward(ao, weight: an, eps: eps, offset: off).inverseRMS
            }
        } else if let an = weights.attentionOutputNorm {
            // Gemma: x2 = x + norm(o(attn)).
            let ao = weights.o.forward(attn)
            let normed: Matrix
            (normed, invA) = RMSNorm.forward(ao, weight: an, eps: eps, offset: off)
            normed.add(x)
            x2 = normed
            attnOut = ao
        } else {
            x2 = weights.o.forward(attn)
            x2.add(x)
        }
        let (h2, inv2) = RMSNorm.forward(x2, weight: weights.postAttentionNorm, eps: eps, offset: off)
        let mlp = self.mlp
        let saved = kept.map { mlp.activations(gate: $0.g, up: $0.u) } ?? mlp.activations(h2)
        var out: Matrix? = nil
        var mlpOut: Matrix? = nil, invM: [Float] = []
        if let mn = weights.mlpOutputNorm {
            // Gemma: out = x2 + norm(down(a)); the backward pass needs down(a) too.
            let m = kept?.mlpOut ?? mlp.down.forward(saved.a)
            let normed: Matrix
            (normed, invM) = RMSNorm.forward(m, weight: mn, eps: eps, offset: off)
            mlpOut = m
            if output {
                normed.add(x2)
                out = normed
            }
        } else if output {
            let m = mlp.down.forward(saved.a)
            m.add(x2)
            out = m
        }
        var f = Internals(h1: h1, inv1: inv1, q: q, k: k, v: v, headNorms: headNorms, p: p, attn: attn, x2: x2, h2: h2, inv2: inv2, mlp: saved, out: out)
        f.attnOut = attnOut
        f.invA = invA
        f.mlpOut = mlpOut
        f.invM = invM
        return f
    }

    /// Recomputes the layer on `x` (from `kept` projections when given), then returns dL/dx for
    /// output gradient `dOut`, adding weight gradients into `grads`.
    func backward(_ x: Matrix, dOut: Matrix, layout: BatchLayout, rotary: Rotary, grads: LayerGradients?,
                  kept: Projections? = nil) -> Matrix {
        let f = forward(x, layout: layout, rotary: rotary, output: false, keepProbabilities: true, reusing: kept)
        let n = x.rows, t = layout.seqLen, a = attention, off = offset
        // MLP branch: out = x2 + mlp(norm(x2)) (Gemma: x2 + norm(mlp(norm(x2)))).
        var dm = dOut
        if let mn = weights.mlpOutputNorm, let m = f.mlpOut {
            dm = Matrix(uninitializedRows: n, cols: weights.hidden)
            RMSNorm.backward(x: m, inverseRMS: f.invM, weight: mn, dy: dOut, dx: dm, accumulate: false, weightGradient: grads?.mlpOutputNorm, offset: off)
        }
        let dh2 = Matrix(uninitializedRows: n, cols: weights.hidden)
        mlp.backward(x: f.h2, saved: f.mlp, dy: dm, dx: dh2, accumulate: false, grads: grads)
        let dx2 = dOut.copy()
        RMSNorm.backward(x: f.x2, inverseRMS: f.inv2, weight: weights.postAttentionNorm, dy: dh2, dx: dx2, accumulate: true,
                         weightGradient: grads?.postAttentionNorm, offset: off)
        // Attention branch: x2 = x + o(attn(norm(x))) (Gemma: x + norm(o(attn(norm(x))))).
        var dO = dx2
        if let an = weights.attentionOutputNorm, let ao = f.attnOut {
            dO = Matrix(uninitializedRows: n, cols: weights.hidden)
            RMSNorm.backward(x: ao, inverseRMS: f.invA, weight: an, dy: dx2, dx: dO, accumulate: false, weightGradient: grads?.attentionOutputNorm, offset: off)
        }
        weights.o.backwardWeights(x: f.attn, dy: dO, weightGradient: grads?.o, biasGradient: grads?.oBias)
        let dAttn = Matrix(uninitializedRows: n, cols: a.qDim)
        weights.o.backwardInput(dO, into: dAttn, accumulate: false)
        let dq = Matrix(uninitializedRows: n, cols: a.qDim), dk = Matrix(rows: n, cols: a.kvDim), dv = Matrix(rows: n, cols: a.kvDim)
        a.backward(q: f.q.storage, k: f.k.storage, v: f.v.storage, dOut: dAttn.storage, sequences: layout.batch, t: t,
                   probabilities: f.p.map { UnsafePointer($0.storage) }, dq: dq.storage, dk: dk.storage, dv: dv.storage)
        withExtendedLifetime((f.p, dAttn)) {}
        rotary.apply(dq.storage, rows: n, ld: a.qDim, heads: a.heads, inverse: true) { $0 % t }
        rotary.apply(dk.storage, rows: n, ld: a.kvDim, heads: a.kvHeads, inverse: true) { $0 % t }
        var (dqRaw, dkRaw) = (dq, dk)
        if let hn = f.headNorms, let qn = weights.queryNorm, let kn = weights.keyNorm {
            dqRaw = HeadNorm.backward(x: hn.q, inverseRMS: hn.invQ, weight: qn, heads: a.heads, dy: dq, weightGradient: grads?.queryNorm, offset: off)
            dkRaw = HeadNorm.backward(x: hn.k, inverseRMS: hn.invK, weight: kn, heads: a.kvHeads, dy: dk, weightGradient: grads?.keyNorm, offset: off)
        }
        weights.q.backwardWeights(x: f.h1, dy: dqRaw, weightGradient: grads?.q, biasGradient: grads?.qBias)
        weights.k.backwardWeights(x: f.h1, dy: dkRaw, weightGradient: grads?.k, biasGradient: grads?.kBias)
        weights.v.backwardWeights(x: f.h1, dy: dv, weightGradient: grads?.v, biasGradient: grads?.vBias)
        let dh1 = Matrix(uninitializedRows: n, cols: weights.hidden)
        weights.q.backwardInput(dqRaw, into: dh1, accumulate: false)
        weights.k.backwardInput(dkRaw, into: dh1, accumulate: true)
        weights.v.backwardInput(dv, into: dh1, accumulate: true)
        RMSNorm.backward(x: x, inverseRMS: f.inv1, weight: weights.inputNorm, dy: dh1, dx: dx2, accumulate: true,
                         weightGradient: grads?.inputNorm, offset: off)
        return dx2
    }
}

/// The gradient accumulators of one layer, in the shapes of its weights.
final class LayerGradients {
    let inputNorm, postAttentionNorm: GradientAccumulator
    let queryNorm, keyNorm: GradientAccumulator?
    let attentionOutputNorm, mlpOutputNorm: GradientAccumulator?
    let q, k, v, o, gate, up, down: GradientAccumulator
    let qBias, kBias, vBias, oBias, gateBias, upBias, downBias: GradientAccumulator?

    init(_ w: LayerWeights, layout: BatchLayout, fisher: Bool) {
        func acc(_ m: Matrix) -> GradientAccumulator { GradientAccumulator(rows: m.rows, cols: m.cols, layout: layout, fisher: fisher) }
        func bias(_ l: Linear) -> GradientAccumulator? { l.bias.map(acc) }
        inputNorm = acc(w.inputNorm); postAttentionNorm = acc(w.postAttentionNorm)
        queryNorm = w.queryNorm.map(acc); keyNorm = w.keyNorm.map(acc)
        attentionOutputNorm = w.attentionOutputNorm.map(acc); mlpOutputNorm = w.mlpOutputNorm.map(acc)
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
        if let attentionOutputNorm { out.append(attentionOutputNorm) }
        if let mlpOutputNorm { out.append(mlpOutputNorm) }
        for (wgt, b) in [(q, qBias), (k, kBias), (v, vBias), (o, oBias), (gate, gateBias), (up, upBias), (down, downBias)] {
            out.append(wgt)
            if let b { out.append(b) }
        }
        return out
    }
}
