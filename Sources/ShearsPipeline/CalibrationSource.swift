#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Crypto
import Pruning
import ShearsJSON
import Tokenizers

/// Where calibration text comes from: the bundled Austen novels, a text file, or token ids.
public enum CalibrationSource: Sendable, Equatable {
    /// `Fixtures/text/austen-calibration` (see ``bundledFolder()``), one document per novel.
    case bundled
    /// A text file, tokenized with the model's tokenizer.
    case text(String)
    /// A JSON array of token-id arrays, one document each.
    case tokens(String)

    /// The documents as token ids, with the file name and SHA-256 the manifest records.
    /// - Throws: ``CheckpointError`` naming the file: unreadable, not the expected JSON, or ids out of range.
    public func documents(tokenizer: () throws -> Tokenizer) throws -> (documents: [[Int32]], file: String, sha256: String) {
        switch self {
        case .tokens(let path):
            let bytes = try FileSystem.readFile(path)
            guard let arr = try JSONValue.parse(bytes).arrayValue else {
                throw CheckpointError(.invalidArgument, "not a JSON array of token-id arrays", path: path)
            }
            var docs: [[Int32]] = []
            for (i, d) in arr.enumerated() {
                guard let items = d.arrayValue else { throw CheckpointError(.invalidArgument, "element \(i) is not an array of token ids", path: path) }
                let ids = items.compactMap(\.intValue)
                guard ids.count == items.count, ids.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }) else {
                    throw CheckpointError(.invalidArgument, "element \(i) is not an array of token ids", path: path)
                }
                docs.append(ids.map { Int32($0) })
            }
            return (docs, FileSystem.baseName(path), try ModelSource.sha256(path))
        case .text(let path):
            return try Self.tokenize([path], name: FileSystem.baseName(path), tokenizer: tokenizer())
        case .bundled:
            guard let dir = Self.bundledFolder() else {
                throw CheckpointError(.io, "cannot find the bundled calibration text (Fixtures/text/austen-calibration); set SHEARS_FIXTURES or pass --calibration")
            }
            let files = try FileSystem.contents(of: dir).filter { $0.hasSuffix(".txt") }.map { FileSystem.join(dir, $0) }
            return try Self.tokenize(files, name: "austen-calibration", tokenizer: tokenizer())
        }
    }

    /// One document per file; several files are hashed with their names.
    static func tokenize(_ files: [String], name: String, tokenizer: Tokenizer) throws -> ([[Int32]], String, String) {
        var hasher = SHA256()
        var docs: [[Int32]] = []
        for f in files {
            let bytes = try FileSystem.readFile(f)
            if files.count > 1 { hasher.update(data: Array(FileSystem.baseName(f).utf8) + [0]) }
            hasher.update(data: bytes)
            docs.append(tokenizer.encode(bytes: bytes))
        }
        return (docs, name, ModelSource.hex(hasher.finalize()))
    }

    /// The bundled calibration folder: `$SHEARS_FIXTURES/text/austen-calibration`, else
    /// `Fixtures/text/austen-calibration` in the current folder or above the executable.
    public static func bundledFolder() -> String? {
        let rel = "text/austen-calibration"
        if let env = getenv("SHEARS_FIXTURES") {
            let p = FileSystem.join(String(cString: env), rel)
            if FileSystem.isDirectory(p) { return p }
        }
        if FileSystem.isDirectory("Fixtures/" + rel) { return "Fixtures/" + rel }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        var dir = FileSystem.directoryName(String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        for _ in 0..<6 {
            let p = FileSystem.join(dir, "Fixtures/" + rel)
            if FileSystem.isDirectory(p) { return p }
            dir = FileSystem.directoryName(dir)
        }
        return nil
    }
}
