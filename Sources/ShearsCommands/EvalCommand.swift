import ArgumentParser
import CheckpointCore
import Engine
import ShearsBLAS
import ShearsPipeline
import ShearsJSON
import Tokenizers

/// `shears eval MODEL --text FILE`: perplexity by LLM-Pruner's protocol; `--tasks`: zero-shot
/// accuracy as lm-eval-harness 0.4 computes it. Both in one run when both are given.
public struct EvalCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a model's perplexity on text files (LLM-Pruner's protocol) and zero-shot task accuracy.",
        discussion: """
            The --text files are joined as given (no separator) and tokenized once with the model's \
            tokenizer.json, without special tokens (or --tokens gives the ids). \
            The ids are cut into non-overlapping windows of --seq-len tokens, the tail that does not \
            fill a window is dropped, and each window predicts its own tokens 2 … seq-len. \
            With BOS (--bos window, or --bos auto when the tokenizer's configuration adds BOS: GGUF \
            tokenizer.ggml.add_bos_token, tokenizer_config.json add_bos_token, or a post-processor \
            that puts BOS first, as Gemma's does), each window is BOS followed by the next seq-len − 1 \
            tokens and predicts all of them. The protocol used is printed. \
            Perplexity = exp(mean negative log-likelihood over every predicted token). LLM-Pruner's \
            paper numbers use --seq-len 128.

            Weights stay memory-mapped and are converted to F32 one layer at a time; compute is F32 \
            with OpenBLAS. Progress goes to standard error.

            --tasks scores multiple-choice tasks as lm-eval-harness 0.4.13 defines them (prompts, \
            choices, targets, the " " delimiter, HellaSwag preprocessing, WinoGrande partial scoring; \
            acc = argmax log-likelihood, acc_norm = argmax log-likelihood / choice length in \
            characters; stderr = sample standard deviation / sqrt(n)) over the JSONL files of \
            Tools/fetch-tasks. ARC and OpenBookQA are their validation splits (lm-eval uses test). \
            The requests are tokenized as lm-eval's Hugging Face backend does (no BOS except Gemma). \
            --samples-out writes one JSON line per item: per-choice log-likelihoods, prediction, gold.

            Exit status: 0 on success, 2 when an input is malformed or missing.
            """)

    @OptionGroup var engine: EngineArguments

    @OptionGroup var zeroShot: ZeroShotArguments

    @Option(name: .customLong("samples-out"), help: "With --tasks: write per-item results (JSON lines) to this file.", completion: .file())
    var samplesOut: String?

    @Option(help: "A text file to evaluate on (repeat for several; joined in the order given).", completion: .file())
    var text: [String] = []

    @Option(name: .customLong("seq-len"), help: "Tokens per window.")
    var seqLen = 128

    @Option(name: .customLong("max-windows"), help: "Evaluate only the first N windows.")
    var maxWindows: Int?

    @Option(name: .customLong("batch-size"), help: "Windows run together.")
    var batchSize = 4

    @Flag(name: .customLong("add-special-tokens"), help: "Let the tokenizer's post-processor add its special tokens (such as BOS) to the joined text (once; implies --bos none unless --bos is given).")
    var addSpecialTokens = false

    @Option(name: .customLong("tokens"), help: "A JSON array of token ids to evaluate on instead of --text (no tokenizer needed).", completion: .file())
    var tokens: String?

    enum BOSProtocol: String, ExpressibleByArgument, CaseIterable {
        case auto, none, window
    }

    @Option(name: .customLong("bos"), help: "BOS at the start of every window: auto (where the tokenizer's configuration adds BOS), none, window.")
    var bos: BOSProtocol?

    @Flag(help: "Print {\"perplexity\", \"nll\", \"tokens\", \"windows\", \"seq_len\"} as JSON.")
    var json = false

    @Option(name: .customLong("logits-out"), help: "Also write the first window's tokens (FILE.tokens.json) and logits ([seq-len, vocab] F32 safetensors, tensor 'logits') to cross-check against another implementation.", completion: .file())
    var logitsOut: String?

    public init() {}

    public func validate() throws {
        guard !text.isEmpty || tokens != nil || zeroShot.tasks != nil else { throw ValidationError("give at least one --text FILE, --tokens FILE or --tasks") }
        if tokens != nil && !text.isEmpty { throw ValidationError("give either --text or --tokens, not both") }
        if samplesOut != nil && zeroShot.tasks == nil { throw ValidationError("--samples-out goes with --tasks") }
        guard seqLen >= 2 else { throw ValidationError("--seq-len must be at least 2") }
        if let m = maxWindows, m < 1 { throw ValidationError("--max-windows must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    public func run() throws {
        do {
            engine.memory.apply()
            if let t = engine.threads { Parallel.setThreads(t) }
            let source = try ModelSource.open(engine.model)
            let model = try source.engineModel()
            var report: ZeroShotReport? = nil
            if zeroShot.tasks != nil {
                report = try zeroShot.run(model: model, tokenizer: try source.tokenizer())
                if let report, let samplesOut { try AtomicFile.write(Array(report.samplesJSONL.utf8), to: samplesOut) }
            }
            guard !text.isEmpty || tokens != nil else {
                if let report { StandardOutput.write(json ? report.json.serialized() + "\n" : ZeroShotTable.render(report)) }
                return
            }
            let ids: [Int32]
            if let tokens {
                ids = try Self.readTokens(tokens, vocabulary: model.description.vocabSize)
            } else {
                let tokenizer = try source.tokenizer()
                var bytes: [UInt8] = []
                for path in text { bytes += try FileSystem.readFile(path, limit: 1 << 31) }
                ids = tokenizer.encode(bytes: bytes, addSpecialTokens: addSpecialTokens)
            }
            let setting = source.bosSetting()
            let mode = bos ?? (addSpecialTokens ? .none : .auto)
            var bosID: Int32? = nil
            switch mode {
            case .none: break
            case .window:
                guard let id = setting.id else { throw CheckpointError(.invalidArgument, "--bos window: the model names no BOS token (\(setting.source))") }
                bosID = id
            case .auto:
                if setting.adds { bosID = setting.id }
            }
            let protocolName = bosID.map { "BOS \($0) at the start of every window" } ?? "no BOS"
            StandardError.write("eval: \(protocolName) (--bos \(mode.rawValue); \(setting.source)\(setting.adds ? " adds BOS" : ""))\n")
            guard ids.count >= (bosID == nil ? seqLen : seqLen - 1) else {
                throw CheckpointError(.invalidArgument, "the text has \(ids.count) tokens, fewer than one window of --seq-len \(seqLen)")
            }
            var progress: Progress? = nil
            let result = try Perplexity.evaluate(model, tokens: ids, seqLen: seqLen, maxWindows: maxWindows, batchSize: batchSize, bos: bosID) { done, total in
                if progress == nil { progress = Progress(totalItems: total, label: "eval: windows") }
                progress?.update(done)
            }
            progress?.finish()
            StandardError.print(engine.memory.report("eval"))
            if let logitsOut {
                let window = bosID.map { [$0] + Array(ids[0..<(seqLen - 1)]) } ?? Array(ids[0..<seqLen])
                let logits = try model.logits(TokenBatch([window]))
                try SafetensorsWriter.write(path: logitsOut, tensors: [TensorSpec(name: "logits", dtype: .f32, shape: [logits.rows, logits.cols])]) { _ throws(CheckpointError) in
                    .floats(logits.values)
                }
                try AtomicFile.write(Array(JSONValue.array(window.map { .int(Int64($0)) }).serialized().utf8) + [0x0A], to: logitsOut + ".tokens.json")
            }
            if json {
                let o = JSONObject([
                    ("perplexity", .double(result.perplexity)), ("nll", .double(result.nll)),
                    ("tokens", .int(Int64(result.tokens))), ("windows", .int(Int64(result.windows))),
                    ("seq_len", .int(Int64(result.seqLen))), ("bos", bosID.map { .int(Int64($0)) } ?? .null),
                ] + (report.map { [("zero_shot", $0.json)] } ?? []))
                StandardOutput.write(JSONValue.object(o).serialized() + "\n")
            } else {
                StandardOutput.write("perplexity \(Format.fixed(result.perplexity, 4)) (mean NLL \(Format.fixed(result.nll, 6)) over \(result.tokens) predicted tokens, \(result.windows) windows of \(result.seqLen), \(protocolName))\n")
                if let report { StandardOutput.write("\n" + ZeroShotTable.render(report)) }
            }
        } catch {
            throw report(error)
        }
    }

    /// Token ids from a JSON array, each inside the vocabulary.
    static func readTokens(_ path: String, vocabulary: Int) throws -> [Int32] {
        let v: JSONValue
        do { v = try JSONValue.parse(try FileSystem.readFile(path, limit: 1 << 30)) } catch let e as CheckpointError where e.code != .io {
            throw CheckpointError(.invalidArgument, "--tokens: not valid JSON: \(e.message)", path: path)
        }
        guard let a = v.arrayValue else { throw CheckpointError(.invalidArgument, "--tokens must hold a JSON array of token ids", path: path) }
        var out: [Int32] = []
        out.reserveCapacity(a.count)
        for (i, x) in a.enumerated() {
            guard let id = x.intValue, id >= 0, id < vocabulary else {
                throw CheckpointError(.invalidArgument, "--tokens[\(i)] is \(x.serialized()), not a token id below the vocabulary size \(vocabulary)", path: path)
            }
            out.append(Int32(id))
        }
        return out
    }
}
