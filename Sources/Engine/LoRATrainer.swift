#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import ModelArchitecture

/// `torch.optim.AdamW` (the single-tensor CPU implementation), in F32 as PyTorch computes it:
/// `p ← p·(1 − lr·wd)`, `m ← m + (1 − β1)(g − m)`, `v ← β2·v + (1 − β2)·g²`,
/// `p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)`.
public final class AdamW: @unchecked Sendable {
    public var beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0
    /// Optimiser steps taken.
    public internal(set) var step = 0
    /// First and second moments, one array per parameter (in ``LoRAAdapters`` parameter order).
    public internal(set) var m: [[Float]], v: [[Float]]

    public init(sizes: [Int]) {
        m = sizes.map { [Float](repeating: 0, count: $0) }
        v = m
    }

    /// Restores a saved state.
    /// - Throws: `invalidArgument` when the moments' sizes differ from `sizes`.
    public init(sizes: [Int], step: Int, m: [[Float]], v: [[Float]]) throws(CheckpointError) {
        guard m.map(\.count) == sizes, v.map(\.count) == sizes, step >= 0 else {
            throw CheckpointError(.invalidArgument, "the optimiser state does not fit the adapters (different targets or rank?)")
        }
        self.m = m
        self.v = v
        self.step = step
    }

    /// One step on `parameters` ((value, gradient) pairs) at learning rate `lr`.
    public func update(_ parameters: [(Matrix, Matrix)], lr: Double) {
        precondition(parameters.count == m.count)
        step += 1
        let b1 = beta1, b2 = beta2, e = eps
        let bc1 = 1 - pow(Double(beta1), Double(step)), bc2 = 1 - pow(Double(beta2), Double(step))
        let stepSize = Float(lr / bc1), bc2Sqrt = Float(bc2.squareRoot())
        let decay = Float(1 - lr * Double(weightDecay))
        for (i, (p, g)) in parameters.enumerated() {
            let pp = p.storage, gp = g.storage
            m[i].withUnsafeMutableBufferPointer { mb in
                v[i].withUnsafeMutableBufferPointer { vb in
                    for j in 0..<p.count {
                        if weightDecay != 0 { pp[j] *= decay }
                        let gj = gp[j]
                        mb[j] += (1 - b1) * (gj - mb[j])
                        vb[j] = vb[j] * b2 + (1 - b2) * (gj * gj)
                        let denom = vb[j].squareRoot() / bc2Sqrt + e
                        pp[j] += -stepSize * (mb[j] / denom)
                    }
                }
            }
        }
    }
}

/// transformers' `get_linear_schedule_with_warmup`: the factor rises linearly from 0 over
/// `warmup` steps, then falls linearly to 0 at `total` steps. Step k (0-based) runs at
/// `base · factor(k)`.
public struct LinearSchedule: Sendable, Equatable {
    public var base: Double, warmup: Int, total: Int

    public init(base: Double, warmup: Int, total: Int) {
        self.base = base
        self.warmup = warmup
        self.total = total
    }

    public func learningRate(step k: Int) -> Double {
        if k < warmup { return base * Double(k) / Double(max(1, warmup)) }
        return base * max(0, Double(total - k) / Double(max(1, total - warmup)))
    }
}

/// One training sequence: its tokens and, optionally, which tokens' predictions count.
public struct TrainingSequence: Sendable, Equatable {
    public var tokens: [Int32]
    /// Per token: whether predicting it counts (false for prompt tokens or padding); nil: all.
    public var trained: [Bool]?

    public init(tokens: [Int32], trained: [Bool]? = nil) {
        self.tokens = tokens
        self.trained = trained
    }
}

/// What one optimiser step did.
public struct TrainingStep: Sendable, Equatable {
    /// Mean loss over the counted tokens of the whole batch (before the update): NLL, or the
    /// distillation loss with a teacher.
    public var loss: Double
    /// Counted (predicted) tokens, and all tokens run, padding included.
    public var countedTokens: Int, tokens: Int
    /// The gradients' global norm before clipping.
    public var gradientNorm: Double
    public var learningRate: Double
}

/// LoRA training as transformers' `Trainer` runs it with a PEFT model: for each optimiser step,
/// the batch's micro-batches are run (each padded on the right to its longest sequence), their
/// gradients accumulated, the loss being the sum of every counted token's NLL over the whole
/// batch divided by the batch's counted tokens (Trainer's `num_items_in_batch`); then the global
/// gradient norm is clipped to `maxGradNorm` (`clip_grad_norm_`), AdamW steps at the schedule's
/// rate, and the rate advances.
///
/// Dropout masks of micro-batch number `n` (counted over the whole run) are seeded by
/// (`seed`, `n`), so a run resumed at step k gives the same masks as an uninterrupted one.
public final class LoRATrainer: @unchecked Sendable {
    public let model: LlamaModel
    public let adapters: LoRAAdapters
    public let optimizer: AdamW
    public var schedule: LinearSchedule
    /// nil or ≤ 0: no clipping.
    public var maxGradNorm: Double?
    public let seed: UInt64
    /// Distill from this teacher instead of the cross-entropy loss.
    public var teacher: DistillationTeacher? = nil
    /// Micro-batches run so far (seeds the dropout masks).
    public internal(set) var microBatches: UInt64 = 0

    /// Attaches `adapters` to `model` (replacing any).
    public init(model: LlamaModel, adapters: LoRAAdapters, schedule: LinearSchedule, maxGradNorm: Double? = 1, seed: UInt64 = 0,
                optimizer: AdamW? = nil, microBatches: UInt64 = 0) {
        self.model = model
        self.adapters = adapters
        self.schedule = schedule
        self.maxGradNorm = maxGradNorm
        self.seed = seed
        self.optimizer = optimizer ?? AdamW(sizes: adapters.parameters.map { $0.0.count })
        self.microBatches = microBatches
        model.adapters = adapters
    }

    /// Sequences padded on the right to the longest with `pad`, flags false on the padding.
    public static func pad(_ sequences: [TrainingSequence], with pad: Int32) throws(CheckpointError) -> (TokenBatch, [Bool]?) {
        let t = sequences.map(\.tokens.count).max() ?? 0
        let needsFlags = sequences.contains { $0.trained != nil || $0.tokens.count != t }
        var rows: [[Int32]] = [], flags: [Bool] = []
        for s in sequences {
            if let f = s.trained, f.count != s.tokens.count {
                throw CheckpointError(.invalidArgument, "a training sequence has \(f.count) loss-mask flags for \(s.tokens.count) tokens")
            }
            rows.append(s.tokens + [Int32](repeating: pad, count: t - s.tokens.count))
            if needsFlags { flags += (s.trained ?? [Bool](repeating: true, count: s.tokens.count)) + [Bool](repeating: false, count: t - s.tokens.count) }
        }
        return (try TokenBatch(rows), needsFlags ? flags : nil)
    }

    /// One optimiser step over `microBatches` (each a list of sequences).
    /// - Throws: `invalidArgument` for a batch that counts no token; errors of the passes.
    public func step(_ microBatches: [[TrainingSequence]]) throws(CheckpointError) -> TrainingStep {
        let pad = Int32(model.description.paddingTokenId ?? 0)
        var padded: [(TokenBatch, [Bool]?)] = []
        for mb in microBatches { padded.append(try LoRATrainer.pad(mb, with: pad)) }
        let counted = padded.reduce(0) { $0 + LlamaModel.countedTokens($1.0, trained: $1.1) }
        guard counted > 0 else { throw CheckpointError(.invalidArgument, "a training batch has no token to predict") }
        adapters.zeroGradients()
        let scale = Float(1 / Double(counted))
        var nll = 0.0, tokens = 0
        for (batch, flags) in padded {
            adapters.setDropout(active: true, seed: LoRATrainer.maskSeed(seed, self.microBatches))
            self.microBatches += 1
            nll += try model.loraBackward(batch, trained: flags, gradientScale: scale, teacher: teacher).nllSum
            tokens += batch.tokens.count
        }
        adapters.setDropout(active: false, seed: 0)
        let parameters = adapters.parameters
        var sq = 0.0
        for (_, g) in parameters {
            var s: Float = 0
            for j in 0..<g.count { s += g.storage[j] * g.storage[j] }
            sq += Double(s)
        }
        let norm = sq.squareRoot()
        if let maxNorm = maxGradNorm, maxNorm > 0 {
            let coef = Float(maxNorm / (norm + 1e-6))
            if coef < 1 {
                for (_, g) in parameters { for j in 0..<g.count { g.storage[j] *= coef } }
            }
        }
        let lr = schedule.learningRate(step: optimizer.step)
        optimizer.update(parameters, lr: lr)
        return TrainingStep(loss: nll / Double(counted), countedTokens: counted, tokens: tokens, gradientNorm: norm, learningRate: lr)
    }

    static func maskSeed(_ seed: UInt64, _ n: UInt64) -> UInt64 {
        var r = SplitMix64(seed: seed ^ (n &* 0xA24B_AED4_963E_E407))
        return r.next()
    }
}
