import CheckpointCore
import ShearsPipeline
import Crypto
import ShearsConcurrency
import ShearsJSON
import ModelSigning

/// Per-tensor SHA-256 of the logical bytes (the stored dtype, little-endian, row-major) and per-file
/// SHA-256, computed in parallel. The same tensor has the same digest in every container.
struct TensorHashes: Equatable {
    struct Entry: Equatable {
        var dtype: String
        var shape: [Int]
        var sha256: String
    }
    var tensors: [String: Entry]
    var files: [String: String]
    var sourceFormat: String?


    /// Hashes every tensor (and every data file unless `files` is false) of `store`.
    static func compute(_ store: any TensorStore, threads: Int, files hashFiles: Bool = true) throws -> TensorHashes {
        let infos = store.tensorInfos
        let results = SharedSlots<Result<String, CheckpointError>?>(repeating: nil, count: infos.count)
        let next = AtomicCounter()
        let workers = max(1, min(threads, infos.count))
        let s = store
        parallelFor(workers: workers) { _ in
            while true {
                let i = next.increment()
                guard i < infos.count else { return }
                do {
                    let digest = try s.withTensorBytes(infos[i].name) { ModelSource.hex(SHA256.hash(data: $0)) }
                    results[i] = .success(digest)
                } catch let e as CheckpointError {
                    results[i] = .failure(e)
                } catch {
                    results[i] = .failure(CheckpointError(.io, "\(error)", tensor: infos[i].name))
                }
            }
        }
        var tensors: [String: Entry] = [:]
        for (i, info) in infos.enumerated() {
            tensors[info.name] = Entry(dtype: info.dtype.rawValue, shape: info.shape, sha256: try results[i]!.get())
        }
        var fileHashes: [String: String] = [:]
        if hashFiles {
            let files = store.dataFiles
            for (f, digest) in zip(files, try FileDigests.sha256(files, threads: threads)) {
                fileHashes[FileSystem.baseName(f)] = FileDigests.hex(digest)
            }
        }
        return TensorHashes(tensors: tensors, files: fileHashes, sourceFormat: store.formatName)
    }

    static func sortedKeys<V>(_ d: [String: V]) -> [String] { d.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) } }

    /// `{"format": "shears-hashes", "version": 1, "tensors": {...}, "files": {...}}`, keys sorted.
    var json: JSONValue {
        var t = JSONObject()
        for name in TensorHashes.sortedKeys(tensors) {
            let e = tensors[name]!
            t[name] = .object(JSONObject([("dtype", .string(e.dtype)), ("shape", .array(e.shape.map { .int(Int64($0)) })), ("sha256", .string(e.sha256))]))
        }
        var f = JSONObject()
        for name in TensorHashes.sortedKeys(files) { f[name] = .string(files[name]!) }
        return .object(JSONObject([("format", .string("shears-hashes")), ("version", .int(1)), ("tensors", .object(t)), ("files", .object(f))]))
    }

    /// Reads a hash list written by `shears hash`.
    static func read(path: String) throws -> TensorHashes {
        let json: JSONValue
        do { json = try JSONValue.parse(FileSystem.readFile(path, limit: 1 << 30)) } catch let e as JSONError {
            throw CheckpointError(.invalidArgument, "hash list is not valid JSON: \(e.message)", path: path)
        }
        guard json["format"]?.stringValue == "shears-hashes", json["version"]?.intValue == 1, let t = json["tensors"]?.objectValue else {
            throw CheckpointError(.invalidArgument, "not a shears hash list (format \"shears-hashes\", version 1)", path: path)
        }
        var tensors: [String: Entry] = [:]
        for (name, v) in t.members {
            guard let sha = v["sha256"]?.stringValue, sha.count == 64, let dtype = v["dtype"]?.stringValue,
                  let shape = v["shape"]?.arrayValue?.compactMap(\.intValue) else {
                throw CheckpointError(.invalidArgument, "hash list entry is incomplete", path: path, tensor: name)
            }
            tensors[name] = Entry(dtype: dtype, shape: shape, sha256: sha)
        }
        var files: [String: String] = [:]
        for (name, v) in json["files"]?.objectValue?.members ?? [] { files[name] = v.stringValue ?? "" }
        return TensorHashes(tensors: tensors, files: files, sourceFormat: nil)
    }
}
