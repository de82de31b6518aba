import CheckpointCore

/// The inputs of one decoder layer's linear layers for a chunk of windows (row `b·T + t` is token
/// `t` of the chunk's window `b`), as the layer computes them with its own weights.
public struct LayerActivations {
    public let layer: Int
    /// Input of q/k/v: the input norm of x, `[rows, hidden]`.
    public let attentionInput: Matrix
    /// Input of the output projection: the concatenated per-head attention outputs, `[rows, heads·head_dim]`.
    public let outputProjectionInput: Matrix
    /// Input of gate/up: the post-attention norm of x2, `[rows, hidden]`.
    public let mlpInput: Matrix
    /// Input of the down projection: `silu(gate)·up`, `[rows, intermediate]`.
    public let downInput: Matrix
}

/// Runs token windows through the decoder one layer at a time, keeping only the hidden states
/// between layers (`[windows·T, hidden]` in F32) and one layer's weights: what activation
/// statistics need, forward only.
///
/// ``observe(chunkWindows:advance:_:)`` runs the next layer with its stored weights and hands its
/// activations over chunk by chunk; with `advance` its outputs become the next layer's inputs in
/// the same pass. ``advance(replacing:)`` instead runs the layer with some projections replaced
/// (a pruned and recovered layer, for sequential statistics).
public final class LayerStream {
    public let model: LlamaModel
    let batch: TokenBatch
    var hidden: Matrix
    /// The layer that runs next.
    public private(set) var nextLayer = 0

    /// Embeds `windows` (equal lengths).
    /// - Throws: ``CheckpointError`` for tokens outside the vocabulary or unequal lengths.
    public init(model: LlamaModel, windows: [[Int32]]) throws(CheckpointError) {
        self.model = model
        batch = try TokenBatch(windows)
        try model.checkTokens(batch.tokens)
        hidden = try model.embed(batch.tokens)
    }

    public var layerCount: Int { model.description.layerCount }
    public var rows: Int { hidden.rows }

    /// Runs layer ``nextLayer`` over all windows, `chunkWindows` at a time, calling `body` with each
    /// chunk's activations; with `advance`, the outputs replace the hidden states and the stream
    /// moves to the next layer.
    public func observe(chunkWindows: Int = 8, advance: Bool, _ body: (LayerActivations) throws -> Void) throws {
        precondition(nextLayer < layerCount, "LayerStream: no layer left")
        let w = try model.layerWeights(nextLayer)
        try withoutActuallyEscaping(body) { b in try run(weights: w, chunkWindows: chunkWindows, advance: advance, observe: b) }
    }

    /// Runs layer ``nextLayer`` with the output and/or down projection replaced (full-size `[hidden, in]`
    /// weights and optional biases) and moves to the next layer.
    public func advance(outputProjection: Linear?, downProjection: Linear?, chunkWindows: Int = 8) throws {
        precondition(nextLayer < layerCount, "LayerStream: no layer left")
        let w = try model.layerWeights(nextLayer).replacing(o: outputProjection, down: downProjection)
        try run(weights: w, chunkWindows: chunkWindows, advance: true, observe: nil)
    }

    /// Skips layer ``nextLayer`` after observing nothing: runs it with its stored weights.
    public func advance(chunkWindows: Int = 8) throws {
        try run(weights: try model.layerWeights(nextLayer), chunkWindows: chunkWindows, advance: true, observe: nil)
    }

    private func run(weights: LayerWeights, chunkWindows: Int, advance: Bool, observe: ((LayerActivations) throws -> Void)?) throws {
        let t = batch.seqLen, h = hidden.cols
        let layer = DecoderLayer(weights: weights, eps: model.eps)
        let rot = model.rotaryTables(positions: t, layer: nextLayer)
        let next = advance ? Matrix(rows: hidden.rows, cols: h) : nil
        var b0 = 0
        while b0 < batch.batch {
            let nb = min(max(1, chunkWindows), batch.batch - b0)
            let x = Matrix(rows: nb * t, cols: h)
            x.storage.update(from: hidden.storage + b0 * t * h, count: nb * t * h)
            let f = layer.forward(x, layout: BatchLayout(batch: nb, seqLen: t), rotary: rot, output: advance)
            if let observe {
                try observe(LayerActivations(layer: nextLayer, attentionInput: f.h1, outputProjectionInput: f.attn,
                                             mlpInput: f.h2, downInput: f.mlp.a))
            }
            if let next, let out = f.out { (next.storage + b0 * t * h).update(from: out.storage, count: nb * t * h) }
            b0 += nb
        }
        if let next {
            hidden = next
            nextLayer += 1
        }
    }
}

extension LayerWeights {
    /// These weights with the output and/or down projection replaced (same shapes).
    public func replacing(o newO: Linear?, down newDown: Linear?) -> LayerWeights {
        if let newO { precondition(newO.weight.rows == o.weight.rows && newO.weight.cols == o.weight.cols, "replacing the output projection: shape") }
        if let newDown { precondition(newDown.weight.rows == down.weight.rows && newDown.weight.cols == down.weight.cols, "replacing the down projection: shape") }
        var w = LayerWeights(index: index, model: model, sizes: sizes, inputNorm: inputNorm, postAttentionNorm: postAttentionNorm,
                             queryNorm: queryNorm, keyNorm: keyNorm,
                             q: q, k: k, v: v, o: newO ?? o, gate: gate, up: up, down: newDown ?? down)
        w.attentionOutputNorm = attentionOutputNorm
        w.mlpOutputNorm = mlpOutputNorm
        return w
    }
}
