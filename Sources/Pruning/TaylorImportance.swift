import CheckpointCore

/// Taylor importance (llm-pruner.md §2.1–2.2) from a ``GradientSource``: each parameter that
/// enters a score is reduced to its per-channel vector the moment its gradient arrives.
///
/// Differences from upstream, on purpose: every step uses fresh gradients *and* a fresh Fisher
/// sum (upstream's `acc_grad` keeps accumulating across iterative steps), and GQA q/o scores are
/// summed over the query heads that belong to each KV head.
public struct TaylorImportance: ImportanceEstimator {
    public let variant: TaylorVariant
    let source: GradientSource
    /// The calibration batch of step `s` (from 1).
    let batch: (Int) throws -> [[Int32]]
    /// The folder of the model as `plan` leaves it (the source folder for an unpruned plan).
    let materialize: (PruningPlan) throws -> MaterializedModel
    /// The mean loss of each step's batch.
    public private(set) var losses: [Double] = []

    public init(variant: TaylorVariant, source: GradientSource, batch: @escaping (Int) throws -> [[Int32]],
                materialize: @escaping (PruningPlan) throws -> MaterializedModel) {
        self.variant = variant
        self.source = source
        self.batch = batch
        self.materialize = materialize
    }

    public mutating func scores(plan: PruningPlan, settings: PruningSettings, step: Int) throws -> UnitScores {
        let folder = try materialize(plan).path
        var table = SalienceTable()
        let salience = ElementSalience.taylor(variant)
        let shape = plan.shape
        let wanting = { (name: String) in MemberRole.of(name, settings: settings, shape: shape) != nil }
        let loss = try source.computeGradients(model: folder, batch: try batch(step), fisher: variant.needsFisher, wanting: wanting) { p in
            guard let role = MemberRole.of(p.name, settings: settings, shape: shape) else { return }
            try table.add(p, role: role, salience: salience, plan: plan)
        }
        losses.append(loss)
        return try table.unitScores(plan: plan, settings: settings)
    }
}
