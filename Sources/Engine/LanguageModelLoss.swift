#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import ShearsBLAS
import ShearsConcurrency

/// The result of a loss computation.
public struct LossResult: Sendable, Equatable {
    /// Mean negative log-likelihood over the predicted tokens (transformers' causal-LM loss).
    public var loss: Double { tokens == 0 ? .nan : nllSum / Double(tokens) }
    /// Sum of the negative log-likelihoods.
    public var nllSum: Double
    /// Predicted tokens: (seqLen − 1) per sequence.
    public var tokens: Int
}

/// The LM head and the causal-LM cross-entropy: token t of a sequence predicts token t + 1; the
/// last token of each sequence predicts nothing. Run a few sequences at a time
/// (``sequencesPerBlock(seqLen:vocab:sequences:)``) so that only a bounded block of `[seqLen, vocab]`
/// logits exists at once, while the head's products stay large.
enum LanguageModelLoss {
    /// Sequences whose logits are computed together: as many as fit in `bytes` (64 MiB by default)
    /// of logits, at least one.
    static func sequencesPerBlock(seqLen: Int, vocab: Int, sequences: Int, bytes: Int = 64 << 20) -> Int {
        max(1, min(sequences, bytes / max(1, seqLen * vocab * MemoryLayout<Float>.stride)))
    }

    /// Logits of rows `rows` of `hidden` into the first `rows.count` rows of `logits` (`[·, vocab]`).
    static func logits(hidden: Matrix, rows: Range<Int>, head: Matrix, into logits: Matrix) {
        let h = hidden.cols, v = head.rows
        precondition(logits.rows >= rows.count && logits.cols == v)
        BLAS.sgemm(transB: true, m: rows.count, n: v, k: h, a: hidden.storage + rows.lowerBound * h, lda: h,
                   b: head.storage, ldb: h, c: logits.storage, ldc: v)
    }

    /// Negative log-likelihood of each predicted token of one sequence (rows 0 ..< t − 1 predict
    /// targets[1...]), accumulated in Double. With `gradientScale`, also turns `logits` into
    /// dL/dlogits in place: (softmax − onehot)·scale on predicted rows, zero on the last row.
    static func crossEntropy(logits: Matrix, targets: ArraySlice<Int32>, gradientScale: Float?) -> Double {
        crossEntropy(logits: logits, sequences: 1, seqLen: logits.rows, tokens: targets, gradientScale: gradientScale)
    }

    /// The same over `sequences` consecutive sequences of `seqLen` rows (the first rows of
    /// `logits`), `tokens` holding their tokens.
    /// With `trained` (one flag per token), a row counts only when the token it predicts is
    /// trained; other rows add nothing to the sum and get a zero gradient.
    static func crossEntropy(logits: Matrix, sequences: Int, seqLen t: Int, tokens: ArraySlice<Int32>, gradientScale: Float?,
                             trained: ArraySlice<Bool>? = nil) -> Double {
        let n = sequences * t, v = logits.cols
        precondition(logits.rows >= n && tokens.count == n && (trained == nil || trained!.count == n))
        let storage = UnsafeSendable(logits.storage)
        var partial = [Double](repeating: 0, count: n)
        partial.withUnsafeMutableBufferPointer { pb in
            let out = UnsafeSendable(pb.baseAddress!)
            Parallel.chunks(n, costPerItem: v) { rows in
                for r in rows {
                    let row = storage.value + r * v
                    guard r % t + 1 < t, trained.map({ $0[$0.startIndex + r + 1] }) ?? true else {
                        if gradientScale != nil { for j in 0..<v { row[j] = 0 } }
                        continue
                    }
                    let target = Int(tokens[tokens.startIndex + r + 1])
                    let targetLogit = row[target]
                    let m = Kernels.maximum(row, v)
                    // Sum in Float blocks of 256, blocks in Double: stays accurate. With a gradient,
                    // e^(x − m) stays in the row, to be normalised below (one exp per logit).
                    var total = 0.0
                    var j = 0
                    while j < v {
                        let e = min(v, j + 256)
                        if gradientScale != nil {
                            for k in j..<e { row[k] = Kernels.exp(row[k] - m) }
                            total += Double(Kernels.sum(row + j, e - j))
                        } else {
                            var s: Float = 0
                            for k in j..<e { s += Kernels.exp(row[k] - m) }
                            total += Double(s)
                        }
                        j = e
                    }
                    let logZ = Double(m) + log(total)
                    out.value[r] = logZ - Double(targetLogit)
                    if let scale = gradientScale {
                        // softmax·scale = e^(x − m)·(scale / Σ).
                        let f = Float(Double(scale) / total)
                        for k in 0..<v { row[k] *= f }
                        row[target] -= scale
                    }
                }
            }
        }
        return partial.reduce(0, +)
    }
}
