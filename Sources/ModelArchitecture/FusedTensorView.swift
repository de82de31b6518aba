import CheckpointCore

/// A store whose fused tensors (``FusedRows``: Phi-3's `qkv_proj`, `gate_up_proj`) appear as their
/// row blocks, one tensor per role under the role's own name (``TensorDeclaration/name``); every
/// other tensor passes through. A block is a contiguous byte range of the stored tensor (rows of a
/// row-major matrix), so nothing is copied: the engine converts each block to F32 as it would a
/// tensor of its own, and pruning ranks and slices the blocks as separate projections
/// (``Surgery`` writes them fused again).
public final class FusedTensorView: TensorStore, @unchecked Sendable {
    public let base: any TensorStore
    public let tensorInfos: [TensorInfo]
    /// Block name → (stored name, byte range within the stored tensor's bytes, stored byte count).
    private let blocks: [String: (source: String, bytes: Range<Int>, total: Int)]
    private let byName: [String: Int]

    public var path: String { base.path }
    public var formatName: String { base.formatName }
    public var metadataMap: Metadata? { base.metadataMap }
    public var modelFolder: String? { base.modelFolder }
    public var dataFiles: [String] { base.dataFiles }
    public func deepValidate() -> [CheckpointError] { base.deepValidate() }
    public func tensorInfo(named name: String) -> TensorInfo? { byName[name].map { tensorInfos[$0] } }

    /// The blocks of every fused tensor of `model` in `base`.
    /// - Throws: `tensorNotFound` when a layer lacks a fused tensor it needs; `shapeMismatch` when
    ///   its rows are not the sum of its blocks' rows (named with the breakdown), or
    ///   `unsupportedConversion` for a sub-byte dtype whose rows cannot be addressed.
    public init(_ base: any TensorStore, model: ModelDescription) throws(CheckpointError) {
        self.base = base
        let t = model.tensors
        var fusedNames: [String: [(name: String, info: TensorInfo)]] = [:]   // stored name → blocks
        var fusedBlocks: [String: (source: String, bytes: Range<Int>, total: Int)] = [:]
        let groups = Self.fusedGroups(t)
        for l in 0..<model.layerCount {
            let s = model.layers[l]
            for g in groups {
                if !s.hasAttention && g.blocks.contains(where: \.isAttention) { continue }
                if !s.hasMLP && g.blocks.contains(where: \.isMLP) { continue }
                for kind in [ParameterKind.weight, .bias] {
                    let stored = t.layerPrefix + String(l) + "." + g.name + "." + kind.rawValue
                    guard let info = base.tensorInfo(named: stored) else {
                        if kind == .bias { continue }
                        throw CheckpointError(.tensorNotFound, "the checkpoint has no tensor '\(stored)', which the configuration requires", path: base.path, tensor: stored)
                    }
                    let rows = g.blocks.map { model.shape(of: TensorReference($0, kind, layer: l))[0] }
                    let cols = kind == .bias ? 1 : model.shape(of: TensorReference(g.blocks[0], .weight, layer: l))[1]
                    var total = 0
                    for r in rows { total = total.addingReportingOverflow(r).overflow ? .max : total + r }
                    let want = kind == .bias ? [total] : [total, cols]
                    guard info.shape == want else {
                        let parts = zip(g.blocks, rows).map { "\($0.0) \($0.1)" }.joined(separator: " + ")
                        throw CheckpointError(.shapeMismatch, "shape \(info.shape) does not match the configuration's \(want) (rows: \(parts))", path: base.path, tensor: stored)
                    }
                    guard let e = info.dtype.byteSize else {
                        throw CheckpointError(.unsupportedConversion, "a \(info.dtype.rawValue) tensor cannot be split into row blocks", path: base.path, tensor: stored)
                    }
                    var out: [(String, TensorInfo)] = []
                    var offset = 0
                    for (role, r) in zip(g.blocks, rows) {
                        let name = t.name(TensorReference(role, kind, layer: l))
                        let bytes = r * cols * e
                        let shape = kind == .bias ? [r] : [r, cols]
                        let start = info.dataOffsets.lowerBound + offset
                        out.append((name, TensorInfo(name: name, dtype: info.dtype, shape: shape, dataOffsets: start..<(start + bytes))))
                        fusedBlocks[name] = (stored, offset..<(offset + bytes), total * cols * e)
                        offset += bytes
                    }
                    fusedNames[stored] = out.map { (name: $0.0, info: $0.1) }
                }
            }
        }
        var infos: [TensorInfo] = []
        for info in base.tensorInfos {
            if let parts = fusedNames[info.name] { infos += parts.map(\.info) } else { infos.append(info) }
        }
        tensorInfos = infos
        blocks = fusedBlocks
        var index: [String: Int] = [:]
        for (i, info) in infos.enumerated() { index[info.name] = i }
        byName = index
    }

    public func withTensorBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let b = blocks[name] else { return try base.withTensorBytes(name, body) }
        return try base.withTensorBytes(b.source) { raw in
            guard raw.count == b.total else {
                throw CheckpointError(.shapeMismatch, "holds \(raw.count) bytes, not \(b.total)", path: base.path, tensor: b.source)
            }
            return try body(UnsafeRawBufferPointer(rebasing: raw[b.bytes]))
        }
    }

    /// The fused tensors a family declares (each once, in declaration order).
    public static func fusedGroups(_ t: TensorNaming) -> [FusedRows] {
        var out: [FusedRows] = []
        for d in t.layer { if let f = d.fused, !out.contains(f) { out.append(f) } }
        return out
    }

    /// `store` as the engine and pruning read it: the blocks of its fused tensors, or `store`
    /// itself for a family without fused tensors (or a store that already is a view).
    public static func unfused(_ store: any TensorStore, model: ModelDescription) throws(CheckpointError) -> any TensorStore {
        if store is FusedTensorView || fusedGroups(model.tensors).isEmpty { return store }
        return try FusedTensorView(store, model: model)
    }
}

extension FusedTensorView {
    /// Where a block tensor goes when written: the stored fused tensor's full name (layer prefix,
    /// index and kind of `name`) and the block's position in it; nil for a tensor stored alone.
    public static func fusedTarget(of name: String, naming t: TensorNaming) -> (name: String, position: Int, blocks: Int)? {
        guard let ref = t.reference(of: name), let layer = ref.layer, let f = t.declaration(ref.role).fused,
              let position = f.blocks.firstIndex(of: ref.role) else { return nil }
        return (t.layerPrefix + String(layer) + "." + f.name + "." + ref.kind.rawValue, position, f.blocks.count)
    }

    /// `shapes` (by block name) with each fused tensor's blocks replaced by the stored tensor
    /// (rows added up), as a file of the family holds them.
    public static func storedShapes(_ shapes: [String: [Int]], naming t: TensorNaming) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        var parts: [String: [(Int, [Int])]] = [:]
        for (name, shape) in shapes {
            if let f = fusedTarget(of: name, naming: t) { parts[f.name, default: []].append((f.position, shape)) } else { out[name] = shape }
        }
        for (name, p) in parts {
            let sorted = p.sorted { $0.0 < $1.0 }.map(\.1)
            var shape = sorted[0]
            shape[0] = sorted.reduce(0) { $0 + $1[0] }
            out[name] = shape
        }
        return out
    }
}
