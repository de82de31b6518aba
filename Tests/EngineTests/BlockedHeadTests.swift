import Testing
import CheckpointCore
import ModelArchitecture
@testable import Engine

/// The LM head applied in blocks of vocabulary rows read from the stored tensor, and the embedding
/// gathered per token (what a model gets when its tables are too large to keep whole in F32,
/// ``MemoryBudget/wholeTableBytes``), against the same transformers goldens as the whole tables
/// (TinyModelGoldenTests): logits and loss to 1e-5, every decoder-layer and final-norm gradient
/// and Fisher sum to 1e-4 relative. Blocks of 3 rows, so that the last block is a partial one.
@Suite struct BlockedHeadTests {
    /// Wants every gradient but the embedding's and head's (what Taylor block pruning uses).
    final class LayersOnly: GradientConsumer {
        let wantsFisher = true
        var gradients: [String: ParameterGradient] = [:]
        func wantsGradient(of name: String, layer: Int?) -> Bool { layer != nil }
        func consume(_ g: ParameterGradient) throws { gradients[g.name] = g }
    }

    func blocked(_ name: String) throws -> LlamaModel {
        let model = try LlamaModel(path: Fixture.engine(name))
        var m = MemoryBudget(bytes: 1 << 30)
        m.wholeTableLimit = 0
        m.tableBlockBytes = 3 * model.description.hiddenSize * 4
        model.memory = m
        #expect(!model.keepsTablesWhole)
        return model
    }

    func batch(_ g: Golden) throws -> TokenBatch {
        let ids = try g.ints("tokens").map(Int32.init)
        let s = g.shape("tokens")
        return try TokenBatch((0..<s[0]).map { b in Array(ids[(b * s[1])..<((b + 1) * s[1])]) })
    }

    @Test(arguments: TinyModelGoldenTests.cases) func blockedHeadMatchesTransformers(_ name: String) throws {
        let model = try blocked(name)
        #expect(try model.headTable().blockRows == 3)
        let g = try Golden(Fixture.engine(name) + "/golden.safetensors")
        let b = try batch(g)
        #expect(relativeError(try model.logits(b).values, try g.floats("logits")) < 1e-5)
        let ref = try g.doubles("loss")[0]
        let loss = try model.loss(b).loss
        #expect(abs(loss - ref) / ref < 1e-5, "loss \(loss) vs \(ref)")

        let consumer = LayersOnly()
        let result = try model.backward(b, consumer: consumer)
        #expect(abs(result.loss - ref) / ref < 1e-5)
        let d = model.description
        let expected = g.checkpoint.tensorNames.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) }
            .filter { $0 != d.name(.embedding) && $0 != d.name(.lmHead) }
        #expect(Set(consumer.gradients.keys) == Set(expected))
        for n in expected {
            guard let got = consumer.gradients[n] else { continue }
            let e = relativeError(got.gradient.values, try g.floats("grad." + n))
            #expect(e < 1e-4, "\(n): gradient relative error \(e)")
            let f = relativeError(got.fisher!.values, try g.floats("fisher." + n))
            #expect(f < 1e-4, "\(n): Fisher relative error \(f)")
        }
    }

    /// Wanting the head's gradient brings the whole head back (same results as whole tables).
    @Test func headGradientStillComesWhenWanted() throws {
        let model = try blocked("mha-untied-bias")
        let g = try Golden(Fixture.engine("mha-untied-bias") + "/golden.safetensors")
        let collector = GradientCollector(fisher: true)
        try model.backward(try batch(g), consumer: collector)
        let head = model.description.name(.lmHead), embedding = model.description.name(.embedding)
        for n in [head, embedding] {
            let got = try #require(collector.gradients[n])
            #expect(relativeError(got.gradient.values, try g.floats("grad." + n)) < 1e-4, "\(n)")
        }
    }

    /// The per-token embedding rows are the stored rows exactly.
    @Test func gatheredEmbeddingRowsAreTheStoredRows() throws {
        let model = try blocked("gqa-tied-llama3")
        let tokens: [Int32] = [5, 0, 5, Int32(model.description.vocabSize - 1)]
        let rows = try model.embed(tokens)
        let whole = try model.embedding()
        for (r, t) in tokens.enumerated() { #expect(rows.row(r) == whole.row(Int(t))) }
    }

    /// A pass that cannot fit the limit is refused before it starts, naming both sizes.
    @Test func aPassOverTheLimitIsRefused() throws {
        let model = try LlamaModel(path: Fixture.engine("mha-untied-bias"))
        model.memory = MemoryBudget(bytes: 1000)
        #expect(throws: CheckpointError.self) { try model.loss(try TokenBatch([[1, 2, 3, 4]])) }
    }
}
