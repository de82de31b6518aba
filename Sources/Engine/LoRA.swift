import CheckpointCore
import ModelArchitecture
import ShearsBLAS
import ShearsConcurrency

/// Where a LoRA adapter sits: a decoder layer and one of its seven projections.
public struct LoRAKey: Hashable, Sendable, Comparable {
    public let layer: Int
    public let role: TensorRole

    public init(layer: Int, role: TensorRole) {
        self.layer = layer
        self.role = role
    }

    /// Layers in order, projections in ``TensorRole/projections`` order within a layer.
    public static func < (l: LoRAKey, r: LoRAKey) -> Bool {
        if l.layer != r.layer { return l.layer < r.layer }
        return (TensorRole.projections.firstIndex(of: l.role) ?? 0) < (TensorRole.projections.firstIndex(of: r.role) ?? 0)
    }
}

/// One low-rank adapter on a linear layer `y = W x`: `y = W x + s·B·A·dropout(x)`, `s = alpha / rank`,
/// `A` `[rank, in]` and `B` `[out, rank]` row-major (PEFT's `lora_A.weight`, `lora_B.weight`).
///
/// The gradients of the adapter only are accumulated, never the base weight's:
/// `dA += s·(dY·B)ᵀ·X̃` and `dB += s·dYᵀ·(X̃·Aᵀ)`, X̃ the dropped-out input. Dropout masks are a
/// function of (``maskSeed``, the adapter's key, the element's index), so the backward pass
/// regenerates exactly the forward pass's mask, and a run is reproducible bit for bit whatever
/// the thread count.
public final class LoRAAdapter: @unchecked Sendable {
    public let key: LoRAKey
    public let rank: Int, inFeatures: Int, outFeatures: Int
    /// alpha / rank.
    public let scale: Float
    /// Dropout probability of the adapter's input (applied only while ``dropoutActive``).
    public let dropout: Float
    public let a: Matrix
    public let b: Matrix
    public let gradA: Matrix
    public let gradB: Matrix
    /// Seed of the current pass's dropout masks (set by the trainer for each micro-batch).
    public var maskSeed: UInt64 = 0
    /// Whether dropout applies (training passes); evaluation passes run without it.
    public var dropoutActive = false

    /// - Precondition: `a` is `[rank, in]`, `b` is `[out, rank]`.
    public init(key: LoRAKey, a: Matrix, b: Matrix, alpha: Float, dropout: Float) {
        precondition(a.rows == b.cols && a.rows > 0, "LoRAAdapter: A \(a.rows)×\(a.cols), B \(b.rows)×\(b.cols)")
        self.key = key
        rank = a.rows
        inFeatures = a.cols
        outFeatures = b.rows
        scale = alpha / Float(a.rows)
        self.dropout = dropout
        self.a = a
        self.b = b
        gradA = Matrix(rows: a.rows, cols: a.cols)
        gradB = Matrix(rows: b.rows, cols: b.cols)
    }

    var dropsOut: Bool { dropoutActive && dropout > 0 }

    /// The dropped-out input X̃ = x ∘ mask / (1 − p), or `x` itself without dropout.
    func droppedInput(_ x: Matrix) -> Matrix {
        guard dropsOut else { return x }
        let out = Matrix(uninitializedRows: x.rows, cols: x.cols)
        applyMask(from: x.storage, to: out.storage, rows: x.rows, cols: x.cols)
        return out
    }

    /// `dst = src ∘ mask / (1 − p)` elementwise over `[rows, cols]` (mask of this pass).
    func applyMask(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        let p = dropout, keep = 1 / (1 - p), seed = maskSeed, salt = UInt64(key.layer) &* 64 &+ UInt64(TensorRole.projections.firstIndex(of: key.role) ?? 0)
        let threshold = UInt32(min(Double(p) * 16_777_216, 16_777_216))
        let s = UnsafeSendable(UnsafeMutablePointer(mutating: src)), d = UnsafeSendable(dst)
        Parallel.chunks(rows, costPerItem: cols * 2) { rs in
            let s = s.value, d = d.value
            // Element i's uniform is half of hash(i / 2): bits 40..63 for even i, 16..39 for odd
            // i, whatever the chunking.
            var i = rs.lowerBound * cols
            let end = rs.upperBound * cols
            while i < end {
                let z = LoRAAdapter.hash(seed: seed, salt: salt, index: UInt64(i >> 1))
                if i & 1 == 0 {
                    d[i] = UInt32(truncatingIfNeeded: z >> 40) >= threshold ? s[i] * keep : 0
                    if i + 1 < end { d[i + 1] = UInt32(truncatingIfNeeded: (z >> 16) & 0xFF_FFFF) >= threshold ? s[i + 1] * keep : 0 }
                    i += 2
                } else {
                    d[i] = UInt32(truncatingIfNeeded: (z >> 16) & 0xFF_FFFF) >= threshold ? s[i] * keep : 0
                    i += 1
                }
            }
        }
    }

    /// A counter-based hash (SplitMix64's finaliser) of (seed, adapter, element pair).
    @inline(__always) static func hash(seed: UInt64, salt: UInt64, index: UInt64) -> UInt64 {
        var z = seed &+ salt &* 0x9E37_79B9_7F4A_7C15 &+ index &* 0xD1B5_4A32_D192_ED03
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `y += s·(X̃·Aᵀ)·Bᵀ` for `x` `[n, in]`, `y` `[n, out]`.
    func addForward(_ x: Matrix, into y: Matrix) {
        let xd = droppedInput(x)
        let xa = Matrix(uninitializedRows: x.rows, cols: rank)
        BLAS.sgemm(transB: true, m: x.rows, n: rank, k: inFeatures, a: xd.storage, lda: inFeatures, b: a.storage, ldb: inFeatures,
                   c: xa.storage, ldc: rank)
        BLAS.sgemm(transB: true, m: x.rows, n: outFeatures, k: rank, alpha: scale, a: xa.storage, lda: rank, b: b.storage, ldb: rank,
                   beta: 1, c: y.storage, ldc: outFeatures)
        withExtendedLifetime(xd) {}
    }

    /// `dx += ∂L/∂x` through the adapter path: `s·(dY·B)·A`, masked and scaled as the dropout was.
    func addBackwardInput(_ dy: Matrix, into dx: Matrix) {
        let n = dy.rows
        let dxa = Matrix(uninitializedRows: n, cols: rank)
        BLAS.sgemm(m: n, n: rank, k: outFeatures, a: dy.storage, lda: outFeatures, b: b.storage, ldb: rank, c: dxa.storage, ldc: rank)
        if !dropsOut {
            BLAS.sgemm(m: n, n: inFeatures, k: rank, alpha: scale, a: dxa.storage, lda: rank, b: a.storage, ldb: inFeatures,
                       beta: 1, c: dx.storage, ldc: inFeatures)
            return
        }
        let t = Matrix(uninitializedRows: n, cols: inFeatures)
        BLAS.sgemm(m: n, n: inFeatures, k: rank, alpha: scale, a: dxa.storage, lda: rank, b: a.storage, ldb: inFeatures,
                   c: t.storage, ldc: inFeatures)
        applyMask(from: t.storage, to: t.storage, rows: n, cols: inFeatures)
        dx.add(t)
    }

    /// `dA += s·(dY·B)ᵀ·X̃`, `dB += s·dYᵀ·(X̃·Aᵀ)` for input `x` and output gradient `dy`.
    func accumulateGradients(x: Matrix, dy: Matrix) {
        let n = x.rows
        let xd = droppedInput(x)
        let xa = Matrix(uninitializedRows: n, cols: rank), dxa = Matrix(uninitializedRows: n, cols: rank)
        BLAS.sgemm(transB: true, m: n, n: rank, k: inFeatures, a: xd.storage, lda: inFeatures, b: a.storage, ldb: inFeatures,
                   c: xa.storage, ldc: rank)
        BLAS.sgemm(m: n, n: rank, k: outFeatures, a: dy.storage, lda: outFeatures, b: b.storage, ldb: rank, c: dxa.storage, ldc: rank)
        BLAS.sgemm(transA: true, m: outFeatures, n: rank, k: n, alpha: scale, a: dy.storage, lda: outFeatures, b: xa.storage, ldb: rank,
                   beta: 1, c: gradB.storage, ldc: rank)
        BLAS.sgemm(transA: true, m: rank, n: inFeatures, k: n, alpha: scale, a: dxa.storage, lda: rank, b: xd.storage, ldb: inFeatures,
                   beta: 1, c: gradA.storage, ldc: inFeatures)
        withExtendedLifetime(xd) {}
    }

    /// `W + s·B·A` (`[out, in]`) for base weight `w`.
    public func merged(into w: Matrix) -> Matrix {
        precondition(w.rows == outFeatures && w.cols == inFeatures)
        let m = w.copy()
        BLAS.sgemm(m: outFeatures, n: inFeatures, k: rank, alpha: scale, a: b.storage, lda: rank, b: a.storage, ldb: inFeatures,
                   beta: 1, c: m.storage, ldc: inFeatures)
        return m
    }
}

/// How adapters are placed and initialised.
public struct LoRASettings: Sendable, Equatable {
    public var rank: Int
    public var alpha: Float
    public var dropout: Float
    /// The projections that get an adapter (``TensorRole/projections`` members).
    public var targets: [TensorRole]

    public init(rank: Int = 8, alpha: Float = 16, dropout: Float = 0.05, targets: [TensorRole] = TensorRole.projections) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
    }

    /// - Throws: `invalidArgument` for a rank below 1, dropout outside [0, 1), a non-finite alpha,
    ///   no target, or a target that is not a projection.
    public func validate() throws(CheckpointError) {
        guard rank >= 1 && rank <= 65_536 else { throw CheckpointError(.invalidArgument, "LoRA rank \(rank) must be between 1 and 65536") }
        guard dropout >= 0 && dropout < 1 else { throw CheckpointError(.invalidArgument, "LoRA dropout \(dropout) must be in [0, 1)") }
        guard alpha.isFinite else { throw CheckpointError(.invalidArgument, "LoRA alpha \(alpha) must be finite") }
        guard !targets.isEmpty else { throw CheckpointError(.invalidArgument, "LoRA needs at least one target projection") }
        for t in targets where !TensorRole.projections.contains(t) {
            throw CheckpointError(.invalidArgument, "LoRA target \(t) is not one of the seven projections")
        }
    }
}

/// Every adapter of a model, in ``LoRAKey`` order.
public final class LoRAAdapters: @unchecked Sendable {
    public let settings: LoRASettings
    public private(set) var adapters: [LoRAAdapter]
    private var index: [LoRAKey: Int] = [:]

    /// Adapters with the given A and B per key (as PEFT stores them); keys must be projections of
    /// `model`'s layers with matching shapes.
    /// - Throws: `invalidArgument` / `shapeMismatch` naming the layer and role.
    public init(model: ModelDescription, settings: LoRASettings,
                weights: [LoRAKey: (a: [Float], b: [Float])]) throws(CheckpointError) {
        try settings.validate()
        self.settings = settings
        adapters = []
        for key in weights.keys.sorted() {
            guard key.layer >= 0 && key.layer < model.layerCount, settings.targets.contains(key.role) else {
                throw CheckpointError(.invalidArgument, "no LoRA target at layer \(key.layer), \(key.role)")
            }
            let (out, inF) = LoRAAdapters.shape(of: key, in: model)
            let r = settings.rank
            let (ab, bb) = weights[key]!
            guard ab.count == r * inF, bb.count == out * r else {
                throw CheckpointError(.shapeMismatch, "LoRA adapter at layer \(key.layer), \(key.role): A has \(ab.count) values, B \(bb.count); rank \(r) needs A [\(r), \(inF)] and B [\(out), \(r)]",
                                      tensor: model.name(key.role, .weight, layer: key.layer))
            }
            guard ab.allSatisfy(\.isFinite), bb.allSatisfy(\.isFinite) else {
                throw CheckpointError(.invalidArgument, "LoRA adapter at layer \(key.layer), \(key.role) has non-finite values",
                                      tensor: model.name(key.role, .weight, layer: key.layer))
            }
            index[key] = adapters.count
            adapters.append(LoRAAdapter(key: key, a: Matrix(rows: r, cols: inF, values: ab), b: Matrix(rows: out, cols: r, values: bb),
                                        alpha: settings.alpha, dropout: settings.dropout))
        }
    }

    /// PEFT's default initialisation: A Kaiming-uniform (a = √5, so U(−1/√in, 1/√in)), B zero,
    /// A drawn from a seeded generator, on every target of every layer with that projection.
    public convenience init(model: ModelDescription, settings: LoRASettings, seed: UInt64) throws(CheckpointError) {
        var weights: [LoRAKey: (a: [Float], b: [Float])] = [:]
        var rng = SplitMix64(seed: seed)
        for l in 0..<model.layerCount {
            let s = model.layers[l]
            for role in TensorRole.projections where settings.targets.contains(role) {
                if [.query, .key, .value, .output].contains(role) && !s.hasAttention { continue }
                if [.gate, .up, .down].contains(role) && s.intermediateSize == 0 { continue }
                let key = LoRAKey(layer: l, role: role)
                let (out, inF) = LoRAAdapters.shape(of: key, in: model)
                if out == 0 || inF == 0 { continue }
                let bound = 1 / Float(inF).squareRoot()
                let a = (0..<(settings.rank * inF)).map { _ in (Float(rng.uniform()) * 2 - 1) * bound }
                weights[key] = (a, [Float](repeating: 0, count: out * settings.rank))
            }
        }
        try self.init(model: model, settings: settings, weights: weights)
    }

    /// (out, in) of the projection at `key`.
    public static func shape(of key: LoRAKey, in m: ModelDescription) -> (out: Int, in: Int) {
        let s = m.layers[key.layer], h = m.hiddenSize
        let q = s.queryWidth(headDim: m.headDim), kv = s.keyValueWidth(headDim: m.headDim), i = s.intermediateSize
        switch key.role {
        case .query: return (q, h)
        case .key, .value: return (kv, h)
        case .output: return (h, q)
        case .gate, .up: return (i, h)
        case .down: return (h, i)
        default: return (0, 0)
        }
    }

    public func adapter(_ key: LoRAKey) -> LoRAAdapter? { index[key].map { adapters[$0] } }

    /// Trainable parameters (A and B of every adapter).
    public var parameterCount: Int { adapters.reduce(0) { $0 + $1.a.count + $1.b.count } }

    public func zeroGradients() {
        for a in adapters {
            a.gradA.zero()
            a.gradB.zero()
        }
    }

    /// Sets the dropout seed and whether dropout applies, on every adapter.
    public func setDropout(active: Bool, seed: UInt64) {
        for a in adapters {
            a.dropoutActive = active
            a.maskSeed = seed
        }
    }

    /// (parameter, gradient) pairs, A then B of each adapter in key order.
    var parameters: [(Matrix, Matrix)] { adapters.flatMap { [($0.a, $0.gradA), ($0.b, $0.gradB)] } }
}
