#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import GGUF
import Pruning
import ShearsJSON

/// `shears prune MODEL OUT.gguf`: the pruned folder is written into a staging folder next to OUT,
/// converted to GGUF (`deci` when the layers differ in size, else `llama`), and removed; OUT appears
/// only when complete (the GGUF writer renames its temporary file into place). The manifest is kept
/// next to OUT as `<OUT without .gguf>.pruning-manifest.json`.
enum PrunedGGUFOutput {
    /// The manifest's path for a GGUF output.
    static func manifestPath(for gguf: String) -> String {
        String(gguf.dropLast(".gguf".count)) + ".pruning-manifest.json"
    }

    /// A fresh staging folder next to `gguf` (removed when the returned object goes away).
    /// - Throws: `invalidArgument` when OUT is a folder, or exists and `force` is not set.
    static func staging(for gguf: String, force: Bool, dryRun: Bool) throws(CheckpointError) -> StagedFolder {
        if FileSystem.isDirectory(gguf) {
            throw CheckpointError(.invalidArgument, "is a folder; a .gguf output must be a file path", path: gguf)
        }
        if !dryRun && !force && FileSystem.kind(of: gguf) != nil {
            throw CheckpointError(.invalidArgument, "already exists; pass --force to replace it", path: gguf)
        }
        return try StagedFolder(destination: gguf)
    }

    /// Converts the pruned folder to `gguf` and moves its manifest next to it. The manifest's
    /// `result.files` then names the GGUF file with its SHA-256 (the staged safetensors it listed are
    /// removed with the folder).
    static func finish(folder: String, gguf: String, dryRun: Bool) throws {
        let manifest = FileSystem.join(folder, "pruning-manifest.json")
        let target = manifestPath(for: gguf)
        if dryRun {
            guard rename(manifest, target) == 0 else {
                throw CheckpointError(.io, "cannot move the manifest into place: \(String(cString: strerror(errno)))", path: target)
            }
        } else {
            StandardError.print("prune: converting to GGUF \(gguf)")
            let report = try HuggingFaceToGGUF.convert(folder: folder, to: gguf, options: .init(name: FileSystem.baseName(String(gguf.dropLast(5)))))
            for w in report.warnings { StandardError.print("shears: warning: \(w)") }
            let kind = report.architecture == "deci" ? "deci (per-layer sizes, \(report.layout.blocks.count) blocks)" : report.architecture
            StandardOutput.write("GGUF: \(gguf) (\(kind), \(Format.bytes(report.fileSize)))\n")
            try AtomicFile.write(try describingGGUF(manifest: manifest, gguf: gguf), to: target)
        }
        StandardOutput.write("manifest: \(target)\n")
    }

    /// The staged manifest with `result.files` replaced by `{<OUT's file name>: sha256}`.
    static func describingGGUF(manifest: String, gguf: String) throws -> [UInt8] {
        let bytes = try FileSystem.readFile(manifest, limit: 1 << 30)
        guard var root = try JSONValue.parse(bytes).objectValue, var result = root["result"]?.objectValue else {
            throw CheckpointError(.io, "the staged manifest has no result object", path: manifest)
        }
        result["files"] = .object(JSONObject([(FileSystem.baseName(gguf), .string(try PruneCommand.sha256(gguf)))]))
        root["result"] = .object(result)
        return PruningManifest.bytes(of: .object(root))
    }
}
