import CheckpointCore
import ModelArchitecture

/// Runs the rounds of a pruning: score with an estimator, select, repeat for each iterative step.
public enum Pruner {
    /// The plan for `settings` (already ``PruningSettings/resolved(for:)``) on a model of `shape`.
    /// - Parameter onStep: called after each round with the step number and the plan so far.
    public static func plan<E: ImportanceEstimator>(shape: ModelDescription, settings: PruningSettings, estimator: inout E,
                                                    onStep: ((Int, PruningPlan) -> Void)? = nil) throws -> PruningPlan {
        var plan = PruningPlan(unpruned: shape)
        if settings.strategy == .layer && settings.keepLayers != nil {
            plan = try Selection.apply(UnitScores(layers: shape.layerCount), to: plan, settings: settings, step: 1)
            onStep?(1, plan)
            return plan
        }
        for step in 1...settings.iterativeSteps {
            let scores = try estimator.scores(plan: plan, settings: settings, step: step)
            plan = try Selection.apply(scores, to: plan, settings: settings, step: step)
            onStep?(step, plan)
        }
        return plan
    }
}
