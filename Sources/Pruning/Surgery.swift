import CheckpointCore
import ModelArchitecture

/// Applies a ``PruningPlan`` to a checkpoint: every source tensor is streamed through an
/// index-select (kept rows/columns in ascending source order) into a writer, one tensor at a
/// time. Tensors of removed layers are dropped and later layers renumbered.
public enum Surgery {
    /// How one source tensor becomes an output tensor.
    public struct TensorSlice: Sendable, Equatable {
        public var sourceName: String
        public var outputName: String
        /// Kept rows (dimension 0), or nil for all.
        public var rows: [Int]?
        /// Kept columns (dimension 1, or the elements of a vector), or nil for all.
        public var columns: [Int]?
        public var sourceShape: [Int]

        public var outputShape: [Int] {
            if sourceShape.count == 1 { return [columns?.count ?? sourceShape[0]] }
            var s = sourceShape
            if let rows { s[0] = rows.count }
            if let columns, s.count > 1 { s[1] = columns.count }
            return s
        }
    }

    /// The slice of tensor `name` (of `shape`) under `plan`, or nil when the tensor is dropped: each
    /// axis keeps the entries `plan` keeps of the dimension the family's layout gives it.
    public static func slice(_ name: String, shape: [Int], plan: PruningPlan) -> TensorSlice? {
        let model = plan.shape, d = model.headDim
        var t = TensorSlice(sourceName: name, outputName: name, rows: nil, columns: nil, sourceShape: shape)
        let layerIndex = model.tensors.layerIndex(of: name)?.layer
        if let l = layerIndex {
            guard let newIndex = plan.keptLayers.firstIndex(of: l) else { return nil }
            t.outputName = model.tensors.renumbered(name, to: newIndex)
        }
        guard let ref = model.tensors.reference(of: name) else { return t }
        func channels(_ heads: [Int], _ total: Int) -> [Int]? {
            heads.count == total ? nil : heads.flatMap { ($0 * d)..<(($0 + 1) * d) }
        }
        /// The kept entries of one dimension (nil: all).
        func kept(_ dimension: Dimension) -> [Int]? {
            switch dimension {
            case .vocabulary, .headDim: return nil
            case .hidden: return plan.keptHidden.count == model.hiddenSize ? nil : plan.keptHidden
            case .queryChannels: return channels(plan.layers[ref.layer!].keptHeads, model.attentionHeads)
            case .keyValueChannels: return channels(plan.layers[ref.layer!].keptKeyValueHeads, model.keyValueHeads)
            case .mlpChannels:
                let c = plan.layers[ref.layer!].keptChannels
                return c.count == model.intermediateSize ? nil : c
            }
        }
        /// Kept rows of stacked segments (a fused tensor), offsets added; nil when all are kept.
        func keptRows(_ segments: [Dimension]) -> [Int]? {
            if segments.count == 1 { return kept(segments[0]) }
            var out: [Int] = [], offset = 0, all = true
            let sizes = model.layers.first.map { s in segments.map { s.width(of: $0, in: model) } } ?? []
            for (seg, n) in zip(segments, sizes) {
                let k = kept(seg)
                all = all && k == nil
                out += (k ?? Array(0..<n)).map { $0 + offset }
                offset += n
            }
            return all ? nil : out
        }
        let decl = model.tensors.declaration(ref.role)
        if decl.isVector {
            t.columns = kept(decl.columns)
        } else if ref.kind == .bias || shape.count == 1 {
            t.columns = keptRows(decl.rows)
        } else {
            t.rows = keptRows(decl.rows)
            t.columns = kept(decl.columns)
        }
        return t
    }

    /// All output tensors, in the source's order.
    public static func slices(_ checkpoint: any TensorStore, plan: PruningPlan) -> [TensorSlice] {
        checkpoint.tensorInfos.compactMap { slice($0.name, shape: $0.shape, plan: plan) }
    }

    /// Copies the kept rows and columns of a row-major tensor's bytes.
    /// - Throws: `unsupportedConversion` for sub-byte types; `shapeMismatch` when an index is out of range.
    public static func sliceBytes(_ src: UnsafeRawBufferPointer, _ t: TensorSlice, dtype: DType) throws(CheckpointError) -> [UInt8] {
        guard let e = dtype.byteSize else {
            throw CheckpointError(.unsupportedConversion, "cannot slice \(dtype.rawValue) elements (sub-byte type)", tensor: t.sourceName)
        }
        let shape = t.sourceShape
        let (r, c) = shape.count == 1 ? (1, shape[0]) : (shape[0], shape.dropFirst().reduce(1, *))
        guard src.count == r * c * e else { throw CheckpointError(.shapeMismatch, "holds \(src.count) bytes, not \(r * c * e)", tensor: t.sourceName) }
        if shape.count > 2 && t.columns != nil { throw CheckpointError(.shapeMismatch, "cannot slice columns of a \(shape.count)-D tensor", tensor: t.sourceName) }
        let rows = t.rows ?? Array(0..<r), cols = t.columns
        for i in rows where i < 0 || i >= r { throw CheckpointError(.shapeMismatch, "row \(i) out of range 0..<\(r)", tensor: t.sourceName) }
        for j in cols ?? [] where j < 0 || j >= c { throw CheckpointError(.shapeMismatch, "column \(j) out of range 0..<\(c)", tensor: t.sourceName) }
        let outCols = cols?.count ?? c
        var out = [UInt8](repeating: 0, count: rows.count * outCols * e)
        out.withUnsafeMutableBytes { dst in
            switch e {
            case 1: gather(src, dst, rows: rows, cols: cols, width: c, as: UInt8.self)
            case 2: gather(src, dst, rows: rows, cols: cols, width: c, as: UInt16.self)
            case 4: gather(src, dst, rows: rows, cols: cols, width: c, as: UInt32.self)
            case 8: gather(src, dst, rows: rows, cols: cols, width: c, as: UInt64.self)
            default:
                var o = 0
                for i in rows {
                    for j in cols ?? Array(0..<c) {
                        dst.baseAddress!.advanced(by: o).copyMemory(from: src.baseAddress!.advanced(by: (i * c + j) * e), byteCount: e)
                        o += e
                    }
                }
            }
        }
        return out
    }

    /// Copies rows × cols elements of type `T` (unaligned loads; indices already checked).
    static func gather<T: FixedWidthInteger>(_ src: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer,
                                             rows: [Int], cols: [Int]?, width c: Int, as: T.Type) {
        let size = MemoryLayout<T>.size
        var o = 0
        for i in rows {
            let base = i * c
            if let cols {
                for j in cols {
                    dst.storeBytes(of: src.loadUnaligned(fromByteOffset: (base + j) * size, as: T.self), toByteOffset: o * size, as: T.self)
                    o += 1
                }
            } else {
                dst.baseAddress!.advanced(by: o * size).copyMemory(from: src.baseAddress!.advanced(by: base * size), byteCount: c * size)
                o += c
            }
        }
    }

    /// Writes the pruned model's tensors into `folder` (`model.safetensors`, or shards past
    /// `maxShardSize`). Floating-point tensors are converted to `dtype` when given. With
    /// `recovered`, refit tensors replace their slices and added biases follow their weights.
    /// - Returns: the paths written.
    @discardableResult
    public static func write(_ checkpoint: any TensorStore, plan: PruningPlan, to folder: String, dtype: DType? = nil,
                             maxShardSize: Int? = nil, recovered: RecoveredTensors? = nil,
                             progress: ((Int, Int) -> Void)? = nil) throws(CheckpointError) -> [String] {
        let slices = slices(checkpoint, plan: plan)
        var byOutput: [String: TensorSlice] = [:]
        var specs: [TensorSpec] = []
        let added = Set(recovered?.added ?? [])
        for s in slices {
            let info = checkpoint.tensorInfo(named: s.sourceName)!
            var type = info.dtype
            if let dtype, type.isFloatingPoint, type.convertsToFloat32 { type = dtype }
            var shape = s.outputShape
            if let c = recovered?.values[s.outputName] { shape = c.info(named: s.outputName)!.shape }
            specs.append(TensorSpec(name: s.outputName, dtype: type, shape: shape))
            byOutput[s.outputName] = s
            if s.outputName.hasSuffix(".weight") {
                let bias = String(s.outputName.dropLast("weight".count)) + "bias"
                if added.contains(bias) { specs.append(TensorSpec(name: bias, dtype: type, shape: [shape[0]])) }
            }
        }
        var metadata = checkpoint.metadataMap ?? Metadata()
        if metadata["format"] == nil { metadata["format"] = "pt" }
        // Blocks of a fused tensor (a FusedTensorView source: Phi-3's q/k/v, gate/up) are written
        // fused again, each block sliced on its own and stacked in the family's order.
        let (outSpecs, fusedParts) = fuse(specs, naming: plan.shape.tensors)
        func produce(_ spec: TensorSpec) throws(CheckpointError) -> TensorBytes {
            if let c = recovered?.values[spec.name] { return .floats(try c.tensor(named: spec.name).floats()) }
            guard let s = byOutput[spec.name] else {
                return .floats([Float](repeating: 0, count: spec.shape.reduce(1, *)))   // an added all-zero bias
            }
            let dtype = checkpoint.tensorInfo(named: s.sourceName)!.dtype
            let whole = s.rows == nil && s.columns == nil
            if whole && dtype == spec.dtype, let mapped = checkpoint as? Checkpoint { return .view(try mapped.tensor(named: s.sourceName)) }
            let bytes = try checkpoint.checked(s.sourceName) {
                try checkpoint.withTensorBytes(s.sourceName) { raw in whole ? Array(raw) : try sliceBytes(raw, s, dtype: dtype) }
            }
            if dtype == spec.dtype { return .bytes(bytes) }
            var floats = [Float](repeating: 0, count: spec.shape.reduce(1, *))
            let r: Result<Void, CheckpointError> = bytes.withUnsafeBytes { src in
                floats.withUnsafeMutableBufferPointer { dst in
                    Result { () throws(CheckpointError) in try DTypeConversion.decode(src, as: dtype, into: dst) }
                }
            }
            if case .failure(let e) = r { throw e.withTensor(s.sourceName) }
            return .floats(floats)
        }
        var done = 0
        return try ShardedWriter.write(folder: folder, tensors: outSpecs, maxShardSize: maxShardSize, metadata: metadata) { (spec) throws(CheckpointError) -> TensorBytes in
            done += 1
            progress?(done, outSpecs.count)
            guard let parts = fusedParts[spec.name] else { return try produce(spec) }
            var produced: [TensorBytes] = []
            for p in parts { produced.append(try produce(p)) }
            return try concatenate(produced, parts)
        }
    }

    /// `specs` with the blocks of each fused tensor replaced, at the first block's place, by the
    /// stored tensor (rows added up), and the blocks of each fused name in stacking order.
    static func fuse(_ specs: [TensorSpec], naming t: TensorNaming) -> ([TensorSpec], [String: [TensorSpec]]) {
        var out: [TensorSpec] = [], parts: [String: [(Int, TensorSpec)]] = [:]
        for spec in specs {
            guard let f = FusedTensorView.fusedTarget(of: spec.name, naming: t) else { out.append(spec); continue }
            if parts[f.name] == nil { out.append(TensorSpec(name: f.name, dtype: spec.dtype, shape: spec.shape)) }
            parts[f.name, default: []].append((f.position, spec))
        }
        var ordered: [String: [TensorSpec]] = [:]
        for (name, p) in parts { ordered[name] = p.sorted { $0.0 < $1.0 }.map(\.1) }
        for i in out.indices {
            guard let p = ordered[out[i].name] else { continue }
            var shape = p[0].shape
            shape[0] = p.reduce(0) { $0 + $1.shape[0] }
            out[i].shape = shape
        }
        return (out, ordered)
    }

    /// The stacked bytes of a fused tensor's blocks (floats when every block came as floats).
    static func concatenate(_ produced: [TensorBytes], _ specs: [TensorSpec]) throws(CheckpointError) -> TensorBytes {
        if produced.allSatisfy({ if case .floats = $0 { true } else { false } }) {
            var all: [Float] = []
            for case .floats(let f) in produced { all += f }
            return .floats(all)
        }
        var out: [UInt8] = []
        for (b, spec) in zip(produced, specs) {
            switch b {
            case .bytes(let x): out += x
            case .view(let v): out += v.bytes()
            case .floats(let f):
                var enc = [UInt8](repeating: 0, count: try spec.byteCount())
                let r: Result<Void, CheckpointError> = f.withUnsafeBufferPointer { src in
                    enc.withUnsafeMutableBytes { dst in Result { () throws(CheckpointError) in try DTypeConversion.encode(src, as: spec.dtype, into: dst) } }
                }
                if case .failure(let e) = r { throw e.withTensor(spec.name) }
                out += enc
            }
        }
        return .bytes(out)
    }
}

extension CheckpointError {
    func withTensor(_ name: String) -> CheckpointError {
        var e = self
        if e.tensor == nil { e.tensor = name }
        return e
    }
}
