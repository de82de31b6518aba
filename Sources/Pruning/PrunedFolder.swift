import CheckpointCore
import ModelArchitecture
import ShearsJSON

#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Writes a complete pruned model folder: tensors (``Surgery``), `config.json`
/// (``PrunedConfiguration``), the remote-code modeling file when widths differ per layer, and the
/// source's tokenizer and generation files.
public enum PrunedFolder {
    /// Files copied unchanged from the source folder when present.
    public static let companions = ["generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                    "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja"]

    /// - Returns: every path written, in writing order (tensors, config, modeling file, companions).
    @discardableResult
    /// - Parameters:
    ///   - companions: the folder whose tokenizer and generation files are copied (the source's);
    ///   - extraFiles: files to write as given when the source has no folder (a GGUF source's
    ///     tokenizer built from its metadata), by name.
    public static func write(_ source: any TensorStore, configuration: ModelConfiguration, plan: PruningPlan, to folder: String,
                             dtype: DType? = nil, maxShardSize: Int? = nil, recovered: RecoveredTensors? = nil,
                             companionFolder: String?, extraFiles: [(String, [UInt8])] = [],
                             progress: ((Int, Int) -> Void)? = nil) throws(CheckpointError) -> [String] {
        try FileSystem.createDirectory(folder)
        // Stale shards of an earlier run would make the folder a different checkpoint.
        for name in try FileSystem.contents(of: folder)
        where name.hasSuffix(".safetensors") || name == "model.safetensors.index.json" || (name.hasPrefix("modeling_shears_") && name.hasSuffix(".py")) {
            _ = unlink(FileSystem.join(folder, name))
        }
        var written = try Surgery.write(source, plan: plan, to: folder, dtype: dtype, maxShardSize: maxShardSize, recovered: recovered, progress: progress)
        var cfg = PrunedConfiguration.make(source: configuration.raw, plan: plan, dtype: dtype)
        if recovered?.attentionBias == true { cfg["attention_bias"] = .bool(true) }
        if recovered?.mlpBias == true { cfg["mlp_bias"] = .bool(true) }
        let cfgPath = FileSystem.join(folder, "config.json")
        try AtomicFile.write(JSONValue.object(cfg).serializedBytes(style: .pretty) + [0x0A], to: cfgPath)
        written.append(cfgPath)
        if !PrunedConfiguration.isStock(plan) {
            let code = plan.shape.family.perLayerCode
            let modeling = FileSystem.join(folder, code.fileName)
            try AtomicFile.write(Array((code.source + "\n").utf8), to: modeling)
            written.append(modeling)
        }
        for (name, bytes) in extraFiles {
            let dst = FileSystem.join(folder, name)
            try AtomicFile.write(bytes, to: dst)
            written.append(dst)
        }
        for name in companionFolder == nil ? [] : companions where !extraFiles.contains(where: { $0.0 == name }) {
            let src = FileSystem.join(companionFolder!, name)
            guard FileSystem.isFile(src) else { continue }
            let dst = FileSystem.join(folder, name)
            try AtomicFile.write(try FileSystem.readFile(src), to: dst)
            written.append(dst)
        }
        return written
    }
}
