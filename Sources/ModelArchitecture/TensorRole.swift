/// What a tensor is in a decoder model, whatever a family calls it. Engine, Pruning, GGUF and the
/// commands speak of tensors by role; only the family files (``ModelFamily``) spell their names.
public enum TensorRole: String, Sendable, Hashable, CaseIterable {
    // Whole-model tensors.
    case embedding, finalNorm, lmHead
    // Per decoder layer.
    case inputNorm, postAttentionNorm
    case query, key, value, output
    /// Per-head RMSNorm of the queries and keys (Qwen3): one weight of head-dim size shared by all heads.
    case queryNorm, keyNorm
    case gate, up, down
    /// Gemma's norms of a block's output before the residual add: `post_attention_layernorm` on
    /// the attention output (after o_proj) and `post_feedforward_layernorm` on the MLP output
    /// (after down_proj). Both run along the hidden size. (``postAttentionNorm`` is always the norm
    /// feeding the MLP: LLaMA's `post_attention_layernorm`, Gemma's `pre_feedforward_layernorm`.)
    case attentionOutputNorm, mlpOutputNorm

    /// Whether the tensor belongs to a decoder layer (its name carries the layer index).
    public var isPerLayer: Bool {
        switch self {
        case .embedding, .finalNorm, .lmHead: false
        default: true
        }
    }

    /// The seven projections of a decoder layer, in the order the engine and the goldens use.
    public static let projections: [TensorRole] = [.query, .key, .value, .output, .gate, .up, .down]
    /// The attention projections and the MLP projections.
    public static let attentionProjections: [TensorRole] = [.query, .key, .value, .output]
    public static let mlpProjections: [TensorRole] = [.gate, .up, .down]
    /// A decoder layer's norms.
    public static let layerNorms: [TensorRole] = [.inputNorm, .postAttentionNorm]

    /// Whether the tensor belongs to a layer's attention (absent from an attention-free layer).
    public var isAttention: Bool { Self.attentionProjections.contains(self) || self == .queryNorm || self == .keyNorm || self == .attentionOutputNorm }
    /// Whether the tensor belongs to a layer's MLP (absent from an MLP-free layer).
    public var isMLP: Bool { Self.mlpProjections.contains(self) || self == .mlpOutputNorm }
}

/// A linear layer's parameters (norms and embeddings have weights only).
public enum ParameterKind: String, Sendable, Hashable {
    case weight, bias
}

/// A width of the model that a tensor's axis runs along; pruning removes entries of the prunable ones.
public enum Dimension: Sendable, Hashable {
    /// The residual stream (hidden channels: `--strategy channel`).
    case hidden
    /// The vocabulary (never pruned).
    case vocabulary
    /// Query heads × head dim (a head's channels are contiguous).
    case queryChannels
    /// Key/value heads × head dim.
    case keyValueChannels
    /// MLP channels.
    case mlpChannels
    /// The channels of one attention head (a per-head norm's weight): pruning removes whole heads,
    /// never entries of this.
    case headDim
}

/// One tensor of a model: role, kind and (for decoder-layer tensors) the layer.
public struct TensorReference: Sendable, Hashable {
    public var role: TensorRole
    public var kind: ParameterKind
    /// The decoder layer, nil for whole-model tensors.
    public var layer: Int?

    public init(_ role: TensorRole, _ kind: ParameterKind = .weight, layer: Int? = nil) {
        self.role = role
        self.kind = kind
        self.layer = layer
    }
}

/// How a family lays out one role's tensor: its name (a suffix after the layer prefix for
/// per-layer tensors) and the dimension of each axis. A matrix has rows and columns; a vector
/// (norm weight) has columns only. A bias runs along its weight's rows. `rows` is a list so that a
/// fused tensor (rows of several projections stacked) can be declared.
public struct TensorDeclaration: Sendable, Equatable {
    public var role: TensorRole
    /// The Hugging Face name without `.weight` / `.bias` (and, per layer, without the layer prefix).
    public var name: String
    /// Row segments, stacked in this order; empty for a vector.
    public var rows: [Dimension]
    public var columns: Dimension
    /// Whether the tensor may have a bias.
    public var mayHaveBias: Bool
    /// The stored tensor this role is a row block of (Phi-3's `qkv_proj`, `gate_up_proj`), or nil
    /// when the role is stored alone. `name` is then the block's own name inside Shears (what the
    /// engine, pruning and manifests call it); files hold only the fused tensor.
    public var fused: FusedRows?

    public init(_ role: TensorRole, _ name: String, rows: [Dimension], columns: Dimension, mayHaveBias: Bool = false,
                fused: FusedRows? = nil) {
        self.role = role
        self.name = name
        self.rows = rows
        self.columns = columns
        self.mayHaveBias = mayHaveBias
        self.fused = fused
    }

    /// A vector (norm weight) along `dimension`.
    public static func vector(_ role: TensorRole, _ name: String, along dimension: Dimension) -> TensorDeclaration {
        TensorDeclaration(role, name, rows: [], columns: dimension)
    }

    public var isVector: Bool { rows.isEmpty }
}

/// One stored tensor that holds several roles as consecutive row blocks, in `blocks` order (Phi-3's
/// `self_attn.qkv_proj`: query rows, then key rows, then value rows; `mlp.gate_up_proj`: gate rows,
/// then up rows). Each block's rows are those of its role's declaration. Shears reads and prunes
/// the blocks as separate tensors (``FusedTensorView``) and writes them fused again.
public struct FusedRows: Sendable, Equatable {
    /// The stored name without `.weight` / `.bias` (per layer, without the layer prefix).
    public var name: String
    /// The roles stacked in the stored tensor, first rows first.
    public var blocks: [TensorRole]

    public init(name: String, blocks: [TensorRole]) {
        self.name = name
        self.blocks = blocks
    }
}
