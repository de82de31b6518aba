import Testing
import CheckpointCore
import ModelArchitecture
@testable import Engine
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Tiny random models against transformers in float64 (Tools/engine/make_goldens.py tiny):
/// logits and loss to 1e-5 relative, every gradient and Fisher sum to 1e-4 relative
/// (‖difference‖ / ‖reference‖).
@Suite struct TinyModelGoldenTests {
    static let cases = ["mha-untied-bias", "gqa-tied-llama3", "qwen2-bias", "headdim-linear", "uneven-pruned"]

    func batch(_ g: Golden) throws -> TokenBatch {
        let ids = try g.ints("tokens").map(Int32.init)
        let s = g.shape("tokens")
        return try TokenBatch((0..<s[0]).map { b in Array(ids[(b * s[1])..<((b + 1) * s[1])]) })
    }

    @Test(arguments: cases) func logitsAndLoss(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        let b = try batch(g)
        let logits = try model.logits(b)
        #expect(relativeError(logits.values, try g.floats("logits")) < 1e-5)
        let loss = try model.loss(b).loss
        let ref = try g.doubles("loss")[0]
        #expect(abs(loss - ref) / ref < 1e-5, "loss \(loss) vs \(ref)")
    }

    @Test(arguments: cases) func gradientsAndFisher(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        let collector = GradientCollector(fisher: true)
        let result = try model.backward(try batch(g), consumer: collector)
        let ref = try g.doubles("loss")[0]
        #expect(abs(result.loss - ref) / ref < 1e-5)
        let expected = g.checkpoint.tensorNames.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) }
        #expect(Set(collector.gradients.keys) == Set(expected))
        for name in expected {
            guard let got = collector.gradients[name] else { continue }
            let e = relativeError(got.gradient.values, try g.floats("grad." + name))
            #expect(e < 1e-4, "\(name): gradient relative error \(e)")
            let f = relativeError(got.fisher!.values, try g.floats("fisher." + name))
            #expect(f < 1e-4, "\(name): Fisher relative error \(f)")
        }
    }

    /// Layers whose projections are kept from the forward pass (activationMemory) are not
    /// recomputed; their gradients and Fisher sums are bit for bit the ones of a full
    /// recomputation, and so still match transformers.
    @Test(arguments: cases) func keptProjectionsGiveTheSameGradientsBitForBit(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        let b = try batch(g)
        let recomputed = GradientCollector(fisher: true)
        let lossRecomputed = try model.backward(b, consumer: recomputed)
        let layers = model.description.layerCount
        #expect(model.firstKeptLayer(rows: b.layout.rows) == layers)
        // Room for exactly the last layer, then for every layer.
        let a = model.description
        for (budget, first) in [(DecoderLayer.Projections.bytes(a.layers[layers - 1], in: a, rows: b.layout.rows)!, layers - 1), (Int.max, 0)] {
            model.activationMemory = budget
            #expect(model.firstKeptLayer(rows: b.layout.rows) == first)
            let kept = GradientCollector(fisher: true)
            let lossKept = try model.backward(b, consumer: kept)
            #expect(lossKept == lossRecomputed)
            #expect(kept.order == recomputed.order)
            for (n, r) in recomputed.gradients {
                #expect(kept.gradients[n]!.gradient.values == r.gradient.values, "\(n) with \(layers - first) kept layers")
                #expect(kept.gradients[n]!.fisher!.values == r.fisher!.values, "\(n) with \(layers - first) kept layers")
            }
            for n in g.checkpoint.tensorNames where n.hasPrefix("grad.") {
                let e = relativeError(kept.gradients[String(n.dropFirst(5))]!.gradient.values, try g.floats(n))
                #expect(e < 1e-4, "\(n): gradient relative error \(e)")
            }
        }
    }

    /// Generation keeps converted layers only up to `convertedLayerLimit` (the `generate` command
    /// sets half the available memory); the others are converted again for every token, with the
    /// same tokens as a result.
    @Test func generationWithinAConvertedLayerLimitGivesTheSameTokens() throws {
        let path = Fixture.root + "/models/austen-llama"
        let full = try LlamaModel(path: path), limited = try LlamaModel(path: path)
        let layer = full.convertedLayersSize / full.description.layerCount
        limited.convertedLayerLimit = layer + layer / 2
        var greedy1 = Sampler(temperature: 0, topP: 1, seed: 0), greedy2 = Sampler(temperature: 0, topP: 1, seed: 0)
        let prompt: [Int32] = [5, 17, 300, 42, 1000]
        let a = try full.generate(prompt: prompt, maxTokens: 12, sampler: &greedy1)
        let b = try limited.generate(prompt: prompt, maxTokens: 12, sampler: &greedy2)
        #expect(a == b && a.count == 12)
        #expect(limited.convertedLayerBytes == layer, "one layer kept")
        #expect(full.convertedLayerBytes == full.convertedLayersSize, "every layer kept")
    }

    @Test func gradientsArriveLayerByLayer() throws {
        let model = try LlamaModel(path: Fixture.engine("mha-untied-bias"))
        let collector = GradientCollector()
        try model.backward(try TokenBatch([[1, 2, 3, 4], [5, 6, 7, 8]]), consumer: collector)
        #expect(collector.order.first == "lm_head.weight")
        #expect(collector.order[1] == "model.norm.weight")
        #expect(collector.order.last == "model.embed_tokens.weight")
        let layers = collector.order.compactMap { collector.gradients[$0]?.layer }
        #expect(layers == layers.sorted(by: >), "layers arrive last to first")
        #expect(collector.gradients.values.allSatisfy { $0.fisher == nil })
    }

    @Test func gradientWithoutFisherEqualsGradientWithFisher() throws {
        let model = try LlamaModel(path: Fixture.engine("gqa-tied-llama3"))
        let b = try TokenBatch([[1, 2, 3, 4, 9], [5, 6, 7, 8, 1]])
        let plain = GradientCollector(), withF = GradientCollector(fisher: true)
        try model.backward(b, consumer: plain)
        try model.backward(b, consumer: withF)
        for (name, p) in plain.gradients {
            #expect(relativeError(p.gradient.values, withF.gradients[name]!.gradient.values) < 1e-6, "\(name)")
        }
    }

    @Test func rejectsTokensOutsideTheVocabulary() throws {
        let model = try LlamaModel(path: Fixture.engine("qwen2-bias"))
        #expect(throws: CheckpointError.self) { try model.loss(TokenBatch([[1, 64]])) }
    }
}

@Suite struct KernelTests {
    @Test func fastExponentialIsWithinTwoUlps() {
        var worst = 0.0
        var x: Float = -87
        while x < 88 {
            let got = Double(EngineMath.exp(x)), want = Foundation_exp(Double(x))
            worst = max(worst, abs(got - want) / want)
            x += 0.0137
        }
        #expect(worst < 2.5e-7, "worst relative error \(worst)")
        #expect(EngineMath.exp(-1000) >= 0 && EngineMath.exp(-1000) < 1e-37)
        #expect(EngineMath.exp(1000).isFinite)
    }
}

private func Foundation_exp(_ x: Double) -> Double { exp(x) }
