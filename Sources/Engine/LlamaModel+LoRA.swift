import CheckpointCore
import ModelArchitecture
import ShearsBLAS

extension LlamaModel {
    /// The loss of `batch` with the model's ``adapters`` and the adapters' gradients, added to
    /// their ``LoRAAdapter/gradA`` and ``LoRAAdapter/gradB`` (zero them first for a fresh step).
    ///
    /// `trained` flags, per token of the batch (sequence after sequence), the tokens whose
    /// prediction counts (a label that is not -100, in transformers' terms); nil counts every token
    /// but each sequence's first. The gradient is that of `gradientScale · Σ NLL` over the counted
    /// tokens: pass 1 / (the counted tokens of the whole accumulated batch) for a batch mean.
    /// Right-padded sequences need no attention mask (causal attention never looks right): flag
    /// their padding untrained.
    ///
    /// No base weight gets a gradient; the pass costs a forward pass, the backward pass to the
    /// activations and the adapters' small products. Memory as ``backward(_:consumer:)`` without
    /// the weight gradients.
    /// - Returns: the NLL sum and the number of counted tokens.
    /// - Throws: `invalidArgument` without adapters, for sequences shorter than 2 or a `trained`
    ///   of the wrong length; ``CheckpointError`` for weights that cannot be read.
    @discardableResult
    ///
    /// With `teacher`, the loss is ``Distillation``'s: the teacher runs forward only, layer by
    /// layer, on the same batch; its final hidden states are kept and its logits computed block by
    /// block beside the student's, so no `[tokens, vocab]` matrix of the whole batch exists.
    public func loraBackward(_ batch: TokenBatch, trained: [Bool]? = nil, gradientScale: Float,
                             teacher: DistillationTeacher? = nil) throws(CheckpointError) -> LossResult {
        guard adapters != nil else { throw CheckpointError(.invalidArgument, "loraBackward needs adapters on the model") }
        guard batch.seqLen >= 2 else { throw CheckpointError(.invalidArgument, "sequences need at least 2 tokens to predict one") }
        if let trained, trained.count != batch.tokens.count {
            throw CheckpointError(.invalidArgument, "\(trained.count) loss-mask flags for \(batch.tokens.count) tokens")
        }
        defer { BufferPool.shared.drain() }
        try checkMemory(rows: batch.tokens.count, backward: true)
        let a = description, h = a.hiddenSize, v = a.vocabSize, t = batch.seqLen
        let layout = batch.layout
        var teacherHidden: Matrix? = nil, teacherHead: VocabularyTable? = nil
        if let teacher {
            let tm = teacher.model
            guard tm.description.vocabSize == v else {
                throw CheckpointError(.invalidArgument, "the teacher's vocabulary has \(tm.description.vocabSize) tokens, the student's \(v); distillation needs the same tokenizer")
            }
            try tm.checkMemory(rows: batch.tokens.count, backward: false)
            let (tx, _, _) = try tm.decoderStack(batch, saveInputs: false)
            teacherHidden = RMSNorm.forward(tx, weight: try tm.finalNorm(), eps: tm.eps, offset: tm.description.family.blocks.normWeightOffset).y
            teacherHead = try tm.headTable()
        }
        var (x, inputs, kept) = try decoderStack(batch, saveInputs: true, keptFrom: firstKeptLayer(rows: layout.rows))
        let normWeight = try finalNorm()
        let off = a.family.blocks.normWeightOffset
        let (hf, invF) = RMSNorm.forward(x, weight: normWeight, eps: eps, offset: off)
        let head = try headTable()
        let dhf = Matrix(uninitializedRows: layout.rows, cols: h)
        let block = LanguageModelLoss.sequencesPerBlock(seqLen: t, vocab: v, sequences: batch.batch,
                                                        bytes: memory.logitBytes(blockedHead: head.whole == nil))
        let dlogits = Matrix(uninitializedRows: block * t, cols: v)
        let transformed = logitTransform.isIdentity ? nil : Matrix(uninitializedRows: block * t, cols: v)
        let teacherLogits = teacher == nil ? nil : Matrix(uninitializedRows: block * t, cols: v)
        var nll = 0.0
        for b0 in stride(from: 0, to: batch.batch, by: block) {
            let nb = min(block, batch.batch - b0), rows = (b0 * t)..<((b0 + nb) * t)
            try head.logits(hidden: hf, rows: rows, into: dlogits, transform: logitTransform)
            transformed?.storage.update(from: dlogits.storage, count: rows.count * v)
            if let teacher, let teacherLogits, let teacherHidden, let teacherHead {
                try teacherHead.logits(hidden: teacherHidden, rows: rows, into: teacherLogits, transform: teacher.model.logitTransform)
                nll += teacher.distillation.loss(logits: dlogits, teacher: teacherLogits, sequences: nb, seqLen: t, tokens: batch.tokens[rows],
                                                 trained: trained?[rows], gradientScale: gradientScale)
            } else {
                nll += LanguageModelLoss.crossEntropy(logits: dlogits, sequences: nb, seqLen: t, tokens: batch.tokens[rows],
                                                      gradientScale: gradientScale, trained: trained?[rows])
            }
            if let transformed {
                for r in 0..<rows.count { logitTransform.backward(dlogits.storage + r * v, transformed.storage + r * v, v) }
            }
            try head.backwardInput(dlogits, count: rows.count, into: dhf.storage + rows.lowerBound * h)
        }
        withExtendedLifetime((hf, teacherHidden)) {}
        let dx = Matrix(rows: layout.rows, cols: h)
        RMSNorm.backward(x: x, inverseRMS: invF, weight: normWeight, dy: dhf, dx: dx, accumulate: false, weightGradient: nil, offset: off)
        x = dx
        for i in stride(from: a.layerCount - 1, through: 0, by: -1) {
            let w = try layerWeights(i)
            let input = inputs.removeLast(), projections = kept.removeLast()
            x = DecoderLayer(weights: w, eps: eps).backward(input, dOut: x, layout: layout, rotary: rotaryTables(positions: t, layer: i),
                                                            grads: nil, kept: projections)
        }
        return LossResult(nllSum: nll, tokens: LlamaModel.countedTokens(batch, trained: trained))
    }

    /// Tokens whose prediction counts: flagged in `trained` and not the first of their sequence.
    public static func countedTokens(_ batch: TokenBatch, trained: [Bool]?) -> Int {
        guard let trained else { return batch.batch * (batch.seqLen - 1) }
        var n = 0
        for i in 0..<trained.count where i % batch.seqLen != 0 && trained[i] { n += 1 }
        return n
    }
}

/// A teacher for distillation: a model over the same vocabulary (typically the unpruned one),
/// run forward only, and the loss settings.
public struct DistillationTeacher: @unchecked Sendable {
    public let model: LlamaModel
    public var distillation: Distillation

    public init(model: LlamaModel, distillation: Distillation) {
        self.model = model
        self.distillation = distillation
    }
}
