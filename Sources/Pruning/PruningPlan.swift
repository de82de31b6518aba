import ModelArchitecture
/// Upstream's unit counts (llm-pruner.md §1.8), with Shears' `--round-to` and the GQA query policy.
public enum UnitCounts {
    /// Channels to remove at a target `ratio`: `current − int(initial·(1 − ratio))`, never negative
    /// (`int` truncates, as Python's does for positive values).
    public static func channelsToRemove(initial: Int, current: Int, ratio: Double) -> Int {
        let target = Int((Double(initial) * (1.0 - ratio)).rounded(.towardZero))
        return max(0, current - target)
    }

    /// Whole units of `unitSize` channels to remove: `floor(channels / unitSize)`, capped so that at
    /// least one unit stays (upstream refuses to prune a group away entirely).
    public static func unitsToRemove(initialUnits: Int, currentUnits: Int, unitSize: Int, ratio: Double) -> Int {
        let n = channelsToRemove(initial: initialUnits * unitSize, current: currentUnits * unitSize, ratio: ratio) / unitSize
        return min(n, currentUnits - 1)
    }

    /// MLP channels to remove, with the kept width rounded up to a multiple of `roundTo`
    /// (never past the current width, never below one multiple or one channel).
    public static func mlpChannelsToRemove(initial: Int, current: Int, ratio: Double, roundTo: Int?) -> Int {
        var n = min(channelsToRemove(initial: initial, current: current, ratio: ratio), current - 1)
        if let r = roundTo, r > 1 {
            var kept = current - n
            kept = ((kept + r - 1) / r) * r
            kept = min(kept, current)
            n = current - kept
        }
        return max(0, n)
    }

    /// Hidden channels to remove under `--strategy channel`: upstream's count, with the kept width
    /// rounded *up* to a multiple of `multipleOf` (the unchanged `num_attention_heads`), so fewer
    /// channels go. transformers' `LlamaConfig.validate_architecture` refuses a config whose
    /// `hidden_size % num_attention_heads != 0`, even with an explicit `head_dim`.
    public static func hiddenChannelsToRemove(initial: Int, current: Int, ratio: Double, multipleOf: Int) -> Int {
        mlpChannelsToRemove(initial: initial, current: current, ratio: ratio, roundTo: multipleOf)
    }

    /// GQA `query` policy: query heads removed from *each* KV group. Upstream's count on the query projection
    /// root — `n = H·d − int(H·d·(1 − ratio))` channels, `floor(n / d)` heads — spread equally over
    /// the KV groups (`floor(heads / n_kv)` per group, so the query-to-KV ratio stays whole), minus
    /// what earlier steps removed; at least one query head stays per group.
    public static func queryHeadsToRemovePerGroup(initialHeads: Int, keyValueHeads: Int, headDim: Int, currentPerGroup: Int, ratio: Double) -> Int {
        let heads = channelsToRemove(initial: initialHeads * headDim, current: initialHeads * headDim, ratio: ratio) / headDim
        let perGroup = heads / keyValueHeads
        let initialPerGroup = initialHeads / keyValueHeads
        let target = initialPerGroup - perGroup
        return max(0, min(currentPerGroup - max(1, target), currentPerGroup - 1))
    }
}

/// Which structures of the source survive: kept indices in the source's numbering, ascending.
public struct PruningPlan: Sendable, Equatable {
    /// Per source layer.
    public struct Layer: Sendable, Equatable {
        public var keptHeads: [Int]
        public var keptKeyValueHeads: [Int]
        public var keptChannels: [Int]
        /// One score per query head (MHA, GQA query policy) or per KV group (GQA kv-group), in
        /// source order; empty when the layer's attention was not ranked. NaN for units never scored.
        public var attentionScores: [Double] = []
        /// One score per MLP channel, or empty.
        public var mlpScores: [Double] = []

        public init(keptHeads: [Int], keptKeyValueHeads: [Int], keptChannels: [Int]) {
            self.keptHeads = keptHeads
            self.keptKeyValueHeads = keptKeyValueHeads
            self.keptChannels = keptChannels
        }

        public var widths: LayerSizes {
            LayerSizes(numAttentionHeads: keptHeads.count, numKeyValueHeads: keptKeyValueHeads.count, intermediateSize: keptChannels.count)
        }
    }

    public let shape: ModelDescription
    public var layers: [Layer]
    /// Kept hidden channels (all unless `--strategy channel`).
    public var keptHidden: [Int]
    /// One score per hidden channel when they were ranked.
    public var hiddenScores: [Double] = []
    /// Kept decoder layers in source numbering (all unless `--strategy layer`).
    public var keptLayers: [Int]
    /// One score per layer when layers were ranked.
    public var layerScores: [Double] = []

    /// The identity plan: nothing removed.
    public init(unpruned shape: ModelDescription) {
        self.shape = shape
        layers = (0..<shape.layerCount).map { _ in
            Layer(keptHeads: Array(0..<shape.attentionHeads), keptKeyValueHeads: Array(0..<shape.keyValueHeads),
                  keptChannels: Array(0..<shape.intermediateSize))
        }
        keptHidden = Array(0..<shape.hiddenSize)
        keptLayers = Array(0..<shape.layerCount)
    }

    /// Widths of the output's layers (kept layers only, in order).
    public var outputWidths: [LayerSizes] { keptLayers.map { layers[$0].widths } }

    /// Whether every output layer has the same widths.
    public var isUniform: Bool { Set(outputWidths.map { [$0.numAttentionHeads, $0.numKeyValueHeads, $0.intermediateSize] }).count <= 1 }

    /// Parameters of the source and of the result.
    public var sourceParameters: Int { shape.parameterCount() }
    public var resultParameters: Int { shape.parameterCount(hidden: keptHidden.count, layers: outputWidths) }

    /// Query heads removed from layer `i`, ascending.
    public func removedHeads(_ i: Int) -> [Int] { complement(layers[i].keptHeads, shape.attentionHeads) }
    public func removedKeyValueHeads(_ i: Int) -> [Int] { complement(layers[i].keptKeyValueHeads, shape.keyValueHeads) }
    public func removedChannels(_ i: Int) -> [Int] { complement(layers[i].keptChannels, shape.intermediateSize) }
    public var removedHidden: [Int] { complement(keptHidden, shape.hiddenSize) }
    public var removedLayers: [Int] { complement(keptLayers, shape.layerCount) }

    func complement(_ kept: [Int], _ n: Int) -> [Int] {
        var mask = [Bool](repeating: false, count: n)
        for k in kept { mask[k] = true }
        return (0..<n).filter { !mask[$0] }
    }

    /// Checks the invariants every plan must keep (ascending, in range, GQA ratio whole, one unit left).
    func validate() {
        for (i, l) in layers.enumerated() {
            for (list, n) in [(l.keptHeads, shape.attentionHeads), (l.keptKeyValueHeads, shape.keyValueHeads), (l.keptChannels, shape.intermediateSize)] {
                precondition(!list.isEmpty && list.allSatisfy { $0 >= 0 && $0 < n } && zip(list, list.dropFirst()).allSatisfy { $0 < $1 },
                             "layer \(i): kept indices must be ascending, in range and non-empty")
            }
            precondition(l.keptHeads.count % l.keptKeyValueHeads.count == 0, "layer \(i): query heads must be a multiple of KV heads")
        }
    }
}
