import CheckpointCore
import ModelArchitecture
import ShearsBLAS

extension LlamaModel {
    /// Runs `tokens` after the cached prefix and returns the logits of the last one.
    /// - Throws: `invalidArgument` when the cache would overflow or a token is outside the vocabulary.
    public func step(_ tokens: [Int32], cache: KVCache) throws(CheckpointError) -> [Float] {
        guard !tokens.isEmpty else { throw CheckpointError(.invalidArgument, "step needs at least one token") }
        guard cache.length + tokens.count <= cache.capacity else {
            throw CheckpointError(.invalidArgument, "the context would exceed the cache's \(cache.capacity) tokens")
        }
        try checkTokens(tokens)
        let a = description, start = cache.length, tq = tokens.count, tk = start + tq
        var x = try embed(tokens)
        let scratch = Matrix(rows: tq, cols: tk)
        let off = a.family.blocks.normWeightOffset
        for i in 0..<a.layerCount {
            let w = try layerWeights(i)
            let rot = rotaryTables(positions: tk, layer: i)
            let layer = DecoderLayer(weights: w, eps: eps)
            let att = layer.attention
            let (h1, _) = RMSNorm.forward(x, weight: w.inputNorm, eps: eps, offset: off)
            var q = w.q.forward(h1), k = w.k.forward(h1)
            let v = w.v.forward(h1)
            if let qn = w.queryNorm, let kn = w.keyNorm {
                q = HeadNorm.forward(q, weight: qn, heads: att.heads, eps: eps, offset: off).y
                k = HeadNorm.forward(k, weight: kn, heads: att.kvHeads, eps: eps, offset: off).y
            }
            rot.apply(q.storage, rows: tq, ld: att.qDim, heads: att.heads, inverse: false) { start + $0 }
            rot.apply(k.storage, rows: tq, ld: att.kvDim, heads: att.kvHeads, inverse: false) { start + $0 }
            let ck = cache.keys[i], cv = cache.values[i]
            (ck.storage + start * att.kvDim).update(from: k.storage, count: tq * att.kvDim)
            (cv.storage + start * att.kvDim).update(from: v.storage, count: tq * att.kvDim)
            let attn = Matrix(rows: tq, cols: att.qDim)
            att.forward(q: q.storage, k: ck.storage, v: cv.storage, tq: tq, tk: tk, start: start,
                        out: attn.storage, scratch: scratch.storage)
            withExtendedLifetime((q, k, v)) {}
            var x2 = w.o.forward(attn)
            if let an = w.attentionOutputNorm { x2 = RMSNorm.forward(x2, weight: an, eps: eps, offset: off).y }
            x2.add(x)
            let (h2, _) = RMSNorm.forward(x2, weight: w.postAttentionNorm, eps: eps, offset: off)
            var (m, _) = layer.mlp.forward(h2)
            if let mn = w.mlpOutputNorm { m = RMSNorm.forward(m, weight: mn, eps: eps, offset: off).y }
            m.add(x2)
            x = m
        }
        withExtendedLifetime(scratch) {}
        cache.advance(by: tq)
        let last = Matrix(rows: 1, cols: a.hiddenSize)
        last.storage.update(from: x.storage + (tq - 1) * a.hiddenSize, count: a.hiddenSize)
        let (hf, _) = RMSNorm.forward(last, weight: try finalNorm(), eps: eps, offset: off)
        let logits = Matrix(rows: 1, cols: a.vocabSize)
        try headTable().logits(hidden: hf, rows: 0..<1, into: logits, transform: logitTransform)
        return logits.values
    }

    /// Generates up to `maxTokens` tokens after `prompt`, calling `onToken` with each as soon as it
    /// is chosen; stops early after a token in `stopTokens` (which is passed to `onToken` too).
    /// Returns the generated tokens.
    @discardableResult
    public func generate(prompt: [Int32], maxTokens: Int, sampler: inout Sampler, stopTokens: Set<Int32> = [],
                         onToken: (Int32) throws -> Void = { _ in }) throws -> [Int32] {
        guard !prompt.isEmpty else { throw CheckpointError(.invalidArgument, "the prompt has no tokens") }
        let cache = KVCache(description: description, capacity: prompt.count + max(0, maxTokens))
        let keep = keepsLayersConverted, limit = convertedLayerLimit
        keepsLayersConverted = true
        // Converted layers are kept within what the memory limit leaves besides one pass.
        let room = max(0, memory.bytes - memoryNeed(rows: prompt.count, backward: false))
        convertedLayerLimit = min(limit ?? room, room)
        defer { keepsLayersConverted = keep; convertedLayerLimit = limit }
        try checkMemory(rows: prompt.count, backward: false)
        var out: [Int32] = []
        guard maxTokens > 0 else { return out }
        var logits = try step(prompt, cache: cache)
        while true {
            let next = sampler.sample(logits)
            out.append(next)
            try onToken(next)
            if stopTokens.contains(next) || out.count >= maxTokens { break }
            if recomputesAtLongRopeSwitch(cached: cache.length) {
                cache.reset()
                logits = try step(prompt + out, cache: cache)
            } else {
                logits = try step([next], cache: cache)
            }
        }
        return out
    }

    /// Whether the next token crosses longrope's original context with a cache built on the short
    /// factors: Phi3ForCausalLM's `prepare_inputs_for_generation` then drops the cache and runs the
    /// whole sequence again (every position on the long factors), and so does ``generate``.
    func recomputesAtLongRopeSwitch(cached: Int) -> Bool {
        guard case .longRope(_, _, _, let original) = description.rotaryScaling else { return false }
        return cached <= original && cached + 1 > original
    }
}
