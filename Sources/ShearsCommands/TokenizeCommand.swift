import ArgumentParser
import CheckpointCore
import ShearsJSON
import ShearsPipeline
import Tokenizers

#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// `shears tokenize MODEL_OR_TOKENIZER`: text to token ids (or ids back to text) with a model's
/// `tokenizer.json`, exactly as the Hugging Face `tokenizers` library encodes.
public struct TokenizeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Turn text into token ids (or ids into text) with a model's tokenizer.json.",
        discussion: """
            MODEL_OR_TOKENIZER is a tokenizer.json file or a model folder that contains one. The \
            text comes from --text FILE or standard input (invalid UTF-8 is replaced by U+FFFD). \
            Ids are printed on one line separated by spaces, or as {"ids": [...], "count": N} with \
            --json. Special tokens are added as the tokenizer's post-processor says (for example a \
            BOS id), as the library's encode() does by default; --no-add-special-tokens leaves them out.

            With --decode the input is a list of ids (separated by spaces, commas or newlines, or a \
            JSON array) and the decoded text is printed.

            Exit status: 0 on success, 2 when an input is malformed or missing.
            """)

    @Argument(help: "A tokenizer.json file, a model folder containing tokenizer.json, a .ctz model (tokenizer.json beside it) or a GGUF file (its tokenizer metadata).", completion: .file())
    var modelOrTokenizer: String

    @Option(name: .long, help: "Read the text (or, with --decode, the ids) from FILE instead of standard input.",
            completion: .file())
    var text: String?

    @Flag(name: .long, help: "Print {\"ids\": [...], \"count\": N} (with --decode: {\"text\": ...}).")
    var json = false

    @Flag(name: .long, inversion: .prefixedNo,
          help: "Add the post-processor's special tokens (such as BOS), as the tokenizers library does by default.")
    var addSpecialTokens = true

    @Flag(name: .long, help: "Decode: read ids and print the text they stand for.")
    var decode = false

    @Flag(name: .long, help: "With --decode, leave out special tokens.")
    var skipSpecialTokens = false

    @Flag(name: .long, help: "Print each token's string next to its id, one per line.")
    var tokens = false

    @Flag(name: .long, help: """
        Encode each line on its own (without its newline) and print one line of ids per input         line (with --json, one JSON object per line).
        """)
    var perLine = false

    @Option(name: .long, help: ArgumentHelp("Encode N times and report timing on standard error.", visibility: .hidden))
    var benchmark: Int?

    public init() {}

    public func run() throws {
        let tokenizer: Tokenizer
        let input: [UInt8]
        do {
            if ModelSource.isGGUF(modelOrTokenizer) {
                tokenizer = try ModelSource.ggufTokenizer(modelOrTokenizer)   // its metadata only
            } else if FileSystem.isFile(modelOrTokenizer) && !modelOrTokenizer.hasSuffix(".json") {
                tokenizer = try ModelSource.open(modelOrTokenizer).tokenizer()   // a .ctz or GGUF model
            } else {
                tokenizer = try Tokenizer(contentsOf: modelOrTokenizer)
            }
            input = try text.map { try readFile($0) } ?? readStandardInput()
        } catch {
            StandardError.print("shears tokenize: error: \(error)")
            throw ExitCode(2)
        }

        if decode {
            guard let ids = parseIDs(input) else {
                StandardError.print("shears tokenize: error: \(text ?? "standard input"): expected token ids (integers separated by spaces or commas, or a JSON array)")
                throw ExitCode(2)
            }
            let decoded = tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens)
            if json {
                StandardOutput.write("{\"text\": \(jsonString(decoded))}\n")
            } else {
                StandardOutput.write(decoded)
            }
            return
        }

        let source = String(decoding: input, as: UTF8.self)
        if let n = benchmark {
            runBenchmark(tokenizer, source, repetitions: max(1, n))
            return
        }
        if perLine {
            var out = ""
            for line in Self.lines(source) {
                let ids = tokenizer.encode(line, addSpecialTokens: addSpecialTokens)
                let list = ids.map(String.init)
                out += json ? "{\"ids\": [\(list.joined(separator: ", "))], \"count\": \(ids.count)}\n"
                            : list.joined(separator: " ") + "\n"
                if out.utf8.count > 1 << 20 { StandardOutput.write(out); out = "" }
            }
            StandardOutput.write(out)
            return
        }
        let ids = tokenizer.encode(source, addSpecialTokens: addSpecialTokens)
        if tokens {
            var out = ""
            for id in ids { out += "\(id)\t\(jsonString(tokenizer.token(for: id) ?? ""))\n" }
            StandardOutput.write(out)
        } else if json {
            StandardOutput.write("{\"ids\": [\(ids.map(String.init).joined(separator: ", "))], \"count\": \(ids.count)}\n")
        } else {
            StandardOutput.write(ids.map(String.init).joined(separator: " ") + "\n")
        }
    }

    /// The lines of `text` without their newlines (a final newline does not start another line).
    /// Splits at U+000A bytes (not at `Character`s: Swift treats "\r\n" as one character).
    static func lines(_ text: String) -> [String] {
        var lines = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        if text.utf8.last == 0x0A { lines.removeLast() }
        return lines
    }

    /// Encodes `source` `repetitions` times (as a whole, or line by line with --per-line);
    /// reports the first (cold cache) and best (warm) times.
    private func runBenchmark(_ tokenizer: Tokenizer, _ source: String, repetitions: Int) {
        var first = 0.0
        var best = Double.infinity
        var count = 0
        let lines = perLine ? Self.lines(source) : []
        for k in 0..<repetitions {
            let start = tokenizeClock()
            if perLine {
                count = 0
                for line in lines { count += tokenizer.encode(line, addSpecialTokens: addSpecialTokens).count }
            } else {
                count = tokenizer.encode(source, addSpecialTokens: addSpecialTokens).count
            }
            let elapsed = tokenizeClock() - start
            if k == 0 { first = elapsed }
            best = min(best, elapsed)
        }
        let bytes = source.utf8.count
        let mb = Double(bytes) / 1e6
        StandardError.print("""
            benchmark bytes=\(bytes) tokens=\(count) first_s=\(first) best_s=\(best) \
            first_MBps=\(mb / first) best_MBps=\(mb / best)
            """)
    }

    private func parseIDs(_ input: [UInt8]) -> [Int32]? {
        var ids: [Int32] = []
        var current: Int64? = nil
        for b in input {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                current = (current ?? 0) * 10 + Int64(b - UInt8(ascii: "0"))
                if current! > Int64(Int32.max) { return nil }
            case UInt8(ascii: " "), UInt8(ascii: ","), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"),
                 UInt8(ascii: "["), UInt8(ascii: "]"):
                if let c = current { ids.append(Int32(c)); current = nil }
            default:
                return nil
            }
        }
        if let c = current { ids.append(Int32(c)) }
        return ids
    }
}

private func tokenizeClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

private struct InputError: Error, CustomStringConvertible {
    var description: String
}

private func readFile(_ path: String) throws -> [UInt8] {
    guard let f = fopen(path, "rb") else {
        throw InputError(description: "\(path): cannot open: \(String(cString: strerror(errno)))")
    }
    defer { fclose(f) }
    return try readAll(f, name: path)
}

private func readStandardInput() throws -> [UInt8] {
    guard let f = fdopen(dup(0), "rb") else {
        throw InputError(description: "standard input: cannot open: \(String(cString: strerror(errno)))")
    }
    defer { fclose(f) }
    return try readAll(f, name: "standard input")
}

private func readAll(_ f: UnsafeMutablePointer<FILE>, name: String) throws -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n > 0 { out.append(contentsOf: chunk[0..<n]) }
        if n < chunk.count {
            if ferror(f) != 0 { throw InputError(description: "\(name): read failed: \(String(cString: strerror(errno)))") }
            break
        }
    }
    return out
}

/// A JSON string literal, written by the project's JSON writer.
private func jsonString(_ s: String) -> String { JSONValue.string(s).serialized() }
