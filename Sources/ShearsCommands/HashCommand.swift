import ArgumentParser
import CheckpointCore
import ShearsPipeline
import CompactFormat
import ShearsConcurrency

/// `shears hash PATH`: per-tensor and per-file SHA-256.
public struct HashCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "SHA-256 of every tensor's bytes and of every file, as a hash list for `verify --hashes`.",
        discussion: """
            A tensor's digest covers its logical bytes: the stored dtype, little-endian, row-major. It \
            is the same for the same tensor in a single safetensors file, a sharded set or a compact \
            file, so a converted copy can be checked against the original's list. File digests are \
            plain SHA-256 of each data file.

            The hash list (`--json`, or `-o FILE`) is {"format": "shears-hashes", "version": 1, \
            "tensors": {name: {"dtype", "shape", "sha256"}}, "files": {name: sha256}}, keys sorted.

            Exit status: 0 on success, 2 when an input is malformed or missing.
            """)

    @Argument(help: "A .safetensors file, index, model folder, .ctz file, or a LLaMA-family .gguf file (read as its Hugging Face tensors).", completion: .file())
    var path: String

    @Option(name: .shortAndLong, help: "Write the hash list (JSON) to this file.")
    var output: String?

    @Flag(help: "Print the hash list as JSON.")
    var json = false

    @Option(help: "Hashing threads (default: all cores).")
    var threads = availableCores()

    public init() {}

    public func run() throws {
        do {
            let store = try ModelSource.openStore(path)
            let hashes = try TensorHashes.compute(store, threads: threads)
            let text = hashes.json.serialized(style: .pretty) + "\n"
            if let output { try AtomicFile.write(Array(text.utf8), to: output) }
            if json {
                StandardOutput.write(text)
            } else if output == nil {
                var out = ""
                let width = min(64, hashes.tensors.keys.map(\.count).max() ?? 4)
                for name in TensorHashes.sortedKeys(hashes.tensors) {
                    out += Format.pad(name, width) + "  " + hashes.tensors[name]!.sha256 + "\n"
                }
                for name in TensorHashes.sortedKeys(hashes.files) {
                    out += Format.pad("file " + name, width) + "  " + hashes.files[name]! + "\n"
                }
                StandardOutput.write(out)
            }
        } catch {
            throw report(error)
        }
    }
}
