import CheckpointCore
import ShearsJSON

/// What a training run (`shears finetune`) did to a model: the manifest's `training` entry
/// (formats/manifest.md "training"). Plain values, so that the job fills it from its settings.
public struct TrainingRecord: Sendable, Equatable {
    /// One data file: its base name ("austen-calibration" for the bundled novels), SHA-256, the
    /// detected format (`text`, `jsonl-text`, `jsonl-alpaca`, `json-alpaca`), examples and tokens.
    public struct DataFile: Sendable, Equatable {
        public var file: String
        public var sha256: String
        public var format: String
        public var examples: Int
        public var tokens: Int

        public init(file: String, sha256: String, format: String, examples: Int, tokens: Int) {
            self.file = file
            self.sha256 = sha256
            self.format = format
            self.examples = examples
            self.tokens = tokens
        }
    }

    /// The teacher of a distillation run: where it was given and its data files' SHA-256.
    public struct Teacher: Sendable, Equatable {
        /// The teacher's path as given (its base name is what identifies it; the files' digests are the proof).
        public var model: String
        public var files: [String: String]

        public init(model: String, files: [String: String]) {
            self.model = model
            self.files = files
        }
    }

    /// The settings that shaped the result.
    public struct Settings: Sendable, Equatable {
        public var rank: Int
        public var alpha: Double
        public var dropout: Double
        /// PEFT module names (`q_proj`, …) in the family's projection order.
        public var targets: [String]
        public var learningRate: Double
        /// `--steps` when given, else nil.
        public var steps: Int?
        /// `--epochs` when given, else nil.
        public var epochs: Double?
        public var batchSize: Int
        public var microBatchSize: Int
        public var seqLen: Int
        public var warmupSteps: Int
        public var weightDecay: Double
        public var maxGradNorm: Double
        public var seed: UInt64
        /// `ce` or `distill`.
        public var loss: String
        public var teacher: Teacher?
        public var temperature: Double?
        /// The weight of cross-entropy mixed into the distillation loss (nil: none).
        public var ceWeight: Double?
        /// Any further settings, recorded as given.
        public var extra: [(String, JSONValue)] = []

        public init(rank: Int, alpha: Double, dropout: Double, targets: [String], learningRate: Double, steps: Int?, epochs: Double?,
                    batchSize: Int, microBatchSize: Int, seqLen: Int, warmupSteps: Int, weightDecay: Double, maxGradNorm: Double,
                    seed: UInt64, loss: String, teacher: Teacher? = nil, temperature: Double? = nil, ceWeight: Double? = nil) {
            self.rank = rank
            self.alpha = alpha
            self.dropout = dropout
            self.targets = targets
            self.learningRate = learningRate
            self.steps = steps
            self.epochs = epochs
            self.batchSize = batchSize
            self.microBatchSize = microBatchSize
            self.seqLen = seqLen
            self.warmupSteps = warmupSteps
            self.weightDecay = weightDecay
            self.maxGradNorm = maxGradNorm
            self.seed = seed
            self.loss = loss
            self.teacher = teacher
            self.temperature = temperature
            self.ceWeight = ceWeight
        }

        public static func == (a: Settings, b: Settings) -> Bool { a.json == b.json }

        public var json: JSONValue {
            .object(JSONObject([
                ("rank", .int(Int64(rank))), ("alpha", .double(alpha)), ("dropout", .double(dropout)),
                ("targets", .array(targets.map(JSONValue.string))), ("learning_rate", .double(learningRate)),
                ("steps", steps.map { .int(Int64($0)) } ?? .null), ("epochs", epochs.map(JSONValue.double) ?? .null),
                ("batch_size", .int(Int64(batchSize))), ("micro_batch_size", .int(Int64(microBatchSize))),
                ("seq_len", .int(Int64(seqLen))), ("warmup_steps", .int(Int64(warmupSteps))),
                ("weight_decay", .double(weightDecay)), ("max_grad_norm", .double(maxGradNorm)), ("seed", .uint(seed)),
                ("loss", .string(loss)),
                ("teacher", teacher.map { t in .object(JSONObject([("model", .string(t.model)), ("files", PruningManifest.files(t.files))])) } ?? .null),
                ("temperature", temperature.map(JSONValue.double) ?? .null),
                ("ce_weight", ceWeight.map(JSONValue.double) ?? .null),
            ] + extra))
        }
    }

    /// `lora` (the only method so far).
    public var method: String
    public var data: [DataFile]
    public var settings: Settings
    /// Optimizer steps taken.
    public var steps: Int
    /// Tokens processed (every position of every sequence fed, padding excluded).
    public var tokens: Int
    /// Trained (loss-counted) positions over the run.
    public var trainedTokens: Int
    /// The loss of the last optimizer step (mean over its trained positions).
    public var finalLoss: Double
    /// Output tensors whose values training changed (merged LoRA updates), by name.
    public var changedTensors: [String]

    public init(method: String, data: [DataFile], settings: Settings, steps: Int, tokens: Int, trainedTokens: Int,
                finalLoss: Double, changedTensors: [String]) {
        self.method = method
        self.data = data
        self.settings = settings
        self.steps = steps
        self.tokens = tokens
        self.trainedTokens = trainedTokens
        self.finalLoss = finalLoss
        self.changedTensors = changedTensors
    }

    public var json: JSONValue {
        JSONValue.object(JSONObject([
            ("method", .string(method)),
            ("data", .array(data.map { d in
                .object(JSONObject([("file", .string(d.file)), ("sha256", .string(d.sha256)), ("format", .string(d.format)),
                                    ("examples", .int(Int64(d.examples))), ("tokens", .int(Int64(d.tokens)))]))
            })),
            ("settings", settings.json),
            ("steps", .int(Int64(steps))),
            ("tokens", .int(Int64(tokens))),
            ("trained_tokens", .int(Int64(trainedTokens))),
            ("final_loss", finalLoss.isFinite ? .double(finalLoss) : .null),
            ("changed_tensors", .array(changedTensors.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map(JSONValue.string))),
        ])).sortingKeys()
    }
}

extension PruningManifest {
    /// The manifest's file name inside an output folder (`OUT.pruning-manifest.json` next to a
    /// single-file output).
    public static let fileName = "pruning-manifest.json"

    /// A pruned model's manifest carried over to a trained copy: the same document with `record`
    /// appended to its `training` array (created when absent) and `result.files` replaced by the
    /// trained output's files (file name → SHA-256; the manifest itself excluded). Everything else
    /// — source, plan, settings, recovery — stays as it was, so `verify --source --manifest`
    /// checks the trained model against the original source.
    /// - Throws: `invalidArgument` when `manifest` is not a Shears pruning manifest.
    public static func appendingTraining(_ record: TrainingRecord, to manifest: JSONValue,
                                         resultFiles: [String: String]) throws(CheckpointError) -> JSONValue {
        guard var root = manifest.objectValue, root["format"]?.stringValue == format else {
            throw CheckpointError(.invalidArgument, "not a Shears pruning manifest (\"format\" is not \"\(format)\")")
        }
        guard var result = root["result"]?.objectValue else {
            throw CheckpointError(.invalidArgument, "the manifest has no \"result\" object")
        }
        var training: [JSONValue] = []
        switch root["training"] {
        case nil, .null?: break
        case .array(let a)?: training = a
        case let v?: throw CheckpointError(.invalidArgument, "the manifest's \"training\" is \(v.typeName), not an array")
        }
        training.append(record.json)
        result["files"] = files(resultFiles)
        root["result"] = .object(result)
        root["training"] = .array(training)
        return JSONValue.object(root).sortingKeys()
    }

    /// The same, reading the manifest at `path` and returning the new file's bytes (the manifest
    /// layout of ``bytes(of:)``), for the job to write next to its output.
    public static func carryOver(manifestAt path: String, appending record: TrainingRecord,
                                 resultFiles: [String: String]) throws(CheckpointError) -> [UInt8] {
        let doc: JSONValue
        do { doc = try JSONValue.parse(FileSystem.readFile(path, limit: 1 << 30)) } catch let e as JSONError {
            throw CheckpointError(.invalidArgument, "manifest is not valid JSON: \(e.message)", path: path)
        } catch let e as CheckpointError { throw e } catch { throw CheckpointError(.io, "\(error)", path: path) }
        do { return bytes(of: try appendingTraining(record, to: doc, resultFiles: resultFiles)) } catch { throw error.inFile(path) }
    }
}
