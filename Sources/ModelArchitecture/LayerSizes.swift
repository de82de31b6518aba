/// The sizes of one decoder layer: what structured pruning changes. The head dim and the hidden
/// size are the model's (``ModelDescription``).
public struct LayerSizes: Sendable, Equatable, CustomStringConvertible {
    /// Query heads (0: the layer has no attention, as a deci block may).
    public var numAttentionHeads: Int
    /// Key/value heads (grouped-query attention); divides `numAttentionHeads`.
    public var numKeyValueHeads: Int
    /// MLP channels (rows of the gate and up projections, columns of the down projection; 0: no MLP).
    public var intermediateSize: Int

    public init(numAttentionHeads: Int, numKeyValueHeads: Int, intermediateSize: Int) {
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.intermediateSize = intermediateSize
    }

    public var description: String { "heads \(numAttentionHeads), kv heads \(numKeyValueHeads), intermediate \(intermediateSize)" }

    /// Query heads per KV head.
    public var groupSize: Int { numKeyValueHeads == 0 ? 0 : numAttentionHeads / numKeyValueHeads }
    public var hasAttention: Bool { numAttentionHeads > 0 }
    public var hasMLP: Bool { intermediateSize > 0 }

    /// Query channels (query heads × head dim) and key/value channels. Saturates at `Int.max`
    /// instead of trapping (sizes come from files; no tensor has that many rows, so a saturated
    /// width is refused as a shape mismatch).
    public func queryWidth(headDim: Int) -> Int { Self.saturatingProduct(numAttentionHeads, headDim) }
    public func keyValueWidth(headDim: Int) -> Int { Self.saturatingProduct(numKeyValueHeads, headDim) }

    /// a × b, or `Int.max` when that overflows.
    public static func saturatingProduct(_ a: Int, _ b: Int) -> Int {
        let (p, o) = a.multipliedReportingOverflow(by: b)
        return o ? .max : p
    }

    /// The number of entries of `dimension` in this layer.
    public func width(of dimension: Dimension, in model: ModelDescription) -> Int {
        switch dimension {
        case .hidden: model.hiddenSize
        case .vocabulary: model.vocabSize
        case .queryChannels: queryWidth(headDim: model.headDim)
        case .keyValueChannels: keyValueWidth(headDim: model.headDim)
        case .mlpChannels: intermediateSize
        case .headDim: model.headDim
        }
    }
}

/// How rotary frequencies are scaled (`rope_scaling` / `rope_parameters`).
public enum RotaryScaling: Sendable, Equatable {
    /// Plain RoPE: inv_freq[i] = theta^(-2i/d).
    case none
    /// `linear`: every frequency divided by `factor` (positions interpolated).
    case linear(factor: Double)
    /// `llama3`: long wavelengths divided by `factor`, short ones kept, a smooth blend between.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaxPositions: Int)
    /// `longrope` (Phi-3 / Phi-3.5 long-context models): inv_freq[i] = 1 / (ext[i] · theta^(2i/d)),
    /// with `ext` the short factors while the sequence (the largest position + 1) is at most
    /// `originalMaxPositions`, the long factors beyond; cos and sin are multiplied by
    /// `attentionFactor` (transformers' `_compute_longrope_parameters` and `dynamic_rope_update`).
    case longRope(shortFactors: [Double], longFactors: [Double], attentionFactor: Double, originalMaxPositions: Int)
}

/// How one decoder layer attends: settings that pruning never changes, but that the layer
/// strategy must keep aligned with the layers that remain (Gemma's `layer_types`, per-layer
/// rotary bases, sliding windows).
public struct LayerAttention: Sendable, Equatable {
    /// Sliding window in tokens, as transformers applies it: position i attends to positions j
    /// with i - window < j <= i. nil: full causal attention.
    public var slidingWindow: Int?
    /// The rotary base of this layer when it differs from the model's (Gemma 3's
    /// `rope_local_base_freq` on sliding layers). nil: ``ModelDescription/ropeTheta``.
    public var ropeTheta: Double?
    /// The rotary scaling of this layer when it differs from the model's (Gemma 3 scales only its
    /// full-attention layers). nil: ``ModelDescription/rotaryScaling``.
    public var rotaryScaling: RotaryScaling?

    public init(slidingWindow: Int? = nil, ropeTheta: Double? = nil, rotaryScaling: RotaryScaling? = nil) {
        self.slidingWindow = slidingWindow
        self.ropeTheta = ropeTheta
        self.rotaryScaling = rotaryScaling
    }

    /// Full causal attention with the model's rotary settings.
    public static let full = LayerAttention()
    /// Whether the layer attends through a sliding window.
    public var isSliding: Bool { slidingWindow != nil }
}
