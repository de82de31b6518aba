import ShearsJSON

/// One safetensors file, memory-mapped and validated.
///
/// Opening maps the file and parses its header; tensor data is not touched until a view of it is
/// read. Every error names the file.
public final class SafetensorsFile: Sendable {
    public let path: String
    public let header: SafetensorsHeader
    public let mapping: MappedFile
    private let byName: [UTF8Key: Int]

    /// Opens and validates `path`.
    /// - Throws: ``CheckpointError`` naming `path`.
    public init(path: String) throws(CheckpointError) {
        self.path = path
        let mapping = try MappedFile(path: path)
        self.mapping = mapping
        do {
            header = try mapping.withUnsafeBytes { (raw) throws(CheckpointError) in try SafetensorsHeader.parse(raw) }
        } catch {
            throw error.inFile(path)
        }
        var byName: [UTF8Key: Int] = [:]
        for (i, t) in header.tensors.enumerated() { byName[UTF8Key(t.name)] = i }
        self.byName = byName
    }

    /// Tensors in the order their data appears in the file.
    public var tensors: [TensorInfo] { header.tensors }
    public var metadata: Metadata? { header.metadata }
    /// The file's size in bytes.
    public var fileSize: Int { mapping.count }

    /// The entry for `name`, or nil.
    public func info(named name: String) -> TensorInfo? { byName[UTF8Key(name)].map { header.tensors[$0] } }

    /// A view of tensor `name`'s bytes.
    /// - Throws: `tensorNotFound`.
    public func tensor(named name: String) throws(CheckpointError) -> TensorView {
        guard let i = byName[UTF8Key(name)] else {
            throw CheckpointError(.tensorNotFound, "no tensor named '\(name)'", path: path, tensor: name)
        }
        return TensorView(info: header.tensors[i], file: mapping, dataStart: header.dataStart)
    }

    /// Views of every tensor, in file order.
    public func views() -> [TensorView] {
        header.tensors.map { TensorView(info: $0, file: mapping, dataStart: header.dataStart) }
    }
}
