import ShearsJSON

/// Writes a checkpoint as one `model.safetensors` or, past a size limit, as shards
/// `model-00001-of-0000N.safetensors` with a `model.safetensors.index.json`, the layout
/// Hugging Face `save_pretrained` produces.
///
/// Shards are filled greedily in the order the tensors are given (no bin packing); a tensor larger
/// than the limit gets a shard of its own. Each shard is streamed and renamed into place; the index
/// is written last.
public enum ShardedWriter {
    /// The plan: which tensors go in which file, in the order given.
    public static func plan(_ tensors: [TensorSpec], maxShardSize: Int?) throws(CheckpointError) -> [[TensorSpec]] {
        guard let limit = maxShardSize else { return [tensors] }
        guard limit > 0 else { throw CheckpointError(.invalidArgument, "the maximum shard size must be positive") }
        var shards: [[TensorSpec]] = []
        var current: [TensorSpec] = []
        var currentSize = 0
        for t in tensors {
            let size = try t.byteCount()
            if size > limit {
                shards.append([t])
                continue
            }
            if currentSize + size > limit && !current.isEmpty {
                shards.append(current)
                current = []
                currentSize = 0
            }
            current.append(t)
            currentSize += size
        }
        if !current.isEmpty || shards.isEmpty { shards.append(current) }
        return shards
    }

    /// File names for `count` shards: `model.safetensors` alone, else `model-0000i-of-0000n.safetensors`.
    public static func shardNames(count: Int, prefix: String = "model") -> [String] {
        if count == 1 { return ["\(prefix).safetensors"] }
        func five(_ i: Int) -> String { let s = String(i); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return (1...count).map { "\(prefix)-\(five($0))-of-\(five(count)).safetensors" }
    }

    /// Writes `tensors` into `folder`.
    /// - Parameters:
    ///   - maxShardSize: bytes of tensor data per shard, or nil for a single file.
    ///   - metadata: each file's `__metadata__` (Hugging Face writes `{"format":"pt"}`).
    ///   - data: asked for each tensor's bytes once, shard by shard, in each file's order.
    /// - Returns: the paths written (shards, then the index if any).
    @discardableResult
    public static func write(folder: String, tensors: [TensorSpec], maxShardSize: Int? = nil,
                             metadata: Metadata? = Metadata([("format", "pt")]), prefix: String = "model",
                             data: (TensorSpec) throws(CheckpointError) -> TensorBytes) throws(CheckpointError) -> [String] {
        try stream(folder: folder, tensors: tensors, maxShardSize: maxShardSize, metadata: metadata, prefix: prefix) { (spec, sink) throws(CheckpointError) in
            switch try data(spec).encoded(for: spec) {
            case .bytes(let b):
                let r: Result<Void, CheckpointError> = b.withUnsafeBytes { raw in Result { () throws(CheckpointError) in try sink(raw) } }
                try r.get()
            case .view(let v): try v.withUnsafeBytes { (raw) throws(CheckpointError) in try sink(raw) }
            case .floats: preconditionFailure("encoded(for:) returns bytes")
            }
        }
    }

    /// Like ``write(folder:tensors:maxShardSize:metadata:prefix:data:)``, but each tensor's bytes
    /// are handed over in a scoped buffer (`bytes(spec, write)` must call `write` once), so a caller
    /// can encode into one reusable buffer instead of allocating an array per tensor.
    @discardableResult
    public static func stream(folder: String, tensors: [TensorSpec], maxShardSize: Int? = nil,
                              metadata: Metadata? = Metadata([("format", "pt")]), prefix: String = "model",
                              bytes: (TensorSpec, (UnsafeRawBufferPointer) throws(CheckpointError) -> Void) throws(CheckpointError) -> Void) throws(CheckpointError) -> [String] {
        try FileSystem.createDirectory(folder)
        let shards = try plan(tensors, maxShardSize: maxShardSize)
        let names = shardNames(count: shards.count, prefix: prefix)
        var written: [String] = []
        var weightMap: [(String, String)] = []
        var total = 0
        var parameters = 0
        for (shard, name) in zip(shards, names) {
            let path = FileSystem.join(folder, name)
            let w = try SafetensorsWriter(path: path, tensors: shard, metadata: metadata)
            while let spec = w.nextTensor {
                try bytes(spec) { (raw) throws(CheckpointError) in try w.write(raw) }
                if w.nextTensor == spec {
                    throw CheckpointError(.invalidArgument, "no bytes were given for this tensor", path: path, tensor: spec.name)
                }
                weightMap.append((spec.name, name))
                total += try spec.byteCount()
                parameters += spec.shape.reduce(1, *)
            }
            try w.finish()
            written.append(path)
        }
        if shards.count > 1 {
            let indexPath = FileSystem.join(folder, "\(prefix).safetensors.index.json")
            try AtomicFile.write(indexJSON(weightMap: weightMap, totalSize: total, totalParameters: parameters), to: indexPath)
            written.append(indexPath)
        }
        return written
    }

    /// The index file's bytes: `{"metadata": {"total_parameters": P, "total_size": N}, "weight_map":
    /// {...}}`, keys sorted, indented by two spaces, with a final newline (as transformers 5's
    /// `save_pretrained` writes it). `total_size` counts tensor bytes only.
    public static func indexJSON(weightMap: [(String, String)], totalSize: Int, totalParameters: Int? = nil) -> [UInt8] {
        let sorted = weightMap.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        let root = JSONValue.object(JSONObject([
            ("metadata", .object(JSONObject((totalParameters.map { [("total_parameters", JSONValue.int(Int64($0)))] } ?? [])
                                            + [("total_size", .int(Int64(totalSize)))]))),
            ("weight_map", .object(JSONObject(sorted.map { ($0.0, JSONValue.string($0.1)) }))),
        ]))
        return root.serializedBytes(style: .pretty) + [0x0A]
    }
}
