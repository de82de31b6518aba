import CheckpointCore

extension CompactFile: TensorStore {
    public var formatName: String { "compact" }
    public var metadataMap: Metadata? { metadata.isEmpty ? nil : metadata }
    public var tensorInfos: [TensorInfo] { tensors.map(\.info) }
    public var modelFolder: String? { FileSystem.directoryName(path) }
    public var dataFiles: [String] { [path] }

    public func withTensorBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let bytes = try self.bytes(named: name)
        return try bytes.withUnsafeBytes { try body($0) }
    }

    /// Decodes every chunk and checks every tensor's SHA-256 and the padding.
    public func deepValidate() -> [CheckpointError] { verify() }
}
