import CheckpointCore
import ModelArchitecture

/// `l1` / `l2`: Σ|W|^p per row or column (l2 is the *squared* norm), upstream's `MagnitudeImportance`.
///
/// Scores of the units a plan keeps do not change when other units are removed, so the member
/// vectors are computed once, from the source weights, one tensor at a time.
public struct MagnitudeImportance: ImportanceEstimator {
    public let power: Int
    let checkpoint: any TensorStore
    var table: SalienceTable? = nil
    /// Called after each tensor is reduced, with (done, total).
    public var progress: ((Int, Int) -> Void)?

    public init(power: Int, checkpoint: any TensorStore, progress: ((Int, Int) -> Void)? = nil) {
        precondition(power == 1 || power == 2, "l1 or l2")
        self.power = power
        self.checkpoint = checkpoint
        self.progress = progress
    }

    public mutating func scores(plan: PruningPlan, settings: PruningSettings, step: Int) throws -> UnitScores {
        if table == nil { table = try Self.table(checkpoint, salience: .magnitude(power), settings: settings, shape: plan.shape, progress: progress) }
        return try table!.unitScores(plan: plan, settings: settings)
    }

    /// Reduces every scored parameter of `checkpoint` (its full, unpruned shape).
    static func table(_ checkpoint: any TensorStore, salience: ElementSalience, settings: PruningSettings, shape: ModelDescription,
                      progress: ((Int, Int) -> Void)?) throws(CheckpointError) -> SalienceTable {
        let identity = PruningPlan(unpruned: shape)
        var table = SalienceTable()
        let names = checkpoint.tensorNames.filter { MemberRole.of($0, settings: settings, shape: shape) != nil }
        for (i, name) in names.enumerated() {
            let role = MemberRole.of(name, settings: settings, shape: shape)!
            let (rows, cols) = try matrixShape(checkpoint.tensorInfo(named: name)!)
            let w = try checkpoint.tensorFloats(name)
            let r: Result<Void, CheckpointError> = w.withUnsafeBufferPointer { buf in
                Result { () throws(CheckpointError) in
                    let p = try ParameterView(layer: shape.tensors.layerIndex(of: name)?.layer, name: name, rows: rows, cols: cols, weight: buf)
                    try table.add(p, role: role, salience: salience, plan: identity)
                }
            }
            try r.get()
            progress?(i + 1, names.count)
        }
        return table
    }
}

/// A tensor's shape as a matrix: `[rows, cols]`, vectors as `[1, n]`.
func matrixShape(_ info: TensorInfo) throws(CheckpointError) -> (Int, Int) {
    switch info.shape.count {
    case 1: return (1, info.shape[0])
    case 2: return (info.shape[0], info.shape[1])
    default: throw CheckpointError(.shapeMismatch, "expected a matrix or a vector, found shape \(info.shape)", tensor: info.name)
    }
}

/// `random`: one uniform number per root channel, as upstream's `RandomImportance` (a head's score
/// sums its head_dim numbers). Drawn from ``SplitMix64`` seeded with `--seed`, layer by layer in
/// ascending order: first the attention root channels of the kept units (q for MHA and the query
/// policy, k for kv-group), then the kept MLP channels; hidden channels for `--strategy channel`,
/// one number per layer for `--strategy layer`. Iterative steps continue the same stream.
public struct RandomImportance: ImportanceEstimator {
    var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func scores(plan: PruningPlan, settings s: PruningSettings, step: Int) throws -> UnitScores {
        let shape = plan.shape, d = shape.headDim
        var out = UnitScores(layers: shape.layerCount)
        switch s.strategy {
        case .block:
            for l in 0..<shape.layerCount {
                if s.attentionLayers!.contains(l) {
                    let query = s.gqa == .query
                    var v = [Double](repeating: .nan, count: query ? shape.attentionHeads : shape.keyValueHeads)
                    for u in query ? plan.layers[l].keptHeads : plan.layers[l].keptKeyValueHeads {
                        var total = 0.0
                        for _ in 0..<d { total += generator.uniform() }
                        v[u] = total
                    }
                    out.attention[l] = v
                }
                if s.mlpLayers!.contains(l) {
                    var v = [Double](repeating: .nan, count: shape.intermediateSize)
                    for c in plan.layers[l].keptChannels { v[c] = generator.uniform() }
                    out.mlp[l] = v
                }
            }
        case .channel:
            var v = [Double](repeating: .nan, count: shape.hiddenSize)
            for c in plan.keptHidden { v[c] = generator.uniform() }
            out.hidden = v
        case .layer:
            out.layers = (0..<shape.layerCount).map { _ in generator.uniform() }
        }
        return out
    }
}
