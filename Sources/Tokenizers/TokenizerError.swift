/// Why a tokenizer could not be loaded or used.
///
/// The description names the file (when known) and the problem, for example
/// `tokenizer.json: unsupported tokenizer model WordPiece`.
public struct TokenizerError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The broad kind of problem.
    public enum Code: Sendable, Equatable {
        /// The file could not be read.
        case unreadable
        /// The file is not valid JSON, or a field has the wrong type or is missing.
        case malformed
        /// The file asks for a component (model, normalizer, ...) that Shears does not implement.
        case unsupported
        /// A regular expression in the file does not compile.
        case badPattern
    }

    /// The kind of problem.
    public var code: Code
    /// What went wrong, in words.
    public var message: String
    /// The file the problem was found in, when known.
    public var path: String?

    public init(_ code: Code, _ message: String, path: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }

    /// The same error, attributed to `path` unless it already names a file.
    func at(_ path: String?) -> TokenizerError {
        var copy = self
        if copy.path == nil { copy.path = path }
        return copy
    }
}
