import CheckpointCore
import ModelArchitecture
import ShearsBLAS

#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Retraining-free recovery of a pruned projection's output (formats/recovery.md §5).
public enum Recovery {
    /// The refit of one projection: kept columns `[rows, kept]` and bias `[rows]`, row-major.
    public struct Refit: Sendable, Equatable {
        public var weight: [Double]
        public var bias: [Double]
        public var rows: Int
        public var cols: Int
    }

    /// Output rows per block of the least-squares solve: all `rows` when `memory` (bytes for a
    /// block's `W_P` rows and right-hand sides, `(removed + kept)` Float64 per row) is nil or holds
    /// them; at least one.
    public static func solveBlockRows(rows: Int, removed: Int, kept: Int, memory: Int?) -> Int {
        guard let memory else { return max(rows, 1) }
        let perRow = max(1, (removed + kept) * MemoryLayout<Double>.stride)
        return max(1, min(rows, memory / perRow))
    }

    /// Recovers projection `weight` (`[rows, cols]`, row-major, float64) whose input channels
    /// outside `kept` are removed, from the statistics of its input.
    /// - Parameter solveMemory: bytes the least-squares solve may use per block of output rows
    ///   besides the kept covariance (nil: one block); see ``solveBlockRows(rows:removed:kept:memory:)``.
    /// - Throws: `invalidArgument` when the kept inputs' covariance is singular (zero damping) or
    ///   the covariance was not accumulated.
    public static func refit(_ method: RecoveryMethod, weight w: [Double], rows h: Int, cols n: Int, bias b0: [Double]?,
                             kept: [Int], statistics st: SiteStatistics, damping: Double?, what: String,
                             solveMemory: Int? = nil) throws(CheckpointError) -> Refit {
        precondition(w.count == h * n && st.width == n && (b0 == nil || b0!.count == h), "Recovery.refit: sizes")
        var isKept = [Bool](repeating: false, count: n)
        for k in kept { isKept[k] = true }
        let removed = (0..<n).filter { !isKept[$0] }
        let k = kept.count
        var wk = [Double](repeating: 0, count: h * k)
        for i in 0..<h { for (j, c) in kept.enumerated() { wk[i * k + j] = w[i * n + c] } }
        var bias = b0 ?? [Double](repeating: 0, count: h)
        let mu = st.mean
        switch method {
        case .none:
            return Refit(weight: wk, bias: bias, rows: h, cols: k)
        case .bias:
            for i in 0..<h {
                var s = 0.0
                for c in removed { s += w[i * n + c] * mu[c] }
                bias[i] += s
            }
            return Refit(weight: wk, bias: bias, rows: h, cols: k)
        case .ls, .anchoredLS:
            guard let cov = st.covarianceView else {
                throw CheckpointError(.invalidArgument, "\(what): the input covariance was not accumulated")
            }
            var trace = 0.0
            for c in kept { trace += cov[c, c] }
            let lambda = (damping ?? 0) * (k > 0 ? trace / Double(k) : 0)
            // R = W·C[:, K] (ls) or W_P·C[P, K] (anchored-ls), [h, k], in blocks of output rows;
            // each block's rows are the right-hand sides of A·Xᵀ = Rᵀ (A symmetric): X = R·A⁻¹.
            let rowsUsed = method == .ls ? Array(0..<n) : removed
            var out: [Double]
            if method == .ls { out = [Double](repeating: 0, count: h * k) } else { out = wk; wk = [] }  // no second copy of W_K
            let block = Self.solveBlockRows(rows: h, removed: rowsUsed.count, kept: k, memory: solveMemory)
            // anchored-ls on float32 covariances solves its correction in float32 and the rows it
            // could not (the kept covariance not positive definite in float32, a non-finite
            // block) in float64; ls, whose solution is the whole weight, always in float64
            // (formats/recovery.md §5).
            let solved = method == .anchoredLS && st.precision == .float32
                ? Self.addSolutionFloat32(weight: w, cols: n, rows: h, kept: kept, rowsUsed: rowsUsed, cov: cov, lambda: lambda, block: block, into: &out)
                : 0
            if solved < h {
                try Self.addSolutionFloat64(weight: w, cols: n, rows: h, kept: kept, rowsUsed: rowsUsed, cov: cov, lambda: lambda,
                                            block: block, fromRow: solved, into: &out, damping: damping, what: what)
            }
            // b' = b0 + W·μ − W'·μ_K
            for i in 0..<h {
                var s = 0.0
                for c in 0..<n { s += w[i * n + c] * mu[c] }
                for (j, c) in kept.enumerated() { s -= out[i * k + j] * mu[c] }
                bias[i] += s
            }
            return Refit(weight: out, bias: bias, rows: h, cols: k)
        }
    }
}

extension Recovery {
    /// Adds the rows `fromRow…` of `X = W[:, rowsUsed]·C[rowsUsed, K]·(C[K, K] + λI)⁻¹` to `out`
    /// (`[h, kept]`), in float64, in blocks of `block` output rows.
    static func addSolutionFloat64(weight w: [Double], cols n: Int, rows h: Int, kept: [Int], rowsUsed: [Int],
                                   cov: SiteStatistics.CovarianceView, lambda: Double, block: Int, fromRow: Int = 0,
                                   into out: inout [Double], damping: Double?, what: String) throws(CheckpointError) {
        let k = kept.count, m = rowsUsed.count
        var a: [Double] = gather(cov, rows: kept, cols: kept, diagonal: lambda)
        guard DoubleBLAS.choleskyFactor(&a, n: k) else {
            throw CheckpointError(.invalidArgument, "\(what): the covariance of the kept inputs is not positive definite; use a positive --damping (it is \(damping ?? 0))")
        }
        let csub: [Double] = gather(cov, rows: rowsUsed, cols: kept)
        for r0 in stride(from: fromRow, to: h, by: block) {
            let hb = min(block, h - r0)
            let wsub: [Double] = gather(w, cols: n, rows: r0..<(r0 + hb), columns: rowsUsed)
            var r = [Double](repeating: 0, count: hb * k)
            DoubleBLAS.gemm(m: hb, n: k, k: m, wsub, csub, &r)
            // Row-major R [hb, k] is column-major Rᵀ [k, hb]: the right-hand sides as LAPACK wants them.
            guard DoubleBLAS.choleskySolve(factored: a, n: k, columnMajor: &r, nrhs: hb) else {
                throw CheckpointError(.invalidArgument, "\(what): the Cholesky solve failed")
            }
            for i in 0..<hb { for j in 0..<k { out[(r0 + i) * k + j] += r[i * k + j] } }
        }
    }

    /// ``addSolutionFloat64(weight:cols:rows:kept:rowsUsed:cov:lambda:block:fromRow:into:damping:what:)``
    /// in float32 (`sgemm`, `spotrf`, `spotrs`; half the memory and twice the rate), block by block
    /// from row 0, stopping before the first block whose solution is not finite.
    /// - Returns: how many rows of `out` it added (0 when `C[K, K] + λI` is not positive definite
    ///   in float32); the rest is left to the float64 solve.
    static func addSolutionFloat32(weight w: [Double], cols n: Int, rows h: Int, kept: [Int], rowsUsed: [Int],
                                   cov: SiteStatistics.CovarianceView, lambda: Double, block: Int, into out: inout [Double]) -> Int {
        let k = kept.count, m = rowsUsed.count
        var a: [Float] = gather(cov, rows: kept, cols: kept, diagonal: lambda)
        guard BLAS.choleskyFactor(&a, n: k) else { return 0 }
        let csub: [Float] = gather(cov, rows: rowsUsed, cols: kept)
        for r0 in stride(from: 0, to: h, by: block) {
            let hb = min(block, h - r0)
            var r = BLAS.matmul(gather(w, cols: n, rows: r0..<(r0 + hb), columns: rowsUsed), csub, m: hb, n: k, k: m)
            guard BLAS.choleskySolve(factored: a, n: k, columnMajor: &r, nrhs: hb), r.allSatisfy(\.isFinite) else { return r0 }
            for i in 0..<hb { for j in 0..<k { out[(r0 + i) * k + j] += Double(r[i * k + j]) } }
        }
        return h
    }

    /// `C[rows, cols]` (row-major, converted to `T`), plus `diagonal` on its diagonal (for a square
    /// block with `rows == cols`); the value is added in float64, before the conversion.
    static func gather<T: BinaryFloatingPoint>(_ cov: SiteStatistics.CovarianceView, rows: [Int], cols: [Int], diagonal: Double = 0) -> [T] {
        var a = [T](repeating: 0, count: rows.count * cols.count)
        for (i, r) in rows.enumerated() {
            for (j, c) in cols.enumerated() { a[i * cols.count + j] = T(cov[r, c] + (i == j ? diagonal : 0)) }
        }
        return a
    }

    /// Columns `columns` of the rows `rows` of `w` (`[_, n]`, row-major), converted to `T`.
    static func gather<T: BinaryFloatingPoint>(_ w: [Double], cols n: Int, rows: Range<Int>, columns: [Int]) -> [T] {
        let m = columns.count
        var a = [T](repeating: 0, count: rows.count * m)
        for (i, row) in rows.enumerated() { for (j, c) in columns.enumerated() { a[i * m + j] = T(w[row * n + c]) } }
        return a
    }
}

/// What recovery wrote and what the output must add: the refit tensors (in scratch files, by
/// output name), all-zero biases that make `attention_bias`/`mlp_bias` configs complete, and the
/// names the manifest records.
public struct RecoveredTensors {
    /// Output name → the checkpoint (scratch file) holding its values under the same name.
    public var values: [String: Checkpoint] = [:]
    /// Tensors whose values recovery computed (changed weights and biases), output names.
    public var changed: [String] = []
    /// Bias tensors the source lacks (zero unless also in ``changed``), output names.
    public var added: [String] = []
    public var attentionBias = false
    public var mlpBias = false
    /// Where the statistics came from: `original` or `sequential`.
    public var statisticsSource = "original"

    public init() {}

    /// Completes ``added`` with the zero biases a config with `attention_bias` / `mlp_bias` needs.
    mutating func addCompatibilityBiases(_ source: any TensorStore, plan: PruningPlan) {
        var added = Set(self.added)
        for l in plan.keptLayers {
            var names: [String] = []
            if attentionBias { names += TensorRole.attentionProjections.map { plan.shape.name($0, .bias, layer: l) } }
            if mlpBias { names += TensorRole.mlpProjections.map { plan.shape.name($0, .bias, layer: l) } }
            for n in names where source.tensorInfo(named: n) == nil { added.insert(n) }
        }
        self.added = source.tensorNames.flatMap { name -> [String] in
            guard name.hasSuffix(".weight") else { return [] }
            let b = String(name.dropLast(".weight".count)) + ".bias"
            return added.contains(b) ? [b] : []
        }
    }
}

/// Runs the statistics pass and the refits, one decoder layer at a time (formats/recovery.md §2, §5).
public struct RecoveryRun {
    public let source: any TensorStore
    public let settings: PruningSettings
    /// Per-layer selection from the layer's own statistics (`--sequential` with an activation
    /// estimator): given the layer and its statistics, updates the plan.
    public var selectLayer: ((Int, ActivationStatistics, inout PruningPlan) throws -> Void)?
    public var progress: ((Int, Int) -> Void)?
    /// Bytes one layer's covariance accumulators may take in memory; a site whose accumulator
    /// (`width² × 8` bytes) would take the layer's total past it accumulates in a file of the
    /// scratch folder instead (``GramBuffer``). Default: no limit.
    public var covarianceMemory = Int.max
    /// Bytes per block of output rows of the least-squares solves (``Recovery/solveBlockRows(rows:removed:kept:memory:)``);
    /// nil: one block.
    public var solveMemory: Int? = nil

    /// Where the time went (seconds): the forward statistics pass, the selection and refits, the
    /// scratch files; and how many covariance accumulators were spilled.
    public struct Timing: Sendable {
        public var statistics = 0.0
        public var solves = 0.0
        public var scratch = 0.0
        public var spilledSites = 0
        public init() {}
    }

    public init(source: any TensorStore, settings: PruningSettings) {
        self.source = source
        self.settings = settings
    }

    /// Streams the calibration windows through the source model (`openStream`, called only when
    /// a pass is needed) layer by layer, refits the pruned projections of `plan` and writes them to
    /// one safetensors file per layer in `scratch`.
    /// - Parameter reuse: statistics already taken on the source model with the same windows; their
    ///   means suffice for `bias` without sequential statistics, and then no pass runs.
    public func run(plan: inout PruningPlan, openStream: () throws -> any ActivationStream, scratch: String,
                    reuse: ActivationStatistics? = nil) throws -> RecoveredTensors {
        var timing = Timing()
        return try run(plan: &plan, openStream: openStream, scratch: scratch, reuse: reuse, timing: &timing)
    }

    /// ``run(plan:openStream:scratch:reuse:)``, reporting where the time went.
    public func run(plan: inout PruningPlan, openStream: () throws -> any ActivationStream, scratch: String,
                    reuse: ActivationStatistics?, timing: inout Timing) throws -> RecoveredTensors {
        var clock = Self.now()
        func lap(_ into: inout Double) { let t = Self.now(); into += t - clock; clock = t }
        let s = settings, shape = plan.shape, d = shape.headDim
        var out = RecoveredTensors()
        out.statisticsSource = s.sequential ? "sequential" : "original"
        let method = s.recovery, cov = method.needsCovariance
        let precision = s.effectiveCovariancePrecision ?? .float64
        try FileSystem.createDirectory(scratch)
        let reused = !s.sequential && !cov && selectLayer == nil ? reuse : nil
        let stream = reused == nil ? try openStream() : nil
        for l in 0..<shape.layerCount {
            let inAttention = s.attentionLayers?.contains(l) ?? false, inMLP = s.mlpLayers?.contains(l) ?? false
            let selecting = selectLayer != nil
            var layerStats = ActivationStatistics(layers: shape.layerCount)
            var wanted: [ActivationSite: Bool] = [:]
            let attentionMayChange = selecting ? inAttention : plan.layers[l].keptHeads.count < shape.attentionHeads
            let mlpMayChange = selecting ? inMLP : plan.layers[l].keptChannels.count < shape.intermediateSize
            if attentionMayChange && (method != .none || selecting) { wanted[.attention] = cov }
            if mlpMayChange && (method != .none || selecting) { wanted[.mlp] = cov }
            if let reused {
                for site in wanted.keys { layerStats.layers[l][site] = reused.site(l, site) }
            } else if let stream {
                if wanted.isEmpty && !s.sequential {
                    // Nothing to observe here; later layers still need this one's output.
                    if (l + 1..<shape.layerCount).contains(where: { plan.layers[$0].keptHeads.count < shape.attentionHeads || plan.layers[$0].keptChannels.count < shape.intermediateSize || selecting }) {
                        try stream.observe(advance: true) { _, _, _ in }
                    }
                } else {
                    var inMemory = 0
                    try stream.observe(advance: !s.sequential) { site, values, rows in
                        guard let c = wanted[site] else { return }
                        if layerStats.layers[l][site] == nil {
                            let width = values.count / max(rows, 1)
                            let bytes = c ? SiteStatistics.covarianceBytes(width: width) : 0
                            if c && bytes > covarianceMemory - inMemory {
                                layerStats.layers[l][site] = try SiteStatistics(width: width, spillingCovarianceInto: scratch, precision: precision)
                                timing.spilledSites += 1
                            } else {
                                layerStats.layers[l][site] = SiteStatistics(width: width, covariance: c, precision: precision)
                                inMemory += bytes
                            }
                        }
                        layerStats.layers[l][site]!.add(values, rows: rows)
                    }
                }
            }
            lap(&timing.statistics)
            if let selectLayer, !wanted.isEmpty { try selectLayer(l, layerStats, &plan) }

            // Refits, written as this layer's scratch file.
            let layer = plan.layers[l]
            var replacements: [String: ProjectionReplacement] = [:]
            var specs: [TensorSpec] = [], data: [String: [Float]] = [:]
            for (site, proj, kept, width) in [(ActivationSite.attention, shape.name(.output, layer: l), layer.keptHeads.flatMap { ($0 * d)..<(($0 + 1) * d) }, shape.attentionHeads * d),
                                              (ActivationSite.mlp, shape.name(.down, layer: l), layer.keptChannels, shape.intermediateSize)] {
                guard kept.count < width else { continue }
                if method != .none && !shape.tensors.declaration(site == .attention ? .output : .down).mayHaveBias {
                    throw CheckpointError(.unsupportedConversion, "--recover \(method) writes a bias on the \(site == .attention ? "output" : "down") projection, which \(shape.family.modelType) models cannot have (transformers would ignore it); use --recover none, or leave the \(site == .attention ? "attention" : "MLP") unpruned", tensor: proj)
                }
                let biasName = String(proj.dropLast("weight".count)) + "bias"
                let wInfo = source.tensorInfo(named: proj)!
                let w = try source.tensorFloats(proj).map(Double.init)
                let h = wInfo.shape[0]
                let b0 = try source.tensorInfo(named: biasName).map { _ throws(CheckpointError) in try source.tensorFloats(biasName).map(Double.init) }
                var refit: Recovery.Refit
                if method == .none {
                    refit = try Recovery.refit(.none, weight: w, rows: h, cols: width, bias: b0, kept: kept,
                                               statistics: SiteStatistics(width: width, covariance: false), damping: nil, what: proj)
                } else {
                    guard let st = layerStats.site(l, site) else {
                        throw CheckpointError(.invalidArgument, "no \(site.rawValue) statistics for layer \(l)", tensor: proj)
                    }
                    refit = try Recovery.refit(method, weight: w, rows: h, cols: width, bias: b0, kept: kept, statistics: st,
                                               damping: s.effectiveDamping, what: "layer \(l) \(site == .attention ? "output" : "down") projection",
                                               solveMemory: solveMemory)
                    if method != .bias {
                        specs.append(TensorSpec(name: proj, dtype: .f32, shape: [h, kept.count]))
                        data[proj] = refit.weight.map(Float.init)
                        out.changed.append(proj)
                    }
                    specs.append(TensorSpec(name: biasName, dtype: .f32, shape: [h]))
                    data[biasName] = refit.bias.map(Float.init)
                    out.changed.append(biasName)
                    if b0 == nil { out.added.append(biasName) }
                    if site == .attention { out.attentionBias = true } else { out.mlpBias = true }
                }
                if s.sequential {
                    // The next layer sees what the written folder computes: values rounded to the stored dtype.
                    let dtype = wInfo.dtype
                    let weight = try Self.rounded(refit.weight.map(Float.init), to: dtype)
                    var full = [Float](repeating: 0, count: h * width)
                    for i in 0..<h { for (j, c) in kept.enumerated() { full[i * width + c] = weight[i * kept.count + j] } }
                    let hasBias = b0 != nil || method != .none
                    replacements[site.rawValue] = ProjectionReplacement(rows: h, cols: width, weight: full,
                                                                        bias: hasBias ? try Self.rounded(refit.bias.map(Float.init), to: dtype) : nil)
                }
            }
            lap(&timing.solves)
            if !specs.isEmpty {
                let path = FileSystem.join(scratch, "layer-\(l).safetensors")
                try SafetensorsWriter.write(path: path, tensors: specs) { spec throws(CheckpointError) in .floats(data[spec.name]!) }
                let c = try Checkpoint.open(path)
                for spec in specs { out.values[spec.name] = c }
            }
            lap(&timing.scratch)
            if s.sequential, let stream {
                try stream.advance(outputProjection: replacements[ActivationSite.attention.rawValue], downProjection: replacements[ActivationSite.mlp.rawValue])
            }
            progress?(l + 1, shape.layerCount)
        }
        if out.attentionBias || out.mlpBias { out.addCompatibilityBiases(source, plan: plan) }
        return out
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// `values` rounded to `dtype` and back (round to nearest even), as stored.
    static func rounded(_ values: [Float], to dtype: DType) throws(CheckpointError) -> [Float] {
        guard dtype != .f32, let size = dtype.byteSize else { return values }
        var bytes = [UInt8](repeating: 0, count: values.count * size)
        var out = [Float](repeating: 0, count: values.count)
        let r: Result<Void, CheckpointError> = values.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { dst in Result { () throws(CheckpointError) in try DTypeConversion.encode(src, as: dtype, into: dst) } }
        }
        try r.get()
        let r2: Result<Void, CheckpointError> = bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in Result { () throws(CheckpointError) in try DTypeConversion.decode(src, as: dtype, into: dst) } }
        }
        try r2.get()
        return out
    }
}
