import Testing
import CheckpointCore
import ModelArchitecture
@testable import Engine

/// Tiny random Gemma 2 / Gemma 3 models and sliding-window Mistral / Qwen2 models against
/// transformers in float64 (Tools/engine/make_goldens.py tiny OUT gemma|mistral-window|qwen2-window):
/// windows shorter than the 9-token sequences, Gemma 2's attention and final soft-caps, (1 + w)
/// norms before and after attention and MLP, GeGLU, √hidden embedding scale,
/// query_pre_attn_scalar, Gemma 3's q/k norms, one KV head, layer_types and per-layer rotary bases.
/// Logits and loss to 1e-5 relative, every gradient and Fisher sum to 1e-4, greedy tokens equal.
@Suite struct GemmaGoldenTests {
    static let cases = ["gemma2-softcap-window", "gemma3-kv1-window", "gemma3-eval", "mistral-window", "qwen2-window"]

    func batch(_ g: Golden) throws -> TokenBatch {
        let ids = try g.ints("tokens").map(Int32.init)
        let s = g.shape("tokens")
        return try TokenBatch((0..<s[0]).map { b in Array(ids[(b * s[1])..<((b + 1) * s[1])]) })
    }

    @Test func describesGemma() throws {
        let g2 = try LlamaModel(path: Fixture.engine("gemma2-softcap-window")).description
        #expect(g2.family.modelType == "gemma2" && g2.family.blocks == .gemma2)
        #expect(g2.layerAttention.map(\.slidingWindow) == [4, nil, 4])
        #expect(g2.attentionLogitSoftcap == 2 && g2.finalLogitSoftcap == 3)
        #expect(abs(g2.attentionScale! - 1 / 24.0.squareRoot()) < 1e-15)
        #expect(g2.name(.attentionOutputNorm, layer: 1) == "model.layers.1.post_attention_layernorm.weight")
        #expect(g2.name(.postAttentionNorm, layer: 1) == "model.layers.1.pre_feedforward_layernorm.weight")
        let g3 = try LlamaModel(path: Fixture.engine("gemma3-kv1-window")).description
        #expect(g3.family.blocks == .gemma3 && g3.keyValueHeads == 1 && g3.headDim == 24)
        #expect(g3.layerAttention.map(\.slidingWindow) == [3, nil, 3, 3])
        #expect(g3.ropeTheta == 1_000_000 && g3.rotaryScaling == .linear(factor: 2))
        #expect(g3.attention(ofLayer: 0).ropeTheta == 10_000 && g3.attention(ofLayer: 0).rotaryScaling == RotaryScaling.none)
        #expect(g3.attention(ofLayer: 1) == .full)
        #expect(g3.attentionLogitSoftcap == nil && g3.finalLogitSoftcap == nil)
        let q2 = try LlamaModel(path: Fixture.engine("qwen2-window")).description
        #expect(q2.layerAttention.map(\.slidingWindow) == [nil, 3])
        let m = try LlamaModel(path: Fixture.engine("mistral-window")).description
        #expect(m.layerAttention.map(\.slidingWindow) == [4, 4])
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
        for name in expected {
            guard let got = collector.gradients[name] else { continue }
            let e = relativeError(got.gradient.values, try g.floats("grad." + name))
            #expect(e < 1e-4, "\(name): gradient relative error \(e)")
            let f = relativeError(got.fisher!.values, try g.floats("fisher." + name))
            #expect(f < 1e-4, "\(name): Fisher relative error \(f)")
        }
    }

    /// Kept projections (Gemma: o_proj's and down_proj's outputs before their norms) give the
    /// recomputed gradients bit for bit.
    @Test(arguments: ["gemma2-softcap-window", "gemma3-kv1-window"]) func keptProjectionsGiveTheSameGradientsBitForBit(_ name: String) throws {
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
        }
    }

    /// Greedy generation with the KV cache (windows applied to the cached keys) gives
    /// transformers' tokens; the sequence runs past every window.
    @Test(arguments: cases) func greedyGenerationMatchesTransformers(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        var greedy = Sampler(temperature: 0, topP: 1, seed: 0)
        let prompt = try g.ints("greedy.prompt").map(Int32.init)
        let out = try model.generate(prompt: prompt, maxTokens: 8, sampler: &greedy)
        #expect(out.map(Int.init) == (try g.ints("greedy.continuation")))
    }
}
