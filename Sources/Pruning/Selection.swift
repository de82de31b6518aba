import CheckpointCore

/// Turns one round's scores into a new plan: the lowest-scoring units go (ascending sort; ties
/// broken by the lower index), in the counts of ``UnitCounts``.
public enum Selection {
    /// Applies round `step` of `settings.iterativeSteps`, whose target ratio is `ratio·step/steps`
    /// of the *initial* widths (upstream's linear scheduler).
    public static func apply(_ scores: UnitScores, to plan: PruningPlan, settings s: PruningSettings, step: Int) throws(CheckpointError) -> PruningPlan {
        var plan = plan
        let shape = plan.shape, d = shape.headDim
        let ratio = s.ratio * Double(step) / Double(s.iterativeSteps)
        switch s.strategy {
        case .layer:
            let n = shape.layerCount
            if let k = s.keepLayers {
                plan.keptLayers = Array(0..<k)
            } else if let r = s.removeLayers {
                plan.layerScores = scores.layers
                plan.keptLayers = lowest(scores.layers, among: Array(0..<n), count: r).kept
            }
        case .channel:
            let n = UnitCounts.hiddenChannelsToRemove(initial: shape.hiddenSize, current: plan.keptHidden.count, ratio: ratio,
                                                      multipleOf: shape.attentionHeads)
            plan.keptHidden = lowest(scores.hidden, among: plan.keptHidden, count: n).kept
            plan.hiddenScores = merge(plan.hiddenScores, scores.hidden)
        case .block:
            var attentionCounts = [Int](repeating: 0, count: shape.layerCount)
            var mlpCounts = [Int](repeating: 0, count: shape.layerCount)
            let query = s.gqa == .query
            for l in 0..<shape.layerCount {
                let layer = plan.layers[l]
                if s.attentionLayers!.contains(l) {
                    if query {
                        let perGroup = layer.keptHeads.count / shape.keyValueHeads
                        attentionCounts[l] = UnitCounts.queryHeadsToRemovePerGroup(initialHeads: shape.attentionHeads, keyValueHeads: shape.keyValueHeads, headDim: d,
                                                                                   currentPerGroup: perGroup, ratio: ratio) * shape.keyValueHeads
                    } else {
                        // The root (q for MHA, k for GQA) decides: its channels in head_dim units.
                        attentionCounts[l] = UnitCounts.unitsToRemove(initialUnits: shape.keyValueHeads, currentUnits: layer.keptKeyValueHeads.count,
                                                                      unitSize: d, ratio: ratio)
                    }
                }
                if s.mlpLayers!.contains(l) {
                    mlpCounts[l] = UnitCounts.mlpChannelsToRemove(initial: shape.intermediateSize, current: layer.keptChannels.count, ratio: ratio, roundTo: s.roundTo)
                }
            }
            if s.scope != .local {
                (attentionCounts, mlpCounts) = globalCounts(scores, plan: plan, settings: s, ratio: ratio)
            } else if s.allocation == .adaptive {
                (attentionCounts, mlpCounts) = adaptiveCounts(scores, plan: plan, settings: s, ratio: ratio)
            }
            for l in 0..<shape.layerCount {
                if !scores.attention[l].isEmpty {
                    plan.layers[l].attentionScores = merge(plan.layers[l].attentionScores, scores.attention[l])
                    if query {
                        let perGroup = plan.layers[l].keptHeads.count / shape.keyValueHeads
                        let remove = attentionCounts[l] / shape.keyValueHeads
                        var kept: [Int] = []
                        for g in 0..<shape.keyValueHeads {
                            let members = plan.layers[l].keptHeads[(g * perGroup)..<((g + 1) * perGroup)]
                            kept += lowest(scores.attention[l], among: Array(members), count: remove).kept
                        }
                        plan.layers[l].keptHeads = kept.sorted()
                    } else {
                        let keptKV = lowest(scores.attention[l], among: plan.layers[l].keptKeyValueHeads, count: attentionCounts[l]).kept
                        let nRep = shape.queriesPerKeyValue
                        plan.layers[l].keptKeyValueHeads = keptKV
                        plan.layers[l].keptHeads = keptKV.flatMap { h in (h * nRep)..<((h + 1) * nRep) }
                    }
                }
                if !scores.mlp[l].isEmpty {
                    plan.layers[l].mlpScores = merge(plan.layers[l].mlpScores, scores.mlp[l])
                    plan.layers[l].keptChannels = lowest(scores.mlp[l], among: plan.layers[l].keptChannels, count: mlpCounts[l]).kept
                }
            }
        }
        plan.validate()
        return plan
    }

    /// Removes the `count` lowest-scoring of `candidates` (ties: lower index first).
    static func lowest(_ scores: [Double], among candidates: [Int], count: Int) -> (kept: [Int], removed: [Int]) {
        let order = candidates.sorted { a, b in scores[a] != scores[b] ? scores[a] < scores[b] : a < b }
        let removed = Set(order.prefix(max(0, min(count, candidates.count))))
        return (candidates.filter { !removed.contains($0) }, removed.sorted())
    }

    /// Keeps earlier scores of units this round did not score (removed earlier), else the new score.
    static func merge(_ old: [Double], _ new: [Double]) -> [Double] {
        guard old.count == new.count else { return new }
        return zip(old, new).map { $1.isNaN ? $0 : $1 }
    }

    /// Global ranking (upstream's `--global_pruning`, llm-pruner.md §3.2): all attention units and
    /// MLP channels of the ranked layers in one list; `n = len − int(initial·(1 − ratio))`; every
    /// unit scoring at or below the n-th smallest goes. `global` first divides each score by the
    /// mean score of its kind (attention unit or MLP channel) over all ranked layers. Per layer at
    /// least one unit stays, `--round-to` rounds the MLP widths up, and under the GQA query policy
    /// each layer's head count is rounded down to a multiple of the KV heads.
    static func globalCounts(_ scores: UnitScores, plan: PruningPlan, settings s: PruningSettings, ratio: Double) -> ([Int], [Int]) {
        let shape = plan.shape
        var attention = [Int](repeating: 0, count: shape.layerCount), mlp = attention
        func mean(_ lists: [[Double]]) -> Double {
            let v = lists.flatMap { $0 }.filter { !$0.isNaN }
            return v.isEmpty ? 1 : v.reduce(0, +) / Double(v.count)
        }
        let aScale = s.scope == .global ? mean(scores.attention) : 1, mScale = s.scope == .global ? mean(scores.mlp) : 1
        var all: [(score: Double, layer: Int, isAttention: Bool)] = []
        var initial = 0
        for l in 0..<shape.layerCount {
            if !scores.attention[l].isEmpty {
                for x in scores.attention[l] where !x.isNaN { all.append((x / (aScale == 0 ? 1 : aScale), l, true)) }
                initial += scores.attention[l].count
            }
            if !scores.mlp[l].isEmpty {
                for x in scores.mlp[l] where !x.isNaN { all.append((x / (mScale == 0 ? 1 : mScale), l, false)) }
                initial += scores.mlp[l].count
            }
        }
        let n = max(0, all.count - Int((Double(initial) * (1.0 - ratio)).rounded(.towardZero)))
        guard n > 0, !all.isEmpty else { return (attention, mlp) }
        let threshold = all.map(\.score).sorted()[min(n, all.count) - 1]
        for u in all where u.score <= threshold {
            if u.isAttention { attention[u.layer] += 1 } else { mlp[u.layer] += 1 }
        }
        for l in 0..<shape.layerCount {
            let layer = plan.layers[l]
            if s.gqa == .query {
                let perGroup = layer.keptHeads.count / shape.keyValueHeads
                attention[l] = min(attention[l] / shape.keyValueHeads, perGroup - 1) * shape.keyValueHeads
            } else {
                attention[l] = min(attention[l], layer.keptKeyValueHeads.count - 1)
            }
            let current = layer.keptChannels.count
            var m = min(mlp[l], current - 1)
            if let r = s.roundTo, r > 1, m > 0 {
                let kept = min(current, ((current - m + r - 1) / r) * r)
                m = current - kept
            }
            mlp[l] = max(0, m)
        }
        return (attention, mlp)
    }

    /// Adaptive allocation (formats/recovery.md §4): per-layer z-scores pooled across layers with
    /// parameter costs; the cheapest (lowest z) units go until the parameter count the uniform
    /// counts would remove is reached. Returns counts in the form of ``apply``'s local counts
    /// (query heads for the query policy, KV groups or MHA heads otherwise; MLP channels).
    static func adaptiveCounts(_ scores: UnitScores, plan: PruningPlan, settings s: PruningSettings, ratio: Double) -> ([Int], [Int]) {
        let shape = plan.shape, h = shape.hiddenSize, d = shape.headDim
        let g = shape.keyValueHeads, nRep = shape.queriesPerKeyValue, heads = shape.attentionHeads
        let query = s.gqa == .query && shape.isGroupedQuery
        let mlpCost = 3 * h
        let attentionCost = query ? g * 2 * h * d : (nRep == 1 ? 4 * h * d : (2 * nRep + 2) * h * d)
        var attention = [Int](repeating: 0, count: shape.layerCount), mlp = attention

        // The target: what uniform counts would remove from the initial widths, minus what is gone.
        var target = 0
        for l in 0..<shape.layerCount {
            let layer = plan.layers[l]
            if !scores.attention[l].isEmpty {
                if query {
                    let initial = UnitCounts.queryHeadsToRemovePerGroup(initialHeads: heads, keyValueHeads: g, headDim: d, currentPerGroup: heads / g, ratio: ratio)
                    target += (initial - (heads - layer.keptHeads.count) / g) * attentionCost
                } else {
                    let initial = UnitCounts.unitsToRemove(initialUnits: g, currentUnits: g, unitSize: d, ratio: ratio)
                    target += (initial - (g - layer.keptKeyValueHeads.count)) * attentionCost
                }
            }
            if !scores.mlp[l].isEmpty {
                let initial = UnitCounts.mlpChannelsToRemove(initial: shape.intermediateSize, current: shape.intermediateSize, ratio: ratio, roundTo: s.roundTo)
                target += (initial - (shape.intermediateSize - layer.keptChannels.count)) * mlpCost
            }
        }
        guard target > 0 else { return (attention, mlp) }

        func zScores(_ v: [Double]) -> [Double] {
            guard v.count > 1 else { return v.map { _ in 0 } }
            let mean = v.reduce(0, +) / Double(v.count)
            let std = (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)).squareRoot()
            return std > 0 && std.isFinite ? v.map { ($0 - mean) / std } : v.map { _ in 0 }
        }
        struct Candidate { var z: Double; var layer: Int; var isAttention: Bool; var rank: Int }
        var candidates: [Candidate] = []
        var units = [Int](repeating: 0, count: shape.layerCount), channels = units
        for l in 0..<shape.layerCount {
            let layer = plan.layers[l]
            if !scores.attention[l].isEmpty {
                let a = scores.attention[l]
                if query {
                    let perGroup = layer.keptHeads.count / g
                    let z = zScores(layer.keptHeads.map { a[$0] })
                    var zOf: [Int: Double] = [:]
                    for (k, q) in layer.keptHeads.enumerated() { zOf[q] = z[k] }
                    let groups = (0..<g).map { grp in
                        layer.keptHeads[(grp * perGroup)..<((grp + 1) * perGroup)].sorted { a[$0] != a[$1] ? a[$0] < a[$1] : $0 < $1 }
                    }
                    for k in 0..<perGroup {
                        let mean = groups.reduce(0.0) { $0 + zOf[$1[k]]! } / Double(g)
                        candidates.append(Candidate(z: mean, layer: l, isAttention: true, rank: k))
                    }
                    units[l] = perGroup
                } else {
                    let kept = layer.keptKeyValueHeads
                    let z = zScores(kept.map { a[$0] })
                    let order = kept.indices.sorted { a[kept[$0]] != a[kept[$1]] ? a[kept[$0]] < a[kept[$1]] : kept[$0] < kept[$1] }
                    for (rank, i) in order.enumerated() { candidates.append(Candidate(z: z[i], layer: l, isAttention: true, rank: rank)) }
                    units[l] = kept.count
                }
            }
            if !scores.mlp[l].isEmpty {
                let m = scores.mlp[l], kept = layer.keptChannels
                let z = zScores(kept.map { m[$0] })
                let order = kept.indices.sorted { m[kept[$0]] != m[kept[$1]] ? m[kept[$0]] < m[kept[$1]] : kept[$0] < kept[$1] }
                for (rank, i) in order.enumerated() { candidates.append(Candidate(z: z[i], layer: l, isAttention: false, rank: rank)) }
                channels[l] = kept.count
            }
        }
        candidates.sort { a, b in
            if a.z != b.z { return a.z < b.z }
            if a.layer != b.layer { return a.layer < b.layer }
            if a.isAttention != b.isAttention { return a.isAttention }
            return a.rank < b.rank
        }
        var removed = 0
        for c in candidates {
            let cost = c.isAttention ? attentionCost : mlpCost
            if removed + cost > target { continue }
            if c.isAttention {
                guard attention[c.layer] + 1 < units[c.layer] else { continue }
                attention[c.layer] += 1
            } else {
                guard mlp[c.layer] + 1 < channels[c.layer] else { continue }
                mlp[c.layer] += 1
            }
            removed += cost
        }
        for l in 0..<shape.layerCount {
            if query { attention[l] *= g }
            if let r = s.roundTo, r > 1, mlp[l] > 0 {
                let current = channels[l]
                let kept = min(current, ((current - mlp[l] + r - 1) / r) * r)
                mlp[l] = current - kept
            }
        }
        return (attention, mlp)
    }
}
