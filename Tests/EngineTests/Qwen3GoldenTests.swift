import Testing
import CheckpointCore
import ModelArchitecture
@testable import Engine

/// Tiny random Qwen3 models against transformers in float64 (Tools/engine/make_goldens.py tiny OUT
/// qwen3): per-head q/k RMSNorm before rotary, an explicit head_dim (24 ≠ hidden / heads), one KV
/// head, tied and untied embeddings. Logits and loss to 1e-5 relative, every gradient (q/k norm
/// weights included) and Fisher sum to 1e-4, greedy tokens equal.
@Suite struct Qwen3GoldenTests {
    static let cases = ["qwen3-kv1-tied-headdim", "qwen3-gqa-untied", "qwen3-eval"]

    func batch(_ g: Golden) throws -> TokenBatch {
        let ids = try g.ints("tokens").map(Int32.init)
        let s = g.shape("tokens")
        return try TokenBatch((0..<s[0]).map { b in Array(ids[(b * s[1])..<((b + 1) * s[1])]) })
    }

    @Test func describesQwen3() throws {
        let model = try LlamaModel(path: Fixture.engine("qwen3-kv1-tied-headdim"))
        let d = model.description
        #expect(d.family.modelType == "qwen3" && d.family.blocks.queryKeyNorm)
        #expect(d.headDim == 24 && d.hiddenSize == 64 && d.keyValueHeads == 1 && d.tieWordEmbeddings)
        #expect(d.name(.queryNorm, layer: 1) == "model.layers.1.self_attn.q_norm.weight")
        #expect(d.shape(of: TensorReference(.keyNorm, layer: 0)) == [24])
        #expect(d.requiredTensors.filter { $0.role == .queryNorm || $0.role == .keyNorm }.count == 4)
    }

    @Test(arguments: cases) func logitsAndLoss(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        let b = try batch(g)
        let e = relativeError(try model.logits(b).values, try g.floats("logits"))
        #expect(e < 1e-5, "logits relative error \(e)")
        let loss = try model.loss(b).loss, ref = try g.doubles("loss")[0]
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
        #expect(expected.contains("model.layers.0.self_attn.q_norm.weight") && expected.contains("model.layers.1.self_attn.k_norm.weight"))
        for name in expected {
            guard let got = collector.gradients[name] else { continue }
            let e = relativeError(got.gradient.values, try g.floats("grad." + name))
            #expect(e < 1e-4, "\(name): gradient relative error \(e)")
            let f = relativeError(got.fisher!.values, try g.floats("fisher." + name))
            #expect(f < 1e-4, "\(name): Fisher relative error \(f)")
        }
    }

    /// Kept projections (q and k before and after their norms) give the recomputed gradients bit for bit.
    @Test(arguments: cases) func keptProjectionsGiveTheSameGradientsBitForBit(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        let b = try batch(g)
        let recomputed = GradientCollector(fisher: true)
        let lossRecomputed = try model.backward(b, consumer: recomputed)
        model.activationMemory = Int.max
        #expect(model.firstKeptLayer(rows: b.layout.rows) == 0)
        let kept = GradientCollector(fisher: true)
        #expect(try model.backward(b, consumer: kept) == lossRecomputed)
        for (n, r) in recomputed.gradients {
            #expect(kept.gradients[n]!.gradient.values == r.gradient.values, "\(n)")
            #expect(kept.gradients[n]!.fisher!.values == r.fisher!.values, "\(n)")
        }
    }

    /// Greedy generation with the KV cache gives transformers' tokens.
    @Test(arguments: cases) func greedyGenerationMatchesTransformers(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        var greedy = Sampler(temperature: 0, topP: 1, seed: 0)
        let prompt = try g.ints("greedy.prompt").map(Int32.init)
        let out = try model.generate(prompt: prompt, maxTokens: 8, sampler: &greedy)
        #expect(out.map(Int.init) == (try g.ints("greedy.continuation")))
    }
}
