import CheckpointCore

/// Calibration windows (llm-pruner.md §2.1, with Shears' seeded generator): for each sample, a
/// document is drawn uniformly among those holding at least `seqLen` tokens, then a start position
/// uniformly in `0 ... count − seqLen`, both from ``SplitMix64`` seeded with `--seed`; every
/// iterative step draws fresh windows from the same stream. When every document is exactly
/// `seqLen` tokens long (a `--calibration-tokens` file of ready windows), step s takes documents
/// `(s−1)·samples ..< s·samples` (cyclically) as they are.
public struct CalibrationSampler: Sendable {
    public let documents: [[Int32]]
    public let samples: Int
    public let seqLen: Int
    var generator: SplitMix64

    /// - Throws: `invalidArgument` when no document is long enough.
    public init(documents: [[Int32]], samples: Int, seqLen: Int, seed: UInt64) throws(CheckpointError) {
        guard samples >= 1, seqLen >= 2 else { throw CheckpointError(.invalidArgument, "calibration needs at least 1 sample of at least 2 tokens") }
        guard documents.contains(where: { $0.count >= seqLen }) else {
            throw CheckpointError(.invalidArgument, "no calibration document holds \(seqLen) tokens")
        }
        self.documents = documents
        self.samples = samples
        self.seqLen = seqLen
        generator = SplitMix64(seed: seed)
    }

    /// Total tokens over all documents.
    public var tokenCount: Int { documents.reduce(0) { $0 + $1.count } }

    /// The windows of step `step` (from 1). Steps must be asked in order.
    public mutating func batch(step: Int) -> [[Int32]] {
        if documents.allSatisfy({ $0.count == seqLen }) {
            return (0..<samples).map { documents[((step - 1) * samples + $0) % documents.count] }
        }
        let eligible = documents.indices.filter { documents[$0].count >= seqLen }
        return (0..<samples).map { _ in
            let doc = documents[eligible[Int(generator.uniform() * Double(eligible.count))]]
            let start = Int(generator.uniform() * Double(doc.count - seqLen + 1))
            return Array(doc[start..<(start + seqLen)])
        }
    }
}
