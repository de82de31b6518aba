import ShearsJSON

/// A checkpoint as a user names it: one `.safetensors` file, a `model.safetensors.index.json`
/// with its shards, or a Hugging Face model folder. Every file is mapped and validated on open;
/// no tensor data is read until asked for.
public final class Checkpoint: Sendable {
    public enum Format: String, Sendable {
        /// One safetensors file.
        case safetensors
        /// Shards listed by a `model.safetensors.index.json`.
        case shardedSafetensors = "safetensors-sharded"
        /// Several safetensors files in a folder with no index (loaded together, as mlx-lm does).
        case safetensorsSet = "safetensors-set"
    }

    /// A tensor and the file it lives in.
    public struct Entry: Sendable {
        public let info: TensorInfo
        /// Index into ``files``.
        public let fileIndex: Int
    }

    /// The path as given.
    public let path: String
    public let format: Format
    /// The model folder (the folder of the file or index), where `config.json` and tokenizer files live.
    public let folder: String
    /// The index file, for sharded checkpoints.
    public let indexPath: String?
    /// The index's parsed `metadata` object (with `total_size`), for sharded checkpoints.
    public let indexMetadata: JSONObject?
    /// The data files, in index (or name) order.
    public let files: [SafetensorsFile]
    /// All tensors, file by file, each file's in data order.
    public let entries: [Entry]
    /// Legal but notable findings (unaligned data, total_size mismatch, ...).
    public let warnings: [String]
    private let byName: [UTF8Key: Int]

    /// Opens `path` (a `.safetensors` file, an index JSON, or a folder).
    /// - Throws: ``CheckpointError`` naming the file and the problem.
    public static func open(_ path: String) throws(CheckpointError) -> Checkpoint {
        guard let kind = FileSystem.kind(of: path) else {
            throw CheckpointError(.io, "no such file or folder", path: path)
        }
        if kind == .directory {
            let names = try FileSystem.contents(of: path)
            if names.contains("model.safetensors.index.json") {
                return try openIndex(FileSystem.join(path, "model.safetensors.index.json"), given: path)
            }
            if names.contains("model.safetensors") {
                return try openFiles([FileSystem.join(path, "model.safetensors")], format: .safetensors, folder: path, given: path)
            }
            let indexes = names.filter { $0.hasSuffix(".safetensors.index.json") }
            if indexes.count == 1 { return try openIndex(FileSystem.join(path, indexes[0]), given: path) }
            let shards = names.filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }
            guard !shards.isEmpty else {
                throw CheckpointError(.notACheckpoint, "folder holds no .safetensors file and no model.safetensors.index.json", path: path)
            }
            return try openFiles(shards.map { FileSystem.join(path, $0) }, format: shards.count == 1 ? .safetensors : .safetensorsSet,
                                 folder: path, given: path)
        }
        if path.hasSuffix(".json") {
            return try openIndex(path, given: path)
        }
        return try openFiles([path], format: .safetensors, folder: FileSystem.directoryName(path), given: path)
    }

    private init(path: String, format: Format, folder: String, indexPath: String?, indexMetadata: JSONObject?,
                 files: [SafetensorsFile], entries: [Entry], warnings: [String], byName: [UTF8Key: Int]) {
        self.path = path
        self.format = format
        self.folder = folder
        self.indexPath = indexPath
        self.indexMetadata = indexMetadata
        self.files = files
        self.entries = entries
        self.warnings = warnings
        self.byName = byName
    }

    private static func openFiles(_ paths: [String], format: Format, folder: String, given: String) throws(CheckpointError) -> Checkpoint {
        var files: [SafetensorsFile] = []
        var entries: [Entry] = []
        var byName: [UTF8Key: Int] = [:]
        var warnings: [String] = []
        for p in paths {
            let f = try SafetensorsFile(path: p)
            for t in f.tensors {
                if let other = byName[UTF8Key(t.name)] {
                    throw CheckpointError(.duplicateTensorName, "tensor is also in \(files[entries[other].fileIndex].path)", path: p, tensor: t.name)
                }
                byName[UTF8Key(t.name)] = entries.count
                entries.append(Entry(info: t, fileIndex: files.count))
            }
            warnings += f.header.warnings.map { "\(p): \($0)" }
            files.append(f)
        }
        return Checkpoint(path: given, format: format, folder: folder, indexPath: nil, indexMetadata: nil,
                          files: files, entries: entries, warnings: warnings, byName: byName)
    }

    private static func openIndex(_ indexPath: String, given: String) throws(CheckpointError) -> Checkpoint {
        let folder = FileSystem.directoryName(indexPath)
        let index = try ShardIndex.read(path: indexPath)
        var files: [SafetensorsFile] = []
        var entries: [Entry] = []
        var byName: [UTF8Key: Int] = [:]
        var warnings: [String] = []
        for shard in index.shardNames {
            let shardPath = FileSystem.join(folder, shard)
            guard FileSystem.isFile(shardPath) else {
                throw CheckpointError(.shardMismatch, "index names shard \(shard), which is missing from \(folder)", path: indexPath)
            }
            files.append(try SafetensorsFile(path: shardPath))
        }
        // First: no tensor in two shards. Then: every tensor where the index says it is.
        for (i, f) in files.enumerated() {
            for t in f.tensors {
                if let other = byName[UTF8Key(t.name)] {
                    throw CheckpointError(.shardMismatch, "tensor is in two shards: \(files[entries[other].fileIndex].path) and \(f.path)", path: indexPath, tensor: t.name)
                }
                byName[UTF8Key(t.name)] = entries.count
                entries.append(Entry(info: t, fileIndex: i))
            }
            warnings += f.header.warnings.map { "\(f.path): \($0)" }
        }
        for e in entries {
            let shard = index.shardNames[e.fileIndex]
            guard let mapped = index.weightMap[e.info.name]?.stringValue else {
                throw CheckpointError(.shardMismatch, "tensor in shard \(shard) is not listed in the index's weight_map", path: indexPath, tensor: e.info.name)
            }
            guard UTF8Key(mapped) == UTF8Key(shard) else {
                throw CheckpointError(.shardMismatch, "index maps the tensor to \(mapped), but it is in \(shard)", path: indexPath, tensor: e.info.name)
            }
        }
        for (name, shard) in index.weightMap.members where byName[UTF8Key(name)] == nil {
            throw CheckpointError(.shardMismatch, "index maps the tensor to \(shard.stringValue ?? "?"), but that shard does not hold it", path: indexPath, tensor: name)
        }
        let tensorBytes = entries.reduce(0) { $0 + $1.info.byteCount }
        if let declared = index.totalSize, declared != tensorBytes {
            warnings.append("\(indexPath): metadata.total_size is \(declared), but the shards hold \(tensorBytes) bytes of tensor data")
        }
        return Checkpoint(path: given, format: .shardedSafetensors, folder: folder, indexPath: indexPath, indexMetadata: index.metadata,
                          files: files, entries: entries, warnings: warnings, byName: byName)
    }

    // MARK: Access

    /// Number of tensors.
    public var tensorCount: Int { entries.count }
    /// Total bytes of tensor data.
    public var tensorBytes: Int { entries.reduce(0) { $0 + $1.info.byteCount } }
    /// Total size of the data files.
    public var fileBytes: Int { files.reduce(0) { $0 + $1.fileSize } }

    /// The `__metadata__` of the first file (shards written together carry the same map).
    public var metadata: Metadata? { files.first?.metadata }

    /// The entry for `name`, or nil.
    public func info(named name: String) -> TensorInfo? { byName[UTF8Key(name)].map { entries[$0].info } }

    /// The file holding `name`, or nil.
    public func file(holding name: String) -> SafetensorsFile? { byName[UTF8Key(name)].map { files[entries[$0].fileIndex] } }

    /// A view of tensor `name`'s bytes.
    public func tensor(named name: String) throws(CheckpointError) -> TensorView {
        guard let i = byName[UTF8Key(name)] else {
            throw CheckpointError(.tensorNotFound, "no tensor named '\(name)' in the checkpoint", path: path, tensor: name)
        }
        return try files[entries[i].fileIndex].tensor(named: name)
    }

    /// `config.json` in the model folder, when present.
    public var configPath: String? {
        let p = FileSystem.join(folder, "config.json")
        return FileSystem.isFile(p) ? p : nil
    }
}
