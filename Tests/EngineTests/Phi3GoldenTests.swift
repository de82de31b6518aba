import Testing
import CheckpointCore
import ModelArchitecture
@testable import Engine

/// Tiny random Phi-3 models against transformers in float64 (Tools/engine/make_phi3_goldens.py):
/// fused qkv_proj / gate_up_proj read as row blocks, GQA with 2 and 1 KV heads, partial rotary
/// (0.5 and 0.75 of head_dim), longrope with short factors (prompt) and long factors (batches and
/// generation past original_max_position_embeddings), tied and untied embeddings. Logits and loss
/// to 1e-5 relative, every gradient and Fisher sum (blocks fused back to the stored tensors) to
/// 1e-4, greedy tokens equal.
@Suite struct Phi3GoldenTests {
    static let cases = ["phi3-gqa-longrope-partial", "phi3-mha-tied", "phi3-kv1-longrope-short", "phi3-eval", "phi3-window4"]
    static let gradientCases = ["phi3-gqa-longrope-partial", "phi3-mha-tied", "phi3-kv1-longrope-short", "phi3-window4"]

    func batch(_ g: Golden) throws -> TokenBatch {
        let ids = try g.ints("tokens").map(Int32.init)
        let s = g.shape("tokens")
        return try TokenBatch((0..<s[0]).map { b in Array(ids[(b * s[1])..<((b + 1) * s[1])]) })
    }

    @Test func describesPhi3() throws {
        let model = try LlamaModel(path: Fixture.engine("phi3-gqa-longrope-partial"))
        let d = model.description
        #expect(d.family.modelType == "phi3" && d.headDim == 16 && d.rotaryDimensions == 8 && d.keyValueHeads == 2)
        #expect(d.attention(ofLayer: 1).slidingWindow == 64)
        guard case .longRope(let short, let long, let a, let original) = d.rotaryScaling else {
            Issue.record("expected longrope, got \(d.rotaryScaling)"); return
        }
        #expect(short.count == 4 && long.count == 4 && original == 8)
        // factor = 32 / 8 = 4: sqrt(1 + ln 4 / ln 8).
        #expect(abs(a - (1 + 2.0 / 3.0).squareRoot()) < 1e-12)
        #expect(model.checkpoint is FusedTensorView)
        #expect(model.checkpoint.tensorInfo(named: "model.layers.0.self_attn.k_proj.weight")?.shape == [32, 64])
        #expect(model.checkpoint.tensorInfo(named: "model.layers.1.mlp.up_proj.weight")?.shape == [96, 64])
        #expect(model.checkpoint.tensorInfo(named: "model.layers.0.self_attn.qkv_proj.weight") == nil)
    }

    /// A fused tensor whose rows are not the sum of its blocks is refused, naming it.
    @Test func refusesAFusedTensorOfTheWrongShape() throws {
        var c = try ModelConfiguration(path: Fixture.engine("phi3-mha-tied") + "/config.json")
        c.numKeyValueHeads = 2
        let d = try Phi3Family().describe(c)
        let store = try Checkpoint.open(Fixture.engine("phi3-mha-tied") + "/model.safetensors")
        #expect(throws: CheckpointError.self) { try d.validate(store) }
        do { try d.validate(store) } catch {
            #expect(error.code == .shapeMismatch && error.tensor == "model.layers.0.self_attn.qkv_proj.weight")
            #expect(error.message.contains("query 64 + key 32 + value 32"))
        }
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

    /// The engine's gradients of the q/k/v (gate/up) blocks, stacked in the stored order, equal
    /// PyTorch's gradient of the fused tensor.
    @Test(arguments: gradientCases) func gradientsAndFisher(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        let collector = GradientCollector(fisher: true)
        let result = try model.backward(try batch(g), consumer: collector)
        let ref = try g.doubles("loss")[0]
        #expect(abs(result.loss - ref) / ref < 1e-5)
        let d = model.description, t = d.tensors
        var grads: [String: [Float]] = [:], fisher: [String: [Float]] = [:]
        var blockNames = Set<String>()
        for l in 0..<d.layerCount {
            for f in FusedTensorView.fusedGroups(t) {
                let blocks = f.blocks.map { t.name($0, layer: l) }
                blockNames.formUnion(blocks)
                let stored = t.layerPrefix + "\(l)." + f.name + ".weight"
                grads[stored] = blocks.flatMap { collector.gradients[$0]?.gradient.values ?? [] }
                fisher[stored] = blocks.flatMap { collector.gradients[$0]?.fisher?.values ?? [] }
            }
        }
        for (n, p) in collector.gradients where !blockNames.contains(n) {
            grads[n] = p.gradient.values
            fisher[n] = p.fisher!.values
        }
        let expected = g.checkpoint.tensorNames.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) }
        #expect(Set(grads.keys) == Set(expected))
        #expect(expected.contains("model.layers.1.self_attn.qkv_proj.weight") && expected.contains("model.layers.0.mlp.gate_up_proj.weight"))
        for n in expected {
            let want = try g.floats("grad." + n)
            guard let got = grads[n], got.count == want.count, fisher[n]?.count == want.count else {
                Issue.record("\(n): \(grads[n]?.count ?? 0) gradient values, PyTorch has \(want.count)"); continue
            }
            let e = relativeError(got, want)
            #expect(e < 1e-4, "\(n): gradient relative error \(e)")
            let f = relativeError(fisher[n]!, try g.floats("fisher." + n))
            #expect(f < 1e-4, "\(n): Fisher relative error \(f)")
        }
    }

    /// Greedy generation with the KV cache gives transformers' tokens (`phi3-gqa-longrope-partial`
    /// passes its original context of 8 during generation: transformers then drops the cache and
    /// recomputes every position with the long factors, and so does the engine).
    @Test(arguments: cases) func greedyGenerationMatchesTransformers(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        var greedy = Sampler(temperature: 0, topP: 1, seed: 0)
        let prompt = try g.ints("greedy.prompt").map(Int32.init)
        let out = try model.generate(prompt: prompt, maxTokens: 8, sampler: &greedy)
        #expect(out.map(Int.init) == (try g.ints("greedy.continuation")), "\(name): \(out)")
    }

    /// A sliding window of 4 tokens, shorter than the 9-token batch (``LayerAttention/slidingWindow``
    /// on every Phi-3 layer): the logits, gradients and greedy tokens above (`phi3-window4` is in
    /// `cases` and `gradientCases`; its 12-token generation runs the KV cache past the window)
    /// match transformers', and the same weights without the window do not.
    @Test func slidingWindowShorterThanTheSequence() throws {
        let model = try LlamaModel(path: Fixture.engine("phi3-window4"))
        #expect((0..<2).allSatisfy { model.description.attention(ofLayer: $0).slidingWindow == 4 })
        let g = try Golden(Fixture.engine("phi3-window4") + "/golden.safetensors")
        let want = try g.floats("logits")
        let e = relativeError(try model.logits(try batch(g)).values, want)
        #expect(e < 1e-5, "logits relative error \(e)")
        var full = model.description
        full.layerAttention = Array(repeating: .full, count: full.layerCount)
        let unwindowed = try LlamaModel(store: model.checkpoint, description: full)
        let f = relativeError(try unwindowed.logits(try batch(g)).values, want)
        #expect(f > 1e-3, "without the window the logits should differ (relative error \(f))")
    }
}
