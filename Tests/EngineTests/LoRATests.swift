import Testing
import CheckpointCore
import ModelArchitecture
@testable import Engine

/// LoRA training against PyTorch + PEFT (Tools/lora/reference.py → Fixtures/lora/<case>.safetensors):
/// the same initial A and B, the same batches (two micro-batches of right-padded sequences of
/// unequal length, prompt tokens masked), no dropout, AdamW with weight decay, clipping at 1.0, a
/// linearly decaying rate. Every step's loss and gradient norm, and A and B after steps 1 and 10,
/// agree within 1e-5 relative (‖difference‖ / ‖reference‖ per tensor).
@Suite struct LoRAGoldenTests {
    static let cases = ["mha-untied-bias", "gqa-tied-llama3", "austen-llama"]
    static let modules: [String: TensorRole] = ["q_proj": .query, "k_proj": .key, "v_proj": .value, "o_proj": .output,
                                                "gate_proj": .gate, "up_proj": .up, "down_proj": .down]

    static func modelPath(_ name: String) -> String {
        name == "austen-llama" ? Fixture.root + "/models/austen-llama" : Fixture.engine(name)
    }

    /// The adapters the golden's tensors `<prefix>.<layer>.<module>.A/B` hold.
    static func weights(_ g: Golden, prefix: String) throws -> [LoRAKey: (a: [Float], b: [Float])] {
        var out: [LoRAKey: (a: [Float], b: [Float])] = [:]
        for name in g.checkpoint.tensorNames where name.hasPrefix(prefix + ".") && name.hasSuffix(".A") {
            let parts = name.split(separator: ".")
            let key = LoRAKey(layer: Int(parts[1])!, role: modules[String(parts[2])]!)
            out[key] = (try g.floats(name), try g.floats(String(name.dropLast()) + "B"))
        }
        return out
    }

    static func microBatches(_ g: Golden, step: Int) throws -> [[TrainingSequence]] {
        try (0..<2).map { j in
            let p = "step\(step).mb\(j)"
            let tokens = try g.ints(p + ".tokens"), trained = try g.ints(p + ".trained"), lengths = try g.ints(p + ".lengths")
            let t = g.shape(p + ".tokens")[1]
            return lengths.enumerated().map { r, n in
                TrainingSequence(tokens: tokens[(r * t)..<(r * t + n)].map(Int32.init), trained: trained[(r * t)..<(r * t + n)].map { $0 != 0 })
            }
        }
    }

    static func trainer(_ name: String, _ g: Golden) throws -> (LlamaModel, LoRATrainer) {
        let model = try LlamaModel(path: modelPath(name))
        let meta = g.checkpoint.metadata!
        let settings = LoRASettings(rank: Int(meta["rank"]!)!, alpha: Float(meta["alpha"]!)!, dropout: 0)
        let adapters = try LoRAAdapters(model: model.description, settings: settings, weights: try weights(g, prefix: "init"))
        let steps = Int(meta["steps"]!)!
        let trainer = LoRATrainer(model: model, adapters: adapters, schedule: LinearSchedule(base: 1e-3, warmup: 0, total: steps), maxGradNorm: 1, seed: 7)
        trainer.optimizer.weightDecay = 0.01
        return (model, trainer)
    }

    static func golden(_ name: String) throws -> Golden { try Golden(Fixture.root + "/lora/\(name).safetensors") }

    static func expectAdapters(_ adapters: LoRAAdapters, _ g: Golden, prefix: String) throws {
        let ref = try weights(g, prefix: prefix)
        #expect(ref.count == adapters.adapters.count)
        for a in adapters.adapters {
            let r = try #require(ref[a.key])
            let ea = relativeError(a.a.values, r.a), eb = relativeError(a.b.values, r.b)
            #expect(ea < 1e-5 && eb < 1e-5, "\(prefix) layer \(a.key.layer) \(a.key.role): A error \(ea), B error \(eb)")
        }
    }

    @Test(arguments: cases) func tenAdamWStepsMatchPEFT(_ name: String) throws {
        let g = try Self.golden(name)
        let (_, trainer) = try Self.trainer(name, g)
        let losses = try g.doubles("losses"), norms = try g.doubles("gradient_norms"), lrs = try g.doubles("lrs")
        for k in 0..<losses.count {
            let r = try trainer.step(try Self.microBatches(g, step: k))
            #expect(abs(r.loss - losses[k]) / losses[k] < 1e-5, "step \(k + 1): loss \(r.loss) vs \(losses[k])")
            #expect(abs(r.gradientNorm - norms[k]) / norms[k] < 1e-5, "step \(k + 1): gradient norm \(r.gradientNorm) vs \(norms[k])")
            #expect(abs(r.learningRate - lrs[k]) <= 1e-12, "step \(k + 1): lr \(r.learningRate) vs \(lrs[k])")
            if k == 0 { try Self.expectAdapters(trainer.adapters, g, prefix: "step1") }
        }
        try Self.expectAdapters(trainer.adapters, g, prefix: "step\(losses.count)")
    }

    /// Kept projections (activationMemory) skip recomputing the layers' products in the backward
    /// pass; with dropout on, the adapters after two steps are bit for bit those of full
    /// recomputation (the masks are regenerated identically).
    @Test func keptProjectionsGiveTheSameStepsBitForBit() throws {
        let g = try Self.golden("gqa-tied-llama3")
        func run(_ activationMemory: Int, dropout: Float = 0.1) throws -> [[Float]] {
            let model = try LlamaModel(path: Self.modelPath("gqa-tied-llama3"))
            model.activationMemory = activationMemory
            let adapters = try LoRAAdapters(model: model.description, settings: LoRASettings(rank: 4, alpha: 8, dropout: dropout),
                                            weights: try Self.weights(g, prefix: "init"))
            let trainer = LoRATrainer(model: model, adapters: adapters, schedule: LinearSchedule(base: 1e-3, warmup: 0, total: 2), seed: 9)
            for k in 0..<2 { _ = try trainer.step(try Self.microBatches(g, step: k)) }
            return adapters.adapters.flatMap { [$0.a.values, $0.b.values] }
        }
        let recomputed = try run(0), kept = try run(1 << 30)
        #expect(recomputed == kept)
        // The masks are in effect: without dropout the steps differ.
        #expect(try run(0, dropout: 0) != recomputed)
    }

    @Test func warmUpScheduleMatchesTransformers() throws {
        let g = try Self.golden("mha-untied-bias")
        let ref = try g.doubles("schedule.lrs")
        let s = LinearSchedule(base: 1e-3, warmup: 3, total: 10)
        for k in 0..<ref.count { #expect(abs(s.learningRate(step: k) - ref[k]) <= 1e-15, "step \(k)") }
    }

    /// The merged weights W + s·B·A, run as a plain model, give the adapted model's logits.
    @Test func mergedWeightsEqualTheAdaptedForward() throws {
        let g = try Self.golden("mha-untied-bias")
        let (model, trainer) = try Self.trainer("mha-untied-bias", g)
        let b = try TokenBatch([[1, 5, 9, 3, 7, 2]])
        let adapted = try model.logits(b)
        let w = try model.layerWeights(0)
        let a = try #require(trainer.adapters.adapter(LoRAKey(layer: 0, role: .query)))
        let merged = a.merged(into: w.q.weight)
        // y = x·(W + sBA)ᵀ = x·Wᵀ + s·(x·Aᵀ)·Bᵀ for any x.
        let x = Matrix(rows: 3, cols: a.inFeatures, values: (0..<(3 * a.inFeatures)).map { Float($0 % 7) / 7 - 0.4 })
        let viaAdapter = w.q.forward(x)
        let plain = Linear(weight: merged, bias: w.q.bias).forward(x)
        #expect(relativeError(plain.values, viaAdapter.values) < 1e-6)
        #expect(adapted.count == 6 * model.description.vocabSize)
    }
}

/// Dropout of the adapters' input: a mask from a counter-based hash, reproducible, with the keep
/// rate 1 − p and the kept values scaled by 1 / (1 − p); over many masks the adapter's output
/// averages to the output without dropout.
@Suite struct LoRADropoutTests {
    static func adapter(p: Float) -> LoRAAdapter {
        let a = Matrix(rows: 2, cols: 64, values: (0..<128).map { Float(($0 * 37) % 11) / 11 - 0.5 })
        let b = Matrix(rows: 16, cols: 2, values: (0..<32).map { Float(($0 * 13) % 7) / 7 - 0.5 })
        return LoRAAdapter(key: LoRAKey(layer: 1, role: .gate), a: a, b: b, alpha: 4, dropout: p)
    }

    @Test func keepRateAndScale() {
        let ad = Self.adapter(p: 0.3)
        ad.dropoutActive = true
        ad.maskSeed = 99
        let x = Matrix(rows: 512, cols: 64, values: [Float](repeating: 1, count: 512 * 64))
        let d = ad.droppedInput(x).values
        let kept = d.filter { $0 != 0 }
        let rate = Double(kept.count) / Double(d.count)
        // 32768 Bernoulli(0.7) draws: standard deviation 0.0025.
        #expect(abs(rate - 0.7) < 0.01, "keep rate \(rate)")
        #expect(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 })
        // The same seed gives the same mask; another seed another one.
        #expect(ad.droppedInput(x).values == d)
        ad.maskSeed = 100
        #expect(ad.droppedInput(x).values != d)
    }

    @Test func meanOverMasksIsTheOutputWithoutDropout() {
        let ad = Self.adapter(p: 0.2)
        let x = Matrix(rows: 4, cols: 64, values: (0..<256).map { Float(($0 * 29) % 17) / 17 - 0.3 })
        let exact = Matrix(rows: 4, cols: 16)
        ad.addForward(x, into: exact)
        ad.dropoutActive = true
        var mean = [Double](repeating: 0, count: exact.count)
        let n = 4000
        for s in 0..<n {
            ad.maskSeed = UInt64(s)
            let y = Matrix(rows: 4, cols: 16)
            ad.addForward(x, into: y)
            for i in 0..<y.count { mean[i] += Double(y.storage[i]) / Double(n) }
        }
        #expect(relativeError(mean, exact.values.map(Double.init)) < 0.02)
    }

    /// Backward through a dropped-out adapter: the finite-difference derivative of
    /// L = Σ y ∘ r with respect to A, B and x (the same mask in every evaluation).
    @Test func gradientsWithDropoutMatchFiniteDifferences() {
        let ad = Self.adapter(p: 0.25)
        ad.dropoutActive = true
        ad.maskSeed = 5
        let w = Matrix(rows: 16, cols: 64, values: (0..<1024).map { Float(($0 * 7) % 13) / 13 - 0.5 })
        var lin = Linear(weight: w, bias: nil)
        lin.adapter = ad
        let x = Matrix(rows: 3, cols: 64, values: (0..<192).map { Float(($0 * 5) % 19) / 19 - 0.5 })
        let r = Matrix(rows: 3, cols: 16, values: (0..<48).map { Float(($0 * 3) % 11) / 11 - 0.5 })
        func loss() -> Double {
            let y = lin.forward(x)
            return zip(y.values, r.values).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        }
        ad.gradA.zero(); ad.gradB.zero()
        lin.backwardWeights(x: x, dy: r, weightGradient: nil, biasGradient: nil)
        let dx = Matrix(rows: 3, cols: 64)
        lin.backwardInput(r, into: dx, accumulate: false)
        let h: Float = 1e-2
        for (m, g, i) in [(ad.a, ad.gradA, 5), (ad.a, ad.gradA, 70), (ad.b, ad.gradB, 3), (ad.b, ad.gradB, 30), (x, dx, 11), (x, dx, 150)] {
            let old = m.storage[i]
            m.storage[i] = old + h; let lp = loss()
            m.storage[i] = old - h; let lm = loss()
            m.storage[i] = old
            let fd = (lp - lm) / Double(2 * h)
            #expect(abs(fd - Double(g.storage[i])) < 1e-3 * max(1, abs(fd)), "index \(i): finite difference \(fd), gradient \(g.storage[i])")
        }
    }
}

/// Distillation (Tools/lora/distill_reference.py): student mha-untied-bias with adapters, teacher
/// gqa-tied-llama3 (same vocabulary, other weights and layout), T = 2, CE weight 0.3, one
/// micro-batch of right-padded sequences with masked prompts. Loss and every adapter gradient
/// agree with torch's kl_div + cross_entropy within 1e-5 relative.
@Suite struct LoRADistillationTests {
    @Test func lossAndGradientsMatchTorch() throws {
        let g = try Golden(Fixture.root + "/lora/distill-mha-untied-bias.safetensors")
        let meta = g.checkpoint.metadata!
        let student = try LlamaModel(path: Fixture.engine("mha-untied-bias"))
        let teacher = try LlamaModel(path: Fixture.engine("gqa-tied-llama3"))
        let adapters = try LoRAAdapters(model: student.description,
                                        settings: LoRASettings(rank: Int(meta["rank"]!)!, alpha: Float(meta["alpha"]!)!, dropout: 0),
                                        weights: try LoRAGoldenTests.weights(g, prefix: "init"))
        student.adapters = adapters
        let tokens = try g.ints("tokens"), trained = try g.ints("trained"), lengths = try g.ints("lengths")
        let t = g.shape("tokens")[1]
        let sequences = lengths.enumerated().map { r, n in
            TrainingSequence(tokens: tokens[(r * t)..<(r * t + n)].map(Int32.init), trained: trained[(r * t)..<(r * t + n)].map { $0 != 0 })
        }
        let (batch, flags) = try LoRATrainer.pad(sequences, with: 0)
        let counted = LlamaModel.countedTokens(batch, trained: flags)
        let d = Distillation(temperature: Float(meta["temperature"]!)!, ceWeight: Float(meta["ce_weight"]!)!)
        let r = try student.loraBackward(batch, trained: flags, gradientScale: 1 / Float(counted),
                                         teacher: DistillationTeacher(model: teacher, distillation: d))
        let ref = try g.doubles("loss")[0]
        #expect(abs(r.nllSum / Double(counted) - ref) / ref < 1e-5, "loss \(r.nllSum / Double(counted)) vs \(ref)")
        let grads = try LoRAGoldenTests.weights(g, prefix: "grad")
        #expect(grads.count == adapters.adapters.count)
        for a in adapters.adapters {
            let e = try #require(grads[a.key])
            let ea = relativeError(a.gradA.values, e.a), eb = relativeError(a.gradB.values, e.b)
            #expect(ea < 1e-5 && eb < 1e-5, "layer \(a.key.layer) \(a.key.role): dA error \(ea), dB error \(eb)")
        }
    }
}

/// The other families' layers (Qwen3's per-head q/k norms, Gemma 2's soft-caps, sliding windows
/// and output norms, Gemma 3's): adapter gradients from `loraBackward` equal central finite
/// differences of the forward loss.
@Suite struct LoRAFamilyGradientTests {
    @Test(arguments: ["qwen3-gqa-untied", "gemma2-softcap-window", "gemma3-kv1-window", "phi3-gqa-longrope-partial"])
    func adapterGradientsMatchFiniteDifferences(_ name: String) throws {
        let model = try LlamaModel(path: Fixture.engine(name))
        let adapters = try LoRAAdapters(model: model.description, settings: LoRASettings(rank: 2, alpha: 4, dropout: 0), seed: 1)
        for a in adapters.adapters {
            a.b.withUnsafeMutableBufferPointer { b in for i in 0..<b.count { b[i] = Float((i * 5 + 3) % 13) / 13 - 0.5 } }
        }
        model.adapters = adapters
        let v = Int32(model.description.vocabSize)
        let batch = try TokenBatch([(0..<10).map { Int32($0 * 7 + 3) % v }, (0..<10).map { Int32($0 * 11 + 1) % v }])
        adapters.zeroGradients()
        let r = try model.loraBackward(batch, gradientScale: 1 / Float(LlamaModel.countedTokens(batch, trained: nil)))
        #expect(abs(r.loss - (try model.loss(batch)).loss) < 1e-5)
        let h: Float = 1e-2
        var checked = 0
        for a in [adapters.adapters.first!, adapters.adapters.last!, adapters.adapters[adapters.adapters.count / 2]] {
            for (m, g, i) in [(a.a, a.gradA, 1), (a.a, a.gradA, a.a.count - 2), (a.b, a.gradB, 0), (a.b, a.gradB, a.b.count / 2 + 1)] {
                let old = m.values[i]
                func set(_ x: Float) { m.withUnsafeMutableBufferPointer { $0[i] = x } }
                set(old + h); let lp = try model.loss(batch).loss
                set(old - h); let lm = try model.loss(batch).loss
                set(old)
                let fd = (lp - lm) / Double(2 * h), got = Double(g.values[i])
                #expect(abs(fd - got) < 2e-2 * abs(fd) + 2e-4, "\(name) layer \(a.key.layer) \(a.key.role) [\(i)]: finite difference \(fd), gradient \(got)")
                checked += 1
            }
        }
        #expect(checked == 12)
    }
}
