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
            stderr unless --quiet (a line every 30 s when stderr is not a terminal).

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

    /// The shard limit: nil for one file.
    var shardLimit: Int? {
        guard let s = shardSize, s != "0", s.lowercased() != "none" else { return nil }
        return ByteSize.parse(s)
    }

    /// The job the options describe.
    public var job: ConvertJob {
        var job = ConvertJob(source: input, output: output, target: ConvertJob.Target(rawValue: target.rawValue))
        if let d = dtype {
            if target == .gguf && d.lowercased() == "q8_0" { job.ggufType = .q8_0 } else { job.dtype = DType(userName: d) }
        }
        job.shardSize = shardLimit
        job.allowOverflow = allowOverflow
        job.level = level
        job.force = force
        return job
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
            let label = target == .compact ? "compact" : "convert"
            var progress: Progress? = nil
            if !quiet {
                // Bytes the job reports progress over (0 when the input cannot be opened: the job says why).
                let total = ModelSource.isGGUF(input) ? ((try? GGUFFile(path: input))?.tensors.reduce(0) { $0 + $1.byteCount } ?? 0)
                    : FileSystem.isFile(input) && CompactFile.looksLikeCompact(input) ? 0 : ((try? Checkpoint.open(input))?.tensorBytes ?? 0)
                progress = Progress(totalBytes: total, label: label, quiet: quiet)
            }
            let result = try job.run { progress?.update(bytesDone: $0) }
            progress?.finish()
            for w in result.warnings { StandardError.print("shears: warning: \(w)") }
            if result.ggufArchitecture == "deci" && !quiet {
                StandardError.print("convert: layers differ in size; wrote llama.cpp's deci architecture (\(result.ggufBlocks) blocks with per-block head counts and feed-forward lengths)")
            }
        } catch {
            throw report(error)
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
