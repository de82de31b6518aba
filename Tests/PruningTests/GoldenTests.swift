import CheckpointCore
import ModelArchitecture
import Crypto
import ShearsJSON
import Testing
@testable import Pruning

/// Scores and selections against the PyTorch reference (Tools/pruning/reference.py).
@Suite(.serialized) struct GoldenTests {
    @Test(arguments: GoldenModel.names)
    func blockScoresAndSelections(_ name: String) throws {
        let model = try GoldenModel(name)
        var scoreCache: [String: UnitScores] = [:]
        var checkedScores = 0
        for entry in model.goldens["scores"]!.arrayValue! {
            var s = settings(importance: entry["importance"]!.stringValue!, reduction: entry["reduction"]!.stringValue!,
                             gqa: entry["gqa"]!.stringValue!)
            s.attentionLayers = range(entry["attention_layers"])
            s.mlpLayers = range(entry["mlp_layers"])
            s = try s.resolved(for: model.shape)
            let scores = try model.scores(s)
            let key = [entry["importance"]!.stringValue!, entry["reduction"]!.stringValue!, entry["gqa"]!.stringValue!,
                       s.attentionLayers!.description, s.mlpLayers!.description].joined(separator: "/")
            scoreCache[key] = scores
            for l in 0..<model.shape.layerCount {
                let ga = entry["attention"]!["\(l)"], gm = entry["mlp"]!["\(l)"]
                #expect(scores.attention[l].isEmpty == (ga == nil), "\(key) layer \(l)")
                #expect(scores.mlp[l].isEmpty == (gm == nil), "\(key) layer \(l)")
                if let ga { #expect(close(scores.attention[l], doubles(ga)), "\(key) attention layer \(l): \(scores.attention[l]) vs \(doubles(ga))") }
                if let gm { #expect(close(scores.mlp[l], doubles(gm)), "\(key) mlp layer \(l)") }
            }
            checkedScores += 1
        }
        #expect(checkedScores >= 30)
        var checkedSelections = 0
        for sel in model.goldens["selections"]!.arrayValue! {
            var s = settings(importance: sel["importance"]!.stringValue!, reduction: sel["reduction"]!.stringValue!, gqa: sel["gqa"]!.stringValue!)
            s.attentionLayers = range(sel["attention_layers"])
            s.mlpLayers = range(sel["mlp_layers"])
            s.ratio = sel["ratio"]!.doubleValue!
            s.scope = RankingScope(rawValue: sel["scope"]!.stringValue!)!
            s.roundTo = sel["round_to"]!.intValue
            s = try s.resolved(for: model.shape)
            let key = [sel["importance"]!.stringValue!, sel["reduction"]!.stringValue!, sel["gqa"]!.stringValue!,
                       s.attentionLayers!.description, s.mlpLayers!.description].joined(separator: "/")
            let scores = try #require(scoreCache[key])
            let plan = try Selection.apply(scores, to: PruningPlan(unpruned: model.shape), settings: s, step: 1)
            for l in 0..<model.shape.layerCount {
                let g = sel["layers"]!["\(l)"]!
                let what = "\(key) \(s.scope.rawValue) \(s.ratio) round \(String(describing: s.roundTo)) layer \(l)"
                #expect(plan.layers[l].keptHeads == ints(g["heads"]), "\(what) heads")
                #expect(plan.layers[l].keptKeyValueHeads == ints(g["kv_heads"]), "\(what) kv")
                #expect(plan.layers[l].keptChannels == ints(g["channels"]), "\(what) channels")
            }
            checkedSelections += 1
        }
        #expect(checkedSelections >= 200)
    }

    @Test(arguments: GoldenModel.names)
    func channelAndLayerStrategies(_ name: String) throws {
        let model = try GoldenModel(name)
        for entry in model.goldens["channel"]!.arrayValue! {
            var s = settings(importance: entry["importance"]!.stringValue!, reduction: entry["reduction"]!.stringValue!)
            s.strategy = .channel
            s.ratio = entry["ratio"]!.doubleValue!
            s = try s.resolved(for: model.shape)
            let scores = try model.scores(s)
            #expect(close(scores.hidden, doubles(entry["scores"])), "channel \(entry["importance"]!) \(entry["reduction"]!)")
            let plan = try Selection.apply(scores, to: PruningPlan(unpruned: model.shape), settings: s, step: 1)
            #expect(plan.keptHidden == ints(entry["kept"]))
        }
        for entry in model.goldens["layer"]!.arrayValue! {
            var s = settings(importance: entry["importance"]!.stringValue!, reduction: entry["reduction"]!.stringValue!)
            s.strategy = .layer
            s.removeLayers = entry["remove"]!.intValue!
            s = try s.resolved(for: model.shape)
            let scores = try model.scores(s)
            #expect(close(scores.layers, doubles(entry["scores"])), "layer \(entry["importance"]!) \(entry["reduction"]!)")
            let plan = try Selection.apply(scores, to: PruningPlan(unpruned: model.shape), settings: s, step: 1)
            #expect(plan.keptLayers == ints(entry["kept"]))
        }
    }

    /// The Swift surgery writes the tensors the PyTorch reference sliced (SHA-256 of each F32 tensor),
    /// for the cases whose functional exactness (pruned logits = zeroed logits) the reference checked.
    @Test func surgeryMatchesReferenceSlicing() throws {
        let functional = try JSONValue.parse(try FileSystem.readFile(fixtures + "/pruning/functional.json"))
        var n = 0
        for c in functional["cases"]!.arrayValue! {
            #expect(c["max_abs_diff_vs_zeroed"]!.doubleValue! < 1e-9)
            let model = try GoldenModel(c["model"]!.stringValue!)
            let golden = try #require(model.goldens["selections"]!.arrayValue!.first { s in
                s["importance"] == .string("param_first") && s["reduction"] == .string("sum") && s["gqa"] == c["gqa"]
                    && s["scope"] == c["scope"] && s["ratio"] == c["ratio"] && s["round_to"] == .null
            })
            var plan = PruningPlan(unpruned: model.shape)
            for l in 0..<model.shape.layerCount {
                let g = golden["layers"]!["\(l)"]!
                plan.layers[l].keptHeads = ints(g["heads"])
                plan.layers[l].keptKeyValueHeads = ints(g["kv_heads"])
                plan.layers[l].keptChannels = ints(g["channels"])
            }
            let out = temporaryFolder("surgery-\(n)")
            try Surgery.write(model.checkpoint, plan: plan, to: out, dtype: .f32)
            let result = try Checkpoint.open(out)
            let expected = c["pruned_tensor_sha256"]!.objectValue!
            #expect(result.tensorCount == expected.count)
            for (tensor, digest) in expected.members {
                let view = try result.tensor(named: tensor)
                let hex = view.withUnsafeBytes { SHA256.hash(data: $0).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
                #expect(hex == digest.stringValue!, "\(c["model"]!) \(tensor)")
            }
            #expect(result.parameterCount == plan.resultParameters)
            n += 1
        }
        #expect(n == 10)
    }

    @Test func taylorNeedsFisherOnlyForSecondOrder() throws {
        let model = try GoldenModel("tiny-llama")
        let noFisher = RecordedGradientSource(gradients: fixtures + "/pruning/tiny-llama/gradients.safetensors", fisher: nil, samples: 4)
        var s = settings(importance: "param_first", reduction: nil)
        s = try s.resolved(for: model.shape)
        let folder = model.folder
        var e = TaylorImportance(variant: .paramFirst, source: noFisher, batch: { _ in [] }, materialize: { _ in MaterializedModel(path: folder, store: try Checkpoint.open(folder)) })
        _ = try e.scores(plan: PruningPlan(unpruned: model.shape), settings: s, step: 1)
        var m = TaylorImportance(variant: .paramMix, source: noFisher, batch: { _ in [] }, materialize: { _ in MaterializedModel(path: folder, store: try Checkpoint.open(folder)) })
        #expect(throws: CheckpointError.self) { _ = try m.scores(plan: PruningPlan(unpruned: model.shape), settings: s, step: 1) }
    }
}
