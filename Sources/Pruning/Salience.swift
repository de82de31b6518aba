import CheckpointCore

/// One parameter as an importance estimator sees it: a row-major `[rows, cols]` weight in F32,
/// optionally its gradient and the per-sample squared-gradient sum (vectors come as `[1, n]`).
///
/// The buffers are borrowed for the duration of one call; nothing keeps them.
public struct ParameterView {
    /// The decoder layer, or nil for the embedding, final norm and LM head.
    public let layer: Int?
    /// The Hugging Face parameter name.
    public let name: String
    public let rows: Int
    public let cols: Int
    public let weight: UnsafeBufferPointer<Float>
    /// dL/dW of the batch's mean loss.
    public let gradient: UnsafeBufferPointer<Float>?
    /// Σ over samples of (dL_s/dW)²; divided by ``samples`` it is upstream's `acc_grad`.
    public let fisherSum: UnsafeBufferPointer<Float>?
    /// Number of samples in ``fisherSum``.
    public let samples: Int

    /// - Throws: `shapeMismatch` when a buffer does not hold `rows·cols` elements.
    public init(layer: Int?, name: String, rows: Int, cols: Int, weight: UnsafeBufferPointer<Float>,
                gradient: UnsafeBufferPointer<Float>? = nil, fisherSum: UnsafeBufferPointer<Float>? = nil,
                samples: Int = 1) throws(CheckpointError) {
        let n = rows * cols
        for (what, b) in [("weight", Optional(weight)), ("gradient", gradient), ("Fisher sum", fisherSum)] {
            if let b, b.count != n {
                throw CheckpointError(.shapeMismatch, "\(what) has \(b.count) elements, expected \(rows)×\(cols)", tensor: name)
            }
        }
        guard samples >= 1 else { throw CheckpointError(.invalidArgument, "Fisher sums need at least one sample", tensor: name) }
        self.layer = layer
        self.name = name
        self.rows = rows
        self.cols = cols
        self.weight = weight
        self.gradient = gradient
        self.fisherSum = fisherSum
        self.samples = samples
    }
}

/// Along which axis a member's per-element salience is reduced to one value per channel.
public enum ReductionAxis: Sendable, Equatable {
    /// One value per row (output channel): sum over the columns.
    case rows
    /// One value per column (input channel): sum over the rows.
    case columns
}

/// The per-element salience of an estimator (llm-pruner.md §2.2, §2.4).
public enum ElementSalience: Sendable, Equatable {
    /// Σ|W|^p (p = 1 or 2: "l2" is the squared norm).
    case magnitude(Int)
    case taylor(TaylorVariant)

    public var needsGradient: Bool { if case .taylor = self { true } else { false } }
    public var needsFisher: Bool { if case .taylor(let v) = self { v.needsFisher } else { false } }

    /// Reduces the salience of `p` along `axis` to one value per channel, in Double.
    /// `vectorize` sums the signed products first and takes the absolute value at the end; every
    /// other variant sums absolute values.
    /// - Throws: `invalidArgument` when the gradient or Fisher sum the variant needs is missing.
    public func reduce(_ p: ParameterView, along axis: ReductionAxis) throws(CheckpointError) -> [Double] {
        let r = p.rows, c = p.cols, w = p.weight
        var out = [Double](repeating: 0, count: axis == .rows ? r : c)
        switch self {
        case .magnitude(let power):
            for i in 0..<r {
                var rowSum = 0.0
                for j in 0..<c {
                    let x = Double(w[i * c + j])
                    let v = power == 1 ? abs(x) : x * x
                    if axis == .rows { rowSum += v } else { out[j] += v }
                }
                if axis == .rows { out[i] = rowSum }
            }
        case .taylor(let variant):
            guard let g = p.gradient else { throw CheckpointError(.invalidArgument, "Taylor importance needs the gradient", tensor: p.name) }
            let f = p.fisherSum
            if variant.needsFisher && f == nil { throw CheckpointError(.invalidArgument, "\(variant.rawValue) needs the per-sample squared-gradient sums", tensor: p.name) }
            let invN = 1.0 / Double(p.samples)
            for i in 0..<r {
                var rowSum = 0.0
                for j in 0..<c {
                    let k = i * c + j
                    let x = Double(w[k])
                    let v: Double
                    switch variant {
                    case .vectorize: v = x * Double(g[k])
                    case .paramFirst: v = abs(x * Double(g[k]))
                    case .paramSecond: v = abs(x * Double(f![k]) * invN * x)
                    case .paramMix: v = abs(x * Double(g[k]) - 0.5 * x * Double(f![k]) * invN * x)
                    }
                    if axis == .rows { rowSum += v } else { out[j] += v }
                }
                if axis == .rows { out[i] = rowSum }
            }
            if variant == .vectorize { for i in out.indices { out[i] = abs(out[i]) } }
        }
        return out
    }
}

/// Per-channel member vectors, keyed by parameter name, in the *source's* numbering (channels a
/// previous step removed hold 0). Filled tensor by tensor, so that only one tensor's gradient
/// exists at a time.
public struct SalienceTable: Sendable {
    public var vectors: [String: [Double]] = [:]
    public init() {}
}
