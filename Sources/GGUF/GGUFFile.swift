import CheckpointCore

/// A GGUF file (v2 or v3, little-endian), memory-mapped and fully validated on open.
///
/// Opening reads the header, every metadata value and every tensor info, applying the checks of
/// ggml's reference reader (`gguf.cpp`) plus a few of its own (see `formats/gguf.md`): counts and
/// lengths are bounded by the bytes that remain before anything is allocated, keys and tensor
/// names are unique, dimensions and byte sizes cannot overflow, rows are whole blocks, and tensor
/// data is laid out in order, aligned, and inside the file. Tensor bytes are not touched until asked for.
public final class GGUFFile: Sendable {
    public static let magic: UInt32 = 0x4655_4747  // "GGUF" read little-endian
    /// Alignment when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// ggml's GGML_MAX_DIMS.
    public static let maximumDimensions = 4
    /// ggml's GGML_MAX_NAME: tensor names must be shorter.
    public static let maximumNameLength = 64
    /// Nesting limit for arrays of arrays (the spec sets none; this bounds recursion).
    public static let maximumArrayDepth = 8

    public let path: String
    public let mapping: MappedFile
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute file offset of the data section.
    public let dataStart: Int
    /// Legal but noteworthy things (trailing bytes).
    public let warnings: [String]
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    /// Maps and validates `path`.
    /// - Throws: ``CheckpointError`` naming the file, and the key or tensor at fault.
    public init(path: String) throws(CheckpointError) {
        self.path = path
        mapping = try MappedFile(path: path)
        let parsed: GGUFHeader
        do {
            parsed = try mapping.withUnsafeBytes { (raw) throws(CheckpointError) in try GGUFHeader.parse(raw) }
        } catch {
            throw error.inFile(path)
        }
        version = parsed.version
        metadata = parsed.metadata
        tensors = parsed.tensors
        alignment = parsed.alignment
        dataStart = parsed.dataStart
        warnings = parsed.warnings
        var k: [String: Int] = [:]
        for (i, e) in metadata.enumerated() { k[e.key] = i }
        keyIndex = k
        var t: [String: Int] = [:]
        for (i, e) in tensors.enumerated() { t[e.name] = i }
        tensorIndex = t
    }

    /// The metadata value for `key`.
    public subscript(key: String) -> GGUFValue? { keyIndex[key].map { metadata[$0].value } }

    /// `general.architecture`, when present and a string.
    public var architecture: String? { self["general.architecture"]?.stringValue }

    public var fileSize: Int { mapping.count }

    public func tensorInfo(named name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// Absolute byte range of a tensor's data (validated at open).
    public func range(of tensor: GGUFTensorInfo) -> Range<Int> {
        (dataStart + tensor.offset)..<(dataStart + tensor.offset + tensor.byteCount)
    }

    /// Calls `body` with the tensor's raw bytes. Do not let the pointer escape.
    public func withUnsafeBytes<R, E: Error>(of tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try mapping.withUnsafeBytes(in: range(of: tensor), body)
    }

    /// Decodes a tensor to F32 into `destination` (exactly `elementCount` floats).
    /// - Throws: `unsupportedQuantization` for types without a decoder, naming the type.
    public func dequantize(_ tensor: GGUFTensorInfo, into destination: UnsafeMutableBufferPointer<Float>) throws(CheckpointError) {
        do {
            try withUnsafeBytes(of: tensor) { (raw) throws(CheckpointError) in
                try Dequantize.decode(raw, type: tensor.type, into: destination)
            }
        } catch {
            var e = error
            e.path = path
            e.tensor = tensor.name
            throw e
        }
    }

    /// A tensor decoded to F32, in row-major PyTorch order (``GGUFTensorInfo/shape``).
    public func floats(_ tensor: GGUFTensorInfo) throws(CheckpointError) -> [Float] {
        let n = tensor.elementCount
        var failure: CheckpointError? = nil
        let out = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            let r = Result { () throws(CheckpointError) in try dequantize(tensor, into: buffer) }
            if case .failure(let e) = r {
                buffer.initialize(repeating: 0)
                failure = e
            }
            initialized = n
        }
        if let failure { throw failure }
        return out
    }

    public func floats(named name: String) throws(CheckpointError) -> [Float] {
        guard let t = tensorInfo(named: name) else {
            throw CheckpointError(.tensorNotFound, "no tensor of this name", path: path, tensor: name)
        }
        return try floats(t)
    }
}
