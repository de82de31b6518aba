import CheckpointCore
import ModelArchitecture
import ShearsJSON

extension PruningPlan {
    /// The plan a `pruning-manifest.json` records (formats/manifest.md), for a source of `shape`:
    /// kept heads, KV heads and MLP channels per layer, kept hidden channels and removed layers.
    /// - Throws: `invalidArgument` when the manifest does not fit the shape (a layer count, an
    ///   index out of range or out of order).
    public init(manifest: JSONValue, shape: ModelDescription) throws(CheckpointError) {
        self.init(unpruned: shape)
        func fail(_ m: String) -> CheckpointError { CheckpointError(.invalidArgument, "manifest: " + m) }
        guard manifest["format"]?.stringValue == "shears-pruning-manifest" else { throw fail("not a shears pruning manifest") }
        func indices(_ v: JSONValue?, below limit: Int, _ what: String) throws(CheckpointError) -> [Int] {
            guard let a = v?.arrayValue else { throw fail("\(what) is missing") }
            var out: [Int] = []
            for x in a {
                guard let i = x.intValue, i >= 0, i < limit, (out.last ?? -1) < i else {
                    throw fail("\(what) holds \(x.serialized()), not an ascending index below \(limit)")
                }
                out.append(i)
            }
            return out
        }
        guard let layers = manifest["layers"]?.arrayValue, layers.count == shape.layerCount else {
            throw fail("lists \(manifest["layers"]?.arrayValue?.count ?? 0) layers, the source has \(shape.layerCount)")
        }
        for (i, l) in layers.enumerated() {
            guard l["layer"]?.intValue == i else { throw fail("layer entry \(i) is out of order") }
            self.layers[i].keptHeads = try indices(l["attention"]?["kept_heads"], below: shape.attentionHeads, "layer \(i) kept_heads")
            self.layers[i].keptKeyValueHeads = try indices(l["attention"]?["kept_kv_heads"], below: shape.keyValueHeads, "layer \(i) kept_kv_heads")
            self.layers[i].keptChannels = try indices(l["mlp"]?["kept_channels"], below: shape.intermediateSize, "layer \(i) kept_channels")
        }
        if let h = manifest["hidden"], !h.isNull {
            keptHidden = try indices(h["kept_channels"], below: shape.hiddenSize, "hidden kept_channels")
        }
        if let r = manifest["removed_layers"], !r.isNull {
            let removed = Set(try indices(r, below: shape.layerCount, "removed_layers"))
            keptLayers = (0..<shape.layerCount).filter { !removed.contains($0) }
        }
    }
}
