import CheckpointCore
import ModelArchitecture

/// Unit scores of one round, in the source's numbering. Units that were not ranked (outside the
/// layer ranges, or removed by an earlier step) hold NaN.
public struct UnitScores: Sendable, Equatable {
    /// Per source layer: one score per attention unit (query head for MHA and the GQA query
    /// policy, KV head for the kv-group policy), or empty when the layer's attention is not ranked.
    public var attention: [[Double]]
    /// Per source layer: one score per MLP channel, or empty.
    public var mlp: [[Double]]
    /// One score per hidden channel (`--strategy channel`), else empty.
    public var hidden: [Double] = []
    /// One score per layer (`--strategy layer` with `--remove-layers`), else empty.
    public var layers: [Double] = []

    public init(layers count: Int) {
        attention = Array(repeating: [], count: count)
        mlp = Array(repeating: [], count: count)
    }
}

/// Produces the scores of one round for the current plan. Implementations: ``MagnitudeImportance``,
/// ``RandomImportance``, ``TaylorImportance``.
public protocol ImportanceEstimator {
    /// Scores every unit the settings rank, given what `plan` keeps so far. `step` counts from 1.
    mutating func scores(plan: PruningPlan, settings: PruningSettings, step: Int) throws -> UnitScores
}

/// Which parameters take part in the scores and along which axis, and how a pruned-shape vector
/// maps back to source channels.
public enum MemberRole: Sendable, Equatable {
    /// Channels grouped by query head (q rows, o columns).
    case queryChannels(layer: Int, axis: ReductionAxis)
    /// Channels grouped by KV head (k and v rows).
    case keyValueChannels(layer: Int, axis: ReductionAxis)
    /// MLP channels (gate/up rows, down columns).
    case mlpChannels(layer: Int, axis: ReductionAxis)
    /// Hidden channels (`--strategy channel`).
    case hiddenChannels(axis: ReductionAxis)
    /// The whole parameter summed to one value (`--strategy layer`).
    case total(layer: Int)

    public var axis: ReductionAxis {
        switch self {
        case .queryChannels(_, let a), .keyValueChannels(_, let a), .mlpChannels(_, let a), .hiddenChannels(let a): a
        case .total: .rows
        }
    }

    /// The role of parameter `name` under `settings`, or nil when it does not enter any score: the
    /// axes of the family's layout (``TensorDeclaration``) that run along the pruned dimension.
    public static func of(_ name: String, settings s: PruningSettings, shape: ModelDescription) -> MemberRole? {
        guard let ref = shape.tensors.reference(of: name), ref.kind == .weight else { return nil }
        let d = shape.tensors.declaration(ref.role)
        switch s.strategy {
        case .layer:
            guard s.removeLayers != nil, let l = ref.layer else { return nil }
            return .total(layer: l)
        case .channel:
            if d.columns == .hidden { return .hiddenChannels(axis: .columns) }
            return d.rows.contains(.hidden) ? .hiddenChannels(axis: .rows) : nil
        case .block:
            guard let l = ref.layer else { return nil }
            let attn = s.attentionLayers?.contains(l) ?? false, mlp = s.mlpLayers?.contains(l) ?? false
            switch (d.rows, d.columns) {
            case ([.queryChannels], _) where attn: return .queryChannels(layer: l, axis: .rows)
            case (_, .queryChannels) where attn: return .queryChannels(layer: l, axis: .columns)
            case ([.keyValueChannels], _) where attn && s.gqa == .kvGroup: return .keyValueChannels(layer: l, axis: .rows)
            case ([.mlpChannels], _) where mlp: return .mlpChannels(layer: l, axis: .rows)
            case (_, .mlpChannels) where mlp: return .mlpChannels(layer: l, axis: .columns)
            default: return nil
            }
        }
    }
}

extension SalienceTable {
    /// Reduces `p` under `salience` along its role's axis and stores the vector in source numbering.
    /// - Throws: `shapeMismatch` when the parameter's shape does not match what `plan` keeps.
    public mutating func add(_ p: ParameterView, role: MemberRole, salience: ElementSalience, plan: PruningPlan) throws(CheckpointError) {
        let v = try salience.reduce(p, along: role.axis)
        let shape = plan.shape, d = shape.headDim
        func expand(_ kept: [Int], unit: Int, sourceUnits: Int) throws(CheckpointError) -> [Double] {
            guard v.count == kept.count * unit else {
                throw CheckpointError(.shapeMismatch, "has \(v.count) channels along the pruned axis; the plan keeps \(kept.count * unit)", tensor: p.name)
            }
            var out = [Double](repeating: 0, count: sourceUnits * unit)
            for (j, k) in kept.enumerated() { for t in 0..<unit { out[k * unit + t] = v[j * unit + t] } }
            return out
        }
        switch role {
        case .queryChannels(let l, _): vectors[p.name] = try expand(plan.layers[l].keptHeads, unit: d, sourceUnits: shape.attentionHeads)
        case .keyValueChannels(let l, _): vectors[p.name] = try expand(plan.layers[l].keptKeyValueHeads, unit: d, sourceUnits: shape.keyValueHeads)
        case .mlpChannels(let l, _): vectors[p.name] = try expand(plan.layers[l].keptChannels, unit: 1, sourceUnits: shape.intermediateSize)
        case .hiddenChannels: vectors[p.name] = try expand(plan.keptHidden, unit: 1, sourceUnits: shape.hiddenSize)
        case .total: vectors[p.name] = [v.reduce(0, +)]
        }
    }

    func vector(_ name: String) throws(CheckpointError) -> [Double] {
        guard let v = vectors[name] else { throw CheckpointError(.tensorNotFound, "no importance was computed for this parameter", tensor: name) }
        return v
    }

    /// Combines the stored member vectors into unit scores (llm-pruner.md §2.3, with the GQA fix:
    /// q/o channel `(h·n_rep + r)·d + t` counts for KV channel `h·d + t`).
    public func unitScores(plan: PruningPlan, settings s: PruningSettings) throws(CheckpointError) -> UnitScores {
        let shape = plan.shape, d = shape.headDim, red = s.effectiveReduction
        var out = UnitScores(layers: shape.layerCount)
        switch s.strategy {
        case .block:
            for l in 0..<shape.layerCount {
                if s.attentionLayers!.contains(l) {
                    let q = try vector(shape.name(.query, layer: l)), o = try vector(shape.name(.output, layer: l))
                    var scores: [Double]
                    if s.gqa == .query {
                        scores = sumConsecutive(red.combine([q, o]), size: d)
                    } else {
                        let k = try vector(shape.name(.key, layer: l)), v = try vector(shape.name(.value, layer: l))
                        let nRep = shape.queriesPerKeyValue
                        if nRep == 1 {
                            scores = sumConsecutive(red.combine([q, k, v, o]), size: d)
                        } else {
                            func fold(_ x: [Double]) -> [Double] {
                                var f = [Double](repeating: 0, count: shape.keyValueHeads * d)
                                for h in 0..<shape.keyValueHeads { for r in 0..<nRep { for t in 0..<d { f[h * d + t] += x[(h * nRep + r) * d + t] } } }
                                return f
                            }
                            scores = sumConsecutive(red.combine([k, fold(q), v, fold(o)]), size: d)
                        }
                    }
                    let kept = Set(s.gqa == .query ? plan.layers[l].keptHeads : plan.layers[l].keptKeyValueHeads)
                    for i in scores.indices where !kept.contains(i) { scores[i] = .nan }
                    out.attention[l] = scores
                }
                if s.mlpLayers!.contains(l) {
                    var scores = red.combine([try vector(shape.name(.gate, layer: l)), try vector(shape.name(.up, layer: l)), try vector(shape.name(.down, layer: l))])
                    let kept = Set(plan.layers[l].keptChannels)
                    for i in scores.indices where !kept.contains(i) { scores[i] = .nan }
                    out.mlp[l] = scores
                }
            }
        case .channel:
            var scores = red.combine(try channelMembers(shape).map { (n) throws(CheckpointError) in try vector(n) })
            let kept = Set(plan.keptHidden)
            for i in scores.indices where !kept.contains(i) { scores[i] = .nan }
            out.hidden = scores
        case .layer:
            out.layers = try (0..<shape.layerCount).map { (l) throws(CheckpointError) in
                try red.combine(layerMembers(l, shape).map { (n) throws(CheckpointError) in try vector(n) })[0]
            }
        }
        return out
    }

    /// The hidden-channel group's members, root (layer 0's input norm) first.
    func channelMembers(_ shape: ModelDescription) -> [String] {
        var names = [shape.name(.inputNorm, layer: 0), shape.name(.embedding)]
        for l in 0..<shape.layerCount {
            if l > 0 { names.append(shape.name(.inputNorm, layer: l)) }
            names += TensorRole.attentionProjections.map { shape.name($0, layer: l) }
            names.append(shape.name(.postAttentionNorm, layer: l))
            names += TensorRole.mlpProjections.map { shape.name($0, layer: l) }
        }
        names.append(shape.name(.finalNorm))
        if !shape.tieWordEmbeddings { names.append(shape.name(.lmHead)) }
        return names
    }

    /// A layer's members for layer ranking, the query projection first: the projections, the two
    /// norms, then any other weight the family declares per layer (Qwen3's q/k norms).
    func layerMembers(_ l: Int, _ shape: ModelDescription) -> [String] {
        let known = TensorRole.projections + TensorRole.layerNorms
        let others = shape.tensors.layer.map(\.role).filter { !known.contains($0) }
        return (known + others).map { shape.name($0, layer: l) }
    }
}
