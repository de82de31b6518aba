/// One tensor of a GGUF file, as its tensor info declares it (validated).
public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    /// ne[0], ne[1], …: the innermost (fastest-varying) dimension first, the reverse of PyTorch order.
    public var dimensions: [Int]
    public var type: GGMLType
    /// Offset of the data relative to the start of the data section.
    public var offset: Int
    /// Bytes of data (without alignment padding).
    public var byteCount: Int

    public init(name: String, dimensions: [Int], type: GGMLType, offset: Int, byteCount: Int) {
        self.name = name
        self.dimensions = dimensions
        self.type = type
        self.offset = offset
        self.byteCount = byteCount
    }

    /// The shape in PyTorch order (outermost first): `dimensions` reversed.
    public var shape: [Int] { dimensions.reversed() }
    /// Number of elements.
    public var elementCount: Int { dimensions.reduce(1, *) }
}
