/// A tensor's bytes inside a mapped file, borrowed without copying.
///
/// The view keeps its file mapped. Access is scoped (``withUnsafeBytes(_:)``); ``bytes()`` and
/// ``floats()`` copy or convert when an owned array is wanted.
public struct TensorView: Sendable {
    public let info: TensorInfo
    /// The file the bytes live in.
    public let file: MappedFile
    /// Absolute byte range in the file (already validated against the file size).
    public let range: Range<Int>

    init(info: TensorInfo, file: MappedFile, dataStart: Int) {
        self.info = info
        self.file = file
        self.range = (dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)
    }

    public var name: String { info.name }
    public var dtype: DType { info.dtype }
    public var shape: [Int] { info.shape }
    public var elementCount: Int { info.elementCount }
    public var byteCount: Int { range.count }

    /// Calls `body` with the tensor's raw little-endian bytes. Do not let the pointer escape.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try file.withUnsafeBytes(in: range, body)
    }

    /// A copy of the raw bytes.
    public func bytes() -> [UInt8] { file.bytes(in: range) }

    /// The elements converted to `Float` (a copy for F32).
    /// - Throws: `unsupportedConversion` for types without a conversion.
    public func floats() throws(CheckpointError) -> [Float] {
        let n = elementCount
        guard dtype.convertsToFloat32 else {
            throw CheckpointError(.unsupportedConversion, "cannot convert \(dtype.rawValue) to F32: no conversion is defined for this type", path: file.path, tensor: name)
        }
        var failure: CheckpointError? = nil
        let out = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            let result: Result<Void, CheckpointError> = withUnsafeBytes { raw in
                Result { () throws(CheckpointError) in try DTypeConversion.decode(raw, as: dtype, into: buffer) }
            }
            if case .failure(let e) = result {
                buffer.initialize(repeating: 0)
                failure = e
            }
            initialized = n
        }
        if var failure {
            failure.path = file.path
            failure.tensor = name
            throw failure
        }
        return out
    }
}
