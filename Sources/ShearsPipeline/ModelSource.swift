import CheckpointCore
import CompactFormat
import Crypto
import Engine
import GGUF
import ModelArchitecture
import ShearsJSON
import Tokenizers

/// Any model Shears opens, with what every job needs of it: its tensors, its resolved description,
/// its tokenizer and where its companion files are. A Hugging Face folder, a sharded index or a
/// single `.safetensors` file with `config.json` beside it, a `.ctz` file with `config.json`
/// beside it, or a GGUF file of a supported family read in place (quantized tensors dequantized
/// as they are read; config and tokenizer built from its metadata, as `convert` would write them).
public struct ModelSource {
    /// The path as given.
    public let path: String
    public let store: any TensorStore
    public let description: ModelDescription
    /// The folder whose tokenizer and generation files belong to the model (nil for GGUF).
    public let companionFolder: String?
    /// Files a folder of this model would hold that the source keeps elsewhere (a GGUF file's
    /// `config.json`, `tokenizer.json` and `tokenizer_config.json`), by name.
    public let builtFiles: [(String, [UInt8])]
    /// The dtype quantized tensors are dequantized to (GGUF), else nil.
    public let dequantizedDType: DType?
    /// Why a GGUF file's metadata gave no tokenizer.
    var tokenizerProblem: String? = nil

    /// Opens `path`.
    /// - Throws: ``CheckpointError`` naming the file and the rule: an unreadable container, no
    ///   `config.json`, an unsupported family, or tensors that disagree with the configuration.
    public static func open(_ path: String) throws -> ModelSource {
        if isGGUF(path) { return try openGGUF(path) }
        let store = try openStore(path)
        guard let configPath = store.configPath else {
            throw CheckpointError(.invalidConfig, "no config.json next to the weights; the model's sizes come from it", path: store.modelFolder ?? path)
        }
        let description = try ModelDescription(configPath: configPath, store: store)
        // A family with fused tensors (Phi-3) is read, ranked and sliced as its row blocks.
        let blocks = try FusedTensorView.unfused(store, model: description)
        return ModelSource(path: path, store: blocks, description: description, companionFolder: store.modelFolder,
                           builtFiles: [], dequantizedDType: nil)
    }

    private static func openGGUF(_ path: String) throws -> ModelSource {
        let store = try GGUFTensorStore(path: path)
        let hp = try GGUFModelMetadata(gguf: store.file)
        try hp.checkHuggingFaceLayers(path: path)
        let dtype = GGUFToHuggingFace.defaultDType(store.file)
        let configJSON = hp.configJSON(dtype: dtype)
        let description: ModelDescription
        do { description = try ModelDescription(ModelConfiguration(json: configJSON), store: store) } catch { throw error.inFile(path) }
        var files: [(String, [UInt8])] = [("config.json", configJSON.serializedBytes(style: .pretty) + [0x0A])]
        var tokenizerProblem: String? = nil
        do {
            let tokenizer = try GGUFTokenizer(gguf: store.file)
            files.append(("tokenizer.json", try tokenizer.tokenizerJSON().serializedBytes(style: .compact)))
            files.append(("tokenizer_config.json", tokenizer.tokenizerConfigJSON(contextLength: hp.contextLength).serializedBytes(style: .pretty) + [0x0A]))
        } catch {
            // Weights-only jobs (prune with l2, verify) do not need it; tokenizer() reports why.
            tokenizerProblem = "no usable tokenizer in the file's metadata: \(error.message)"
        }
        let quantized = store.file.tensors.contains { $0.type.isQuantized }
        // Phi-3's attn_qkv / ffn_up arrive under the fused Hugging Face names: read as row blocks.
        let blocks = try FusedTensorView.unfused(store, model: description)
        return ModelSource(path: path, store: blocks, description: description, companionFolder: nil, builtFiles: files,
                           dequantizedDType: quantized ? .f32 : nil, tokenizerProblem: tokenizerProblem)
    }

    /// The tensors at `path` in any format Shears reads, chosen by content: a compact file by its
    /// magic, a GGUF file as its Hugging Face tensors (``GGUFTensorStore``), otherwise safetensors
    /// (a file, an index or a folder). No configuration is needed (hash, diff, verify).
    /// Whether the model's tokenizer configuration adds a BOS token to every sequence, its id, and
    /// where that was read: GGUF `tokenizer.ggml.add_bos_token` (llama.cpp's default: true for
    /// SentencePiece `llama` vocabularies), or tokenizer_config.json's `add_bos_token`, or a
    /// post-processor that puts a special token first. nil id: no BOS known.
    public func bosSetting() -> (adds: Bool, id: Int32?, source: String) {
        if let g = (store as? GGUFTensorStore) ?? ((store as? FusedTensorView)?.base as? GGUFTensorStore) {
            let f = g.file
            let id = f["tokenizer.ggml.bos_token_id"]?.intValue.flatMap { Int32(exactly: $0) }
            if let b = f["tokenizer.ggml.add_bos_token"]?.boolValue { return (b, id, "tokenizer.ggml.add_bos_token") }
            let llama = f["tokenizer.ggml.model"]?.stringValue == "llama"
            return (llama, id, "llama.cpp's default for a \(f["tokenizer.ggml.model"]?.stringValue ?? "missing") tokenizer model")
        }
        let configID = description.configuration.bosTokenId.flatMap { Int32(exactly: $0) }
        if let folder = companionFolder, let bytes = try? FileSystem.readFile(FileSystem.join(folder, "tokenizer_config.json"), limit: 64 << 20),
           let c = try? JSONValue.parse(bytes), let add = c["add_bos_token"]?.boolValue {
            let tok = try? tokenizer()
            return (add, tok?.bosTokenID ?? configID, "tokenizer_config.json add_bos_token")
        }
        if let tok = try? tokenizer(), tok.addsSpecialTokens, let bos = tok.bosTokenID,
           tok.encode(bytes: Array("a".utf8), addSpecialTokens: true).first == bos {
            return (true, bos, "tokenizer.json post-processor")
        }
        return (false, configID, "no BOS in the tokenizer configuration")
    }

    public static func openStore(_ path: String) throws -> any TensorStore {
        if FileSystem.isFile(path), CompactFile.looksLikeCompact(path) || path.hasSuffix("." + CompactLayout.fileExtension) {
            return try CompactFile(path: path)
        }
        if isGGUF(path) { return try GGUFTensorStore(path: path) }
        return try Checkpoint.open(path)
    }

    /// Whether `path` is a GGUF file (by its name or its magic).
    public static func isGGUF(_ path: String) -> Bool {
        guard FileSystem.isFile(path) else { return false }
        if path.hasSuffix(".gguf") { return true }
        guard let m = try? MappedFile(path: path), m.count >= 4 else { return false }
        return m.bytes(in: 0..<4) == Array("GGUF".utf8)
    }

    /// The tokenizer a GGUF file's metadata describes, built as `convert` writes it, whatever the
    /// file's architecture (no model tensors are read).
    public static func ggufTokenizer(_ path: String) throws -> Tokenizer {
        let f = try GGUFFile(path: path)
        let t: GGUFTokenizer
        do { t = try GGUFTokenizer(gguf: f) } catch { throw error.inFile(path) }
        let json = try t.tokenizerJSON().serializedBytes(style: .compact)
        let config = t.tokenizerConfigJSON(contextLength: nil)
        return try Tokenizer(json: json, path: path, config: config)
    }

    /// The model's tokenizer: `tokenizer.json` of its folder, or the one built from GGUF metadata.
    public func tokenizer() throws -> Tokenizer {
        if let json = builtFiles.first(where: { $0.0 == "tokenizer.json" })?.1 {
            let config = try builtFiles.first(where: { $0.0 == "tokenizer_config.json" }).map { try JSONValue.parse($0.1) }
            return try Tokenizer(json: json, path: path, config: config)
        }
        guard let folder = companionFolder else {
            throw CheckpointError(.invalidArgument, tokenizerProblem ?? "the model has no tokenizer", path: path)
        }
        return try Tokenizer(contentsOf: folder)
    }

    /// The engine's model over these tensors.
    public func engineModel() throws -> LlamaModel {
        do { return try LlamaModel(store: store, description: description) } catch { throw error.inFile(path) }
    }

    /// SHA-256 of every file the model is read from (data files, index, and `config.json` or, for
    /// GGUF, the file itself), by file name.
    public func sourceFileHashes() throws -> [String: String] {
        var out: [String: String] = [:]
        for f in store.dataFiles { out[FileSystem.baseName(f)] = try Self.sha256(f) }
        if let c = store.configPath { out["config.json"] = try Self.sha256(c) }
        return out
    }

    /// SHA-256 of a file, lower-case hex.
    public static func sha256(_ path: String) throws -> String {
        let m = try MappedFile(path: path)
        return m.withUnsafeBytes { hex(SHA256.hash(data: $0)) }
    }

    /// Lower-case hex of a digest.
    public static func hex(_ d: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef")
        return String(d.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}
