import ArgumentParser
import CheckpointCore
import Engine
import GGUF
import ModelArchitecture
import ShearsBLAS
import Tokenizers

/// Options shared by the commands that run the engine (`eval`, `generate`) on a Hugging Face model
/// folder or a GGUF file.
struct EngineArguments: ParsableArguments {
    @Argument(help: "Model folder (config.json, safetensors weights, tokenizer.json), a safetensors file or index inside one, or a LLaMA-family GGUF file (read in place).",
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

    /// `prune` reads Hugging Face safetensors models (its surgery slices their tensors): a GGUF
    /// file gets a clear error that says how to convert it (rather than the safetensors reader's
    /// complaint about its header).
    static func refuseGGUF(_ path: String) throws(CheckpointError) {
        if FileSystem.isFile(path), GGUFInspectReport.isGGUF(path) {
            throw CheckpointError(.invalidArgument, "is a GGUF file; prune runs on Hugging Face safetensors models (convert it first: shears convert \(FileSystem.baseName(path)) FOLDER)", path: path)
        }
    }

    /// Opens the model at `path` and its tokenizer, with `threads` for the engine when given: a
    /// Hugging Face folder (or a safetensors file or index inside one), or a LLaMA-family GGUF file.
    static func load(path: String, threads: Int?) throws -> (LlamaModel, Tokenizer) {
        if let t = threads { Parallel.setThreads(t) }
        if FileSystem.isFile(path), GGUFInspectReport.isGGUF(path) { return try loadGGUF(path) }
        let m = try LlamaModel(path: path)
        let tokenizer = try Tokenizer(contentsOf: m.checkpoint.modelFolder ?? FileSystem.directoryName(path))
        return (m, tokenizer)
    }

    /// A GGUF file read in place as the Hugging Face model `convert FILE FOLDER` would write: the
    /// same tensors (`GGUFTensorStore`: renamed, Q/K un-permuted, quantized ones dequantized per
    /// layer as it runs), config and tokenizer, without writing the folder.
    static func loadGGUF(_ path: String) throws -> (LlamaModel, Tokenizer) {
        let store = try GGUFTensorStore(path: path)
        let hp = try LlamaHyperparameters(gguf: store.file)
        try hp.checkHuggingFaceLayers(path: path)
        let configuration: ModelConfiguration
        do {
            configuration = try ModelConfiguration(json: hp.configJSON(dtype: GGUFToHuggingFace.defaultDType(store.file)))
        } catch { throw error.inFile(path) }
        let model: LlamaModel
        do { model = try LlamaModel(store: store, description: ModelDescription(configuration)) } catch { throw error.inFile(path) }
        let gguf: GGUFTokenizer
        do { gguf = try GGUFTokenizer(gguf: store.file) } catch {
            throw CheckpointError(error.code, "no usable tokenizer in the file's metadata: \(error.message)", path: path)
        }
        let tokenizer = try Tokenizer(json: try gguf.tokenizerJSON().serializedBytes(style: .compact), path: path,
                                      config: gguf.tokenizerConfigJSON(contextLength: hp.contextLength))
        return (model, tokenizer)
    }
}
