import CheckpointCore

/// Token sequences of equal length, run together: row `b·T + t` of every activation matrix is
/// token `t` of sequence `b`.
public struct TokenBatch: Sendable, Equatable {
    /// All tokens, sequence after sequence.
    public let tokens: [Int32]
    public let batch: Int
    public let seqLen: Int

    /// - Throws: `invalidArgument` when the batch is empty or the sequences differ in length.
    public init(_ sequences: [[Int32]]) throws(CheckpointError) {
        guard let first = sequences.first, !first.isEmpty else {
            throw CheckpointError(.invalidArgument, "a batch needs at least one non-empty sequence")
        }
        guard sequences.allSatisfy({ $0.count == first.count }) else {
            throw CheckpointError(.invalidArgument, "the sequences of a batch must have the same length")
        }
        tokens = sequences.flatMap { $0 }
        batch = sequences.count
        seqLen = first.count
    }

    /// Sequence `b`.
    public func sequence(_ b: Int) -> ArraySlice<Int32> { tokens[(b * seqLen)..<((b + 1) * seqLen)] }

    var layout: BatchLayout { BatchLayout(batch: batch, seqLen: seqLen) }
}

/// Rows of a batch and the factors that turn a sample's share of the batch-mean gradient into
/// the gradient of that sample's own mean loss.
struct BatchLayout: Sendable {
    let batch: Int
    let seqLen: Int
    var rows: Int { batch * seqLen }
    /// α_s = (predicted tokens in the batch) / (predicted tokens in sample s) = batch, since every
    /// sample predicts seqLen − 1 tokens.
    var fisherScale: [Float] { [Float](repeating: Float(batch), count: batch) }

    func rowRange(_ b: Int) -> Range<Int> { (b * seqLen)..<((b + 1) * seqLen) }
}
