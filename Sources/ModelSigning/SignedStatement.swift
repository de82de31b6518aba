import CheckpointCore
import Crypto
import ShearsJSON

/// One file of a signed model and its SHA-256.
public struct SignedResource: Sendable, Equatable {
    /// The path relative to the model folder (`.` for a single-file model).
    public var name: String
    /// 32 bytes.
    public var sha256: [UInt8]

    public init(name: String, sha256: [UInt8]) {
        self.name = name
        self.sha256 = sha256
    }
}

/// The in-toto statement model_signing signs (predicate `https://model_signing/signature/v1.0`,
/// serialization method `files`): the model's name and a digest over its files as the subject, one
/// SHA-256 per file in the predicate's `resources`, and the serialization parameters a verifier
/// needs to list the same files (ignored paths, symbolic links).
public struct SignedStatement: Sendable {
    public static let statementType = "https://in-toto.io/Statement/v1"
    public static let predicateType = "https://model_signing/signature/v1.0"

    /// The subject's name: the model folder's or file's name (informative only).
    public var modelName: String
    /// Files in payload order.
    public var resources: [SignedResource]
    /// Paths relative to the model that were left out (the signature file, git's files).
    public var ignorePaths: [String]
    /// Whether symbolic links were followed.
    public var allowSymlinks: Bool
    /// The subject digest as recorded.
    public var subjectDigest: [UInt8]

    /// A statement over `resources`, with the subject digest computed from them.
    public init(modelName: String, resources: [SignedResource], ignorePaths: [String], allowSymlinks: Bool = false) {
        self.modelName = modelName
        self.resources = resources
        self.ignorePaths = ignorePaths
        self.allowSymlinks = allowSymlinks
        self.subjectDigest = SignedStatement.rootDigest(resources)
    }

    /// SHA-256 over the resources' raw digests, concatenated in payload order.
    public static func rootDigest(_ resources: [SignedResource]) -> [UInt8] {
        var h = SHA256()
        for r in resources { h.update(data: r.sha256) }
        return Array(h.finalize())
    }

    /// The statement as JSON, fields in the order model_signing writes them.
    public var json: JSONValue {
        let subject = JSONValue.object(JSONObject([
            ("name", .string(modelName)),
            ("digest", .object(JSONObject([("sha256", .string(FileDigests.hex(subjectDigest)))]))),
        ]))
        let list = resources.map { r in
            JSONValue.object(JSONObject([("name", .string(r.name)), ("digest", .string(FileDigests.hex(r.sha256))), ("algorithm", .string("sha256"))]))
        }
        var serialization: [(String, JSONValue)] = [("method", .string("files")), ("hash_type", .string("sha256")), ("allow_symlinks", .bool(allowSymlinks))]
        if !ignorePaths.isEmpty { serialization.append(("ignore_paths", .array(ignorePaths.map { .string($0) }))) }
        return .object(JSONObject([
            ("_type", .string(SignedStatement.statementType)),
            ("subject", .array([subject])),
            ("predicateType", .string(SignedStatement.predicateType)),
            ("predicate", .object(JSONObject([("resources", .array(list)), ("serialization", .object(JSONObject(serialization)))]))),
        ]))
    }

    /// Why a payload cannot be read as a statement: `malformed` (not the shape the format has) or
    /// `unsupported` (well formed, but a statement type, predicate, serialization method or hash
    /// Shears does not know).
    public enum ParseFailure: Error, Sendable {
        case malformed(String)
        case unsupported(String)
    }

    /// Reads a signed payload. Never traps on hostile input.
    public init(payload: [UInt8]) throws(ParseFailure) {
        let json: JSONValue
        do { json = try JSONValue.parse(payload) } catch { throw .malformed("the signed payload is not valid JSON: \(error.message)") }
        guard let type = json["_type"]?.stringValue else { throw .malformed("the signed payload has no statement type (_type)") }
        guard type == SignedStatement.statementType else { throw .unsupported("statement type \"\(type)\" is not \(SignedStatement.statementType)") }
        guard let predicateType = json["predicateType"]?.stringValue else { throw .malformed("the statement has no predicateType") }
        guard predicateType == SignedStatement.predicateType else {
            throw .unsupported("predicate type \"\(predicateType)\" is not one Shears knows (\(SignedStatement.predicateType))")
        }
        guard let subjects = json["subject"]?.arrayValue, subjects.count == 1, let name = subjects[0]["name"]?.stringValue,
              let digestHex = subjects[0]["digest"]?["sha256"]?.stringValue else {
            throw .malformed("the statement must have exactly one subject with a name and a sha256 digest")
        }
        guard let subjectDigest = FileDigests.bytes(hex: digestHex, count: 32) else { throw .malformed("the subject's sha256 digest is not 64 hexadecimal digits") }
        guard let predicate = json["predicate"], predicate.objectValue != nil else { throw .malformed("the statement has no predicate") }
        guard let serialization = predicate["serialization"], serialization.objectValue != nil else { throw .malformed("the predicate has no serialization") }
        guard let method = serialization["method"]?.stringValue else { throw .malformed("the serialization has no method") }
        guard method == "files" else { throw .unsupported("serialization method \"\(method)\" is not one Shears knows (files)") }
        guard let hashType = serialization["hash_type"]?.stringValue else { throw .malformed("the serialization has no hash_type") }
        guard hashType == "sha256" else { throw .unsupported("hash type \"\(hashType)\" is not one Shears knows (sha256)") }
        let allow: Bool
        switch serialization["allow_symlinks"] {
        case .bool(let b)?: allow = b
        case .string(let s)? where s == "true" || s == "false": allow = s == "true"
        default: throw .malformed("the serialization's allow_symlinks is not a boolean")
        }
        var ignore: [String] = []
        if let list = serialization["ignore_paths"] {
            guard let items = list.arrayValue else { throw .malformed("the serialization's ignore_paths is not a list") }
            for item in items {
                guard let s = item.stringValue else { throw .malformed("the serialization's ignore_paths holds a non-string") }
                ignore.append(s)
            }
        }
        guard let list = predicate["resources"]?.arrayValue else { throw .malformed("the predicate has no resources list") }
        var resources: [SignedResource] = []
        var seen = Set<String>()
        for item in list {
            guard let n = item["name"]?.stringValue, let algorithm = item["algorithm"]?.stringValue, let hex = item["digest"]?.stringValue else {
                throw .malformed("a resource lacks a name, algorithm or digest")
            }
            guard algorithm == "sha256" else { throw .unsupported("resource \(n) is hashed with \"\(algorithm)\", not sha256") }
            guard let d = FileDigests.bytes(hex: hex, count: 32) else { throw .malformed("resource \(n) has a digest that is not 64 hexadecimal digits") }
            guard seen.insert(n).inserted else { throw .malformed("resource \(n) is listed twice") }
            resources.append(SignedResource(name: n, sha256: d))
        }
        self.modelName = name
        self.resources = resources
        self.ignorePaths = ignore
        self.allowSymlinks = allow
        self.subjectDigest = subjectDigest
    }
}
