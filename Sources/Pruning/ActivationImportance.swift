import CheckpointCore
import ModelArchitecture

/// `wanda-sp` and `wifv` (formats/recovery.md §3): unit scores from forward-only activation
/// statistics and the weights of the output / down projections (q/k/v and gate/up for hidden channels).
///
/// Each step streams its windows through the model pruned so far (step 1: the source) and maps the
/// pruned model's channels back to source indices. The statistics of the last step are kept in
/// ``statistics`` (recovery reuses step 1's means when it can).
public struct ActivationImportance: ImportanceEstimator {
    public let kind: ImportanceKind
    let source: any ActivationSource
    let windows: (Int) throws -> [[Int32]]
    let materialize: (PruningPlan) throws -> MaterializedModel
    public var progress: ((Int, Int) -> Void)?
    /// The statistics the last step used, and whether they were taken on the unpruned source.
    public private(set) var statistics: ActivationStatistics?
    public private(set) var statisticsAreOnSource = false

    /// - Parameters:
    ///   - windows: the statistics windows of step `s` (from 1).
    ///   - materialize: writes the model `plan` describes and returns it (the source for the
    ///     identity plan).
    public init(kind: ImportanceKind, source: any ActivationSource, windows: @escaping (Int) throws -> [[Int32]],
                materialize: @escaping (PruningPlan) throws -> MaterializedModel, progress: ((Int, Int) -> Void)? = nil) {
        precondition(kind.needsActivations, "an activation estimator")
        self.kind = kind
        self.source = source
        self.windows = windows
        self.materialize = materialize
        self.progress = progress
    }

    /// The sites a strategy's scores read.
    public static func sites(for s: PruningSettings) -> [ActivationSite] {
        s.strategy == .channel ? [.attentionIn, .mlpIn] : [.attention, .mlp]
    }

    public mutating func scores(plan: PruningPlan, settings s: PruningSettings, step: Int) throws -> UnitScores {
        let model = try materialize(plan)
        let stream = try source.stream(model: model.path, windows: try windows(step))
        let sites = Self.sites(for: s)
        let stats = try ActivationStatistics.collect(stream, sites: { _ in Dictionary(uniqueKeysWithValues: sites.map { ($0, false) }) },
                                                     progress: progress)
        statistics = stats
        statisticsAreOnSource = plan == PruningPlan(unpruned: plan.shape)
        return try Self.unitScores(kind: kind, statistics: stats, weights: model.store, plan: plan, settings: s)
    }

    /// Unit scores from `statistics` taken on the model `plan` describes, whose tensors are in `weights`.
    public static func unitScores(kind: ImportanceKind, statistics stats: ActivationStatistics, weights: any TensorStore,
                                  plan: PruningPlan, settings s: PruningSettings) throws -> UnitScores {
        let shape = plan.shape, d = shape.headDim
        var out = UnitScores(layers: shape.layerCount)
        // Output layer index of source layer l in the materialized model (layers are only removed by
        // --strategy layer, which scores once, on the source).
        func matrix(_ name: String) throws(CheckpointError) -> (values: [Float], rows: Int, cols: Int) {
            guard let info = weights.tensorInfo(named: name) else {
                throw CheckpointError(.tensorNotFound, "the model has no tensor of this name", path: weights.path, tensor: name)
            }
            let (r, c) = try matrixShape(info)
            return (try weights.tensorFloats(name), r, c)
        }
        func site(_ l: Int, _ site: ActivationSite) throws(CheckpointError) -> SiteStatistics {
            guard let st = stats.site(l, site) else { throw CheckpointError(.invalidArgument, "no \(site.rawValue) statistics for layer \(l)") }
            return st
        }
        /// Channel scores of a projection's input columns.
        func channelScores(_ w: (values: [Float], rows: Int, cols: Int), _ st: SiteStatistics, name: String) throws(CheckpointError) -> [Double] {
            guard st.width == w.cols else {
                throw CheckpointError(.shapeMismatch, "has \(w.cols) input channels; the statistics have \(st.width)", tensor: name)
            }
            var acc = [Double](repeating: 0, count: w.cols)
            for i in 0..<w.rows {
                let base = i * w.cols
                for j in 0..<w.cols {
                    let x = Double(w.values[base + j])
                    acc[j] += kind == .wandaSP ? abs(x) : x * x
                }
            }
            if kind == .wandaSP {
                return (0..<w.cols).map { j in st.sqnorm[j].squareRoot() * acc[j] / Double(w.rows) }
            }
            let v = st.variance
            return (0..<w.cols).map { j in v[j] * acc[j] }
        }
        func headScore(_ c: ArraySlice<Double>) -> Double {
            kind == .wandaSP ? c.reduce(0, +) : c.reduce(0) { $0 + $1 * $1 } / Double(c.count)
        }
        switch s.strategy {
        case .block:
            for l in 0..<shape.layerCount {
                let layer = plan.layers[l]
                if s.attentionLayers!.contains(l) {
                    let name = shape.name(.output, layer: l)
                    let c = try channelScores(try matrix(name), try site(l, .attention), name: name)
                    var heads = [Double](repeating: .nan, count: shape.attentionHeads)
                    for (k, q) in layer.keptHeads.enumerated() { heads[q] = headScore(c[(k * d)..<((k + 1) * d)]) }
                    if s.gqa == .query {
                        out.attention[l] = heads
                    } else {
                        let nRep = shape.queriesPerKeyValue
                        var groups = [Double](repeating: .nan, count: shape.keyValueHeads)
                        for g in layer.keptKeyValueHeads {
                            let members = heads[(g * nRep)..<((g + 1) * nRep)]
                            let total = members.reduce(0, +)
                            groups[g] = kind == .wandaSP ? total : total / Double(nRep)
                        }
                        out.attention[l] = groups
                    }
                }
                if s.mlpLayers!.contains(l) {
                    let name = shape.name(.down, layer: l)
                    let c = try channelScores(try matrix(name), try site(l, .mlp), name: name)
                    var v = [Double](repeating: .nan, count: shape.intermediateSize)
                    for (k, ch) in layer.keptChannels.enumerated() { v[ch] = c[k] }
                    out.mlp[l] = v
                }
            }
        case .channel:
            var total = [Double](repeating: 0, count: plan.keptHidden.count)
            for l in 0..<shape.layerCount {
                for (siteName, projections) in [(ActivationSite.attentionIn, [TensorRole.query, .key, .value].map { shape.name($0, layer: l) }),
                                                (ActivationSite.mlpIn, [TensorRole.gate, .up].map { shape.name($0, layer: l) })] {
                    let st = try site(l, siteName)
                    for name in projections {
                        let c = try channelScores(try matrix(name), st, name: name)
                        for j in total.indices { total[j] += c[j] }
                    }
                }
            }
            var v = [Double](repeating: .nan, count: shape.hiddenSize)
            for (k, ch) in plan.keptHidden.enumerated() { v[ch] = total[k] }
            out.hidden = v
        case .layer:
            out.layers = try (0..<shape.layerCount).map { (l) throws(CheckpointError) -> Double in
                let o = shape.name(.output, layer: l), down = shape.name(.down, layer: l)
                let a = try channelScores(try matrix(o), try site(l, .attention), name: o)
                let m = try channelScores(try matrix(down), try site(l, .mlp), name: down)
                return a.reduce(0, +) + m.reduce(0, +)
            }
        }
        return out
    }
}
