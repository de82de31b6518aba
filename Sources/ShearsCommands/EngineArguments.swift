import ArgumentParser
import CheckpointCore
import Engine
import ShearsBLAS
import Tokenizers

/// Options shared by the commands that run the engine (`eval`, `generate`).
struct EngineArguments: ParsableArguments {
    @Argument(help: "Model folder (config.json, safetensors weights, tokenizer.json), or a safetensors file or index inside one.",
              completion: .file())
    var model: String

    @Option(help: "Threads for OpenBLAS (default: OpenBLAS's own choice, normally every core).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Applies --threads, opens the model and its tokenizer.
    func load() throws -> (LlamaModel, Tokenizer) {
        try EngineArguments.load(path: model, threads: threads)
    }

    /// Opens the model at `path` and its tokenizer, with `threads` for the engine when given.
    /// The engine and `prune` read Hugging Face safetensors models: a GGUF file gets a clear error
    /// that says how to convert it (rather than the safetensors reader's complaint about its header).
    static func refuseGGUF(_ path: String) throws(CheckpointError) {
        if FileSystem.isFile(path), GGUFInspectReport.isGGUF(path) {
            throw CheckpointError(.invalidArgument, "is a GGUF file; eval, generate and prune run on Hugging Face safetensors models (convert it first: shears convert \(FileSystem.baseName(path)) FOLDER)", path: path)
        }
    }

    static func load(path: String, threads: Int?) throws -> (LlamaModel, Tokenizer) {
        if let t = threads { Parallel.setThreads(t) }
        try refuseGGUF(path)
        let m = try LlamaModel(path: path)
        let tokenizer = try Tokenizer(contentsOf: m.checkpoint.folder)
        return (m, tokenizer)
    }
}
