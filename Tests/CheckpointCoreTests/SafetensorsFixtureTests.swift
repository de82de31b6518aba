import Crypto
import Testing
import ShearsJSON
@testable import CheckpointCore

/// Files written by the Python `safetensors` package and by transformers (Fixtures/safetensors),
/// described by `expected.json`, which the same script wrote.
enum Expected {
    static let folder = fixturesPath + "/safetensors"
    static let json: JSONValue = {
        let bytes = try! FileSystem.readFile(folder + "/expected.json")
        return try! JSONValue.parse(bytes)
    }()
    static var files: [JSONValue] { json["files"]!.arrayValue! }
    static var fileNames: [String] { files.map { $0["file"]!.stringValue! } }
    static func file(_ name: String) -> JSONValue { files.first { $0["file"]?.stringValue == name }! }
}

func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
    SHA256.hash(data: bytes).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// Little-endian elements of `width` bits as lowercase hex, the fixture's `bits` convention.
func bitsHex(_ bytes: [UInt8], width: Int) -> [String] {
    if width == 4 {
        return bytes.flatMap { [String($0 & 0xF, radix: 16), String($0 >> 4, radix: 16)] }
    }
    let w = width / 8
    return stride(from: 0, to: bytes.count, by: w).map { i in
        bytes[i..<(i + w)].reversed().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

@Suite struct SafetensorsFixtureReadTests {
    @Test(arguments: Expected.fileNames)
    func readsEveryTensorExactly(_ name: String) throws {
        let expected = Expected.file(name)
        let f = try SafetensorsFile(path: Expected.folder + "/" + name)
        #expect(f.fileSize == expected["file_size"]!.intValue!)
        #expect(f.header.headerLength == expected["header_length"]!.intValue!)
        #expect(f.header.dataStart == expected["data_start"]!.intValue!)
        let order = expected["tensor_order"]!.arrayValue!.map { $0.stringValue! }
        #expect(f.tensors.map(\.name) == order)
        if let m = expected["metadata"]!.objectValue {
            #expect(f.metadata?.entries.map(\.key) == m.keys)
            #expect(f.metadata?.entries.map(\.value) == m.members.map { $0.value.stringValue! })
        } else {
            #expect(f.metadata == nil)
        }
        let tensors = expected["tensors"]!.arrayValue!
        #expect(tensors.count == f.tensors.count)
        for t in tensors {
            let tname = t["name"]!.stringValue!
            let v = try f.tensor(named: tname)
            #expect(v.dtype.rawValue == t["dtype"]!.stringValue!, "\(tname)")
            #expect(v.shape == t["shape"]!.arrayValue!.map { $0.intValue! }, "\(tname)")
            let offsets = t["data_offsets"]!.arrayValue!.map { $0.intValue! }
            #expect(v.info.dataOffsets == offsets[0]..<offsets[1], "\(tname)")
            #expect(v.byteCount == t["byte_length"]!.intValue!)
            #expect(v.elementCount == t["nelements"]!.intValue!)
            #expect(v.withUnsafeBytes { sha256Hex($0) } == t["sha256"]!.stringValue!, "\(tname)")
            if let bits = t["bits"]?.arrayValue {
                #expect(bitsHex(v.bytes(), width: t["bits_width"]!.intValue!) == bits.map { $0.stringValue! }, "\(tname)")
            }
        }
    }

    @Test func canonicallyEquivalentNamesStayDistinct() throws {
        let f = try SafetensorsFile(path: Expected.folder + "/names.safetensors")
        let composed = try f.tensor(named: "\u{00E9}")
        let decomposed = try f.tensor(named: "e\u{0301}")
        #expect(composed.range != decomposed.range)
        #expect(f.tensors.count == 14)
    }
}

@Suite struct SafetensorsWriterFixtureTests {
    /// Rewriting every file from its tensors and metadata gives the Python package's bytes.
    @Test(arguments: Expected.fileNames)
    func rewritesByteIdentically(_ name: String) throws {
        let path = Expected.folder + "/" + name
        let f = try SafetensorsFile(path: path)
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let out = dir + "/out.safetensors"
        // Give the tensors in reverse order: the writer must order them itself.
        let specs = f.tensors.reversed().map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        try SafetensorsWriter.write(path: out, tensors: specs, metadata: f.metadata) { (spec) throws(CheckpointError) in
            .view(try f.tensor(named: spec.name))
        }
        let original = try FileSystem.readFile(path)
        let written = try FileSystem.readFile(out)
        #expect(written == original)
        #expect(try FileSystem.contents(of: dir) == ["out.safetensors"])  // no temporary left behind
    }

    @Test func indexMatchesTransformers() throws {
        let path = Expected.folder + "/tiny-llama/model.safetensors.index.json"
        let index = try ShardIndex.read(path: path)
        let c = try Checkpoint.open(path)
        let written = ShardedWriter.indexJSON(weightMap: index.weightMap.members.map { ($0.key, $0.value.stringValue!) },
                                              totalSize: c.tensorBytes, totalParameters: c.parameterCount)
        #expect(written == (try FileSystem.readFile(path)))
    }

    @Test func shardPlanIsGreedyInGivenOrder() throws {
        func spec(_ n: String, _ bytes: Int) -> TensorSpec { TensorSpec(name: n, dtype: .u8, shape: [bytes]) }
        // [6,6,2,6,2,2] with a limit of 8 → [6], [6,2], [6,2], then [2]... as huggingface_hub splits.
        let plan = try ShardedWriter.plan([spec("a", 6), spec("b", 6), spec("c", 2), spec("d", 6), spec("e", 2), spec("f", 2)], maxShardSize: 8)
        #expect(plan.map { $0.map(\.name) } == [["a"], ["b", "c"], ["d", "e"], ["f"]])
        // A tensor over the limit gets a shard of its own where it appears.
        let big = try ShardedWriter.plan([spec("a", 3), spec("huge", 20), spec("b", 3)], maxShardSize: 8)
        #expect(big.map { $0.map(\.name) } == [["huge"], ["a", "b"]])
        #expect(ShardedWriter.shardNames(count: 3) == ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"])
        #expect(ShardedWriter.shardNames(count: 1) == ["model.safetensors"])
    }

    @Test func writesAndReopensShards() throws {
        let source = try Checkpoint.open(Expected.folder + "/tiny-llama")
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let specs = source.entries.map { TensorSpec(name: $0.info.name, dtype: $0.info.dtype, shape: $0.info.shape) }
        let written = try ShardedWriter.write(folder: dir, tensors: specs, maxShardSize: 100_000) { (spec) throws(CheckpointError) in
            .view(try source.tensor(named: spec.name))
        }
        #expect(written.count > 3 && written.last!.hasSuffix("model.safetensors.index.json"))
        let reopened = try Checkpoint.open(dir)
        #expect(reopened.format == .shardedSafetensors)
        #expect(reopened.files.allSatisfy { $0.header.dataLength <= 100_000 })
        #expect(Set(reopened.tensorNames) == Set(source.tensorNames))
        for name in source.tensorNames {
            #expect(try reopened.tensor(named: name).bytes() == source.tensor(named: name).bytes())
        }
        #expect(reopened.warnings.isEmpty)
    }

    @Test func rejectsReservedAndDuplicateNames() {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        #expect { try SafetensorsWriter(path: dir + "/x.safetensors", tensors: [TensorSpec(name: "__metadata__", dtype: .f32, shape: [1])]) }
            throws: { ($0 as? CheckpointError)?.code == .reservedTensorName }
        #expect { try SafetensorsWriter(path: dir + "/x.safetensors", tensors: [TensorSpec(name: "a", dtype: .f32, shape: [1]), TensorSpec(name: "a", dtype: .f16, shape: [1])]) }
            throws: { ($0 as? CheckpointError)?.code == .duplicateTensorName }
    }

    @Test func abandonedWriteLeavesNothing() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        do {
            let w = try SafetensorsWriter(path: dir + "/x.safetensors", tensors: [TensorSpec(name: "a", dtype: .f32, shape: [2])])
            #expect(throws: CheckpointError.self) { try w.write([1, 2, 3]) }  // wrong size
            #expect(throws: CheckpointError.self) { try w.finish() }  // incomplete
        }
        #expect(try FileSystem.contents(of: dir).isEmpty)
    }
}
