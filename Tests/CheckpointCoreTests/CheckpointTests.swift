import Testing
import ShearsJSON
@testable import CheckpointCore

/// Opening checkpoints as users name them, and the consistency checks between an index and its shards.
@Suite struct CheckpointTests {
    static let model = Expected.folder + "/tiny-llama"

    @Test func opensFolderIndexAndSingleFile() throws {
        let folder = try Checkpoint.open(Self.model)
        let index = try Checkpoint.open(Self.model + "/model.safetensors.index.json")
        let single = try Checkpoint.open(Expected.folder + "/tiny-llama-single/model.safetensors")
        let singleFolder = try Checkpoint.open(Expected.folder + "/tiny-llama-single")
        #expect(folder.format == .shardedSafetensors && index.format == .shardedSafetensors)
        #expect(single.format == .safetensors && singleFolder.format == .safetensors)
        #expect(folder.files.count == 3 && folder.tensorCount == 21 && folder.parameterCount == 106_816)
        #expect(folder.tensorBytes == 427_264)  // the index's metadata.total_size
        #expect(folder.warnings.isEmpty)
        #expect(folder.configPath != nil && single.configPath != nil)
        // The same tensors, byte for byte, whichever way the model was saved.
        #expect(Set(folder.tensorNames) == Set(single.tensorNames))
        for name in folder.tensorNames {
            #expect(try folder.tensor(named: name).bytes() == single.tensor(named: name).bytes())
        }
        #expect { try folder.tensor(named: "nope") } throws: { ($0 as? CheckpointError)?.code == .tensorNotFound }
    }

    /// Copies the sharded model to a temporary folder and lets `edit` change its index.
    func withEditedIndex(_ edit: (inout JSONObject, String) -> Void) throws -> (Result<Checkpoint, CheckpointError>, String) {
        let dir = temporaryFolder()
        for name in try FileSystem.contents(of: Self.model) {
            writeFile(dir + "/" + name, try FileSystem.readFile(Self.model + "/" + name))
        }
        var index = try JSONValue.parse(FileSystem.readFile(dir + "/model.safetensors.index.json")).objectValue!
        edit(&index, dir)
        writeFile(dir + "/model.safetensors.index.json", JSONValue.object(index).serializedBytes(style: .pretty))
        let r = Result { () throws(CheckpointError) in try Checkpoint.open(dir) }
        return (r, dir)
    }

    func expectFailure(_ code: CheckpointError.Code, mentioning text: String, _ edit: (inout JSONObject, String) -> Void) throws {
        let (r, dir) = try withEditedIndex(edit)
        defer { removeTree(dir) }
        switch r {
        case .success: Issue.record("expected \(code)")
        case .failure(let e):
            #expect(e.code == code)
            #expect("\(e)".contains(text), "\(e)")
            #expect(e.path != nil)
        }
    }

    @Test func missingShard() throws {
        try expectFailure(.shardMismatch, mentioning: "missing") { index, dir in
            removeTree(dir + "/model-00002-of-00003.safetensors")
        }
    }

    @Test func tensorNotInWeightMap() throws {
        try expectFailure(.shardMismatch, mentioning: "not listed") { index, _ in
            var map = index["weight_map"]!.objectValue!
            map["lm_head.weight"] = nil
            index["weight_map"] = .object(map)
        }
    }

    @Test func tensorMappedToTheWrongShard() throws {
        try expectFailure(.shardMismatch, mentioning: "maps the tensor to") { index, _ in
            var map = index["weight_map"]!.objectValue!
            let shard = map["lm_head.weight"]!.stringValue!
            map["lm_head.weight"] = .string(shard.contains("00001") ? "model-00002-of-00003.safetensors" : "model-00001-of-00003.safetensors")
            index["weight_map"] = .object(map)
        }
    }

    @Test func mappedTensorMissingFromItsShard() throws {
        try expectFailure(.shardMismatch, mentioning: "does not hold") { index, _ in
            var map = index["weight_map"]!.objectValue!
            map["ghost.weight"] = .string("model-00001-of-00003.safetensors")
            index["weight_map"] = .object(map)
        }
    }

    @Test func tensorInTwoShards() throws {
        try expectFailure(.shardMismatch, mentioning: "two shards") { index, dir in
            // A fourth shard that repeats shard 1's tensors.
            writeFile(dir + "/extra.safetensors", try! FileSystem.readFile(dir + "/model-00001-of-00003.safetensors"))
            var map = index["weight_map"]!.objectValue!
            map["zzz.placeholder"] = .string("extra.safetensors")
            index["weight_map"] = .object(map)
        }
    }

    @Test func shardNameLeavingTheFolder() throws {
        try expectFailure(.invalidIndex, mentioning: "not a file in the index's folder") { index, _ in
            var map = index["weight_map"]!.objectValue!
            map["lm_head.weight"] = .string("../model-00001-of-00003.safetensors")
            index["weight_map"] = .object(map)
        }
    }

    @Test func indexWithoutWeightMap() throws {
        try expectFailure(.invalidIndex, mentioning: "weight_map") { index, _ in index["weight_map"] = nil }
    }

    @Test func totalSizeMismatchIsAWarning() throws {
        let (r, dir) = try withEditedIndex { index, _ in
            index["metadata"] = .object(JSONObject([("total_size", .int(1))]))
        }
        defer { removeTree(dir) }
        let c = try r.get()
        #expect(c.warnings.count == 1 && c.warnings[0].contains("total_size"))
    }

    @Test func folderWithoutCheckpoint() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        #expect { try Checkpoint.open(dir) } throws: { ($0 as? CheckpointError)?.code == .notACheckpoint }
        #expect { try Checkpoint.open(dir + "/missing.safetensors") } throws: { ($0 as? CheckpointError)?.code == .io }
    }

    @Test func unindexedSetOfFiles() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        for name in ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"] {
            writeFile(dir + "/" + name, try FileSystem.readFile(Self.model + "/" + name))
        }
        let c = try Checkpoint.open(dir)
        #expect(c.format == .safetensorsSet && c.files.count == 2)
        // The same file twice is a duplicate tensor.
        writeFile(dir + "/copy.safetensors", try FileSystem.readFile(Self.model + "/model-00001-of-00003.safetensors"))
        #expect { try Checkpoint.open(dir) } throws: { ($0 as? CheckpointError)?.code == .duplicateTensorName }
    }

    @Test func tensorViewsConvert() throws {
        let c = try Checkpoint.open(Self.model)
        let v = try c.tensor(named: "model.norm.weight")
        let f = try v.floats()
        #expect(f.count == 64 && f.allSatisfy { $0 == 1 })  // RMSNorm weights initialise to ones
        let emb = try c.tensor(named: "model.embed_tokens.weight")
        #expect(emb.shape == [256, 64])
        let floats = try emb.floats()
        let raw = emb.bytes()
        #expect(floats.count == 256 * 64)
        #expect(floats.withUnsafeBytes { Array($0) } == raw)
    }
}
