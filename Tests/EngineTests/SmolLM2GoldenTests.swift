#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import Testing
import CheckpointCore
import Engine

/// SmolLM2-135M-Instruct (dequantized from its Q4_1 GGUF by Tools/smollm2-hf) against transformers
/// in float64 (Tools/engine/make_goldens.py smollm2 → Fixtures/engine/smollm2-golden.safetensors).
@Suite(.serialized) struct SmolLM2GoldenTests {
    /// The converted folder: $SHEARS_SMOLLM2_DIR, else ~/.cache/shears/smollm2-hf.
    static func folder() throws -> String {
        let dir: String
        if let e = getenv("SHEARS_SMOLLM2_DIR") { dir = String(cString: e) }
        else {
            let cache = getenv("SHEARS_CACHE").map { String(cString: $0) } ?? (String(cString: getenv("HOME")) + "/.cache/shears")
            dir = cache + "/smollm2-hf"
        }
        guard access(dir + "/.complete", F_OK) == 0 || access(dir + "/model.safetensors", F_OK) == 0 else {
            Issue.record("SmolLM2 is not converted at \(dir): run Tools/smollm2-hf (or set SHEARS_SMOLLM2_DIR)")
            throw CheckpointError(.io, "SmolLM2 folder missing", path: dir)
        }
        return dir
    }

    static let golden = Fixture.root + "/engine/smollm2-golden.safetensors"

    @Test func perplexityMatchesTransformers() throws { try RealModelChecks.perplexity(folder: Self.folder(), golden: Self.golden) }

    @Test func lossLogitsAndGradientSummaries() throws {
        try RealModelChecks.gradients(folder: Self.folder(), golden: Self.golden, parameterCount: 272)
    }

    @Test func greedyGenerationMatchesTransformers() throws { try RealModelChecks.greedy(folder: Self.folder(), golden: Self.golden) }
}

/// Checks of a trained model against its golden file (Tools/engine/make_goldens.py real):
/// perplexity (1e-4), logits (1e-5), loss (1e-5), per-tensor gradient norms, Σ W·g, LLM-Pruner's
/// |W·g| row/column scores, norm-weight gradients and Fisher sums (1e-4), greedy continuations.
enum RealModelChecks {
    static func perplexity(folder: String, golden: String) throws {
        let model = try LlamaModel(path: folder)
        let g = try Golden(golden)
        let tokens = try g.ints("ppl.tokens").map(Int32.init)
        let p = try Perplexity.evaluate(model, tokens: tokens, seqLen: 128)
        let refSum = try g.doubles("ppl.nll_sum")[0], refN = try g.ints("ppl.predicted")[0]
        #expect(p.windows == 8 && p.tokens == refN)
        let ref = exp(refSum / Double(refN))
        #expect(abs(p.perplexity - ref) / ref < 1e-4, "perplexity \(p.perplexity) vs transformers \(ref)")
    }

    static func gradients(folder: String, golden: String, parameterCount: Int) throws {
        let model = try LlamaModel(path: folder)
        let g = try Golden(golden)
        let ids = try g.ints("grad.tokens").map(Int32.init)
        let t = g.shape("grad.tokens")[1]
        let batch = try TokenBatch([Array(ids[0..<t]), Array(ids[t..<(2 * t)])])
        let logits = try model.logits(batch)
        var head: [Float] = []
        var lse: [Double] = []
        for r in 0..<logits.rows {
            let row = logits.row(r)
            head += row[0..<512]
            let m = Double(row.max()!)
            lse.append(m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) }))
        }
        #expect(relativeError(head, try g.floats("grad.logits_head")) < 1e-5)
        #expect(relativeError(lse, try g.doubles("grad.logsumexp")) < 1e-5)

        let names: [String] = try {
            guard let s = g.checkpoint.metadata?["names"] else { return [] }
            return try JSONNames.parse(s)
        }()
        #expect(names.count == parameterCount)
        let collector = GradientCollector(fisher: true)
        let result = try model.backward(batch, consumer: collector)
        let refLoss = try g.doubles("grad.loss")[0]
        #expect(abs(result.loss - refLoss) / refLoss < 1e-5, "loss \(result.loss) vs \(refLoss)")
        let norms = try g.doubles("grad.norms"), dots = try g.doubles("grad.weight_dots"), fisherSums = try g.doubles("fisher.sums")
        var gotNorms: [Double] = [], gotDots: [Double] = [], gotFisher: [Double] = []
        for name in names {
            let p = try #require(collector.gradients[name], "no gradient for \(name)")
            gotNorms.append(p.gradient.norm)
            var d = 0.0, f = 0.0
            let gv = p.gradient.values, wv = p.weight.values, fv = p.fisher!.values
            for i in gv.indices { d += Double(gv[i]) * Double(wv[i]); f += Double(fv[i]) }
            gotDots.append(d)
            gotFisher.append(f)
            if name.contains("norm") {
                let e = relativeError(gv, try g.floats("full." + name))
                #expect(e < 1e-4, "\(name): gradient relative error \(e)")
            } else if g.has("rows." + name) || g.has("cols." + name) {
                // LLM-Pruner's param_first scores: Σ |W ∘ g| per output row (q/k/v/gate/up) or input column (o/down).
                let byRow = g.has("rows." + name)
                let rows = p.weight.rows, cols = p.weight.cols
                var s = [Float](repeating: 0, count: byRow ? rows : cols)
                for r in 0..<rows { for c in 0..<cols { s[byRow ? r : c] += abs(wv[r * cols + c] * gv[r * cols + c]) } }
                let e = relativeError(s, try g.floats((byRow ? "rows." : "cols.") + name))
                #expect(e < 1e-4, "\(name): |W·g| scores relative error \(e)")
            }
        }
        for i in names.indices {
            #expect(abs(gotNorms[i] - norms[i]) / norms[i] < 1e-4, "\(names[i]): gradient norm \(gotNorms[i]) vs \(norms[i])")
            #expect(abs(gotFisher[i] - fisherSums[i]) / fisherSums[i] < 1e-4, "\(names[i]): Fisher sum \(gotFisher[i]) vs \(fisherSums[i])")
        }
        #expect(relativeError(gotDots, dots) < 1e-4)
        let fk = collector.gradients["model.layers.0.self_attn.k_proj.weight"]!.fisher!.values
        #expect(relativeError(Array(fk[0..<(16 * model.description.hiddenSize)]), try g.floats("fisher.full.model.layers.0.self_attn.k_proj.weight")) < 1e-4)
    }

    static func greedy(folder: String, golden: String) throws {
        let model = try LlamaModel(path: folder)
        let g = try Golden(golden)
        for i in 0..<3 {
            let prompt = try g.ints("greedy.\(i).prompt").map(Int32.init)
            let expected = try g.ints("greedy.\(i).continuation").map(Int32.init)
            var sampler = Sampler()
            let got = try model.generate(prompt: prompt, maxTokens: expected.count, sampler: &sampler)
            #expect(got == expected, "prompt \(i)")
        }
    }
}

/// The golden's JSON list of parameter names.
enum JSONNames {
    static func parse(_ s: String) throws -> [String] {
        (try JSONValue.parse(s).arrayValue ?? []).compactMap(\.stringValue)
    }
}

import ShearsJSON

/// The bundled default model (Fixtures/models/austen-llama, bf16, multi-head attention, tied)
/// against transformers in float64 (Tools/make-engine-goldens).
@Suite struct BundledModelTests {
    static let folder = Fixture.root + "/models/austen-llama"
    static let golden = folder + "/golden.safetensors"

    @Test func perplexityMatchesTransformers() throws { try RealModelChecks.perplexity(folder: Self.folder, golden: Self.golden) }

    @Test func lossLogitsAndGradientSummaries() throws {
        try RealModelChecks.gradients(folder: Self.folder, golden: Self.golden, parameterCount: 38)
    }

    @Test func greedyGenerationMatchesTransformers() throws { try RealModelChecks.greedy(folder: Self.folder, golden: Self.golden) }
}
