import CheckpointCore
import CompactFormat
import GGUF

/// Opens a checkpoint in any format Shears reads, chosen by content: a compact file by its magic,
/// a LLaMA-family GGUF file as its Hugging Face tensors (``GGUFTensorStore``), otherwise safetensors
/// (a file, an index or a folder).
enum AnyCheckpoint {
    static func open(_ path: String) throws -> any TensorStore {
        if FileSystem.isFile(path), CompactFile.looksLikeCompact(path) || path.hasSuffix("." + CompactLayout.fileExtension) {
            return try CompactFile(path: path)
        }
        if FileSystem.isFile(path), GGUFInspectReport.isGGUF(path) {
            return try GGUFTensorStore(path: path)
        }
        return try Checkpoint.open(path)
    }
}
