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

/// Knowledge distillation from a teacher's next-token distributions.
///
/// Per counted row (the same rows as ``LanguageModelLoss/crossEntropy(logits:sequences:seqLen:tokens:gradientScale:trained:)``
/// counts), with student logits z, teacher logits u, temperature T and CE weight w:
/// `loss = (1 − w)·T²·KL(softmax(u/T) ‖ softmax(z/T)) + w·CE(z, target)`, KL summed over the
/// vocabulary (Hinton et al.'s T² keeps the gradient's scale independent of T). The gradient
/// with respect to z is `(1 − w)·T·(softmax(z/T) − softmax(u/T)) + w·(softmax(z) − onehot)`.
public struct Distillation: Sendable {
    public var temperature: Float
    public var ceWeight: Float

    public init(temperature: Float = 1, ceWeight: Float = 0) {
        self.temperature = temperature
        self.ceWeight = ceWeight
    }

    /// The loss summed over the counted rows of `sequences` sequences of `t` rows (the first rows
    /// of `logits`, `teacher` aligned with them); with `gradientScale`, `logits` becomes
    /// dL/dlogits · scale in place (zero on rows not counted).
    func loss(logits: Matrix, teacher: Matrix, sequences: Int, seqLen t: Int, tokens: ArraySlice<Int32>, trained: ArraySlice<Bool>?,
              gradientScale: Float?) -> Double {
        let n = sequences * t, v = logits.cols
        precondition(logits.rows >= n && teacher.rows >= n && teacher.cols == v && tokens.count == n)
        let zs = UnsafeSendable(logits.storage), zt = UnsafeSendable(teacher.storage)
        let invT = 1 / Double(temperature), T = Double(temperature), w = Double(ceWeight)
        var partial = [Double](repeating: 0, count: n)
        partial.withUnsafeMutableBufferPointer { pb in
            let out = UnsafeSendable(pb.baseAddress!)
            Parallel.chunks(n, costPerItem: 4 * v) { rows in
                var ps = [Double](repeating: 0, count: v), pt = [Double](repeating: 0, count: v)
                for r in rows {
                    let z = zs.value + r * v, u = zt.value + r * v
                    let counted = r % t + 1 < t && (trained.map { $0[$0.startIndex + r + 1] } ?? true)
                    guard counted else {
                        if gradientScale != nil { for j in 0..<v { z[j] = 0 } }
                        continue
                    }
                    let target = Int(tokens[tokens.startIndex + r + 1])
                    // Softmax at temperature T of student and teacher, in Double.
                    var ms = -Double.infinity, mt = -Double.infinity
                    for j in 0..<v { ms = max(ms, Double(z[j])); mt = max(mt, Double(u[j])) }
                    var ss = 0.0, st = 0.0
                    for j in 0..<v {
                        ps[j] = exp((Double(z[j]) - ms) * invT); ss += ps[j]
                        pt[j] = exp((Double(u[j]) - mt) * invT); st += pt[j]
                    }
                    let logSs = log(ss), logSt = log(st)
                    var kl = 0.0
                    for j in 0..<v {
                        let lpt = (Double(u[j]) - mt) * invT - logSt, lps = (Double(z[j]) - ms) * invT - logSs
                        pt[j] /= st
                        ps[j] /= ss
                        if pt[j] > 0 { kl += pt[j] * (lpt - lps) }
                    }
                    var ce = 0.0
                    if w > 0 {
                        var s1 = 0.0
                        for j in 0..<v { s1 += exp(Double(z[j]) - ms) }
                        ce = ms + log(s1) - Double(z[target])
                        if let scale = gradientScale {
                            let g = Double(scale)
                            for j in 0..<v {
                                let p1 = exp(Double(z[j]) - ms) / s1
                                z[j] = Float(g * ((1 - w) * T * (ps[j] - pt[j]) + w * p1))
                            }
                            z[target] -= Float(g * w)
                        }
                    } else if let scale = gradientScale {
                        let g = Double(scale)
                        for j in 0..<v { z[j] = Float(g * T * (ps[j] - pt[j])) }
                    }
                    out.value[r] = (1 - w) * T * T * kl + w * ce
                }
            }
        }
        return partial.reduce(0, +)
    }
}
