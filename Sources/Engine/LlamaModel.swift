import CheckpointCore
import ModelArchitecture
import ShearsBLAS

/// A LLaMA-family causal language model over a memory-mapped checkpoint.
///
/// Weights stay mapped in their stored dtype; each decoder layer is converted to F32 when it runs
/// and dropped afterwards (unless ``keepsLayersConverted`` is set, for generation, where every
/// token visits every layer). The embedding and LM head are converted whole when they are small
/// (``MemoryBudget/wholeTableBytes``); otherwise the embedding is gathered per token and the head
/// applied in blocks of vocabulary rows from the stored tensor (``VocabularyTable``), so that
/// memory stays at about one decoder layer in F32 (``memory``).
public final class LlamaModel: @unchecked Sendable {
    /// The weights: a safetensors checkpoint, or any other store that presents Hugging Face names
    /// and layouts (a GGUF file through the GGUF module's `GGUFTensorStore`).
    public let checkpoint: any TensorStore
    /// The model: its family, sizes, tensor names and the `config.json` it was resolved from
    /// (``ModelDescription/configuration``).
    public let description: ModelDescription
    /// The RMSNorm epsilon as the kernels use it.
    let eps: Float
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
    /// LoRA adapters added to the projections of every pass (forward, loss, logits, and
    /// ``loraBackward(_:trained:gradientScale:)``); nil runs the base model.
    public var adapters: LoRAAdapters? = nil
    private var converted: [Int: LayerWeights] = [:]
    private var embeddingCache: Matrix?
    /// The memory this model's passes may use (``MemoryBudget``): decides whether the embedding
    /// and head are kept whole, the size of logit blocks, and the buffer pool's cap. Set from
    /// ``MemoryBudget/current`` when the model is opened.
    public var memory: MemoryBudget {
        didSet { capBufferPool() }
    }
    /// Applied to each block of logits after the LM head (and its derivative on the way back):
    /// Gemma 2's final soft-cap, identity elsewhere.
    var logitTransform = LogitTransform.identity
    /// The distinct rotary tables (one per rotary base and scaling the layers use) and each
    /// layer's index into them.
    private var rotaries: [Rotary]
    private let rotaryOfLayer: [Int]
    /// longrope's tables with the long factors, for sequences beyond the original context.
    private var longRotary: Rotary?

    /// Opens a model folder (or safetensors file / index with `config.json` beside it).
    /// - Throws: ``CheckpointError`` for a missing or unsupported configuration, or tensors that are
    ///   missing or shaped differently from what the configuration says.
    public convenience init(path: String) throws(CheckpointError) {
        let checkpoint = try Checkpoint.open(path)
        guard let configPath = checkpoint.configPath else {
            throw CheckpointError(.invalidConfig, "no config.json next to the checkpoint", path: checkpoint.folder)
        }
        let description = try ModelDescription(configPath: configPath, store: checkpoint)
        do { try self.init(store: checkpoint, description: description) } catch { throw error.inFile(configPath) }
    }

    /// A model over `store`, whose tensors have the Hugging Face names and layouts of
    /// `description`'s family.
    /// - Throws: `unsupportedArchitecture` for a family whose layers the engine does not run;
    ///   `tensorNotFound`, `shapeMismatch` or `unsupportedConversion` for a tensor the description
    ///   requires that is missing, shaped otherwise or not a float dtype.
    public init(store: any TensorStore, description: ModelDescription) throws(CheckpointError) {
        guard [EngineBlocks.llama, .qwen3, .gemma2, .gemma3].contains(description.family.blocks) else {
            throw CheckpointError(.unsupportedArchitecture, "model_type \(description.family.modelType) is not supported by the engine (it runs LLaMA decoder layers)")
        }
        // Fused tensors (Phi-3's qkv_proj, gate_up_proj) are read as their row blocks.
        checkpoint = try FusedTensorView.unfused(store, model: description)
        self.description = description
        eps = Float(description.rmsNormEps)
        var settings: [(Double, RotaryScaling)] = [], index: [Int] = []
        for l in 0..<description.layerCount {
            let a = description.attention(ofLayer: l)
            let s = (a.ropeTheta ?? description.ropeTheta, a.rotaryScaling ?? description.rotaryScaling)
            if let i = settings.firstIndex(where: { $0.0 == s.0 && $0.1 == s.1 }) {
                index.append(i)
            } else {
                index.append(settings.count)
                settings.append(s)
            }
        }
        if settings.isEmpty { settings = [(description.ropeTheta, description.rotaryScaling)] }
        let d = description
        rotaries = settings.map { Rotary(headDim: d.headDim, theta: $0.0, scaling: $0.1, rotaryDimensions: d.rotaryDimensions) }
        rotaryOfLayer = index
        if case .longRope = d.rotaryScaling {
            longRotary = Rotary(headDim: d.headDim, theta: d.ropeTheta, scaling: d.rotaryScaling, rotaryDimensions: d.rotaryDimensions, long: true)
        }
        try description.validate(checkpoint, computable: true)
        memory = MemoryBudget.current
        if let cap = description.finalLogitSoftcap { logitTransform = .softcap(Float(cap)) }
        capBufferPool()
    }

    /// Bytes of the largest decoder layer's weights in F32.
    var largestLayerBytes: Int {
        let count = description.layers.map { description.weightCount(ofLayer: $0) }.max() ?? 0
        return count.multipliedReportingOverflow(by: MemoryLayout<Float>.stride).partialValue
    }

    /// Room to reuse a layer's F32 weights, their gradients and its activations in the next layer:
    /// four times the largest decoder layer, at most a quarter of ``memory``.
    private func capBufferPool() {
        BufferPool.shared.reserve(atLeast: min(largestLayerBytes.multipliedReportingOverflow(by: 4).partialValue, memory.bytes / 4))
    }

    /// The bytes an F32 copy of a `[vocab, hidden]` table takes.
    var tableBytes: Int {
        description.vocabSize.multipliedReportingOverflow(by: description.hiddenSize * MemoryLayout<Float>.stride).partialValue
    }

    /// Whether the embedding and head are kept whole in F32 under ``memory``.
    public var keepsTablesWhole: Bool { tableBytes <= memory.wholeTableBytes }

    /// The embedding as a ``VocabularyTable``: whole (kept) when small enough, else read per token.
    func embeddingTable() throws(CheckpointError) -> VocabularyTable {
        var whole = embeddingCache
        if whole == nil && keepsTablesWhole { whole = try embedding() }
        return try VocabularyTable(store: checkpoint, name: description.name(.embedding), rows: description.vocabSize,
                                   cols: description.hiddenSize, whole: whole, blockBytes: memory.blockBytes)
    }

    /// The LM head as a ``VocabularyTable`` (the embedding's tensor when tied): whole when small
    /// enough or when `whole` (the head's weight gradient needs the whole matrix anyway).
    func headTable(whole forceWhole: Bool = false) throws(CheckpointError) -> VocabularyTable {
        var whole = description.tieWordEmbeddings ? embeddingCache : nil
        if forceWhole || keepsTablesWhole { whole = try lmHead() }
        let name = description.tieWordEmbeddings ? description.name(.embedding) : description.name(.lmHead)
        return try VocabularyTable(store: checkpoint, name: name, rows: description.vocabSize, cols: description.hiddenSize, whole: whole,
                                   blockBytes: memory.blockBytes)
    }

    /// The least memory a pass over `rows` token rows needs besides the mapped weights (one
    /// decoder layer in F32, with its gradients for `backward`, and the Fisher sums and their
    /// scratch for `fisher`; the hidden states kept between layers; one layer's activations;
    /// logits and head blocks; the tables when kept whole).
    public func memoryNeed(rows: Int, backward: Bool, fisher: Bool = false) -> Int {
        let f = MemoryLayout<Float>.stride, a = description, h = a.hiddenSize
        let widest = a.layers.map { max($0.intermediateSize, $0.queryWidth(headDim: a.headDim)) }.max() ?? 0
        var need = largestLayerBytes * (backward ? (fisher ? 4 : 2) : 1)
        need += rows * (backward ? (a.layerCount + 2) : 2) * h * f            // hidden states (and saved inputs)
        need += rows * (4 * h + 4 * widest) * f * (backward ? 2 : 1)          // one layer's activations
        let whole = keepsTablesWhole
        let logitRows = max(1, min(rows, memory.logitBytes(blockedHead: !whole) / max(1, a.vocabSize * f)))
        need += logitRows * a.vocabSize * f
        need += whole ? tableBytes * (a.tieWordEmbeddings ? 1 : 2) : min(tableBytes, memory.blockBytes)
        return need
    }

    /// Refuses a pass whose ``memoryNeed(rows:backward:fisher:)`` exceeds ``memory``.
    /// - Throws: `invalidArgument` naming the need and the limit.
    public func checkMemory(rows: Int, backward: Bool, fisher: Bool = false) throws(CheckpointError) {
        let need = memoryNeed(rows: rows, backward: backward, fisher: fisher)
        guard need <= memory.bytes else {
            throw CheckpointError(.invalidArgument, "this pass over \(rows) tokens needs about \(need >> 20) MiB (one decoder layer in F32\(backward ? " with its gradients" : ""), the hidden states, logits), more than the memory limit of \(memory.bytes >> 20) MiB: raise --memory-limit, or use fewer or shorter windows")
        }
    }

    /// The most memory the engine's own matrices held at once since the last
    /// ``resetPeakMemory()`` (live matrices and buffers kept for reuse; the process's other
    /// anonymous memory, a few tens of MB, is not counted).
    public static var peakMatrixBytes: Int { BufferPool.shared.peakBytes }
    public static func resetPeakMemory() { BufferPool.shared.resetPeak() }

    // MARK: Weights

    /// Layer `i`'s weights in F32.
    public func layerWeights(_ i: Int) throws(CheckpointError) -> LayerWeights {
        try baseLayerWeights(i).attaching(adapters)
    }

    private func baseLayerWeights(_ i: Int) throws(CheckpointError) -> LayerWeights {
        if let w = converted[i] { return w }
        let w = try LayerWeights.load(from: checkpoint, index: i, description: description)
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
        description.layers.reduce(0) { $0 + description.weightCount(ofLayer: $1) * MemoryLayout<Float>.stride }
    }

    /// The token embedding `[vocab, hidden]` in F32 (kept while the model lives).
    public func embedding() throws(CheckpointError) -> Matrix {
        if let e = embeddingCache { return e }
        let e = try WeightLoader.matrix(checkpoint, description.name(.embedding), rows: description.vocabSize, cols: description.hiddenSize)
        embeddingCache = e
        return e
    }

    /// The LM head `[vocab, hidden]`: the embedding when tied.
    public func lmHead() throws(CheckpointError) -> Matrix {
        if description.tieWordEmbeddings { return try embedding() }
        return try WeightLoader.matrix(checkpoint, description.name(.lmHead), rows: description.vocabSize, cols: description.hiddenSize)
    }

    public func finalNorm() throws(CheckpointError) -> Matrix {
        try WeightLoader.matrix(checkpoint, description.name(.finalNorm), rows: 1, cols: description.hiddenSize)
    }

    /// The rotary tables of layer `layer`, covering positions 0 ..< `positions`. longrope switches
    /// to its long factors when that sequence length exceeds the original context, as
    /// transformers' `dynamic_rope_update` does on every forward call (also for each generation step).
    func rotaryTables(positions: Int, layer: Int) -> Rotary {
        if case .longRope(_, _, _, let original) = description.rotaryScaling, positions > original, longRotary != nil {
            longRotary!.reserve(positions)
            return longRotary!
        }
        let i = rotaryOfLayer.indices.contains(layer) ? rotaryOfLayer[layer] : 0
        rotaries[i].reserve(positions)
        return rotaries[i]
    }

    // MARK: Forward

    func checkTokens(_ tokens: some Collection<Int32>) throws(CheckpointError) {
        for t in tokens where t < 0 || Int(t) >= description.vocabSize {
            throw CheckpointError(.invalidArgument, "token id \(t) is outside the vocabulary (0 ..< \(description.vocabSize))")
        }
    }

    func embed(_ tokens: [Int32]) throws(CheckpointError) -> Matrix {
        let x = try embeddingTable().gather(tokens)
        if let scale = description.embeddingScale {
            for i in 0..<x.count { x.storage[i] *= scale }
        }
        return x
    }


    /// Runs the decoder stack. With `saveInputs`, returns each layer's input as well.
    /// Layers from `keptFrom` on keep their projections' outputs, returned in `kept` (nil for the
    /// others).
    func decoderStack(_ batch: TokenBatch, saveInputs: Bool, keptFrom: Int = .max) throws(CheckpointError)
        -> (hidden: Matrix, inputs: [Matrix], kept: [DecoderLayer.Projections?]) {
        try checkTokens(batch.tokens)
        var x = try embed(batch.tokens)
        var inputs: [Matrix] = [], kept: [DecoderLayer.Projections?] = []
        for i in 0..<description.layerCount {
            if saveInputs { inputs.append(x) }
            let layer = DecoderLayer(weights: try layerWeights(i), eps: eps)
            let f = layer.forward(x, layout: batch.layout, rotary: rotaryTables(positions: batch.seqLen, layer: i))
            kept.append(i >= keptFrom ? f.projections : nil)
            x = f.out!
        }
        return (x, inputs, kept)
    }

    /// The first layer whose projections fit, with every later layer's, in ``activationMemory``
    /// for `rows` token rows (the layer count when none does).
    func firstKeptLayer(rows: Int) -> Int {
        var left = activationMemory, first = description.layerCount
        while first > 0 {
            guard let bytes = DecoderLayer.Projections.bytes(description.layers[first - 1], in: description, rows: rows), bytes <= left else { break }
            left -= bytes
            first -= 1
        }
        return first
    }

    /// Logits `[batch·seqLen, vocab]` for every position.
    public func logits(_ batch: TokenBatch) throws(CheckpointError) -> Matrix {
        let (x, _, _) = try decoderStack(batch, saveInputs: false)
        let (hf, _) = RMSNorm.forward(x, weight: try finalNorm(), eps: eps, offset: description.family.blocks.normWeightOffset)
        let out = Matrix(rows: x.rows, cols: description.vocabSize)
        try headTable().logits(hidden: hf, rows: 0..<x.rows, into: out, transform: logitTransform)
        return out
    }

    /// The causal-LM loss (mean NLL over the predicted tokens), forward only.
    public func loss(_ batch: TokenBatch) throws(CheckpointError) -> LossResult {
        defer { BufferPool.shared.drain() }
        try checkMemory(rows: batch.tokens.count, backward: false)
        return try forwardLoss(batch)
    }

    private func forwardLoss(_ batch: TokenBatch) throws(CheckpointError) -> LossResult {
        let (x, _, _) = try decoderStack(batch, saveInputs: false)
        let (hf, _) = RMSNorm.forward(x, weight: try finalNorm(), eps: eps, offset: description.family.blocks.normWeightOffset)
        let head = try headTable()
        let t = batch.seqLen
        let block = LanguageModelLoss.sequencesPerBlock(seqLen: t, vocab: description.vocabSize, sequences: batch.batch,
                                                        bytes: memory.logitBytes(blockedHead: head.whole == nil))
        let logits = Matrix(uninitializedRows: block * t, cols: description.vocabSize)
        var nll = 0.0
        for b0 in stride(from: 0, to: batch.batch, by: block) {
            let nb = min(block, batch.batch - b0), rows = (b0 * t)..<((b0 + nb) * t)
            try head.logits(hidden: hf, rows: rows, into: logits, transform: logitTransform)
            nll += LanguageModelLoss.crossEntropy(logits: logits, sequences: nb, seqLen: t, tokens: batch.tokens[rows], gradientScale: nil)
        }
        return LossResult(nllSum: nll, tokens: batch.batch * (batch.seqLen - 1))
    }
}
