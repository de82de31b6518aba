import CheckpointCore
import ShearsBLAS

/// Which linear layer's input a statistic describes (formats/recovery.md §2).
public enum ActivationSite: String, Sendable, CaseIterable, Hashable {
    /// Input of `o_proj`: concatenated head outputs.
    case attention
    /// Input of the down projection: `silu(gate)·up`.
    case mlp
    /// Input of q/k/v: `input_layernorm(x)`.
    case attentionIn = "attention_in"
    /// Input of gate/up: `post_attention_layernorm(x)`.
    case mlpIn = "mlp_in"
}

/// Per-channel statistics of one site's input over calibration rows, accumulated in Float64:
/// mean, sample variance (Chan's merge of per-chunk count/mean/M2), squared norm and, on request,
/// the centered covariance (accumulated about a shift, the first chunk's mean).
public struct SiteStatistics: Sendable, Equatable {
    public let width: Int
    public private(set) var count = 0
    public private(set) var mean: [Double]
    var m2: [Double]
    public private(set) var sqnorm: [Double]
    /// Σ (x − shift)(x − shift)ᵀ, row-major `width × width` (lower triangle), when the covariance
    /// is wanted: in memory or spilled to a file (``GramBuffer``).
    var shiftedGram: GramBuffer?
    var shift: [Double]?
    var shiftedSum: [Double]?
    /// How the covariance accumulates (float64 unless asked).
    public let precision: CovariancePrecision

    public init(width: Int, covariance: Bool, precision: CovariancePrecision = .float64) {
        self.width = width
        self.precision = precision
        mean = [Double](repeating: 0, count: width)
        m2 = mean
        sqnorm = mean
        if covariance { shiftedGram = GramBuffer(count: width * width) }
    }

    /// Statistics whose covariance accumulates in a file of `folder` (see ``GramBuffer``).
    public init(width: Int, spillingCovarianceInto folder: String, precision: CovariancePrecision = .float64) throws(CheckpointError) {
        self.width = width
        self.precision = precision
        mean = [Double](repeating: 0, count: width)
        m2 = mean
        sqnorm = mean
        shiftedGram = try GramBuffer(count: width * width, spillingInto: folder)
    }

    /// Bytes of the covariance accumulator of a site `width` wide.
    public static func covarianceBytes(width: Int) -> Int {
        width.multipliedReportingOverflow(by: width).partialValue.multipliedReportingOverflow(by: MemoryLayout<Double>.stride).partialValue
    }

    public var wantsCovariance: Bool { shiftedGram != nil }
    /// Whether the covariance accumulator lives in a file.
    public var covarianceIsSpilled: Bool { shiftedGram?.isSpilled ?? false }

    public static func == (a: SiteStatistics, b: SiteStatistics) -> Bool {
        a.width == b.width && a.precision == b.precision && a.count == b.count && a.mean == b.mean && a.m2 == b.m2 && a.sqnorm == b.sqnorm
            && a.shift == b.shift && a.shiftedSum == b.shiftedSum && a.shiftedGram?.values == b.shiftedGram?.values
    }

    /// Sample variance `M2 / (n − 1)` (0 for fewer than two rows).
    public var variance: [Double] { count < 2 ? [Double](repeating: 0, count: width) : m2.map { $0 / Double(count - 1) } }

    /// The centered covariance `(1/n) Σ (x − mean)(x − mean)ᵀ`, row-major, or nil when not accumulated.
    public var covariance: [Double]? {
        guard let view = covarianceView else { return nil }
        var c = [Double](repeating: 0, count: width * width)
        for i in 0..<width {
            for j in 0..<width { c[i * width + j] = view[i, j] }
        }
        return c
    }

    /// Entries of the centered covariance read from the accumulator without a copy of the whole
    /// matrix (the same values as ``covariance``).
    public var covarianceView: CovarianceView? {
        guard let g = shiftedGram, let s = shiftedSum, count > 0 else { return nil }
        let n = Double(count)
        return CovarianceView(gram: g, width: width, n: n, offset: s.map { $0 / n })
    }

    /// The centered covariance, entry by entry: `C[i, j] = G[max, min] / n − d_i d_j` with `G` the
    /// shifted Gram matrix (lower triangle) and `d = mean − shift`.
    public struct CovarianceView {
        let gram: GramBuffer
        public let width: Int
        let n: Double
        let offset: [Double]   // mean − shift

        public subscript(i: Int, j: Int) -> Double {
            let g = i >= j ? gram[i * width + j] : gram[j * width + i]
            return g / n - offset[i] * offset[j]
        }
    }

    /// Adds `rows` rows of `width` floats (row-major).
    public mutating func add(_ x: UnsafeBufferPointer<Float>, rows: Int) {
        precondition(x.count >= rows * width, "SiteStatistics.add: \(x.count) values for \(rows)×\(width)")
        guard rows > 0 else { return }
        let w = width
        var cm = [Double](repeating: 0, count: w), cs = cm
        for r in 0..<rows {
            let base = r * w
            for j in 0..<w { let v = Double(x[base + j]); cm[j] += v; cs[j] += v * v }
        }
        let nb = Double(rows)
        for j in 0..<w { cm[j] /= nb }
        var cm2 = [Double](repeating: 0, count: w)
        for r in 0..<rows {
            let base = r * w
            for j in 0..<w { let dv = Double(x[base + j]) - cm[j]; cm2[j] += dv * dv }
        }
        // Chan et al.: merge (count, mean, M2) of the chunk into the running totals.
        let na = Double(count), n = na + nb
        for j in 0..<w {
            let delta = cm[j] - mean[j]
            mean[j] += delta * nb / n
            m2[j] += cm2[j] + delta * delta * na * nb / n
            sqnorm[j] += cs[j]
        }
        if shiftedGram != nil {
            if shift == nil { shift = cm; shiftedSum = [Double](repeating: 0, count: w) }
            let s = shift!
            var sum = shiftedSum!
            switch precision {
            case .float64:
                var centered = [Double](repeating: 0, count: rows * w)
                for r in 0..<rows {
                    let base = r * w
                    for j in 0..<w { let v = Double(x[base + j]) - s[j]; centered[base + j] = v; sum[j] += v }
                }
                shiftedGram!.withUnsafeMutableBufferPointer { DoubleBLAS.addGram(centered, rows: rows, width: w, into: $0) }
            case .float32:
                // x − shift rounded to float32, the Gram's input; the shifted sum adds the same values.
                var centered = [Float](repeating: 0, count: rows * w)
                for r in 0..<rows {
                    let base = r * w
                    for j in 0..<w { let v = Float(Double(x[base + j]) - s[j]); centered[base + j] = v; sum[j] += Double(v) }
                }
                shiftedGram!.withUnsafeMutableBufferPointer { DoubleBLAS.addGram(centered, rows: rows, width: w, into: $0) }
            }
            shiftedSum = sum
        }
        count += rows
    }
}

/// The statistics of every observed site of every decoder layer (source layer numbering).
public struct ActivationStatistics: Sendable {
    public var layers: [[ActivationSite: SiteStatistics]]
    /// Rows (tokens) per site.
    public var rows: Int { layers.lazy.compactMap { $0.values.first?.count }.first ?? 0 }

    public init(layers: Int) { self.layers = Array(repeating: [:], count: layers) }

    public func site(_ layer: Int, _ site: ActivationSite) -> SiteStatistics? { layers[layer][site] }
}
