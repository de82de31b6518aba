import ArgumentParser
import CheckpointCore
import ShearsPipeline
import CompactFormat
import GGUF
import Pruning
import ShearsConcurrency
import ShearsJSON

/// `shears convert SRC DST`: between safetensors (files, sharded sets, model folders) and GGUF,
/// changing dtypes and sharding on the way.
public struct ConvertCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint: safetensors <-> GGUF, dtype changes, resharding, merging shards.",
        discussion: """
            SRC is a .gguf file, a .ctz compact file, a .safetensors file, an index .json or a model \
            folder. DST's format comes from --to, else from its name: .gguf is GGUF, .ctz the \
            compact format (formats/compact.md), .safetensors a single safetensors file, anything \
            else a Hugging Face model folder (model.safetensors, or model-0000i-of-0000n.safetensors \
            with an index when --shard-size splits it).

            GGUF -> folder (llama, qwen2, mistral): tensors are dequantized (F32, F16, BF16, Q4_0, \
            Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K), renamed, and llama.cpp's rotary permutation of the \
            Q/K rows is undone; config.json, generation_config.json, tokenizer.json and \
            tokenizer_config.json are written from the metadata. Default dtype: f32 for quantized \
            files, else the file's float type.

            folder -> GGUF (llama family): config.json is required; 2-D weights take --dtype \
            (f32, f16, bf16 or q8_0; default: the source type), norms and biases stay F32; Q/K rows \
            are permuted; a byte-level BPE tokenizer.json becomes tokenizer metadata.

            safetensors -> safetensors: --dtype changes floating-point tensors (round to nearest \
            even); config, tokenizer and generation files of a folder are carried over.

            safetensors <-> compact: lossless (--level sets the zstd level); a compact file converts \
            back to safetensors byte for byte.

            Values outside the target dtype's range are an error unless --allow-overflow (they \
            become infinity). Tensors are streamed one at a time. Output is built under a temporary \
            name and moved into place at the end: an interrupted run leaves nothing at DST. SRC is \
            never modified; converting onto itself is refused. Progress (bytes, rate, ETA) goes to \
            stderr when it is a terminal, unless --quiet.

            Exit status: 0 on success, 2 when an input is malformed or missing.
            """)

    enum Target: String, ExpressibleByArgument, CaseIterable {
        case safetensors, gguf, compact
    }

    @Argument(help: "Input: .gguf, .ctz, .safetensors, index .json or model folder.", completion: .file())
    var input: String

    @Argument(help: "Output: .gguf, .ctz, .safetensors, or a folder.", completion: .file())
    var output: String

    @Option(help: "Output format (default: from OUT's name; a folder means safetensors).")
    var to: Target?

    @Option(help: "Target dtype: f32, f16, bf16, or q8_0 (GGUF output). For safetensors output also F64, F8_E4M3, F8_E5M2.")
    var dtype: String?

    @Option(name: [.customLong("shard-size"), .customLong("max-shard-size")],
            help: "Split folder output into shards of at most this much tensor data (5GB, 500MB, 2GiB); 0 or 'none' writes one file.")
    var shardSize: String?

    @Flag(help: "Write values outside the target dtype's range as infinity instead of failing.")
    var allowOverflow = false

    @Option(help: "zstd level for compact output (1-19).")
    var level: Int32 = 3

    @Flag(help: "No progress output.")
    var quiet = false

    @Flag(help: "Replace OUT if it exists.")
    var force = false

    public init() {}

    var target: Target {
        if let to { return to }
        if output.hasSuffix(".gguf") { return .gguf }
        if output.hasSuffix("." + CompactLayout.fileExtension) { return .compact }
        return .safetensors
    }

    var sourceIsCompact: Bool {
        FileSystem.isFile(input) && (input.hasSuffix("." + CompactLayout.fileExtension) || CompactFile.looksLikeCompact(input))
    }

    var sourceIsGGUF: Bool {
        if input.hasSuffix(".gguf") { return true }
        guard FileSystem.isFile(input), let m = try? MappedFile(path: input), m.count >= 4 else { return false }
        return m.bytes(in: 0..<4) == Array("GGUF".utf8)
    }

    /// The shard limit: nil for one file.
    var shardLimit: Int? {
        guard let s = shardSize, s != "0", s.lowercased() != "none" else { return nil }
        return ByteSize.parse(s)
    }

    public func validate() throws {
        if target == .compact {
            guard dtype == nil, shardSize == nil else { throw ValidationError("compact output keeps the source dtypes and is one file: --dtype and --shard-size do not apply") }
            guard (1...19).contains(level) else { throw ValidationError("--level must be 1-19") }
        }
        if let d = dtype, target != .compact {
            if target == .gguf {
                guard ["f32", "f16", "bf16", "q8_0", "float32", "float16", "bfloat16"].contains(d.lowercased()) else {
                    throw ValidationError("--dtype for GGUF output must be f32, f16, bf16 or q8_0, not '\(d)'")
                }
            } else {
                guard let t = DType(userName: d) else { throw ValidationError("unknown dtype '\(d)'") }
                guard t.isFloatingPoint, t.convertsFromFloat32, t != .c64 else {
                    throw ValidationError("cannot convert to \(t.rawValue): choose f32, f16, bf16 (or F64, F8_E4M3, F8_E5M2)")
                }
            }
        }
        if let s = shardSize, s != "0", s.lowercased() != "none" {
            guard ByteSize.parse(s) != nil else { throw ValidationError("--shard-size: cannot read '\(s)' as a size (examples: 5GB, 500MB, 2GiB, 1000000)") }
            guard target == .safetensors, !output.hasSuffix(".safetensors") else {
                throw ValidationError("--shard-size needs a folder as OUT (safetensors output)")
            }
        }
    }

    public func run() throws {
        do {
            try convert()
        } catch {
            throw report(error)
        }
    }

    private func convert() throws {
        guard FileSystem.kind(of: input) != nil else { throw CheckpointError(.io, "no such file or folder", path: input) }
        if FileSystem.kind(of: output) != nil && sameFile(input, output) {
            throw CheckpointError(.invalidArgument, "is the input; converting a checkpoint onto itself is refused (choose another output)", path: output)
        }
        let singleFile = target == .gguf || target == .compact || output.hasSuffix(".safetensors")
        if let kind = FileSystem.kind(of: output), !force {
            if singleFile || kind == .file {
                throw CheckpointError(.invalidArgument, "exists already; pass --force to replace it", path: output)
            }
            if try FileSystem.contents(of: output).contains(where: { $0.hasSuffix(".safetensors") || $0.hasSuffix(".index.json") || $0 == "config.json" }) {
                throw CheckpointError(.invalidArgument, "folder already holds a checkpoint; pass --force to replace it", path: output)
            }
        }
        if singleFile && FileSystem.isDirectory(output) {
            throw CheckpointError(.invalidArgument, "is a folder; a \(target == .gguf ? ".gguf" : target == .compact ? ".ctz" : ".safetensors") output must be a file path", path: output)
        }
        // A folder output must not contain the input (staging renames would touch it).
        if !singleFile, FileSystem.isDirectory(output), sameFile(FileSystem.isDirectory(input) ? input : FileSystem.directoryName(input), output) {
            throw CheckpointError(.invalidArgument, "holds the input; write the output to another folder", path: output)
        }
        if target == .compact {
            guard !sourceIsGGUF, !sourceIsCompact else {
                throw CheckpointError(.invalidArgument, "compact output is written from safetensors input; convert GGUF to a folder first", path: input)
            }
            try CompactCommands.convertToCompact(input: input, output: output, level: level, threads: min(2, availableCores()), quiet: quiet)
        } else if sourceIsCompact {
            guard target == .safetensors, dtype == nil, shardSize == nil else {
                throw CheckpointError(.invalidArgument, "a compact file converts back to safetensors as it is (no --dtype, --shard-size or GGUF); convert the result further", path: input)
            }
            try CompactCommands.convertFromCompact(input: input, output: output)
        } else if sourceIsGGUF {
            try convertGGUF()
        } else if target == .gguf {
            try convertToGGUF()
        } else {
            try convertSafetensors()
        }
    }

    private func warn(_ warnings: [String]) {
        for w in warnings { StandardError.print("shears: warning: \(w)") }
    }

    /// GGUF → Hugging Face folder.
    private func convertGGUF() throws {
        guard target == .safetensors, !output.hasSuffix(".safetensors") else {
            throw CheckpointError(.invalidArgument, "a GGUF input converts to a model folder; give a folder path as OUT", path: output)
        }
        let file = try GGUFFile(path: input)
        warn(file.warnings)
        var out: DType? = nil
        if let d = dtype {
            guard let t = DType(userName: d), [.f32, .f16, .bf16].contains(t) else {
                throw CheckpointError(.invalidArgument, "--dtype for a Hugging Face folder from GGUF must be f32, f16 or bf16, not '\(d)'")
            }
            out = t
        }
        let total = file.tensors.reduce(0) { $0 + $1.byteCount }
        let progress = Progress(totalBytes: total, label: "convert", quiet: quiet)
        let staged = try StagedFolder(destination: output)
        let result = try GGUFToHuggingFace.convert(file, to: staged.path, options: .init(
            dtype: out, maxShardSize: shardLimit, allowOverflow: allowOverflow, progress: { progress.update(bytesDone: $0) }))
        if try GGUFModelMetadata(gguf: file).hasPerLayerSizes {
            // A deci file with per-block sizes: config.json's auto_map points to the modeling file.
            try AtomicFile.write(Array((ModelingSource.text + "\n").utf8), to: FileSystem.join(staged.path, PrunedConfiguration.modelingFileName))
        }
        try staged.commit()
        progress.finish()
        warn(result.warnings)
    }

    /// Hugging Face folder → GGUF.
    private func convertToGGUF() throws {
        var type: GGMLType? = nil
        if let d = dtype {
            switch d.lowercased() {
            case "f32", "float32": type = .f32
            case "f16", "float16": type = .f16
            case "bf16", "bfloat16": type = .bf16
            default: type = .q8_0
            }
        }
        let ckpt = try Checkpoint.open(input)
        let progress = Progress(totalBytes: ckpt.tensorBytes, label: "convert", quiet: quiet)
        let result = try HuggingFaceToGGUF.convert(folder: input, to: output, options: .init(
            type: type, allowOverflow: allowOverflow, progress: { progress.update(bytesDone: $0) }))
        progress.finish()
        warn(result.warnings)
        if result.architecture == "deci" && !quiet {
            StandardError.print("convert: layers differ in size; wrote llama.cpp's deci architecture (\(result.layout.blocks.count) blocks with per-block head counts and feed-forward lengths)")
        }
    }

    /// safetensors → safetensors (file or folder).
    private func convertSafetensors() throws {
        let source = try Checkpoint.open(input)
        warn(source.warnings)
        let targetType = dtype.flatMap { DType(userName: $0) }
        let singleFile = output.hasSuffix(".safetensors")
        func newType(_ t: DType) -> DType {
            guard let targetType, t.isFloatingPoint, t.convertsToFloat32, t != targetType else { return t }
            return targetType
        }
        let specs = source.entries.map { TensorSpec(name: $0.info.name, dtype: newType($0.info.dtype), shape: $0.info.shape) }
        var done = 0
        let progress = Progress(totalBytes: source.tensorBytes, label: "convert", quiet: quiet)
        let recoder = DTypeRecoder(allowOverflow: allowOverflow)
        let bytes = { (spec: TensorSpec, write: (UnsafeRawBufferPointer) throws(CheckpointError) -> Void) throws(CheckpointError) in
            let view = try source.tensor(named: spec.name)
            if view.dtype == spec.dtype {
                try view.withUnsafeBytes(write)
            } else {
                try recoder.recode(view, to: spec.dtype, write)
            }
            done += view.byteCount
            progress.update(bytesDone: done)
        }
        var metadata = source.metadata ?? Metadata()
        if metadata["format"] == nil { metadata["format"] = "pt" }
        if singleFile {
            let w = try SafetensorsWriter(path: output, tensors: specs, metadata: metadata)
            while let spec = w.nextTensor { try bytes(spec) { (raw) throws(CheckpointError) in try w.write(raw) } }
            try w.finish()
        } else {
            let staged = try StagedFolder(destination: output)
            try ShardedWriter.stream(folder: staged.path, tensors: specs, maxShardSize: shardLimit, metadata: metadata, bytes: bytes)
            try copyCompanions(from: source.folder, to: staged.path, dtype: targetType)
            try staged.commit()
        }
        progress.finish()
    }

    /// Copies config, tokenizer and generation files of a model folder, updating the dtype in config.json.
    private func copyCompanions(from folder: String, to out: String, dtype: DType?) throws {
        guard FileSystem.isDirectory(input) || input.hasSuffix(".json") else { return }
        let names = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja"]
        for name in names {
            let src = FileSystem.join(folder, name)
            guard FileSystem.isFile(src) else { continue }
            var bytes = try FileSystem.readFile(src)
            if name == "config.json", let dtype {
                if var cfg = try? JSONValue.parse(bytes).objectValue {
                    let torchName: String = switch dtype {
                    case .f8E4M3: "float8_e4m3fn"
                    case .f8E5M2: "float8_e5m2"
                    default: GGUFModelMetadata.torchName(dtype)
                    }
                    if cfg["dtype"] != nil || cfg["torch_dtype"] == nil { cfg["dtype"] = .string(torchName) }
                    if cfg["torch_dtype"] != nil { cfg["torch_dtype"] = .string(torchName) }
                    bytes = JSONValue.object(cfg).serializedBytes(style: .pretty) + [0x0A]
                }
            }
            try AtomicFile.write(bytes, to: FileSystem.join(out, name))
        }
    }
}

/// Sizes as users type them: "5GB" (10^9), "2GiB" (2^30), "500MB", "1000000".
enum ByteSize {
    static func parse(_ text: String) -> Int? {
        let s = text.trimmingSpaces.uppercased()
        let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("TIB", 1 << 40),
                                      ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1)]
        for (u, m) in units where s.hasSuffix(u) {
            guard let v = Double(s.dropLast(u.count).trimmingSpaces), v > 0, v * Double(m) < 9e18 else { return nil }
            return Int(v * Double(m))
        }
        guard let v = Int(s), v > 0 else { return nil }
        return v
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
