import CheckpointCore
import ModelArchitecture
import ShearsBLAS

extension LlamaModel {
    /// The causal-LM loss of `batch` and the gradient of every parameter, streamed to `consumer`
    /// layer by layer (see ``GradientConsumer`` for the order).
    ///
    /// Memory: one `[tokens, hidden]` input per layer, one layer's weights, internals and
    /// gradients, and one block of sequences' logits (at most 64 MiB, or one sequence's, or more
    /// with a blocked head: ``MemoryBudget``); the embedding and head in F32 when they are small or
    /// when the consumer wants their gradients (``GradientConsumer/wantsGradient(of:layer:)``),
    /// otherwise a head block and per-token embedding rows. With the Fisher sum, a scratch matrix per parameter being reduced (and the
    /// head's size once). With ``activationMemory``, the last layers' projection outputs up to that
    /// many bytes, each freed once its layer's backward pass is done.
    /// - Throws: ``CheckpointError`` for weights that cannot be read or tokens outside the
    ///   vocabulary; whatever the consumer throws.
    @discardableResult
    public func backward(_ batch: TokenBatch, consumer: GradientConsumer) throws -> LossResult {
        // Buffers kept for reuse between layers are given back once the pass is over.
        defer { BufferPool.shared.drain() }
        try checkMemory(rows: batch.tokens.count, backward: true, fisher: consumer.wantsFisher)
        return try backwardPass(batch, consumer: consumer)
    }

    private func backwardPass(_ batch: TokenBatch, consumer: GradientConsumer) throws -> LossResult {
        guard batch.seqLen >= 2 else { throw CheckpointError(.invalidArgument, "sequences need at least 2 tokens to predict one") }
        let a = description, h = a.hiddenSize, v = a.vocabSize, t = batch.seqLen
        let layout = batch.layout, fisher = consumer.wantsFisher
        var (x, inputs, kept) = try decoderStack(batch, saveInputs: true, keptFrom: firstKeptLayer(rows: layout.rows))
        let normWeight = try finalNorm()
        let off = a.family.blocks.normWeightOffset
        let (hf, invF) = RMSNorm.forward(x, weight: normWeight, eps: eps, offset: off)
        let predicted = batch.batch * (t - 1)
        let scale = 1 / Float(predicted)
        // The head's weight gradient (the embedding's too when tied) only when the consumer wants
        // it: it is a whole [vocab, hidden] matrix, and so needs the whole head.
        let wantsEmbedding = consumer.wantsGradient(of: a.name(.embedding), layer: nil)
        let wantsHead = a.tieWordEmbeddings ? wantsEmbedding : consumer.wantsGradient(of: a.name(.lmHead), layer: nil)
        let headTable = try headTable(whole: wantsHead)

        // LM head and loss, a block of sequences at a time.
        let headGrad: GradientAccumulator? = wantsHead ? GradientAccumulator(rows: v, cols: h, layout: layout, fisher: fisher) : nil
        let dhf = Matrix(uninitializedRows: layout.rows, cols: h)
        let block = LanguageModelLoss.sequencesPerBlock(seqLen: t, vocab: v, sequences: batch.batch,
                                                        bytes: memory.logitBytes(blockedHead: headTable.whole == nil))
        let dlogits = Matrix(uninitializedRows: block * t, cols: v)
        let transformed = logitTransform.isIdentity ? nil : Matrix(uninitializedRows: block * t, cols: v)
        // Tied + Fisher: each sample's head-gradient rows for its own input tokens (for the cross term).
        var headRows: [[Int32: [Float]]] = Array(repeating: [:], count: batch.batch)
        let tiedFisher = fisher && a.tieWordEmbeddings
        var nll = 0.0
        for b0 in stride(from: 0, to: batch.batch, by: block) {
            let nb = min(block, batch.batch - b0), rows = (b0 * t)..<((b0 + nb) * t)
            try headTable.logits(hidden: hf, rows: rows, into: dlogits, transform: logitTransform)
            transformed?.storage.update(from: dlogits.storage, count: rows.count * v)
            nll += LanguageModelLoss.crossEntropy(logits: dlogits, sequences: nb, seqLen: t, tokens: batch.tokens[rows], gradientScale: scale)
            if let transformed {
                for r in 0..<rows.count { logitTransform.backward(dlogits.storage + r * v, transformed.storage + r * v, v) }
            }
            if let headGrad, fisher {
                for b in b0..<(b0 + nb) {
                    let r0 = layout.rowRange(b).lowerBound
                    headGrad.addSampleOuterProducts(dy: dlogits.storage + (r0 - rows.lowerBound) * v, x: hf.storage + r0 * h, rows: t, sample: b,
                                                    inspect: tiedFisher ? { g in
                        for tok in Set(batch.sequence(b)) {
                            headRows[b][tok] = Array(UnsafeBufferPointer(start: g.storage + Int(tok) * h, count: h))
                        }
                    } : nil)
                }
            } else if let headGrad {
                headGrad.addSampleOuterProducts(dy: dlogits.storage, x: hf.storage + rows.lowerBound * h, rows: rows.count, sample: b0)
            }
            try headTable.backwardInput(dlogits, count: rows.count, into: dhf.storage + rows.lowerBound * h)
        }
        withExtendedLifetime(hf) {}
        headGrad?.dropScratch()
        if !a.tieWordEmbeddings, let headGrad, let head = headTable.whole {
            try consumer.consume(ParameterGradient(layer: nil, name: a.name(.lmHead), weight: head, gradient: headGrad.gradient, fisher: headGrad.fisher))
        }

        // Final norm.
        let normGrad = GradientAccumulator(rows: 1, cols: h, layout: layout, fisher: fisher)
        var dx = Matrix(rows: layout.rows, cols: h)
        RMSNorm.backward(x: x, inverseRMS: invF, weight: normWeight, dy: dhf, dx: dx, accumulate: false, weightGradient: normGrad, offset: off)
        try consumer.consume(ParameterGradient(layer: nil, name: a.name(.finalNorm), weight: normWeight, gradient: normGrad.gradient, fisher: normGrad.fisher))
        x = dx

        // Decoder layers, last to first, each recomputed from its saved input (and its kept
        // projections, if any).
        for i in stride(from: a.layerCount - 1, through: 0, by: -1) {
            let w = try layerWeights(i)
            let grads = LayerGradients(w, layout: layout, fisher: fisher)
            let input = inputs.removeLast()
            let projections = kept.removeLast()
            dx = DecoderLayer(weights: w, eps: eps).backward(input, dOut: dx, layout: layout, rotary: rotaryTables(positions: t, layer: i), grads: grads,
                                                             kept: projections)
            for ((name, weight), g) in zip(w.parameters, grads.inParameterOrder) {
                try consumer.consume(ParameterGradient(layer: i, name: name, weight: weight, gradient: g.gradient, fisher: g.fisher))
            }
        }

        // Embedding: scatter-add each token's input gradient (plus the head's when tied).
        guard wantsEmbedding else { return LossResult(nllSum: nll, tokens: predicted) }
        let embed = try embedding()
        let embGrad = a.tieWordEmbeddings ? headGrad!.gradient : Matrix(rows: v, cols: h)
        let embFisher: Matrix? = fisher ? (a.tieWordEmbeddings ? headGrad!.fisher! : Matrix(rows: v, cols: h)) : nil
        // Gemma: the embedding's output was scaled, so its gradient is too.
        if let es = a.embeddingScale { for i in 0..<dx.count { dx.storage[i] *= es } }
        let padding = a.paddingTokenId.map { Int32($0) }
        for b in 0..<batch.batch {
            var sampleRows: [Int32: [Float]] = [:]
            for r in layout.rowRange(b) {
                let tok = batch.tokens[r]
                if let pad = padding, tok == pad { continue }   // nn.Embedding's padding_idx
                let src = dx.storage + r * h
                var acc = sampleRows[tok] ?? [Float](repeating: 0, count: h)
                for j in 0..<h { acc[j] += src[j] }
                sampleRows[tok] = acc
            }
            let a2 = layout.fisherScale[b] * layout.fisherScale[b]
            for (tok, e) in sampleRows {
                let g = embGrad.storage + Int(tok) * h
                for j in 0..<h { g[j] += e[j] }
                if let f = embFisher?.storage.advanced(by: Int(tok) * h) {
                    if let hr = headRows[b][tok] {
                        for j in 0..<h { f[j] += a2 * (e[j] * e[j] + 2 * hr[j] * e[j]) }
                    } else {
                        for j in 0..<h { f[j] += a2 * e[j] * e[j] }
                    }
                }
            }
        }
        try consumer.consume(ParameterGradient(layer: nil, name: a.name(.embedding), weight: embed, gradient: embGrad, fisher: embFisher))
        return LossResult(nllSum: nll, tokens: predicted)
    }
}

