import CheckpointCore
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Perplexity by LLM-Pruner's protocol: the token stream cut into consecutive windows of
/// `seqLen` tokens (starting every `stride` tokens, `seqLen` by default: non-overlapping), the tail
/// that does not fill a window dropped; each window predicts its own tokens 1 ..< seqLen;
/// PPL = exp(mean NLL over all predicted tokens).
public struct Perplexity: Sendable, Equatable {
    public var nllSum: Double
    /// Predicted tokens.
    public var tokens: Int
    public var windows: Int
    public var seqLen: Int
    /// Mean negative log-likelihood.
    public var nll: Double { nllSum / Double(tokens) }
    public var perplexity: Double { exp(nll) }

    /// Evaluates `model` on `tokens`.
    /// - Parameters:
    ///   - maxWindows: evaluate at most this many windows (from the start).
    ///   - batchSize: windows run together.
    ///   - progress: called after each batch with (windows done, windows total).
    /// - Throws: `invalidArgument` when the text is shorter than one window.
    ///   - bos: put this BOS id at the start of every window: each window is BOS and the next
    ///     seq-len − 1 tokens of the text (non-overlapping), and predicts all of them.
    public static func evaluate(_ model: LlamaModel, tokens: [Int32], seqLen: Int, stride: Int? = nil, maxWindows: Int? = nil,
                                batchSize: Int = 4, bos: Int32? = nil, progress: (Int, Int) -> Void = { _, _ in }) throws(CheckpointError) -> Perplexity {
        if let bos {
            guard seqLen >= 2 else { throw CheckpointError(.invalidArgument, "seq-len must be at least 2") }
            let text = seqLen - 1
            guard tokens.count >= text else {
                throw CheckpointError(.invalidArgument, "the text has \(tokens.count) tokens, fewer than one window of \(text) after BOS")
            }
            var count = tokens.count / text
            if let m = maxWindows { count = min(count, m) }
            var result = Perplexity(nllSum: 0, tokens: 0, windows: count, seqLen: seqLen)
            var w = 0
            while w < count {
                let n = min(batchSize, count - w)
                let batch = try TokenBatch((w..<(w + n)).map { [bos] + Array(tokens[($0 * text)..<($0 * text + text)]) })
                let r = try model.loss(batch)
                result.nllSum += r.nllSum
                result.tokens += r.tokens
                w += n
                progress(w, count)
            }
            return result
        }
        let step = stride ?? seqLen
        guard seqLen >= 2, step >= 1 else { throw CheckpointError(.invalidArgument, "seq-len must be at least 2") }
        guard tokens.count >= seqLen else {
            throw CheckpointError(.invalidArgument, "the text has \(tokens.count) tokens, fewer than one window of \(seqLen)")
        }
        var count = (tokens.count - seqLen) / step + 1
        if let m = maxWindows { count = min(count, m) }
        var result = Perplexity(nllSum: 0, tokens: 0, windows: count, seqLen: seqLen)
        var w = 0
        while w < count {
            let n = min(batchSize, count - w)
            let batch = try TokenBatch((w..<(w + n)).map { Array(tokens[($0 * step)..<($0 * step + seqLen)]) })
            let r = try model.loss(batch)
            result.nllSum += r.nllSum
            result.tokens += r.tokens
            w += n
            progress(w, count)
        }
        return result
    }
}
