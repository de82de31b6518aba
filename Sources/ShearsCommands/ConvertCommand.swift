import ArgumentParser
import CheckpointCore
import ShearsJSON

/// `shears convert IN OUT`: rewrite a checkpoint, optionally changing dtypes and sharding.
public struct ConvertCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Rewrite a checkpoint: change floating-point dtypes, reshard, or merge shards.",
        discussion: """
            IN is a .safetensors file, an index .json or a model folder. OUT is a .safetensors file \
            (single-file output) or a folder (model.safetensors, or model-0000i-of-0000n.safetensors \
            with model.safetensors.index.json when --max-shard-size splits it; config.json, tokenizer \
            and generation files are copied along, with torch_dtype updated).

            Tensors are streamed one at a time; memory stays at one tensor. Narrowing rounds to \
            nearest even. Only floating-point tensors change dtype; integer and boolean tensors are \
            copied as they are. Every output file is written to a temporary name and renamed into \
            place; the input is never modified.

            Exit status: 0 on success, 2 when an input is malformed or missing.
            """)

    @Argument(help: "Input checkpoint.", completion: .file())
    var input: String

    @Argument(help: "Output .safetensors file or folder.", completion: .file())
    var output: String

    @Option(help: "Target dtype for floating-point tensors: F32, F16, BF16, F64, F8_E4M3, F8_E5M2 (or float32, bfloat16, ...).")
    var dtype: String?

    @Option(name: .customLong("max-shard-size"), help: "Split the output into shards of at most this much tensor data (e.g. 5GB, 500MB, 2GiB). Folder output only.")
    var maxShardSize: String?

    @Flag(help: "Replace OUT if it exists.")
    var force = false

    public init() {}

    public func validate() throws {
        if let d = dtype {
            guard let t = DType(userName: d) else { throw ValidationError("unknown dtype '\(d)'") }
            guard t.isFloatingPoint, t.convertsFromFloat32, t != .c64 else {
                throw ValidationError("cannot convert to \(t.rawValue): choose F32, F16, BF16, F64, F8_E4M3 or F8_E5M2")
            }
        }
        if let s = maxShardSize {
            guard ByteSize.parse(s) != nil else { throw ValidationError("--max-shard-size: cannot read '\(s)' as a size (examples: 5GB, 500MB, 2GiB, 1000000)") }
            guard !output.hasSuffix(".safetensors") else { throw ValidationError("--max-shard-size needs a folder as OUT, not a .safetensors file") }
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
        let source = try Checkpoint.open(input)
        let target = dtype.flatMap { DType(userName: $0) }
        let singleFile = output.hasSuffix(".safetensors")
        if FileSystem.kind(of: output) != nil && !force && (singleFile || FileSystem.isFile(output)) {
            throw CheckpointError(.invalidArgument, "exists already; pass --force to replace it", path: output)
        }
        if !singleFile, FileSystem.isDirectory(output), !force,
           try FileSystem.contents(of: output).contains(where: { $0.hasSuffix(".safetensors") || $0.hasSuffix(".index.json") }) {
            throw CheckpointError(.invalidArgument, "folder already holds a checkpoint; pass --force to replace it", path: output)
        }
        // Output specs in the source's order (file by file), with the new dtype where it applies.
        func newType(_ t: DType) -> DType {
            guard let target, t.isFloatingPoint, t.convertsToFloat32, t != target else { return t }
            return target
        }
        let specs = source.entries.map { TensorSpec(name: $0.info.name, dtype: newType($0.info.dtype), shape: $0.info.shape) }
        var done = 0
        let total = specs.count
        let progress = Progress(total: total, label: "convert")
        let data = { (spec: TensorSpec) throws(CheckpointError) -> TensorBytes in
            let view = try source.tensor(named: spec.name)
            done += 1
            progress.update(done)
            if view.dtype == spec.dtype { return .view(view) }
            return .floats(try view.floats())
        }
        var metadata = source.metadata ?? Metadata()
        if metadata["format"] == nil { metadata["format"] = "pt" }
        if singleFile {
            try SafetensorsWriter.write(path: output, tensors: specs, metadata: metadata, data: data)
        } else {
            try FileSystem.createDirectory(output)
            try ShardedWriter.write(folder: output, tensors: specs, maxShardSize: maxShardSize.flatMap(ByteSize.parse),
                                    metadata: metadata, data: data)
            try copyCompanions(from: source.folder, to: output, dtype: target)
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
                    case .bf16: "bfloat16"
                    case .f16: "float16"
                    case .f32: "float32"
                    case .f64: "float64"
                    case .f8E4M3: "float8_e4m3fn"
                    case .f8E5M2: "float8_e5m2"
                    default: dtype.rawValue
                    }
                    if cfg["dtype"] != nil { cfg["dtype"] = .string(torchName) } else { cfg["torch_dtype"] = .string(torchName) }
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
