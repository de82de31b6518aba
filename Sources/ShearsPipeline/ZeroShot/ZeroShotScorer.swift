import CheckpointCore
import Engine
import Tokenizers

/// The scores of one item: each choice's log-likelihood, and lm-eval's predictions.
public struct ItemScore: Sendable, Equatable {
    /// Sum of the continuation tokens' log-probabilities, per choice (natural log).
    public var logLikelihoods: [Double]
    /// Per choice: every continuation token was the model's greedy choice.
    public var greedy: [Bool]
    /// Per choice: the scored continuation's token count.
    public var continuationTokens: [Int]
    public var gold: Int
    /// argmax of the log-likelihoods (first maximum, as numpy's argmax).
    public var predicted: Int
    /// argmax of log-likelihood ÷ the choice's length in characters.
    public var predictedNormalized: Int

    init(logLikelihoods: [Double], greedy: [Bool], continuationTokens: [Int], item: MultipleChoiceItem) {
        self.logLikelihoods = logLikelihoods
        self.greedy = greedy
        self.continuationTokens = continuationTokens
        gold = item.gold
        predicted = Self.argmax(logLikelihoods)
        predictedNormalized = Self.argmax(zip(logLikelihoods, item.choices).map { $0 / Double(PythonString.length($1)) })
    }

    static func argmax(_ v: [Double]) -> Int {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }

    /// The smallest gap between the best log-likelihood and another choice's (a near tie when
    /// small).
    public var margin: Double {
        let best = logLikelihoods[predicted]
        return logLikelihoods.indices.filter { $0 != predicted }.map { best - logLikelihoods[$0] }.min() ?? .infinity
    }
}

/// Scores multiple-choice items with the engine: the requests of an item run as one
/// ``SharedPrefix`` group (their longest common token prefix once, each choice's remaining
/// tokens after it); many items run through each layer together, up to ``tokensPerBatch``
/// tokens, so the weights stream once per batch.
public struct ZeroShotScorer {
    public let model: LlamaModel
    public let encoder: RequestEncoder
    /// Tokens (rows) run through the model at once.
    public var tokensPerBatch: Int

    public init(model: LlamaModel, encoder: RequestEncoder, tokensPerBatch: Int = 4096) {
        self.model = model
        self.encoder = encoder
        self.tokensPerBatch = max(1, tokensPerBatch)
    }

    /// lm-eval's defaults for a model: the tokenizer's own special tokens (BOS only when its
    /// post-processor adds one, as Gemma's does), and the configuration's
    /// `max_position_embeddings` (2048 when it has none) as the length limit.
    public init(model: LlamaModel, tokenizer: Tokenizer, tokensPerBatch: Int = 4096) {
        let limit = model.description.configuration.maxPositionEmbeddings ?? 2048
        self.init(model: model, encoder: RequestEncoder(tokenizer: tokenizer, addSpecialTokens: true, maxLength: limit),
                  tokensPerBatch: tokensPerBatch)
    }

    /// The group an item's encoded requests form: the longest common prefix of the full
    /// sequences (leaving each at least one token of its own), then each sequence's rest.
    public static func group(_ requests: [EncodedRequest]) -> SharedPrefix {
        let full = requests.map { $0.context + $0.continuation }
        var p = (full.map(\.count).min() ?? 1) - 1
        if let first = full.first {
            for s in full.dropFirst() {
                var i = 0
                while i < p, s[i] == first[i] { i += 1 }
                p = i
            }
        }
        let prefix = full.first.map { Array($0[..<p]) } ?? []
        return SharedPrefix(prefix: prefix, suffixes: full.map { Array($0[p...]) }, scored: requests.map(\.continuation.count))
    }

    /// Encodes every request of `items`.
    public func encode(_ items: [MultipleChoiceItem]) throws(CheckpointError) -> [[EncodedRequest]] {
        var out: [[EncodedRequest]] = []
        out.reserveCapacity(items.count)
        for item in items {
            var r: [EncodedRequest] = []
            for q in item.requests { r.append(try encoder.encode(context: q.context, continuation: q.continuation)) }
            out.append(r)
        }
        return out
    }

    /// Scores `items`, calling `progress(done, total)` after each batch.
    public func score(_ items: [MultipleChoiceItem], progress: (Int, Int) -> Void = { _, _ in }) throws(CheckpointError) -> [ItemScore] {
        let encoded = try encode(items)
        let groups = encoded.map(Self.group)
        var scores: [ItemScore] = []
        scores.reserveCapacity(items.count)
        var i = 0
        while i < groups.count {
            var j = i, rows = 0
            while j < groups.count, j == i || rows + groups[j].rows <= tokensPerBatch {
                rows += groups[j].rows
                j += 1
            }
            let results = try model.continuationLogLikelihoods(Array(groups[i..<j]))
            for (k, r) in results.enumerated() {
                scores.append(ItemScore(logLikelihoods: r.map(\.logLikelihood), greedy: r.map(\.greedy),
                                        continuationTokens: groups[i + k].scored, item: items[i + k]))
            }
            i = j
            progress(i, groups.count)
        }
        return scores
    }
}
