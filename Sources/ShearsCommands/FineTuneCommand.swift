import ArgumentParser
import CheckpointCore
import Engine
import ModelArchitecture
import ShearsJSON
import ShearsPipeline

/// `shears finetune MODEL OUT`: LoRA training on the CPU (LLM-Pruner's recovery stage), merged
/// into a dense checkpoint of MODEL's shapes and dtypes.
public struct FineTuneCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Train LoRA adapters on a model (LLM-Pruner's recovery) and write the model with them merged in.",
        discussion: """
            Data: --data files, each detected on its own: plain text (tokenized with the model's \
            tokenizer, cut into non-overlapping windows of --seq-len tokens), JSONL with a `text` \
            field, or Alpaca records (instruction, input, output; JSONL or a JSON array) in upstream \
            LLM-Pruner's prompt template, trained on the response only; records are cut at --seq-len \
            and batched with right padding. Shuffled per epoch by --seed. Default: the bundled Austen \
            training novels (never the held-out Persuasion).

            Each step runs --batch-size windows as micro-batches of --micro-batch-size (gradient \
            accumulation), the loss being the mean next-token cross-entropy over the batch's predicted \
            tokens (as transformers' Trainer computes it); the gradients' global norm is clipped to \
            --max-grad-norm; AdamW (torch.optim.AdamW: betas 0.9/0.999, eps 1e-8) steps at a rate that \
            rises linearly over --warmup-steps and falls linearly to 0 at the last step.

            The adapters (rank, alpha, dropout; PEFT's initialisation: Kaiming-uniform A, zero B) sit \
            on the --targets projections; only their gradients are computed (never a base weight's). \
            At the end W ← W + (alpha/rank)·B·A is written in each tensor's dtype: OUT is a folder, a \
            .gguf or a .ctz file by its name, with MODEL's shapes, dtypes and configuration.

            --loss distill --teacher MODEL (typically the unpruned model, same tokenizer): per predicted \
            token, (1 − w)·T²·KL(teacher ‖ student) of the next-token distributions at temperature T, \
            plus w·cross-entropy (w = --ce-weight). The teacher runs forward only, layer by layer, on \
            the same batch.

            --init-adapter DIR starts from a PEFT LoRA folder: --lora-rank, --lora-alpha, \
            --lora-dropout and --targets default to its adapter_config.json, and rank, alpha and \
            targets given otherwise are refused. --save-adapter DIR also writes the trained adapter \
            as a PEFT folder that PeftModel.from_pretrained loads onto MODEL.

            When MODEL has a pruning manifest (MODEL/pruning-manifest.json, or \
            NAME.pruning-manifest.json next to a .gguf or .ctz), OUT gets it with a training record \
            appended (data files and SHA-256, settings, steps, tokens, final loss, changed tensors), \
            so that verify OUT --source ORIGINAL --manifest checks it.

            --checkpoint-every N writes the adapters and optimiser state to OUT.finetune-state/ every \
            N steps; rerunning the same command continues from there, bit for bit.

            Exit status: 0 on success, 2 when an input is malformed or missing, 64 for options that \
            cannot apply.
            """)

    @Argument(help: "Model: a folder, an index, a .safetensors or .ctz file (config.json beside it), or a GGUF file.", completion: .file())
    var model: String

    @Argument(help: "Output: a folder, or a .gguf or .ctz file.", completion: .file())
    var output: String

    @Option(help: "Training data file: text, JSONL (`text` or Alpaca records) or a JSON array of Alpaca records (repeat for several). Default: the bundled Austen training novels.", completion: .file())
    var data: [String] = []

    @Option(help: "Training method (lora).")
    var method = "lora"

    @Option(name: .customLong("lora-rank"), help: "Adapter rank (default: 8, or the --init-adapter folder's).")
    var loraRank: Int?

    @Option(name: .customLong("lora-alpha"), help: "Adapter alpha, scale = alpha / rank (default: 16, or the --init-adapter folder's).")
    var loraAlpha: Float?

    @Option(name: .customLong("lora-dropout"), help: "Dropout of the adapters' inputs, in [0, 1) (default: 0.05, or the --init-adapter folder's).")
    var loraDropout: Float?

    @Option(help: "Comma-separated projections to adapt, as PEFT names them (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj for LLaMA); default: all seven, or the --init-adapter folder's.")
    var targets: String?

    @Option(help: "Peak learning rate.")
    var lr = 1e-4

    @Option(help: "Optimiser steps (default: --epochs passes over the data).")
    var steps: Int?

    @Option(help: "Passes over the data when --steps is not given.")
    var epochs = 1

    @Option(name: .customLong("batch-size"), help: "Windows per optimiser step.")
    var batchSize = 64

    @Option(name: .customLong("micro-batch-size"), help: "Windows run together (gradient accumulation = batch / micro).")
    var microBatchSize = 4

    @Option(name: .customLong("seq-len"), help: "Tokens per training window.")
    var seqLen = 256

    @Option(name: .customLong("warmup-steps"), help: "Steps of linear learning-rate warm-up.")
    var warmupSteps = 100

    @Option(help: "Seed of the adapters' initialisation, the data order and the dropout masks.")
    var seed: UInt64 = 0

    @Option(name: .customLong("max-grad-norm"), help: "Clip the gradients' global norm to this (0: no clipping).")
    var maxGradNorm = 1.0

    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay.")
    var weightDecay = 0.0

    @Option(help: "Loss: ce (next-token cross-entropy) or distill (KL divergence to --teacher's next-token distribution at --temperature, times T², mixed with --ce-weight of cross-entropy).")
    var loss = "ce"

    @Option(help: "Teacher model for --loss distill.", completion: .file())
    var teacher: String?

    @Option(help: "Distillation temperature.")
    var temperature = 1.0

    @Option(name: .customLong("ce-weight"), help: "Weight of cross-entropy mixed into the distillation loss, in [0, 1].")
    var ceWeight = 0.0

    @Option(name: .customLong("eval-text"), help: "Held-out text: perplexity (60 windows of 128 tokens) every --eval-every steps and at the end.", completion: .file())
    var evalText: String?

    @Option(name: .customLong("eval-every"), help: "Steps between held-out evaluations (0: at the end only).")
    var evalEvery = 0

    @Option(name: .customLong("checkpoint-every"), help: "Steps between resumable states in OUT.finetune-state/ (0: none).")
    var checkpointEvery = 0

    @Option(name: .customLong("activation-memory"), help: ArgumentHelp("Bytes of projection outputs kept between the forward and backward passes (saves recomputing them; same results). Default 0: every layer is recomputed, as prune does (the smallest footprint); a size such as 512MiB keeps the last layers' projections (on SmolLM2-135M a quarter of the memory limit gave 12% more speed for 640 MiB more).", valueName: "size"))
    var activationMemory: SizeArgument?

    @Option(name: .customLong("save-adapter"), help: "Also write the trained adapter as a PEFT folder (adapter_config.json, adapter_model.safetensors).", completion: .directory)
    var saveAdapter: String?

    @Option(name: .customLong("init-adapter"), help: "Start from the A and B of a PEFT LoRA adapter folder instead of PEFT's initialisation (its rank, alpha, dropout and targets are the defaults).", completion: .directory)
    var initAdapter: String?

    @Option(help: "Threads for OpenBLAS and the engine.")
    var threads: Int?

    @OptionGroup var memory: MemoryLimitOption

    @Flag(help: "Replace an existing checkpoint at OUT.")
    var force = false

    @Flag(help: "Print a JSON summary on standard output.")
    var json = false

    public init() {}

    public func validate() throws {
        guard method == "lora" else { throw ValidationError("--method must be lora (the only method for now)") }
        guard FineTuneSettings.Loss(rawValue: loss) != nil else { throw ValidationError("--loss must be ce or distill") }
        if loss == "distill" && teacher == nil { throw ValidationError("--loss distill needs --teacher MODEL") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// The roles of PEFT module names, through the model's family (`q_proj` is the last part of
    /// the family's query projection name before `.weight`).
    static func roles(_ list: String, model: ModelDescription) throws -> [TensorRole] {
        var byName: [String: TensorRole] = [:]
        for role in TensorRole.projections {
            let full = model.name(role, .weight, layer: 0)
            let module = full.hasSuffix(".weight") ? String(full.dropLast(7)) : full
            byName[String(module.split(separator: ".").last ?? Substring(module))] = role
        }
        var out: [TensorRole] = []
        for name in list.split(separator: ",").map({ $0.trimmingCharacters() }) where !name.isEmpty {
            guard let r = byName[name] else {
                throw CheckpointError(.invalidUsage, "--targets: '\(name)' is not a projection of this model (allowed: \(TensorRole.projections.compactMap { r in byName.first { $0.value == r }?.key }.joined(separator: ",")))")
            }
            if !out.contains(r) { out.append(r) }
        }
        return out
    }

    public func run() throws {
        do {
            memory.apply()
            if let t = threads { Parallel.setThreads(t) }
            var job = FineTuneJob(source: model, output: output)
            var s = FineTuneSettings()
            let description = initAdapter != nil || targets != nil ? try ModelSource.open(model).description : nil
            // With --init-adapter, the folder's adapter settings are the defaults; the job refuses
            // a rank, alpha or targets that differ from the folder's.
            let base = try initAdapter.map { try FineTuneJob.adapterSettings(folder: $0, model: description!) } ?? LoRASettings()
            s.lora = LoRASettings(rank: loraRank ?? base.rank, alpha: loraAlpha ?? base.alpha, dropout: loraDropout ?? base.dropout,
                                  targets: base.targets)
            if let targets { s.lora.targets = try Self.roles(targets, model: description!) }
            s.learningRate = lr
            s.steps = steps
            s.epochs = epochs
            s.batchSize = batchSize
            s.microBatchSize = microBatchSize
            s.seqLen = seqLen
            s.warmupSteps = warmupSteps
            s.seed = seed
            s.maxGradNorm = maxGradNorm
            s.weightDecay = weightDecay
            s.loss = FineTuneSettings.Loss(rawValue: loss)!
            s.temperature = temperature
            s.ceWeight = ceWeight
            s.evalEvery = evalEvery
            s.checkpointEvery = checkpointEvery
            job.settings = s
            job.dataFiles = data
            job.evalText = evalText
            job.teacher = teacher
            job.force = force
            job.activationMemory = activationMemory?.bytes ?? 0
            job.initAdapterFolder = initAdapter
            job.saveAdapterFolder = saveAdapter
            let result = try job.run { event in
                switch event {
                case .message(let m): StandardError.print(m)
                case .step(let k, let total, let loss, let lr, let tps, let left):
                    StandardError.print("finetune: step \(k)/\(total) loss \(String(format4: loss)) lr \(lr) \(Int(tps)) tokens/s ETA \(Int(left)) s")
                case .evaluation(let k, let tokens, let ppl):
                    StandardError.print("finetune: step \(k) (\(tokens) tokens) held-out perplexity \(String(format4: ppl))")
                case .checkpoint(let k, let path):
                    StandardError.print("finetune: step \(k) state written to \(path)")
                }
            }
            StandardError.print(memory.report("finetune"))
            if json {
                let obj: JSONValue = .object(JSONObject([
                    ("output", .string(output)),
                    ("steps", .int(Int64(result.steps))),
                    ("tokens", .int(Int64(result.tokens))),
                    ("final_loss", .double(result.finalLoss)),
                    ("losses", .array(result.losses.map { .double($0) })),
                    ("resumed_from", .int(Int64(result.resumedFrom))),
                    ("changed_tensors", .int(Int64(result.changedTensors.count))),
                    ("evaluations", .array(result.evaluations.map { .object(JSONObject([("step", .int(Int64($0.step))), ("perplexity", .double($0.perplexity))])) })),
                    ("output_bytes", .int(Int64(result.outputBytes))),
                    ("trained_tokens", .int(Int64(result.trainedTokens))),
                    ("data", .array(result.data.map { f in .object(JSONObject([
                        ("file", .string(f.file)), ("format", .string(f.format.rawValue)), ("examples", .int(Int64(f.examples))),
                        ("skipped", .int(Int64(f.skipped))), ("sha256", .string(f.sha256))])) })),
                    ("manifest", result.manifestPath.map(JSONValue.string) ?? .null),
                    ("adapter", saveAdapter.map(JSONValue.string) ?? .null),
                ]))
                print(String(decoding: obj.serializedBytes(style: .pretty), as: UTF8.self))
            } else {
                print("finetune: \(result.steps) steps, \(result.tokens) tokens, final loss \(String(format4: result.finalLoss)); \(result.changedTensors.count) tensors merged into \(output)"
                      + (result.manifestPath.map { "; manifest with the training record: \($0)" } ?? "")
                      + (saveAdapter.map { "; PEFT adapter: \($0)" } ?? ""))
            }
        } catch { throw report(error) }
    }
}

fileprivate extension String {
    /// Four decimals.
    init(format4 x: Double) {
        let r = (x * 10_000).rounded() / 10_000
        self = "\(r)"
    }

    func trimmingCharacters() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

fileprivate extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingCharacters() }
}
