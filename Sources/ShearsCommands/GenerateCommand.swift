import ArgumentParser
import CheckpointCore
import Engine
import ModelArchitecture
import Tokenizers

/// `shears generate MODEL --prompt TEXT`: sampling with a KV cache, streamed to stdout.
public struct GenerateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt with a model, streaming the text to standard output.",
        discussion: """
            The prompt is tokenized with the model's tokenizer.json (special tokens are added only \
            with --add-special-tokens) and continued token by token with a KV cache. Temperature 0 \
            (the default) is greedy decoding; otherwise tokens are sampled from the softmax at that \
            temperature, restricted to the smallest set of tokens whose probability reaches \
            --top-p, with a seeded generator (--seed) so runs repeat. Generation stops after \
            --max-tokens tokens or at an end-of-sequence token (config.json's eos_token_id).

            The layers are converted to F32 once and kept for the run (the model's size in F32).

            Exit status: 0 on success, 2 when an input is malformed or missing.
            """)

    @OptionGroup var engine: EngineArguments

    @Option(help: "The text to continue.")
    var prompt: String

    @Option(name: .customLong("max-tokens"), help: "Tokens to generate at most.")
    var maxTokens = 64

    @Option(help: "Sampling temperature; 0 picks the most likely token every time.")
    var temperature: Float = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling: keep the most likely tokens up to this total probability.")
    var topP: Float = 1

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Flag(name: .customLong("add-special-tokens"), help: "Let the tokenizer's post-processor add its special tokens (such as BOS) to the prompt.")
    var addSpecialTokens = false

    public init() {}

    public func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must not be negative") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be 0 or more") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    /// MemAvailable from /proc/meminfo in bytes (nil where there is none).
    static func availableMemory() -> Int? {
        guard let bytes = try? FileSystem.readFile("/proc/meminfo", limit: 1 << 16) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first
            return kb.flatMap { $0.multipliedReportingOverflow(by: 1024).overflow ? nil : $0 * 1024 }
        }
        return nil
    }

    public func run() throws {
        do {
            let (model, tokenizer) = try engine.load()
            let ids = tokenizer.encode(prompt, addSpecialTokens: addSpecialTokens)
            guard !ids.isEmpty else { throw CheckpointError(.invalidArgument, "the prompt encodes to no tokens") }
            var stop = Set(model.description.configuration.eosTokenIds.map { Int32($0) })
            if stop.isEmpty, let e = tokenizer.eosTokenID { stop.insert(e) }
            // Generation keeps converted F32 layers between tokens: at most half the memory
            // available now, so that a large (or quantized) model does not exhaust it.
            if let available = Self.availableMemory() {
                model.convertedLayerLimit = available / 2
                if model.convertedLayersSize > available / 2 {
                    StandardError.print("generate: the layers take \(Format.bytes(model.convertedLayersSize)) in F32; keeping at most \(Format.bytes(available / 2)) (half the available memory) converted, the rest is converted again for every token (slower)")
                }
            }
            var sampler = Sampler(temperature: temperature, topP: topP, seed: seed)
            var generated: [Int32] = []
            var shown = ""
            try model.generate(prompt: ids, maxTokens: maxTokens, sampler: &sampler, stopTokens: stop) { token in
                generated.append(token)
                if stop.contains(token) { return }
                // Decode everything so far and print what is new; hold back an incomplete UTF-8
                // sequence (a trailing U+FFFD) until the next token completes it.
                let text = tokenizer.decode(generated.filter { !stop.contains($0) })
                guard !text.hasSuffix("\u{FFFD}"), text.hasPrefix(shown) else { return }
                StandardOutput.write(String(text.dropFirst(shown.count)))
                shown = text
            }
            let final = tokenizer.decode(generated.filter { !stop.contains($0) })
            if final.hasPrefix(shown) { StandardOutput.write(String(final.dropFirst(shown.count))) }
            StandardOutput.write("\n")
            StandardError.print(engine.memory.report("generate"))
        } catch {
            throw report(error)
        }
    }
}
