import CheckpointCore
import ModelArchitecture
import ShearsJSON
import Testing
@testable import Pruning

/// Gradients recorded per step: step 1 on the source, step s > 1 on the model the reference pruned
/// physically (the files name their step).
final class SteppedRecordings: GradientSource {
    let steps: [RecordedGradientSource]
    private(set) var calls = 0
    init(_ steps: [RecordedGradientSource]) { self.steps = steps }
    func computeGradients(model modelFolder: String, batch: [[Int32]], fisher: Bool, consumer: (ParameterView) throws -> Void) throws -> Double {
        defer { calls += 1 }
        return try steps[calls].computeGradients(model: modelFolder, batch: batch, fisher: fisher, consumer: consumer)
    }
}

/// Keeps every round's scores.
struct RecordingEstimator<E: ImportanceEstimator>: ImportanceEstimator {
    var inner: E
    var rounds: [UnitScores] = []
    mutating func scores(plan: PruningPlan, settings: PruningSettings, step: Int) throws -> UnitScores {
        let s = try inner.scores(plan: plan, settings: settings, step: step)
        rounds.append(s)
        return s
    }
}

/// Iterative Taylor against the reference, which prunes its model physically between steps and
/// recomputes gradients (fresh batch, fresh Fisher sum) on it: Swift writes its own intermediate
/// folder, reads the reference's step-2 gradients against it, and must choose the same units.
@Suite(.serialized) struct IterativeGoldenTests {
    @Test(arguments: ["tiny-gqa", "tiny-mha"])
    func iterativeTaylorMatchesReference(_ name: String) throws {
        let model = try GoldenModel(name)
        let config = try ModelConfiguration(path: model.folder + "/config.json")
        let cases = try JSONValue.parse(try FileSystem.readFile(fixtures + "/pruning/\(name)/iterative.json")).arrayValue!
        #expect(!cases.isEmpty)
        for (n, c) in cases.enumerated() {
            var s = settings(importance: c["importance"]!.stringValue!, reduction: "sum", gqa: c["gqa"]!.stringValue!)
            s.ratio = c["ratio"]!.doubleValue!
            s.iterativeSteps = c["steps"]!.intValue!
            s = try s.resolved(for: model.shape)
            let steps = c["per_step"]!.arrayValue!
            var sources = [model.gradientSource]
            for st in steps.dropFirst() {
                let files = st["files"]!
                sources.append(RecordedGradientSource(
                    gradients: fixtures + "/pruning/\(name)/" + files["gradients"]!.stringValue!,
                    fisher: files["fisher"]!.stringValue.map { fixtures + "/pruning/\(name)/" + $0 }, samples: model.samples))
            }
            let scratch = temporaryFolder("iter-golden-\(name)-\(n)")
            let checkpoint = model.checkpoint, folder = model.folder, shape = model.shape
            let taylor = TaylorImportance(variant: s.taylor, source: SteppedRecordings(sources), batch: { _ in [] }, materialize: { plan in
                if plan == PruningPlan(unpruned: shape) { return MaterializedModel(path: folder, store: checkpoint) }
                try PrunedFolder.write(checkpoint, configuration: config, plan: plan, to: scratch, companionFolder: folder)
                return MaterializedModel(path: scratch, store: try Checkpoint.open(scratch))
            })
            var recording = RecordingEstimator(inner: taylor)
            var plans: [PruningPlan] = []
            _ = try Pruner.plan(shape: model.shape, settings: s, estimator: &recording) { _, p in plans.append(p) }
            #expect(plans.count == steps.count)
            for (i, st) in steps.enumerated() {
                let what = "\(name) \(c["importance"]!) \(c["gqa"]!) step \(i + 1)"
                for l in 0..<model.shape.layerCount {
                    if let ga = st["attention"]!["\(l)"] {
                        let got = recording.rounds[i].attention[l], want = ga.arrayValue!
                        #expect(got.count == want.count, "\(what) layer \(l)")
                        for (x, y) in zip(got, want) {
                            if y.isNull { #expect(x.isNaN, "\(what) layer \(l)") } else { #expect(close([x], [y.doubleValue!]), "\(what) attention layer \(l): \(x) vs \(y)") }
                        }
                    }
                    if let gm = st["mlp"]!["\(l)"] {
                        let got = recording.rounds[i].mlp[l], want = gm.arrayValue!
                        #expect(zip(got, want).allSatisfy { x, y in y.isNull ? x.isNaN : close([x], [y.doubleValue!]) }, "\(what) mlp layer \(l)")
                    }
                    let g = st["layers"]!["\(l)"]!
                    #expect(plans[i].layers[l].keptHeads == ints(g["heads"]), "\(what) heads layer \(l)")
                    #expect(plans[i].layers[l].keptKeyValueHeads == ints(g["kv_heads"]), "\(what) kv layer \(l)")
                    #expect(plans[i].layers[l].keptChannels == ints(g["channels"]), "\(what) channels layer \(l)")
                }
            }
        }
    }
}
