import ShearsJSON

/// A parsed `model.safetensors.index.json`: `weight_map` (tensor → shard file) and `metadata`.
public struct ShardIndex: Sendable {
    public var weightMap: JSONObject
    public var metadata: JSONObject?
    /// `metadata.total_size`, when present.
    public var totalSize: Int?
    /// Distinct shard names, in order of first appearance.
    public var shardNames: [String]

    /// Reads and checks an index file: JSON object, `weight_map` of strings naming plain files in
    /// the same folder, `total_size` a non-negative integer when present.
    public static func read(path: String) throws(CheckpointError) -> ShardIndex {
        let bytes = try FileSystem.readFile(path, limit: 512 << 20)
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch {
            throw CheckpointError(.invalidIndex, "index is not valid JSON: \(error.message)", path: path)
        }
        guard let root = json.objectValue else {
            throw CheckpointError(.invalidIndex, "index is not a JSON object", path: path)
        }
        guard let map = root["weight_map"]?.objectValue else {
            throw CheckpointError(.invalidIndex, "index has no weight_map object", path: path)
        }
        var shards: [String] = []
        var seen = Set<UTF8Key>()
        for (name, value) in map.members {
            guard let shard = value.stringValue else {
                throw CheckpointError(.invalidIndex, "weight_map value is \(value.typeName), not a file name", path: path, tensor: name)
            }
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw CheckpointError(.invalidIndex, "weight_map names \"\(shard)\", which is not a file in the index's folder", path: path, tensor: name)
            }
            if seen.insert(UTF8Key(shard)).inserted { shards.append(shard) }
        }
        var metadata: JSONObject? = nil
        var total: Int? = nil
        if let m = root["metadata"], !m.isNull {
            guard let mo = m.objectValue else { throw CheckpointError(.invalidIndex, "index metadata is not an object", path: path) }
            metadata = mo
            if let t = mo["total_size"], !t.isNull {
                // Some writers store it as a float (e.g. 1.2e9); accept integral values.
                if let i = t.intValue, i >= 0 { total = i }
                else if let d = t.doubleValue, d >= 0, d < 9.0e18, d == d.rounded() { total = Int(d) }
                else { throw CheckpointError(.invalidIndex, "metadata.total_size is not a non-negative integer", path: path) }
            }
        }
        return ShardIndex(weightMap: map, metadata: metadata, totalSize: total, shardNames: shards.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }
}
