import CheckpointCore

/// Streams a GGUF v3 file: header, metadata and tensor infos first (computed from the specs), then
/// each tensor's bytes in order, each padded to the alignment. Output goes to a temporary file in
/// the destination folder and is renamed into place by ``finish()``.
///
/// For the same metadata (in the same order), tensors and alignment, the bytes equal those the
/// Python `gguf` package's `GGUFWriter` produces.
public final class GGUFWriter {
    /// A tensor to be written: name, ne dimensions (innermost first), and type.
    public struct TensorSpec: Sendable, Equatable {
        public var name: String
        public var dimensions: [Int]
        public var type: GGMLType
        public init(name: String, dimensions: [Int], type: GGMLType) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
        }
        /// From a PyTorch-order shape.
        public init(name: String, shape: [Int], type: GGMLType) {
            self.init(name: name, dimensions: shape.reversed(), type: type)
        }
        public var elementCount: Int { dimensions.reduce(1, *) }
    }

    public let tensors: [TensorSpec]
    public let alignment: Int
    private let sizes: [Int]
    private let file: AtomicFile
    private var next = 0
    /// Total file size.
    public let fileSize: Int

    /// The header bytes (magic through the padding before the data section) and each tensor's byte size.
    public static func makeHeader(metadata: [(key: String, value: GGUFValue)], tensors: [TensorSpec], alignment: Int) throws(CheckpointError) -> (bytes: [UInt8], sizes: [Int]) {
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw CheckpointError(.ggufInvalidAlignment, "alignment \(alignment) is not a power of two")
        }
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ b: [UInt8]) { u64(UInt64(b.count)); out.append(contentsOf: b) }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .float64(let x): u64(x.bitPattern)
            case .bool(let b): out.append(b ? 1 : 0)
            case .string(let s): string(s.bytes)
            case .array(let t, let items):
                u32(t.rawValue)
                u64(UInt64(items.count))
                for i in items { value(i) }
            }
        }
        var keys = Set<String>()
        for (k, v) in metadata {
            guard keys.insert(k).inserted else { throw CheckpointError(.ggufDuplicateKey, "metadata key '\(k)' given twice") }
            if case .array(let t, let items) = v, let bad = items.first(where: { $0.type != t }) {
                throw CheckpointError(.ggufInvalidValueType, "metadata '\(k)': array of \(t.name) holds a \(bad.type.name)")
            }
        }
        if let a = metadata.first(where: { $0.key == "general.alignment" })?.value, a != .uint32(UInt32(alignment)) {
            throw CheckpointError(.ggufInvalidAlignment, "general.alignment \(a.summary()) disagrees with the alignment \(alignment)")
        }
        out.append(contentsOf: Array("GGUF".utf8))
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (k, v) in metadata {
            string(Array(k.utf8))
            u32(v.type.rawValue)
            value(v)
        }
        var names = Set<String>()
        var offset = 0
        var sizes: [Int] = []
        for t in tensors {
            guard names.insert(t.name).inserted else { throw CheckpointError(.duplicateTensorName, "two tensors have this name", tensor: t.name) }
            guard t.name.utf8.count < GGUFFile.maximumNameLength else {
                throw CheckpointError(.ggufInvalidTensorInfo, "name is \(t.name.utf8.count) bytes; GGUF names must be shorter than \(GGUFFile.maximumNameLength)", tensor: t.name)
            }
            guard t.dimensions.count <= GGUFFile.maximumDimensions, t.dimensions.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError(.ggufInvalidTensorInfo, "dimensions \(t.dimensions) are not 0-4 non-negative sizes", tensor: t.name)
            }
            guard (t.dimensions.first ?? 1) % t.type.blockSize == 0, let size = t.type.byteCount(elements: t.elementCount) else {
                throw CheckpointError(.ggufInvalidBlockShape, "row length \(t.dimensions.first ?? 1) is not a multiple of \(t.type.name)'s block size \(t.type.blockSize)", tensor: t.name)
            }
            string(Array(t.name.utf8))
            u32(UInt32(t.dimensions.count))
            for d in t.dimensions { u64(UInt64(d)) }
            u32(t.type.rawValue)
            u64(UInt64(offset))
            sizes.append(size)
            offset += (size + alignment - 1) / alignment * alignment
        }
        while out.count % alignment != 0 { out.append(0) }
        return (out, sizes)
    }

    /// Starts writing `path`.
    public init(path: String, metadata: [(key: String, value: GGUFValue)], tensors: [TensorSpec], alignment: Int = GGUFFile.defaultAlignment) throws(CheckpointError) {
        let (header, sizes) = try GGUFWriter.makeHeader(metadata: metadata, tensors: tensors, alignment: alignment)
        self.tensors = tensors
        self.alignment = alignment
        self.sizes = sizes
        fileSize = header.count + sizes.reduce(0) { $0 + ($1 + alignment - 1) / alignment * alignment }
        file = try AtomicFile(path: path)
        file.preallocate(fileSize)
        try file.write(header)
    }

    /// The tensor whose bytes are expected next, or nil when all are written.
    public var nextTensor: TensorSpec? { next < tensors.count ? tensors[next] : nil }

    /// Writes the next tensor's bytes, then its padding.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard next < tensors.count else {
            throw CheckpointError(.invalidArgument, "all \(tensors.count) tensors are written already", path: file.path)
        }
        guard bytes.count == sizes[next] else {
            throw CheckpointError(.shapeMismatch, "got \(bytes.count) bytes, expected \(sizes[next]) for \(tensors[next].dimensions) of \(tensors[next].type.name)", path: file.path, tensor: tensors[next].name)
        }
        try file.write(bytes)
        let pad = (alignment - bytes.count % alignment) % alignment
        if pad > 0 { try file.write([UInt8](repeating: 0, count: pad)) }
        next += 1
    }

    public func write(_ bytes: [UInt8]) throws(CheckpointError) {
        let r: Result<Void, CheckpointError> = bytes.withUnsafeBytes { raw in Result { () throws(CheckpointError) in try write(raw) } }
        try r.get()
    }

    /// Checks every tensor was written, then renames the file into place.
    public func finish() throws(CheckpointError) {
        guard next == tensors.count else {
            throw CheckpointError(.invalidArgument, "only \(next) of \(tensors.count) tensors were written; next expected: \(tensors[next].name)", path: file.path)
        }
        try file.commit()
    }
}
