import CheckpointCore

/// A GGUF file of a supported family (``ModelFamilies``) read as the Hugging Face checkpoint it stands for, so that `hash`,
/// `diff` and `verify` (including `verify --source --manifest` of `prune MODEL OUT.gguf`) work on it
/// directly.
///
/// Tensors carry their Hugging Face names and layout, as `convert FILE.gguf FOLDER` would write
/// them (``GGUFToHuggingFace/plan(_:_:dtype:)``): Q/K rows un-permuted, all in one dtype (the
/// token embedding's F16/BF16, or F32 when any tensor is quantized; quantized tensors are
/// dequantized), zero biases where a folder with `attention_bias`/`mlp_bias` needs them, derived
/// rope-frequency tensors left out. A float tensor that needs no permutation and is stored in that
/// dtype is read from the map as it is; any other is decoded into a temporary buffer per read.
public final class GGUFTensorStore: TensorStore, @unchecked Sendable {
    public let file: GGUFFile
    public let path: String
    public let tensorInfos: [TensorInfo]
    private let plans: [String: GGUFToHuggingFace.TensorPlan]

    /// - Throws: the GGUF reader's errors; `unsupportedArchitecture` for a file whose architecture
    ///   no family reads, or with a tensor the family has no Hugging Face name for.
    public init(path: String) throws(CheckpointError) {
        let f = try GGUFFile(path: path)
        let md = try GGUFModelMetadata(gguf: f)
        let (plan, _) = try GGUFToHuggingFace.plan(f, md, dtype: GGUFToHuggingFace.defaultDType(f))
        var infos: [TensorInfo] = []
        var byName: [String: GGUFToHuggingFace.TensorPlan] = [:]
        var offset = 0
        for p in plan {
            let n = try p.spec.byteCount()
            let (end, overflow) = offset.addingReportingOverflow(n)
            guard !overflow else { throw CheckpointError(.validationOverflow, "tensor sizes overflow", path: path, tensor: p.spec.name) }
            infos.append(TensorInfo(name: p.spec.name, dtype: p.spec.dtype, shape: p.spec.shape, dataOffsets: offset..<end))
            byName[p.spec.name] = p
            offset = end
        }
        file = f
        self.path = path
        tensorInfos = infos
        plans = byName
    }

    public var formatName: String { "gguf" }
    public var metadataMap: Metadata? { nil }
    /// None: a GGUF file carries its configuration in its own metadata, not a `config.json`.
    public var modelFolder: String? { nil }
    public var dataFiles: [String] { [path] }

    public func withTensorBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let p = plans[name] else {
            throw CheckpointError(.tensorNotFound, "no tensor named '\(name)'", path: path, tensor: name)
        }
        // Stored as it is read (same dtype, no permutation): the mapped bytes themselves.
        if let t = p.source, p.permuteHeads == nil, p.offset == 0, Dequantize.plainDType(t.type) == p.spec.dtype {
            return try file.withUnsafeBytes(of: t) { try body($0) }
        }
        let bytes = try GGUFToHuggingFace.tensorBytes(file, p, allowOverflow: true)
        return try bytes.withUnsafeBytes { try body($0) }
    }

    /// Opening validated the header, every tensor's extent and the name mapping; decoding each
    /// tensor once checks the rest (quantized blocks decode, sizes agree).
    public func deepValidate() -> [CheckpointError] {
        var errors: [CheckpointError] = []
        for info in tensorInfos {
            do {
                let n = try withTensorBytes(info.name) { $0.count }
                if n != info.byteCount {
                    errors.append(CheckpointError(.tensorInvalidInfo, "decodes to \(n) bytes, expected \(info.byteCount)", path: path, tensor: info.name))
                }
            } catch let e as CheckpointError {
                errors.append(e)
            } catch {
                errors.append(CheckpointError(.io, "\(error)", path: path, tensor: info.name))
            }
        }
        return errors
    }
}
