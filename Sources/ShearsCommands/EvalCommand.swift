import ArgumentParser
import CheckpointCore
import Engine
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
            tokenizer.json (special tokens such as BOS are added only with --add-special-tokens). \
            The ids are cut into non-overlapping windows of --seq-len tokens, the tail that does not \
            fill a window is dropped, and each window predicts its own tokens 2 … seq-len. \
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

    @Flag(name: .customLong("add-special-tokens"), help: "Let the tokenizer's post-processor add its special tokens (such as BOS) to the joined text.")
    var addSpecialTokens = false

    @Flag(help: "Print {\"perplexity\", \"nll\", \"tokens\", \"windows\", \"seq_len\"} as JSON.")
    var json = false

    @Option(name: .customLong("logits-out"), help: "Also write the first window's tokens (FILE.tokens.json) and logits ([seq-len, vocab] F32 safetensors, tensor 'logits') to cross-check against another implementation.", completion: .file())
    var logitsOut: String?

    public init() {}

    public func validate() throws {
        guard !text.isEmpty || zeroShot.tasks != nil else { throw ValidationError("give at least one --text FILE, or --tasks") }
        if samplesOut != nil && zeroShot.tasks == nil { throw ValidationError("--samples-out goes with --tasks") }
        guard seqLen >= 2 else { throw ValidationError("--seq-len must be at least 2") }
        if let m = maxWindows, m < 1 { throw ValidationError("--max-windows must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    public func run() throws {
        do {
            let (model, tokenizer) = try engine.load()
            let report = try zeroShot.run(model: model, tokenizer: tokenizer)
            if let report, let samplesOut { try AtomicFile.write(Array(report.samplesJSONL.utf8), to: samplesOut) }
            guard !text.isEmpty else {
                if let report { StandardOutput.write(json ? report.json.serialized() + "\n" : ZeroShotTable.render(report)) }
                return
            }
            var bytes: [UInt8] = []
            for path in text { bytes += try FileSystem.readFile(path, limit: 1 << 31) }
            let ids = tokenizer.encode(bytes: bytes, addSpecialTokens: addSpecialTokens)
            guard ids.count >= seqLen else {
                throw CheckpointError(.invalidArgument, "the text has \(ids.count) tokens, fewer than one window of --seq-len \(seqLen)")
            }
            var progress: Progress? = nil
            let result = try Perplexity.evaluate(model, tokens: ids, seqLen: seqLen, maxWindows: maxWindows, batchSize: batchSize) { done, total in
                if progress == nil { progress = Progress(totalItems: total, label: "eval: windows") }
                progress?.update(done)
            }
            progress?.finish()
            StandardError.print(engine.memory.report("eval"))
            if let logitsOut {
                let window = Array(ids[0..<seqLen])
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
                    ("seq_len", .int(Int64(result.seqLen))),
                ] + (report.map { [("zero_shot", $0.json)] } ?? []))
                StandardOutput.write(JSONValue.object(o).serialized() + "\n")
            } else {
                StandardOutput.write("perplexity \(Format.fixed(result.perplexity, 4)) (mean NLL \(Format.fixed(result.nll, 6)) over \(result.tokens) predicted tokens, \(result.windows) windows of \(result.seqLen))\n")
                if let report { StandardOutput.write("\n" + ZeroShotTable.render(report)) }
            }
        } catch {
            throw report(error)
        }
    }
}
