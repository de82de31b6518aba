import CheckpointCore
import ModelArchitecture
import ShearsBLAS

/// A LLaMA-family causal language model over a memory-mapped checkpoint.
///
/// Weights stay mapped in their stored dtype; each decoder layer is converted to F32 when it runs
/// and dropped afterwards (unless ``keepsLayersConverted`` is set, for generation, where every
/// token visits every layer). The embedding and LM head are converted once per pass.
public final class LlamaModel: @unchecked Sendable {
    /// The weights: a safetensors checkpoint, or any other store that presents Hugging Face names
    /// and layouts (a GGUF file through the GGUF module's `GGUFTensorStore`).
    public let checkpoint: any TensorStore
    public let configuration: ModelConfiguration
    public let architecture: LlamaArchitecture
    /// Keep converted layers in memory between passes (costs the model's size in F32), up to
    /// ``convertedLayerLimit``.
    public var keepsLayersConverted = false
    /// With ``keepsLayersConverted``: bytes of F32 layers kept at most (layers are kept in the
    /// order they are first used while they fit; the others are converted again on every use).
    /// nil keeps every layer.
    public var convertedLayerLimit: Int? = nil
    /// Bytes of F32 layers kept now.
    public private(set) var convertedLayerBytes = 0
    /// Bytes that ``backward(_:consumer:)`` may spend on keeping layers' projection outputs from
    /// the forward pass (``DecoderLayer/Projections``), so that those layers are not recomputed.
    /// The last layers are kept, as many as fit. 0 (the default) keeps only each layer's input and
    /// recomputes every layer; the gradients are bit for bit the same either way.
    public var activationMemory = 0
    private var converted: [Int: LayerWeights] = [:]
    private var embeddingCache: Matrix?
    private var rotary: Rotary

    /// Opens a model folder (or safetensors file / index with `config.json` beside it).
    /// - Throws: ``CheckpointError`` for a missing or unsupported configuration, or tensors that are
    ///   missing or shaped differently from what the configuration says.
    public convenience init(path: String) throws(CheckpointError) {
        let checkpoint = try Checkpoint.open(path)
        guard let configPath = checkpoint.configPath else {
            throw CheckpointError(.invalidConfig, "no config.json next to the checkpoint", path: checkpoint.folder)
        }
        let config = try ModelConfiguration(path: configPath)
        do { try self.init(checkpoint: checkpoint, configuration: config) } catch { throw error.inFile(configPath) }
    }

    public init(checkpoint: any TensorStore, configuration: ModelConfiguration) throws(CheckpointError) {
        self.checkpoint = checkpoint
        self.configuration = configuration
        architecture = try LlamaArchitecture(configuration)
        rotary = Rotary(headDim: architecture.headDim, theta: architecture.ropeTheta, scaling: architecture.rotaryScaling)
        try validate()
        // Room to reuse a layer's F32 weights, their gradients and its activations in the next layer.
        let a = architecture
        let largestLayer = a.layers.map { LayerSizesAndDim($0, headDim: a.headDim, hidden: a.hiddenSize).weightCount }.max() ?? 0
        BufferPool.shared.reserve(atLeast: largestLayer.multipliedReportingOverflow(by: 4 * MemoryLayout<Float>.stride).partialValue)
    }

    /// Checks every tensor the engine will read against the configuration, without converting.
    private func validate() throws(CheckpointError) {
        let a = architecture, h = a.hiddenSize
        var infos: [String: TensorInfo] = [:]
        for info in checkpoint.tensorInfos { infos[info.name] = info }
        func check(_ name: String, _ shapes: [[Int]]) throws(CheckpointError) {
            guard let info = infos[name] else {
                throw CheckpointError(.tensorNotFound, "the checkpoint has no tensor '\(name)', which the configuration requires", path: checkpoint.path, tensor: name)
            }
            guard shapes.contains(info.shape) else {
                throw CheckpointError(.shapeMismatch, "shape \(info.shape) does not match the configuration's \(shapes[0])", path: checkpoint.path, tensor: name)
            }
            guard info.dtype.isFloatingPoint, info.dtype.convertsToFloat32 else {
                throw CheckpointError(.unsupportedConversion, "dtype \(info.dtype.rawValue) cannot be computed with", path: checkpoint.path, tensor: name)
            }
        }
        try check("model.embed_tokens.weight", [[a.vocabSize, h]])
        try check("model.norm.weight", [[h]])
        if !a.tieWordEmbeddings { try check("lm_head.weight", [[a.vocabSize, h]]) }
        for (i, s) in a.layers.enumerated() {
            let d = LayerSizesAndDim(s, headDim: a.headDim, hidden: h)
            let p = LayerWeights.prefix(i)
            try check(p + "input_layernorm.weight", [[h]])
            try check(p + "post_attention_layernorm.weight", [[h]])
            for (n, o, i) in [("self_attn.q_proj", d.qDim, h), ("self_attn.k_proj", d.kvDim, h), ("self_attn.v_proj", d.kvDim, h),
                              ("self_attn.o_proj", h, d.qDim), ("mlp.gate_proj", d.intermediate, h), ("mlp.up_proj", d.intermediate, h),
                              ("mlp.down_proj", h, d.intermediate)] {
                try check(p + n + ".weight", [[o, i]])
                if infos[p + n + ".bias"] != nil { try check(p + n + ".bias", [[o]]) }
            }
        }
    }

    // MARK: Weights

    /// Layer `i`'s weights in F32.
    public func layerWeights(_ i: Int) throws(CheckpointError) -> LayerWeights {
        if let w = converted[i] { return w }
        let w = try LayerWeights.load(from: checkpoint, index: i, architecture: architecture)
        if keepsLayersConverted {
            let bytes = w.parameters.reduce(0) { $0 + $1.1.count * MemoryLayout<Float>.stride }
            if convertedLayerLimit.map({ convertedLayerBytes + bytes <= $0 }) ?? true {
                converted[i] = w
                convertedLayerBytes += bytes
            }
        }
        return w
    }

    /// Bytes of every decoder layer's weights in F32, biases aside (about what
    /// ``keepsLayersConverted`` keeps without a limit).
    public var convertedLayersSize: Int {
        let a = architecture
        return a.layers.reduce(0) { $0 + LayerSizesAndDim($1, headDim: a.headDim, hidden: a.hiddenSize).weightCount * MemoryLayout<Float>.stride }
    }

    /// The token embedding `[vocab, hidden]` in F32 (kept while the model lives).
    public func embedding() throws(CheckpointError) -> Matrix {
        if let e = embeddingCache { return e }
        let e = try WeightLoader.matrix(checkpoint, "model.embed_tokens.weight", rows: architecture.vocabSize, cols: architecture.hiddenSize)
        embeddingCache = e
        return e
    }

    /// The LM head `[vocab, hidden]`: the embedding when tied.
    public func lmHead() throws(CheckpointError) -> Matrix {
        if architecture.tieWordEmbeddings { return try embedding() }
        return try WeightLoader.matrix(checkpoint, "lm_head.weight", rows: architecture.vocabSize, cols: architecture.hiddenSize)
    }

    public func finalNorm() throws(CheckpointError) -> Matrix {
        try WeightLoader.matrix(checkpoint, "model.norm.weight", rows: 1, cols: architecture.hiddenSize)
    }

    func rotaryTables(positions: Int) -> Rotary {
        rotary.reserve(positions)
        return rotary
    }

    // MARK: Forward

    func checkTokens(_ tokens: some Collection<Int32>) throws(CheckpointError) {
        for t in tokens where t < 0 || Int(t) >= architecture.vocabSize {
            throw CheckpointError(.invalidArgument, "token id \(t) is outside the vocabulary (0 ..< \(architecture.vocabSize))")
        }
    }

    func embed(_ tokens: [Int32]) throws(CheckpointError) -> Matrix {
        let e = try embedding(), h = architecture.hiddenSize
        let x = Matrix(rows: tokens.count, cols: h)
        for (r, t) in tokens.enumerated() { (x.storage + r * h).update(from: e.storage + Int(t) * h, count: h) }
        return x
    }

    /// Runs the decoder stack. With `saveInputs`, returns each layer's input as well.
    /// Layers from `keptFrom` on keep their projections' outputs, returned in `kept` (nil for the
    /// others).
    func decoderStack(_ batch: TokenBatch, saveInputs: Bool, keptFrom: Int = .max) throws(CheckpointError)
        -> (hidden: Matrix, inputs: [Matrix], kept: [DecoderLayer.Projections?]) {
        try checkTokens(batch.tokens)
        var x = try embed(batch.tokens)
        let rot = rotaryTables(positions: batch.seqLen)
        var inputs: [Matrix] = [], kept: [DecoderLayer.Projections?] = []
        for i in 0..<architecture.numLayers {
            if saveInputs { inputs.append(x) }
            let layer = DecoderLayer(weights: try layerWeights(i), eps: architecture.rmsNormEps)
            let f = layer.forward(x, layout: batch.layout, rotary: rot)
            kept.append(i >= keptFrom ? f.projections : nil)
            x = f.out!
        }
        return (x, inputs, kept)
    }

    /// The first layer whose projections fit, with every later layer's, in ``activationMemory``
    /// for `rows` token rows (`numLayers` when none does).
    func firstKeptLayer(rows: Int) -> Int {
        let a = architecture
        var left = activationMemory, first = a.numLayers
        while first > 0 {
            let sizes = LayerSizesAndDim(a.layers[first - 1], headDim: a.headDim, hidden: a.hiddenSize)
            guard let bytes = DecoderLayer.Projections.bytes(sizes, rows: rows), bytes <= left else { break }
            left -= bytes
            first -= 1
        }
        return first
    }

    /// Logits `[batch·seqLen, vocab]` for every position.
    public func logits(_ batch: TokenBatch) throws(CheckpointError) -> Matrix {
        let (x, _, _) = try decoderStack(batch, saveInputs: false)
        let (hf, _) = RMSNorm.forward(x, weight: try finalNorm(), eps: architecture.rmsNormEps)
        let out = Matrix(rows: x.rows, cols: architecture.vocabSize)
        let head = try lmHead()
        LanguageModelLoss.logits(hidden: hf, rows: 0..<x.rows, head: head, into: out)
        return out
    }

    /// The causal-LM loss (mean NLL over the predicted tokens), forward only.
    public func loss(_ batch: TokenBatch) throws(CheckpointError) -> LossResult {
        defer { BufferPool.shared.drain() }
        return try forwardLoss(batch)
    }

    private func forwardLoss(_ batch: TokenBatch) throws(CheckpointError) -> LossResult {
        let (x, _, _) = try decoderStack(batch, saveInputs: false)
        let (hf, _) = RMSNorm.forward(x, weight: try finalNorm(), eps: architecture.rmsNormEps)
        let head = try lmHead()
        let t = batch.seqLen
        let block = LanguageModelLoss.sequencesPerBlock(seqLen: t, vocab: architecture.vocabSize, sequences: batch.batch)
        let logits = Matrix(uninitializedRows: block * t, cols: architecture.vocabSize)
        var nll = 0.0
        for b0 in stride(from: 0, to: batch.batch, by: block) {
            let nb = min(block, batch.batch - b0), rows = (b0 * t)..<((b0 + nb) * t)
            LanguageModelLoss.logits(hidden: hf, rows: rows, head: head, into: logits)
            nll += LanguageModelLoss.crossEntropy(logits: logits, sequences: nb, seqLen: t, tokens: batch.tokens[rows], gradientScale: nil)
        }
        return LossResult(nllSum: nll, tokens: batch.batch * (batch.seqLen - 1))
    }
}
