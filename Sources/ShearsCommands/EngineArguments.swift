import ArgumentParser
import CheckpointCore
import Engine
import ShearsBLAS
import ShearsPipeline
import Tokenizers

/// Options shared by the commands that run the engine (`eval`, `generate`) on a Hugging Face model
/// folder or a GGUF file.
struct EngineArguments: ParsableArguments {
    @Argument(help: "Model folder (config.json, safetensors weights, tokenizer.json), a safetensors file or index inside one, a .ctz file with config.json beside it, or a GGUF file (read in place).",
              completion: .file())
    var model: String

    @Option(help: "Threads for OpenBLAS (default: OpenBLAS's own choice, normally every core).")
    var threads: Int?

    @OptionGroup var memory: MemoryLimitOption

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Applies --threads, opens the model and its tokenizer.
    func load() throws -> (LlamaModel, Tokenizer) {
        memory.apply()
        return try EngineArguments.load(path: model, threads: threads)
    }

    /// Opens the model at `path` (any model ``ModelSource`` opens: a folder, an index, a
    /// `.safetensors` or `.ctz` file with config.json beside it, or a GGUF file read in place) and
    /// its tokenizer, with `threads` for the engine when given.
    static func load(path: String, threads: Int?) throws -> (LlamaModel, Tokenizer) {
        if let t = threads { Parallel.setThreads(t) }
        let m = try ModelSource.open(path)
        return (try m.engineModel(), try m.tokenizer())
    }
}
