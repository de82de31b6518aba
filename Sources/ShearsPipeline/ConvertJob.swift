import CheckpointCore
import CompactFormat
import GGUF
import Pruning
import ShearsConcurrency
import ShearsJSON

/// `convert` as one library call: between safetensors (files, sharded sets, model folders), GGUF
/// and the compact format, changing dtypes and sharding on the way. Output is built under a
/// temporary name and moved into place at the end; the source is never modified.
///
/// ```swift
/// var job = ConvertJob(source: "SmolLM2-135M-Instruct.Q4_1.gguf", output: "smollm2")
/// job.dtype = .bf16
/// let warnings = try job.run { bytesDone in }
/// ```
public struct ConvertJob {
    public enum Target: String, Sendable, CaseIterable {
        case safetensors, gguf, compact
    }

    public var source: String
    public var output: String
    /// The output format; nil: from the output's name (`.gguf`, `.ctz`, else safetensors).
    public var target: Target?
    /// Target dtype of floating-point tensors (GGUF output: F32, F16, BF16 or `ggufType` Q8_0).
    public var dtype: DType? = nil
    /// GGUF output's 2-D weight type when it is not a float dtype (`.q8_0`).
    public var ggufType: GGMLType? = nil
    /// Shard a folder output past this many bytes of tensor data (nil: one file).
    public var shardSize: Int? = nil
    /// Write values outside the target dtype's range as infinity instead of failing.
    public var allowOverflow = false
    /// zstd level of compact output (1–19).
    public var level: Int32 = 3
    /// Replace an existing output.
    public var force = false

    public init(source: String, output: String, target: Target? = nil) {
        self.source = source
        self.output = output
        self.target = target
    }

    /// The target in effect.
    public var effectiveTarget: Target {
        if let target { return target }
        if output.hasSuffix(".gguf") { return .gguf }
        if output.hasSuffix("." + CompactLayout.fileExtension) { return .compact }
        return .safetensors
    }

    /// What happened besides the conversion.
    public struct Result: Sendable {
        /// Format warnings (GGUF quantization notes, odd source files).
        public var warnings: [String] = []
        /// `general.architecture` of a GGUF output, and its block count.
        public var ggufArchitecture: String? = nil
        public var ggufBlocks = 0
    }

    var sourceIsCompact: Bool {
        FileSystem.isFile(source) && (source.hasSuffix("." + CompactLayout.fileExtension) || CompactFile.looksLikeCompact(source))
    }

    /// Runs the conversion; `progress` gets the bytes done.
    /// - Throws: ``CheckpointError`` naming the file: unreadable input, an output that exists
    ///   (without `force`), is the input or holds it, or a conversion the formats cannot express.
    @discardableResult
    public func run(progress: @escaping (Int) -> Void = { _ in }) throws -> Result {
        let target = effectiveTarget
        guard FileSystem.kind(of: source) != nil else { throw CheckpointError(.io, "no such file or folder", path: source) }
        if FileSystem.kind(of: output) != nil && sameFile(source, output) {
            throw CheckpointError(.invalidArgument, "is the input; converting a checkpoint onto itself is refused (choose another output)", path: output)
        }
        try OutputPlacement.checkOutside(output: output, source: source)
        // One writer per output: a second shears on the same OUT fails here (and stale temporaries
        // of killed runs are swept).
        let lock = try OutputLock(destination: output)
        let result = try runClaimed(target: target, progress: progress)
        lock.succeed()
        lock.release()
        return result
    }

    private func runClaimed(target: Target, progress: @escaping (Int) -> Void) throws -> Result {
        let singleFile = target == .gguf || target == .compact || output.hasSuffix(".safetensors")
        if !singleFile, FileSystem.kind(of: output) == .file {
            throw CheckpointError(.invalidArgument, "is a file; this conversion writes a model folder (give a folder path, or a .safetensors, .gguf or .\(CompactLayout.fileExtension) file name)", path: output)
        }
        if singleFile && FileSystem.isDirectory(output) {
            throw CheckpointError(.invalidArgument, "is a folder; a \(target == .gguf ? ".gguf" : target == .compact ? ".ctz" : ".safetensors") output must be a file path", path: output)
        }
        if let kind = FileSystem.kind(of: output), !force {
            if singleFile || kind == .file {
                throw CheckpointError(.invalidArgument, "exists already; pass --force to replace it", path: output)
            }
            if try FileSystem.contents(of: output).contains(where: { $0.hasSuffix(".safetensors") || $0.hasSuffix(".index.json") || $0 == "config.json" }) {
                throw CheckpointError(.invalidArgument, "folder already holds a checkpoint; pass --force to replace it", path: output)
            }
        }
        // A folder output must not contain the input (staging renames would touch it).
        if !singleFile, FileSystem.isDirectory(output), sameFile(FileSystem.isDirectory(source) ? source : FileSystem.directoryName(source), output) {
            throw CheckpointError(.invalidArgument, "holds the input; write the output to another folder", path: output)
        }
        if target == .compact {
            guard !ModelSource.isGGUF(source), !sourceIsCompact else {
                throw CheckpointError(.invalidArgument, "compact output is written from safetensors input; convert GGUF to a folder first", path: source)
            }
            try CompactConversion.write(try Checkpoint.open(source), to: output, options: .init(level: level, threads: min(2, availableCores())), progress: progress)
            return Result()
        }
        if sourceIsCompact {
            guard target == .safetensors, dtype == nil, shardSize == nil else {
                throw CheckpointError(.invalidArgument, "a compact file converts back to safetensors as it is (no --dtype, --shard-size or GGUF); convert the result further", path: source)
            }
            try fromCompact()
            return Result()
        }
        if ModelSource.isGGUF(source) { return try fromGGUF(progress) }
        if target == .gguf { return try toGGUF(progress) }
        return try safetensors(progress)
    }

    /// A compact file back as safetensors: one file (byte for byte the original when the compact
    /// file kept its source header) or, for a folder output, model.safetensors in it.
    private func fromCompact() throws {
        let compact = try CompactFile(path: source)
        if output.hasSuffix(".safetensors") {
            try CompactConversion.writeSafetensors(compact, to: output)
        } else {
            try FileSystem.createDirectory(output)
            try CompactConversion.writeSafetensors(compact, to: FileSystem.join(output, "model.safetensors"))
            // config, tokenizer and generation files travel with the weights (never overwriting).
            let folder = FileSystem.directoryName(source)
            guard folder != output else { return }
            for name in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
                let src = FileSystem.join(folder, name), dst = FileSystem.join(output, name)
                guard FileSystem.isFile(src), !FileSystem.isFile(dst) else { continue }
                try AtomicFile.write(FileSystem.readFile(src), to: dst)
            }
        }
    }

    /// GGUF → Hugging Face folder.
    private func fromGGUF(_ progress: @escaping (Int) -> Void) throws -> Result {
        guard effectiveTarget == .safetensors, !output.hasSuffix(".safetensors") else {
            throw CheckpointError(.invalidArgument, "a GGUF input converts to a model folder; give a folder path as OUT", path: output)
        }
        let file = try GGUFFile(path: source)
        var result = Result(warnings: file.warnings)
        if let d = dtype, ![.f32, .f16, .bf16].contains(d) {
            throw CheckpointError(.invalidUsage, "--dtype for a Hugging Face folder from GGUF must be f32, f16 or bf16, not \(d.rawValue)")
        }
        let staged = try StagedFolder(destination: output)
        let converted = try GGUFToHuggingFace.convert(file, to: staged.path, options: .init(
            dtype: dtype, maxShardSize: shardSize, allowOverflow: allowOverflow, progress: progress))
        let metadata = try GGUFModelMetadata(gguf: file)
        if metadata.hasPerLayerSizes {
            // A deci file with per-block sizes: config.json's auto_map points to the modeling file.
            let code = metadata.family.perLayerCode
            try AtomicFile.write(Array((code.source + "\n").utf8), to: FileSystem.join(staged.path, code.fileName))
        }
        try staged.commit()
        result.warnings += converted.warnings
        return result
    }

    /// Hugging Face folder → GGUF.
    private func toGGUF(_ progress: @escaping (Int) -> Void) throws -> Result {
        var type = ggufType
        if type == nil, let d = dtype {
            switch d {
            case .f32: type = .f32
            case .f16: type = .f16
            case .bf16: type = .bf16
            default: throw CheckpointError(.invalidUsage, "--dtype for GGUF output must be f32, f16, bf16 or q8_0, not \(d.rawValue)")
            }
        }
        let converted = try HuggingFaceToGGUF.convert(folder: source, to: output, options: .init(
            type: type, allowOverflow: allowOverflow, progress: progress))
        return Result(warnings: converted.warnings, ggufArchitecture: converted.architecture, ggufBlocks: converted.layout.blocks.count)
    }

    /// safetensors → safetensors (file or folder).
    private func safetensors(_ progress: @escaping (Int) -> Void) throws -> Result {
        let checkpoint = try Checkpoint.open(source)
        let targetType = dtype
        let singleFile = output.hasSuffix(".safetensors")
        func newType(_ t: DType) -> DType {
            guard let targetType, t.isFloatingPoint, t.convertsToFloat32, t != targetType else { return t }
            return targetType
        }
        let specs = checkpoint.entries.map { TensorSpec(name: $0.info.name, dtype: newType($0.info.dtype), shape: $0.info.shape) }
        var done = 0
        let recoder = DTypeRecoder(allowOverflow: allowOverflow)
        let bytes = { (spec: TensorSpec, write: (UnsafeRawBufferPointer) throws(CheckpointError) -> Void) throws(CheckpointError) in
            let view = try checkpoint.tensor(named: spec.name)
            if view.dtype == spec.dtype {
                try view.withUnsafeBytes(write)
            } else {
                try recoder.recode(view, to: spec.dtype, write)
            }
            done += view.byteCount
            progress(done)
        }
        var metadata = checkpoint.metadata ?? Metadata()
        if metadata["format"] == nil { metadata["format"] = "pt" }
        if singleFile {
            let w = try SafetensorsWriter(path: output, tensors: specs, metadata: metadata)
            while let spec = w.nextTensor { try bytes(spec) { (raw) throws(CheckpointError) in try w.write(raw) } }
            try w.finish()
        } else {
            let staged = try StagedFolder(destination: output)
            try ShardedWriter.stream(folder: staged.path, tensors: specs, maxShardSize: shardSize, metadata: metadata, bytes: bytes)
            try copyCompanions(from: checkpoint.folder, to: staged.path, dtype: targetType)
            try staged.commit()
        }
        return Result(warnings: checkpoint.warnings)
    }

    /// Copies config, tokenizer and generation files of a model folder, updating the dtype in config.json.
    private func copyCompanions(from folder: String, to out: String, dtype: DType?) throws {
        guard FileSystem.isDirectory(source) || source.hasSuffix(".json") else { return }
        let names = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja"]
        for name in names {
            let src = FileSystem.join(folder, name)
            guard FileSystem.isFile(src) else { continue }
            var bytes = try FileSystem.readFile(src)
            if name == "config.json", let dtype {
                if var cfg = try? JSONValue.parse(bytes).objectValue {
                    let torchName = dtype.torchName
                    if cfg["dtype"] != nil || cfg["torch_dtype"] == nil { cfg["dtype"] = .string(torchName) }
                    if cfg["torch_dtype"] != nil { cfg["torch_dtype"] = .string(torchName) }
                    bytes = JSONValue.object(cfg).serializedBytes(style: .pretty) + [0x0A]
                }
            }
            try AtomicFile.write(bytes, to: FileSystem.join(out, name))
        }
    }
}
