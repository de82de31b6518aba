/// One tensor's entry in a checkpoint header: name, element type, shape and where its bytes are.
public struct TensorInfo: Sendable, Equatable, Hashable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range relative to the start of the file's data section.
    public var dataOffsets: Range<Int>

    public init(name: String, dtype: DType, shape: [Int], dataOffsets: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataOffsets = dataOffsets
    }

    /// Number of elements (1 for a 0-rank scalar, 0 when any dimension is 0).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Number of bytes the data occupies.
    public var byteCount: Int { dataOffsets.count }
}

/// A tensor's declared layout, before it has a place in a file: what a writer is given.
public struct TensorSpec: Sendable, Equatable, Hashable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    /// Bytes the data occupies, overflow-checked; throws for sub-byte sizes that are not whole bytes.
    public func byteCount() throws(CheckpointError) -> Int {
        var elements = 1
        for d in shape {
            guard d >= 0 else { throw CheckpointError(.invalidArgument, "negative dimension in shape \(shape)", tensor: name) }
            let (p, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { throw CheckpointError(.validationOverflow, "shape \(shape) overflows the element count", tensor: name) }
            elements = p
        }
        let (bits, o) = elements.multipliedReportingOverflow(by: dtype.bitSize)
        guard !o else { throw CheckpointError(.validationOverflow, "shape \(shape) × \(dtype.rawValue) overflows the byte count", tensor: name) }
        guard bits % 8 == 0 else {
            throw CheckpointError(.misalignedSlice, "\(elements) elements of \(dtype.rawValue) are not a whole number of bytes", tensor: name)
        }
        return bits / 8
    }
}

/// String-to-string metadata (`__metadata__`), in file order.
public struct Metadata: Sendable, Equatable, Sequence {
    public private(set) var entries: [(key: String, value: String)]

    public init(_ entries: [(key: String, value: String)] = []) { self.entries = entries }

    public subscript(key: String) -> String? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let i = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[i].value = newValue } else { entries.remove(at: i) }
            } else if let newValue {
                entries.append((key, newValue))
            }
        }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }
    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> { entries.makeIterator() }

    public static func == (a: Metadata, b: Metadata) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}
