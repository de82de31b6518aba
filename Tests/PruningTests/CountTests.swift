import Testing
import ModelArchitecture
@testable import Pruning

@Suite struct CountTests {
    static let llama7B = try! ModelDescription.uniform(layers: 32, hiddenSize: 4096, attentionHeads: 32, keyValueHeads: 32, headDim: 128,
                                    intermediateSize: 11008, vocabSize: 32000)
    static let llama3_8B = try! ModelDescription.uniform(layers: 32, hiddenSize: 4096, attentionHeads: 32, keyValueHeads: 8, headDim: 128,
                                      intermediateSize: 14336, vocabSize: 128256)

    func plan(_ shape: ModelDescription, ratio: Double, gqa: GQAPolicy = .kvGroup, roundTo: Int? = nil) throws -> PruningPlan {
        var s = PruningSettings()
        s.importance = .random
        s.ratio = ratio
        s.gqa = gqa
        s.roundTo = roundTo
        s.attentionLayers = LayerRange(4, 30)
        s.mlpLayers = LayerRange(4, 30)
        s = try s.resolved(for: shape)
        var e = RandomImportance(seed: 42)
        return try Pruner.plan(shape: shape, settings: s, estimator: &e)
    }

    @Test func llama7BClosedForm() throws {
        let p = try plan(Self.llama7B, ratio: 0.25)
        #expect(p.sourceParameters == 6_738_415_616)
        #expect(p.resultParameters == 5_422_977_024)
        #expect(p.layers[4].widths == LayerSizes(numAttentionHeads: 24, numKeyValueHeads: 24, intermediateSize: 8256))
        #expect(p.layers[3].widths == LayerSizes(numAttentionHeads: 32, numKeyValueHeads: 32, intermediateSize: 11008))
        #expect(p.layers[30].keptHeads.count == 32)
    }

    @Test func llama7BTable() throws {
        // llm-pruner.md §1.8: 0.20 → 6 heads and 2202 channels; 0.50 → 16 and 5504.
        let p20 = try plan(Self.llama7B, ratio: 0.20)
        #expect(p20.layers[10].widths.numAttentionHeads == 26 && p20.layers[10].widths.intermediateSize == 8806)
        let p50 = try plan(Self.llama7B, ratio: 0.50)
        #expect(p50.layers[10].widths.numAttentionHeads == 16 && p50.layers[10].widths.intermediateSize == 5504)
        // --round-to 128 rounds the kept width up: 8806 → 8832.
        let r = try plan(Self.llama7B, ratio: 0.20, roundTo: 128)
        #expect(r.layers[10].widths.intermediateSize == 8832)
    }

    @Test func llama3KVGroupClosedForm() throws {
        let p = try plan(Self.llama3_8B, ratio: 0.25)
        #expect(p.sourceParameters == 8_030_261_248)
        #expect(p.resultParameters == 6_612_586_496)
        #expect(p.layers[4].widths == LayerSizes(numAttentionHeads: 24, numKeyValueHeads: 6, intermediateSize: 10752))
        // KV group h takes query heads 4h…4h+3.
        for h in 0..<8 where !p.layers[4].keptKeyValueHeads.contains(h) {
            #expect(!p.layers[4].keptHeads.contains(4 * h) && !p.layers[4].keptHeads.contains(4 * h + 3))
        }
    }

    @Test func queryPolicyKeepsKVHeads() throws {
        let p = try plan(Self.llama3_8B, ratio: 0.25, gqa: .query)
        #expect(p.layers[4].widths.numKeyValueHeads == 8 && p.layers[4].widths.numAttentionHeads == 24)
        // Same number removed in every group.
        for g in 0..<8 { #expect(p.layers[4].keptHeads.filter { $0 / 4 == g }.count == 3) }
    }

    @Test func smolLM2Counts() throws {
        // SmolLM2-135M: 30 layers, 576 hidden, 9 heads of 64, 3 KV heads, 1536 MLP, vocab 49152, tied.
        let s = try! ModelDescription.uniform(layers: 30, hiddenSize: 576, attentionHeads: 9, keyValueHeads: 3, headDim: 64, intermediateSize: 1536,
                           vocabSize: 49152, tiedEmbeddings: true)
        #expect(LayerRange.defaultRange(layers: 30) == LayerRange(4, 28))
        let p = try plan(s, ratio: 0.25)
        #expect(p.sourceParameters == 134_515_008)
        // 192 − int(192·0.75) = 48 < 64: no KV group goes at 0.25; 1536 → 1152 channels.
        #expect(p.layers[10].widths == LayerSizes(numAttentionHeads: 9, numKeyValueHeads: 3, intermediateSize: 1152))
        #expect(p.resultParameters == 134_515_008 - 26 * 3 * 576 * 384)
        // Query policy: upstream's count on q (576 − int(576·0.75) = 144 → 2 heads) spread over 3
        // groups removes none at 0.25; at 0.35, 202 → 3 heads → one per group.
        let q = try plan(s, ratio: 0.25, gqa: .query)
        #expect(q.layers[10].widths.numAttentionHeads == 9 && q.layers[10].widths.numKeyValueHeads == 3)
        let q35 = try plan(s, ratio: 0.35, gqa: .query)
        #expect(q35.layers[10].widths.numAttentionHeads == 6 && q35.layers[10].widths.numKeyValueHeads == 3)
        let high = try plan(s, ratio: 0.34)
        #expect(high.layers[10].widths.numKeyValueHeads == 2 && high.layers[10].widths.numAttentionHeads == 6)
    }

    /// `--strategy channel` keeps a multiple of num_attention_heads (transformers' LlamaConfig
    /// refuses any other hidden_size), rounding the kept count up; the extra channels kept are the
    /// next-highest-scoring ones.
    @Test func channelKeepsMultipleOfHeads() throws {
        let smol = try ModelDescription.uniform(layers: 30, hiddenSize: 576, attentionHeads: 9, keyValueHeads: 3, headDim: 64, intermediateSize: 1536,
                              vocabSize: 49152, tiedEmbeddings: true)
        // 84 hidden, 6 heads of 16 (head_dim is independent): neither 75 nor 63 is a multiple of 6.
        let odd = try ModelDescription.uniform(layers: 2, hiddenSize: 84, attentionHeads: 6, keyValueHeads: 2, headDim: 16, intermediateSize: 96, vocabSize: 128)
        // (shape, ratio, naive kept = int(W0·(1 − r)), rounded kept)
        for (shape, ratio, naive, kept) in [(smol, 0.1, 518, 522), (smol, 0.25, 432, 432), (odd, 0.1, 75, 78), (odd, 0.25, 63, 66)] {
            #expect(shape.hiddenSize - UnitCounts.channelsToRemove(initial: shape.hiddenSize, current: shape.hiddenSize, ratio: ratio) == naive)
            var s = PruningSettings()
            s.strategy = .channel
            s.importance = .random
            s.ratio = ratio
            s = try s.resolved(for: shape)
            var e = RandomImportance(seed: 42)
            let p = try Pruner.plan(shape: shape, settings: s, estimator: &e)
            #expect(p.keptHidden.count == kept, "\(shape.hiddenSize) at \(ratio)")
            #expect(p.keptHidden.count % shape.attentionHeads == 0)
            // Score order decides: every kept channel scores at least as high as every removed one.
            let keptMin = p.keptHidden.map { p.hiddenScores[$0] }.min()!
            #expect(p.removedHidden.allSatisfy { p.hiddenScores[$0] <= keptMin })
            #expect(PruningManifest(plan: p, settings: s, sourceFiles: [:], sourceConfig: .null, resultFiles: [:], calibration: nil).json["hidden"]!["round_to"] == .int(Int64(shape.attentionHeads)))
        }
        #expect(UnitCounts.hiddenChannelsToRemove(initial: 576, current: 576, ratio: 0.1, multipleOf: 9) == 54)
        // Never past the current width, never below one multiple.
        #expect(UnitCounts.hiddenChannelsToRemove(initial: 84, current: 84, ratio: 0.01, multipleOf: 6) == 0)
        #expect(UnitCounts.hiddenChannelsToRemove(initial: 84, current: 84, ratio: 0.999, multipleOf: 6) == 78)
    }

    @Test func countsNeverRemoveAGroup() {
        #expect(UnitCounts.unitsToRemove(initialUnits: 2, currentUnits: 2, unitSize: 16, ratio: 0.99) == 1)
        #expect(UnitCounts.mlpChannelsToRemove(initial: 10, current: 10, ratio: 0.999, roundTo: nil) == 9)
        #expect(UnitCounts.channelsToRemove(initial: 4096, current: 4096, ratio: 0.2) == 820)
        #expect(LayerRange.defaultRange(layers: 32) == LayerRange(4, 30) && LayerRange.defaultRange(layers: 2) == LayerRange(0, 2))
        #expect(LayerRange.defaultRange(layers: 22) == LayerRange(4, 20))
    }
}

@Suite struct SettingsTests {
    @Test func rejectsImpossibleCombinations() {
        let shape = CountTests.llama7B
        func fails(_ change: (inout PruningSettings) -> Void) -> Bool {
            var s = PruningSettings()
            change(&s)
            return (try? s.resolved(for: shape)) == nil
        }
        #expect(fails { $0.ratio = 1 })
        #expect(fails { $0.ratio = 0 })
        #expect(fails { $0.uniform = true; $0.attentionLayers = LayerRange(0, 4) })
        #expect(fails { $0.uniform = true; $0.scope = .global })
        #expect(fails { $0.attentionLayers = LayerRange(4, 40) })
        #expect(fails { $0.strategy = .layer })
        #expect(fails { $0.strategy = .layer; $0.keepLayers = 2; $0.removeLayers = 1 })
        #expect(fails { $0.removeLayers = 1 })
        #expect(fails { $0.strategy = .channel; $0.scope = .globalRaw })
        #expect(fails { $0.iterativeSteps = 0 })
        #expect(!fails { $0.strategy = .layer; $0.keepLayers = 30 })
        var s = PruningSettings()
        s.gqa = .query
        #expect((try? s.resolved(for: shape))?.gqa == .kvGroup)  // MHA: the policies coincide
        #expect((try? s.resolved(for: shape))?.effectiveReduction == .sum)
        s.importance = .l2
        #expect(s.effectiveReduction == .mean)
    }
}
