import ShearsConcurrency
import Tokenizers

#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Paths and loaders for the committed fixtures (Fixtures/tokenizers, Fixtures/text).
enum Fixtures {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/TokenizersTests/Fixtures.swift
        return parts.joined(separator: "/") + "/Fixtures"
    }()

    static func tokenizerPath(_ relative: String) -> String { root + "/tokenizers/" + relative }
    static func textPath(_ relative: String) -> String { root + "/text/" + relative }

    static func read(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw FixtureError("cannot open \(path)") }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            out.append(contentsOf: chunk[0..<n])
            if n < chunk.count { break }
        }
        return out
    }

    static func readText(_ path: String) throws -> String { String(decoding: try read(path), as: UTF8.self) }

    private static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    /// Little-endian uint32 ids.
    static func ids(_ path: String) throws -> [Int32] {
        let b = try read(path)
        return stride(from: 0, to: b.count - 3, by: 4).map { Int32(bitPattern: u32(b, $0)) }
    }

    /// Length-prefixed (uint32 LE) UTF-8 strings.
    static func pieces(_ path: String) throws -> [[UInt8]] {
        let b = try read(path)
        var out: [[UInt8]] = []
        var i = 0
        while i + 4 <= b.count {
            let n = Int(u32(b, i))
            out.append(Array(b[(i + 4)..<(i + 4 + n)]))
            i += 4 + n
        }
        return out
    }

    /// One golden case of Fixtures/tokenizers/golden/manifest.tsv.
    struct GoldenCase: Sendable, CustomStringConvertible {
        var tokenizer: String
        var text: String
        var addSpecialTokens: Bool
        var ids: String
        var decoded: String?
        var decodedSkip: String?
        var pieces: String?
        var description: String { "\(tokenizer) \(text)\(addSpecialTokens ? "" : " (no special tokens)")" }
    }

    static func goldenCases(_ filter: (GoldenCase) -> Bool = { _ in true }) -> [GoldenCase] {
        guard let text = try? readText(tokenizerPath("golden/manifest.tsv")) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 7 else { return nil }
            func opt(_ s: String) -> String? { s == "-" ? nil : s }
            return GoldenCase(tokenizer: f[0], text: f[1], addSpecialTokens: f[2] == "1", ids: f[3],
                              decoded: opt(f[4]), decodedSkip: opt(f[5]), pieces: opt(f[6]))
        }.filter(filter)
    }

    /// Tokenizers are loaded once per test process.
    private static let loaded = LoadedTokenizers()

    static func tokenizer(_ relative: String) throws -> Tokenizer {
        try loaded.get(tokenizerPath(relative))
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

final class LoadedTokenizers: @unchecked Sendable {
    private let lock = Lock()
    private var map: [String: Tokenizer] = [:]

    func get(_ path: String) throws -> Tokenizer {
        try lock.withLock {
            if let t = map[path] { return t }
            let t = try Tokenizer(contentsOf: path)
            map[path] = t
            return t
        }
    }
}
