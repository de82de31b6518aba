import ShearsJSON

/// Streams a safetensors file: the header first (from the tensors' specs), then each tensor's bytes
/// in file order, one at a time, so the model is never held in memory. Output goes to a temporary
/// file in the destination folder and is renamed into place by ``finish()``.
///
/// The layout is the reference writer's: tensors ordered by dtype alignment (descending declaration
/// order), then by name in byte order; compact JSON header with `__metadata__` first (its keys in
/// byte order), padded with spaces to a multiple of 8. For the same tensors and metadata the bytes equal those the Python
/// `safetensors` package writes.
public final class SafetensorsWriter {
    /// Tensors in the order their bytes must be written.
    public let order: [TensorSpec]
    /// The complete header bytes, including the 8-byte length and padding.
    public let headerBytes: [UInt8]

    /// Total file size.
    public let fileSize: Int
    private let file: AtomicFile
    private var next = 0
    private let byteCounts: [Int]

    /// Orders `tensors` as the reference writer does.
    public static func fileOrder(_ tensors: [TensorSpec]) -> [TensorSpec] {
        tensors.sorted { a, b in
            if a.dtype != b.dtype { return a.dtype > b.dtype }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }

    /// Builds the header for `tensors` (in any order) and `metadata`.
    /// - Returns: the header bytes (length prefix, JSON, padding) and the tensors in file order.
    public static func makeHeader(tensors: [TensorSpec], metadata: Metadata?) throws(CheckpointError) -> (bytes: [UInt8], order: [TensorSpec], sizes: [Int]) {
        var seen = Set<UTF8Key>()
        for t in tensors {
            guard t.name != "__metadata__" else {
                throw CheckpointError(.reservedTensorName, "the name __metadata__ is reserved for the metadata map", tensor: t.name)
            }
            guard seen.insert(UTF8Key(t.name)).inserted else {
                throw CheckpointError(.duplicateTensorName, "two tensors have this name", tensor: t.name)
            }
        }
        let order = fileOrder(tensors)
        var root = JSONObject()
        if let metadata {
            var m = JSONObject()
            // Keys in byte order: the reference writer's order is a hash map's (random per run).
            for (k, v) in metadata.entries.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) { m[k] = .string(v) }
            root["__metadata__"] = .object(m)
        }
        var offset = 0
        var sizes: [Int] = []
        sizes.reserveCapacity(order.count)
        for t in order {
            let size = try t.byteCount()
            let (end, o) = offset.addingReportingOverflow(size)
            guard !o else { throw CheckpointError(.validationOverflow, "total data size overflows", tensor: t.name) }
            root[t.name] = .object(JSONObject([
                ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { .int(Int64($0)) })),
                ("data_offsets", .array([.int(Int64(offset)), .int(Int64(end))])),
            ]))
            sizes.append(size)
            offset = end
        }
        var json = JSONValue.object(root).serializedBytes()
        let padding = (8 - json.count % 8) % 8
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        guard json.count <= SafetensorsHeader.maximumHeaderLength else {
            throw CheckpointError(.headerTooLarge, "header would be \(json.count) bytes, over the limit of \(SafetensorsHeader.maximumHeaderLength)")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + json.count)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: json)
        return (bytes, order, sizes)
    }

    /// Starts writing `path`.
    public init(path: String, tensors: [TensorSpec], metadata: Metadata? = nil) throws(CheckpointError) {
        let (header, order, sizes) = try SafetensorsWriter.makeHeader(tensors: tensors, metadata: metadata)
        self.order = order
        self.headerBytes = header
        self.byteCounts = sizes
        self.fileSize = header.count + sizes.reduce(0, +)
        file = try AtomicFile(path: path)
        file.preallocate(fileSize)
        try file.write(header)
    }

    /// Starts writing `path` with a given, already valid header (`headerBytes`: the length prefix
    /// and the header text, as parsed into `header`): the tensors' bytes are then expected in the
    /// header's offset order, and the file reproduces that layout byte for byte.
    public init(path: String, header: SafetensorsHeader, headerBytes: [UInt8]) throws(CheckpointError) {
        guard headerBytes.count == header.dataStart else {
            throw CheckpointError(.invalidArgument, "header bytes (\(headerBytes.count)) do not match the header's length (\(header.dataStart))")
        }
        order = header.tensors.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        self.headerBytes = headerBytes
        byteCounts = header.tensors.map(\.byteCount)
        fileSize = header.dataStart + header.dataLength
        file = try AtomicFile(path: path)
        file.preallocate(fileSize)
        try file.write(headerBytes)
    }

    /// The spec of the tensor whose bytes are expected next, or nil when all are written.
    public var nextTensor: TensorSpec? { next < order.count ? order[next] : nil }

    /// Writes the next tensor's bytes (``nextTensor``).
    /// - Throws: `shapeMismatch` when the byte count is not the spec's; `invalidArgument` when
    ///   every tensor has been written already.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard next < order.count else {
            throw CheckpointError(.invalidArgument, "all \(order.count) tensors are written already", path: file.path)
        }
        guard bytes.count == byteCounts[next] else {
            throw CheckpointError(.shapeMismatch, "got \(bytes.count) bytes, expected \(byteCounts[next]) for shape \(order[next].shape) of \(order[next].dtype.rawValue)", path: file.path, tensor: order[next].name)
        }
        try file.write(bytes)
        next += 1
    }

    public func write(_ bytes: [UInt8]) throws(CheckpointError) {
        let r: Result<Void, CheckpointError> = bytes.withUnsafeBytes { raw in Result { () throws(CheckpointError) in try write(raw) } }
        try r.get()
    }

    /// Writes a tensor straight from a mapped view (no copy).
    public func write(_ view: TensorView) throws(CheckpointError) {
        try view.withUnsafeBytes { (raw) throws(CheckpointError) in try write(raw) }
    }

    /// Checks every tensor was written, then renames the file into place.
    public func finish() throws(CheckpointError) {
        guard next == order.count else {
            throw CheckpointError(.invalidArgument, "only \(next) of \(order.count) tensors were written; next expected: \(order[next].name)", path: file.path)
        }
        try file.commit()
    }
}

/// Where a tensor's bytes come from when a whole file is written in one call.
public enum TensorBytes {
    case bytes([UInt8])
    case view(TensorView)
    case floats([Float])
}

extension TensorBytes {
    /// The bytes for `spec`: arrays and views as they are, `.floats` encoded to the spec's dtype.
    func encoded(for spec: TensorSpec) throws(CheckpointError) -> TensorBytes {
        guard case .floats(let f) = self else { return self }
        var out = [UInt8](repeating: 0, count: try spec.byteCount())
        let r: Result<Void, CheckpointError> = f.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { dst in
                Result { () throws(CheckpointError) in try DTypeConversion.encode(src, as: spec.dtype, into: dst) }
            }
        }
        do { try r.get() } catch {
            var e = error
            e.tensor = spec.name
            throw e
        }
        return .bytes(out)
    }
}

extension SafetensorsWriter {
    /// Writes the next tensor from any ``TensorBytes``.
    func write(_ data: TensorBytes, for spec: TensorSpec) throws(CheckpointError) {
        switch try data.encoded(for: spec) {
        case .bytes(let b): try write(b)
        case .view(let v): try write(v)
        case .floats: preconditionFailure("encoded(for:) returns bytes")
        }
    }

    /// Writes a complete file, asking `data` for each tensor's bytes in file order, so that only one
    /// tensor needs to exist at a time. `.floats` are encoded to the spec's dtype.
    public static func write(path: String, tensors: [TensorSpec], metadata: Metadata? = nil,
                             data: (TensorSpec) throws(CheckpointError) -> TensorBytes) throws(CheckpointError) {
        let w = try SafetensorsWriter(path: path, tensors: tensors, metadata: metadata)
        while let spec = w.nextTensor { try w.write(try data(spec), for: spec) }
        try w.finish()
    }
}
