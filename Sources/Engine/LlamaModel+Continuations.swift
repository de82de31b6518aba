#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ModelArchitecture
import ShearsBLAS
import ShearsConcurrency

/// Token sequences that begin with the same tokens: `prefix + suffixes[i]` is sequence i. The
/// prefix runs once; each suffix attends to the prefix and to itself, so the sequences cost the
/// prefix once plus their own tokens.
public struct SharedPrefix: Sendable, Equatable {
    public var prefix: [Int32]
    /// Each sequence's tokens after the prefix (at least one each).
    public var suffixes: [[Int32]]
    /// For each sequence: how many of its last tokens are scored (each given everything before it).
    public var scored: [Int]

    public init(prefix: [Int32], suffixes: [[Int32]], scored: [Int]) {
        self.prefix = prefix
        self.suffixes = suffixes
        self.scored = scored
    }

    /// Tokens this group runs through the model.
    public var rows: Int { suffixes.reduce(prefix.count) { $0 + $1.count } }
}

extension LlamaModel {
    /// For every group and sequence, the sum of the log-probabilities of its `scored` last tokens
    /// (natural log), each given all tokens before it, and whether each was the greedy (argmax)
    /// token. All groups run through each layer together (weights stream layer by layer).
    /// - Throws: `invalidArgument` for an empty suffix, a scored count outside 1 ..< sequence
    ///   length, a token outside the vocabulary, or a sequence longer than the rotary tables allow.
    public func continuationLogLikelihoods(_ groups: [SharedPrefix]) throws(CheckpointError) -> [[(logLikelihood: Double, greedy: Bool)]] {
        defer { BufferPool.shared.drain() }
        let a = description, hidden = a.hiddenSize
        // Row layout: each group's prefix rows, then each of its suffixes' rows.
        var positions: [Int] = [], tokens: [Int32] = []
        struct Segment { let row: Int, count: Int, prefixRow: Int, prefixCount: Int }
        var segments: [Segment] = []
        var longest = 1
        for g in groups {
            guard g.scored.count == g.suffixes.count else {
                throw CheckpointError(.invalidArgument, "a shared-prefix group needs one scored count per suffix")
            }
            let p0 = tokens.count
            tokens += g.prefix
            positions += Array(0..<g.prefix.count)
            if !g.prefix.isEmpty { segments.append(Segment(row: p0, count: g.prefix.count, prefixRow: p0, prefixCount: 0)) }
            for (s, n) in zip(g.suffixes, g.scored) {
                let length = g.prefix.count + s.count
                guard !s.isEmpty, n >= 1, n < length else {
                    throw CheckpointError(.invalidArgument, "a scored sequence needs a non-empty suffix and 1 ≤ scored < its \(length) tokens (got \(n))")
                }
                segments.append(Segment(row: tokens.count, count: s.count, prefixRow: p0, prefixCount: g.prefix.count))
                tokens += s
                positions += Array(g.prefix.count..<length)
                longest = max(longest, length)
            }
        }
        guard !tokens.isEmpty else { return groups.map { _ in [] } }
        try checkTokens(tokens)
        var x = try embed(tokens)
        let pos = positions
        let off = a.family.blocks.normWeightOffset
        for i in 0..<a.layerCount {
            let w = try layerWeights(i)
            let rot = rotaryTables(positions: longest, layer: i)
            // The layer's own attention (scale, sliding window, soft-cap) and MLP (SwiGLU/GeGLU).
            let layer = DecoderLayer(weights: w, eps: eps)
            let att = layer.attention
            let (h1, _) = RMSNorm.forward(x, weight: w.inputNorm, eps: eps, offset: off)
            var q = w.q.forward(h1), k = w.k.forward(h1)
            let v = w.v.forward(h1)
            if let qn = w.queryNorm, let kn = w.keyNorm {
                q = HeadNorm.forward(q, weight: qn, heads: att.heads, eps: eps, offset: off).y
                k = HeadNorm.forward(k, weight: kn, heads: att.kvHeads, eps: eps, offset: off).y
            }
            rot.apply(q.storage, rows: q.rows, ld: att.qDim, heads: att.heads, inverse: false) { pos[$0] }
            rot.apply(k.storage, rows: k.rows, ld: att.kvDim, heads: att.kvHeads, inverse: false) { pos[$0] }
            let attn = Matrix(uninitializedRows: x.rows, cols: att.qDim)
            let pq = UnsafeSendable(q.storage), pk = UnsafeSendable(k.storage), pv = UnsafeSendable(v.storage)
            let po = UnsafeSendable(attn.storage)
            let segs = segments, kvd = att.kvDim, qd = att.qDim
            Parallel.chunksCallingBLAS(segs.count) { items in
                for si in items {
                    let s = segs[si], tk = s.prefixCount + s.count
                    let scratch = Matrix(uninitializedRows: s.count, cols: tk)
                    if s.prefixCount == 0 {
                        att.forward(q: pq.value + s.row * qd, k: pk.value + s.row * kvd, v: pv.value + s.row * kvd,
                                    tq: s.count, tk: tk, start: 0, out: po.value + s.row * qd, scratch: scratch.storage)
                    } else {
                        // Keys and values of the prefix followed by the suffix's own, contiguous.
                        let ks = Matrix(uninitializedRows: tk, cols: kvd), vs = Matrix(uninitializedRows: tk, cols: kvd)
                        ks.storage.update(from: pk.value + s.prefixRow * kvd, count: s.prefixCount * kvd)
                        (ks.storage + s.prefixCount * kvd).update(from: pk.value + s.row * kvd, count: s.count * kvd)
                        vs.storage.update(from: pv.value + s.prefixRow * kvd, count: s.prefixCount * kvd)
                        (vs.storage + s.prefixCount * kvd).update(from: pv.value + s.row * kvd, count: s.count * kvd)
                        att.forward(q: pq.value + s.row * qd, k: ks.storage, v: vs.storage, tq: s.count, tk: tk,
                                    start: s.prefixCount, out: po.value + s.row * qd, scratch: scratch.storage)
                        withExtendedLifetime((ks, vs)) {}
                    }
                    withExtendedLifetime(scratch) {}
                }
            }
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
        // The rows whose logits predict a scored token, and the tokens they predict.
        var sources: [Int] = [], targets: [Int32] = [], owner: [(Int, Int)] = []
        var row = 0
        for (gi, g) in groups.enumerated() {
            let p0 = row
            row += g.prefix.count
            for (si, (s, n)) in zip(g.suffixes, g.scored).enumerated() {
                let length = g.prefix.count + s.count
                for p in (length - n)..<length {
                    let before = p - 1
                    sources.append(before < g.prefix.count ? p0 + before : row + before - g.prefix.count)
                    targets.append(p < g.prefix.count ? g.prefix[p] : s[p - g.prefix.count])
                    owner.append((gi, si))
                }
                row += s.count
            }
        }
        let selected = Matrix(uninitializedRows: sources.count, cols: hidden)
        for (r, src) in sources.enumerated() {
            (selected.storage + r * hidden).update(from: x.storage + src * hidden, count: hidden)
        }
        let (hf, _) = RMSNorm.forward(selected, weight: try finalNorm(), eps: eps, offset: off)
        let head = try headTable()
        let vocab = a.vocabSize
        var out = groups.map { [(logLikelihood: Double, greedy: Bool)](repeating: (0, true), count: $0.suffixes.count) }
        let block = max(1, min(sources.count, (64 << 20) / max(1, vocab * MemoryLayout<Float>.stride)))
        let logits = Matrix(uninitializedRows: block, cols: vocab)
        var results = [(Double, Bool)](repeating: (0, true), count: sources.count)
        for r0 in stride(from: 0, to: sources.count, by: block) {
            let n = min(block, sources.count - r0)
            try head.logits(hidden: hf, rows: r0..<(r0 + n), into: logits, transform: logitTransform)
            let pl = UnsafeSendable(logits.storage)
            results.withUnsafeMutableBufferPointer { rb in
                let pr = UnsafeSendable(rb.baseAddress!)
                Parallel.chunks(n, costPerItem: vocab) { rows in
                    for r in rows {
                        let rowp = pl.value + r * vocab
                        let target = Int(targets[r0 + r])
                        let m = Kernels.maximum(rowp, vocab)
                        var total = 0.0, j = 0
                        while j < vocab {
                            let e = min(vocab, j + 256)
                            var s: Float = 0
                            for c in j..<e { s += Kernels.exp(rowp[c] - m) }
                            total += Double(s)
                            j = e
                        }
                        let lp = Double(rowp[target]) - Double(m) - log(total)
                        // Greedy: the target holds the first maximum (torch.argmax's tie rule).
                        var greedy = rowp[target] == m
                        if greedy { for c in 0..<target where rowp[c] == m { greedy = false; break } }
                        pr.value[r0 + r] = (lp, greedy)
                    }
                }
            }
        }
        for (r, (gi, si)) in owner.enumerated() {
            out[gi][si].logLikelihood += results[r].0
            out[gi][si].greedy = out[gi][si].greedy && results[r].1
        }
        return out
    }
}
