/// The one error type of the formats core: what went wrong, in which file and tensor.
///
/// `code` is stable and machine-readable (the safetensors kinds follow the reference Rust reader's
/// error taxonomy); `message` says what is wrong in words a user can act on.
public struct CheckpointError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable, Equatable, CaseIterable {
        // safetensors, in the reference reader's order of checks
        case headerTooSmall
        case headerTooLarge
        case invalidHeaderLength
        case invalidHeaderUTF8
        case invalidHeaderDeserialization
        case invalidOffset
        case validationOverflow
        case misalignedSlice
        case tensorInvalidInfo
        case metadataIncompleteBuffer
        // stricter than the reference reader
        case duplicateTensorName
        case reservedTensorName
        // sharded checkpoints and folders
        case invalidIndex
        case shardMismatch
        case notACheckpoint
        case invalidConfig
        // GGUF (see formats/gguf.md; overflow, offsets and duplicate tensor names use the codes above)
        case ggufInvalidMagic
        case ggufUnsupportedVersion
        case ggufTruncated
        case ggufInvalidString
        case ggufInvalidValueType
        case ggufDuplicateKey
        case ggufInvalidAlignment
        case ggufInvalidTensorInfo
        case ggufUnknownType
        case ggufInvalidBlockShape
        case ggufMissingKey
        case unsupportedArchitecture
        case unsupportedQuantization
        // access and conversion
        case tensorNotFound
        case unsupportedConversion
        case unrepresentableValue
        /// Stored data does not decode to what the index says (checksum, stream error).
        case corruptData
        /// A container-level structure (magic, version, footer) is wrong.
        case invalidFormat
        case shapeMismatch
        case invalidArgument
        /// Settings that cannot apply: a value out of range, options that do not combine, or an
        /// option the model does not allow (a usage error: the command line must change).
        case invalidUsage
        // system
        case io
    }

    public var code: Code
    public var message: String
    /// The file the problem is in, when there is one.
    public var path: String?
    /// The tensor the problem concerns, when there is one.
    public var tensor: String?

    public init(_ code: Code, _ message: String, path: String? = nil, tensor: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.tensor = tensor
    }

    /// "path: tensor 'name': message".
    public var description: String {
        var s = ""
        if let path { s += path + ": " }
        if let tensor { s += "tensor '\(tensor)': " }
        return s + message
    }

    /// The same error, attributed to `path` when it names no file yet.
    public func inFile(_ path: String) -> CheckpointError {
        var e = self
        if e.path == nil { e.path = path }
        return e
    }
}
