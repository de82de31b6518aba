import CheckpointCore
import ModelArchitecture
import Testing
@testable import Pruning

/// A gradient source whose "gradient" is the weight itself (and Fisher sum W²), read from the
/// folder it is given: Taylor param_first then equals l2 with sum reduction, which checks that
/// gradients of a partially pruned model map back to the source's numbering.
struct WeightAsGradient: GradientSource {
    func computeGradients(model modelFolder: String, batch: [[Int32]], fisher: Bool, consumer: (ParameterView) throws -> Void) throws -> Double {
        let c = try Checkpoint.open(modelFolder)
        for name in c.tensorNames {
            let info = c.info(named: name)!
            let w = try c.tensor(named: name).floats()
            let (rows, cols) = info.shape.count == 1 ? (1, info.shape[0]) : (info.shape[0], info.shape[1])
            let f = w.map { $0 * $0 }
            try w.withUnsafeBufferPointer { wb in
                try f.withUnsafeBufferPointer { fb in
                    try consumer(try ParameterView(layer: LlamaFamily.tensorNames.layerIndex(of: name)?.layer, name: name, rows: rows, cols: cols,
                                                   weight: wb, gradient: wb, fisherSum: fisher ? fb : nil, samples: 1))
                }
            }
        }
        return 0
    }
}

@Suite(.serialized) struct IterativeTests {
    @Test(arguments: ["tiny-gqa", "tiny-mha"], [PruningStrategy.block, .channel])
    func taylorThroughPrunedModelsEqualsMagnitude(_ name: String, _ strategy: PruningStrategy) throws {
        let model = try GoldenModel(name)
        let config = try ModelConfiguration(path: model.folder + "/config.json")
        var s = PruningSettings()
        s.strategy = strategy
        s.ratio = 0.5
        s.iterativeSteps = 3
        s.reduction = .sum
        s.importance = .l2
        s = try s.resolved(for: model.shape)
        var magnitude = MagnitudeImportance(power: 2, checkpoint: model.checkpoint)
        let expected = try Pruner.plan(shape: model.shape, settings: s, estimator: &magnitude)

        s.importance = .taylor
        let scratch = temporaryFolder("iter-\(name)-\(strategy)")
        var steps = 0
        let checkpoint = model.checkpoint, folder = model.folder, shape = model.shape
        var taylor = TaylorImportance(variant: .paramFirst, source: WeightAsGradient(), batch: { _ in [] }, materialize: { plan in
            steps += 1
            if plan == PruningPlan(unpruned: shape) { return MaterializedModel(path: folder, store: checkpoint) }
            try PrunedFolder.write(checkpoint, configuration: config, plan: plan, to: scratch, companionFolder: folder)
            return MaterializedModel(path: scratch, store: try Checkpoint.open(scratch))
        })
        let got = try Pruner.plan(shape: model.shape, settings: s, estimator: &taylor)
        #expect(steps == 3)
        #expect(got.layers.map(\.keptHeads) == expected.layers.map(\.keptHeads))
        #expect(got.layers.map(\.keptChannels) == expected.layers.map(\.keptChannels))
        #expect(got.keptHidden == expected.keptHidden)
        #expect(got.resultParameters < got.sourceParameters)
    }

    @Test func iterativeReachesTheOneShotCounts() throws {
        let model = try GoldenModel("tiny-gqa")
        for gqa in GQAPolicy.allCases {
            var s = PruningSettings()
            s.importance = .random
            s.gqa = gqa
            s.ratio = 0.5
            s = try s.resolved(for: model.shape)
            var r1 = RandomImportance(seed: 1)
            let one = try Pruner.plan(shape: model.shape, settings: s, estimator: &r1)
            s.iterativeSteps = 4
            var r4 = RandomImportance(seed: 1)
            let four = try Pruner.plan(shape: model.shape, settings: s, estimator: &r4)
            #expect(one.outputWidths == four.outputWidths, "\(gqa)")
        }
    }
}

