#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import GGUF

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

    /// Converts the pruned folder to `gguf` and moves its manifest next to it.
    static func finish(folder: String, gguf: String, dryRun: Bool) throws(CheckpointError) {
        let manifest = FileSystem.join(folder, "pruning-manifest.json")
        if !dryRun {
            StandardError.print("prune: converting to GGUF \(gguf)")
            let report = try HuggingFaceToGGUF.convert(folder: folder, to: gguf, options: .init(name: FileSystem.baseName(String(gguf.dropLast(5)))))
            for w in report.warnings { StandardError.print("shears: warning: \(w)") }
            let kind = report.architecture == "deci" ? "deci (per-layer sizes, \(report.layout.blocks.count) blocks)" : report.architecture
            StandardOutput.write("GGUF: \(gguf) (\(kind), \(Format.bytes(report.fileSize)))\n")
        }
        let target = manifestPath(for: gguf)
        guard rename(manifest, target) == 0 else {
            throw CheckpointError(.io, "cannot move the manifest into place: \(String(cString: strerror(errno)))", path: target)
        }
        StandardOutput.write("manifest: \(target)\n")
    }
}
