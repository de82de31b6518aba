import Testing
import CheckpointCore
import Engine
import ShearsJSON
import ShearsPipeline
import Tokenizers

/// The zero-shot suite on the committed excerpts (Fixtures/zero-shot, a few rows per task) against
/// lm-eval 0.4.13's own output for them on austen-llama (Tools/make-zero-shot-goldens): the
/// request strings byte for byte, lm-eval's token ids (with left truncation at the model's 512
/// tokens), each choice's log-likelihood and the metrics.
@Suite struct ZeroShotTests {
    static let folder = fixtures + "/zero-shot"
    static let model = fixtures + "/models/austen-llama"

    struct Golden {
        let tasks: JSONObject
        init() throws {
            let v = try JSONValue.parse(try FileSystem.readFile(ZeroShotTests.folder + "/goldens.json"))
            tasks = v["tasks"]!.objectValue!
        }
        func items(_ t: ZeroShotTask) -> [JSONValue] { tasks[t.name]!["items"]!.arrayValue! }
    }

    static func ids(_ v: JSONValue?) -> [Int32] { v!.arrayValue!.map { Int32($0.intValue!) } }

    @Test func promptsAndChoicesAreLMEvalsByteForByte() throws {
        let g = try Golden()
        for task in ZeroShotTask.allCases {
            let data = try TaskData(task: task, folder: Self.folder)
            let golden = g.items(task)
            #expect(data.items.count == golden.count && data.rowCount == golden.count, "\(task)")
            for (item, gi) in zip(data.items, golden) {
                let reqs = gi["requests"]!.arrayValue!
                #expect(item.requests.count == reqs.count, "\(task)")
                for (r, gr) in zip(item.requests, reqs) {
                    #expect(Array(r.context.utf8) == Array(gr["context"]!.stringValue!.utf8), "\(task) context")
                    #expect(Array(r.continuation.utf8) == Array(gr["continuation"]!.stringValue!.utf8), "\(task) continuation")
                }
                #expect(item.gold == gi["gold"]!.intValue, "\(task) gold")
            }
        }
    }

    @Test func tokenIdsAreLMEvalsIncludingLeftTruncation() throws {
        let g = try Golden()
        let tokenizer = try ModelSource.open(Self.model).tokenizer()
        let encoder = RequestEncoder(tokenizer: tokenizer, addSpecialTokens: true, maxLength: 512)
        var truncated = 0
        for task in ZeroShotTask.allCases {
            let data = try TaskData(task: task, folder: Self.folder)
            for (item, gi) in zip(data.items, g.items(task)) {
                for (r, gr) in zip(item.requests, gi["requests"]!.arrayValue!) {
                    let e = try encoder.encode(context: r.context, continuation: r.continuation)
                    #expect(e.continuation == Self.ids(gr["continuation_ids"]), "\(task)")
                    #expect(e.context == Self.ids(gr["truncated_context_ids"]), "\(task)")
                    if Self.ids(gr["context_ids"]).count != e.context.count { truncated += 1 }
                }
            }
        }
        // The long BoolQ passage is cut from the left for both of its choices.
        #expect(truncated == 2)
    }

    @Test func scoresMatchLMEvalOnTheTinyModel() throws {
        let g = try Golden()
        let source = try ModelSource.open(Self.model)
        let model = try source.engineModel()
        // A small batch so that the excerpts span several batches.
        let scorer = ZeroShotScorer(model: model, tokenizer: try source.tokenizer(), tokensPerBatch: 700)
        #expect(scorer.encoder.maxLength == 512)
        let report = try ZeroShotEvaluation(tasks: ZeroShotTask.allCases, dataFolder: Self.folder).run(scorer)
        for r in report.results {
            let gt = g.tasks[r.task.name]!
            for (s, gi) in zip(r.scores, g.items(r.task)) {
                for (ll, gr) in zip(s.logLikelihoods, gi["requests"]!.arrayValue!) {
                    let expected = gr["loglikelihood"]!.doubleValue!
                    #expect(abs(ll - expected) < 1e-4, "\(r.task): \(ll) vs lm-eval \(expected)")
                    // The exact value (transformers in float64 on the same ids): lm-eval's float32
                    // value is within 3.2e-5 of it here, shears' within 3.7e-5 when measured.
                    let exact = gr["loglikelihood_float64"]!.doubleValue!
                    #expect(abs(ll - exact) < 1e-4, "\(r.task): \(ll) vs float64 \(exact)")
                }
                #expect(s.greedy == gi["requests"]!.arrayValue!.map { $0["greedy"]!.boolValue! }, "\(r.task)")
            }
            #expect(r.acc == gt["acc"]!.doubleValue!, "\(r.task)")
            #expect(abs(r.accStderr - gt["acc_stderr"]!.doubleValue!) < 1e-12, "\(r.task)")
            if r.task.reportsNormalizedAccuracy {
                #expect(r.accNorm == gt["acc_norm"]!.doubleValue!, "\(r.task)")
                #expect(abs(r.accNormStderr! - gt["acc_norm_stderr"]!.doubleValue!) < 1e-12, "\(r.task)")
            } else {
                #expect(r.accNorm == nil && gt["acc_norm"]!.isNull)
            }
        }
    }

    /// The shared prefix is only a saving: scoring each sequence alone gives the same values.
    @Test func sharedPrefixEqualsSeparateSequences() throws {
        let model = try ModelSource.open(Self.model).engineModel()
        let a: [Int32] = [5, 17, 230, 41, 990, 12], b: [Int32] = [5, 17, 230, 7, 7], c: [Int32] = [5, 17, 230, 41, 3000, 1, 2]
        let shared = try model.continuationLogLikelihoods([
            SharedPrefix(prefix: [5, 17, 230], suffixes: [[41, 990, 12], [7, 7], [41, 3000, 1, 2]], scored: [4, 2, 5]),
        ])[0]
        let alone = try model.continuationLogLikelihoods([
            SharedPrefix(prefix: [], suffixes: [a], scored: [4]), SharedPrefix(prefix: [], suffixes: [b], scored: [2]),
            SharedPrefix(prefix: [], suffixes: [c], scored: [5]),
        ]).map { $0[0] }
        for (x, y) in zip(shared, alone) { #expect(abs(x.logLikelihood - y.logLikelihood) < 1e-4 && x.greedy == y.greedy) }
        // The same sums from the causal-LM loss over whole sequences (all tokens after the first scored).
        let full = try model.continuationLogLikelihoods([SharedPrefix(prefix: [], suffixes: [a], scored: [a.count - 1])])[0][0]
        let loss = try model.loss(TokenBatch([a]))
        #expect(abs(-full.logLikelihood - loss.nllSum) < 1e-3)
        #expect(throws: CheckpointError.self) {
            try model.continuationLogLikelihoods([SharedPrefix(prefix: [1], suffixes: [[]], scored: [1])])
        }
    }

    @Test func taskDefinitionsRejectBadRows() throws {
        #expect(try ZeroShotTask.parseList("all") == ZeroShotTask.allCases)
        #expect(try ZeroShotTask.parseList("piqa,arc_easy,piqa") == [.piqa, .arcEasy])
        #expect(throws: CheckpointError.self) { try ZeroShotTask.parseList("mmlu") }
        let bad: [(ZeroShotTask, String)] = [
            (.winogrande, #"{"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"}"#),
            (.arcEasy, #"{"question": "q", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "B"}"#),
            (.boolq, #"{"question": "q", "passage": "p"}"#),
            (.hellaswag, #"{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["x"], "label": "one"}"#),
        ]
        for (task, row) in bad {
            #expect(throws: CheckpointError.self) {
                _ = try TaskData(task: task, bytes: Array(row.utf8), path: "t.jsonl", sha256: "")
            }
        }
        #expect(throws: (any Error).self) { _ = try TaskData(task: .piqa, folder: "/nonexistent-task-folder") }
    }
}
