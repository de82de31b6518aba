/// Any checkpoint Shears reads, whatever its container: the tensors' names, dtypes and shapes, and
/// their logical bytes (little-endian, row-major, in the stored dtype). Safetensors hands out its
/// mapped bytes; the compact format decodes them. Commands that compare, hash or verify work on
/// this, so a tensor is the same tensor in every format.
public protocol TensorStore: AnyObject, Sendable {
    /// The path as given.
    var path: String { get }
    /// A short format name ("safetensors", "safetensors-sharded", "compact", ...).
    var formatName: String { get }
    /// Tensors in storage order. `dataOffsets` are only meaningful within the store.
    var tensorInfos: [TensorInfo] { get }
    /// The string metadata map, if the format has one.
    var metadataMap: Metadata? { get }
    /// The folder holding `config.json`, tokenizer files etc., when there is one.
    var modelFolder: String? { get }
    /// The data files, for per-file hashes.
    var dataFiles: [String] { get }
    /// Calls `body` with the tensor's logical bytes. Do not let the pointer escape.
    func withTensorBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R
    /// Checks everything that opening does not (for example decoding every chunk); empty when intact.
    func deepValidate() -> [CheckpointError]
    /// The entry for `name`, or nil (by default a scan of ``tensorInfos``).
    func tensorInfo(named name: String) -> TensorInfo?
}

extension TensorStore {
    /// The entry for `name`, or nil.
    public func tensorInfo(named name: String) -> TensorInfo? {
        tensorInfos.first { $0.name.utf8.elementsEqual(name.utf8) }
    }

    /// The tensor's elements as `Float`.
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensorInfo(named: name) else {
            throw CheckpointError(.tensorNotFound, "no tensor named '\(name)'", path: path, tensor: name)
        }
        return try withTensorBytes(name) { raw in
            var out = [Float](repeating: 0, count: info.elementCount)
            try out.withUnsafeMutableBufferPointer { o in
                do { try DTypeConversion.decode(raw, as: info.dtype, into: o) } catch let e as CheckpointError {
                    throw CheckpointError(e.code, e.message, path: path, tensor: name)
                }
            }
            return out
        }
    }

    /// `config.json` in the model folder, when present.
    public var configPath: String? {
        guard let folder = modelFolder else { return nil }
        let p = FileSystem.join(folder, "config.json")
        return FileSystem.isFile(p) ? p : nil
    }
}

extension Checkpoint: TensorStore {
    public func tensorInfo(named name: String) -> TensorInfo? { info(named: name) }
    public var formatName: String { format.rawValue }
    public var metadataMap: Metadata? { metadata }
    public var tensorInfos: [TensorInfo] { entries.map(\.info) }
    public var modelFolder: String? { folder }
    public var dataFiles: [String] { (indexPath.map { [$0] } ?? []) + files.map(\.path) }

    public func withTensorBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let v = try tensor(named: name)
        return try v.file.withUnsafeBytes(in: v.range) { try body($0) }
    }

    /// Safetensors files are fully validated when opened.
    public func deepValidate() -> [CheckpointError] { [] }
}

extension TensorStore {
    /// Tensor names in storage order.
    public var tensorNames: [String] { tensorInfos.map(\.name) }

    /// Elements of every tensor.
    public var parameterCount: Int { tensorInfos.reduce(0) { $0 + $1.elementCount } }

    /// The tensor's logical bytes, copied.
    public func bytes(_ name: String) throws(CheckpointError) -> [UInt8] {
        try checked(name) { try withTensorBytes(name) { Array($0) } }
    }

    /// The tensor's elements as `Float`, with any failure as a ``CheckpointError`` naming it.
    public func tensorFloats(_ name: String) throws(CheckpointError) -> [Float] {
        try checked(name) { try floats(name) }
    }

    /// Runs `body`, turning any error into a ``CheckpointError`` that names this store and `tensor`.
    public func checked<R>(_ tensor: String, _ body: () throws -> R) throws(CheckpointError) -> R {
        do { return try body() } catch var e as CheckpointError {
            e.path = e.path ?? path
            e.tensor = e.tensor ?? tensor
            throw e
        } catch {
            throw CheckpointError(.io, "\(error)", path: path, tensor: tensor)
        }
    }
}
