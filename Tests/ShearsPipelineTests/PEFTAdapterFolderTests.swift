import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Engine
import ModelArchitecture
import ShearsJSON
@testable import ShearsPipeline

/// PEFT adapter folders: Fixtures/lora/peft-adapter was written by PEFT's save_pretrained
/// (Tools/lora/peft_fixture.py); Fixtures/lora/peft-adapter-golden.json holds PEFT's own merge.
@Suite struct PEFTAdapterFolderTests {
    static let folder = fixtures + "/lora/peft-adapter"
    static let model = try! ModelSource.open(fixtures + "/models/austen-llama").description
    static let golden: JSONValue = try! JSONValue.parse(FileSystem.readFile(fixtures + "/lora/peft-adapter-golden.json"))

    /// The values read give PEFT's merge: W_merged − W = (alpha / r)·B·A, first rows.
    @Test func readsPEFTsFolder() throws {
        let a = try PEFTAdapterFolder.read(Self.folder, model: Self.model)
        #expect(a.rank == 2 && a.alpha == 5 && a.dropout == 0.05 && a.targets == TensorRole.projections)
        #expect(a.baseModel == "Fixtures/models/austen-llama" && a.scaling == Self.golden["scaling"]!.doubleValue!)
        #expect(a.a.count == 28 && a.b.count == 28)
        let roles: [String: TensorRole] = ["q_proj": .query, "down_proj": .down]
        for s in Self.golden["sites"]!.arrayValue! {
            let site = LoRAKey(layer: s["layer"]!.intValue!, role: roles[s["module"]!.stringValue!]!)
            let A = a.a[site]!, B = a.b[site]!
            #expect(A.rows == 2 && B.cols == 2 && A.values.contains { $0 != 0 } && B.values.contains { $0 != 0 })
            for (i, row) in s["delta_first_rows"]!.arrayValue!.enumerated() {
                let want = row.arrayValue!.map { $0.doubleValue! }
                #expect(want.count == A.cols)
                var worst = 0.0
                for j in 0..<A.cols {
                    var d = 0.0
                    for k in 0..<2 { d += Double(B.values[i * 2 + k]) * Double(A.values[k * A.cols + j]) }
                    worst = max(worst, abs(a.scaling * d - want[j]))
                }
                // PEFT's delta is a float32 difference of weights of magnitude ≤ 1.
                #expect(worst < 2e-7, "layer \(site.layer) \(site.role) row \(i): \(worst)")
            }
        }
    }

    /// Writing what was read gives PEFT's bytes: the safetensors file identically, the config
    /// identically up to `target_modules` order (PEFT writes a Python set).
    @Test func writesPEFTsBytes() throws {
        let dir = temporaryFolder("shears-peft")
        defer { _ = system("rm -rf '\(dir)'") }
        let a = try PEFTAdapterFolder.read(Self.folder, model: Self.model)
        try PEFTAdapterFolder.write(a, to: dir + "/out", model: Self.model)
        // Tools/check-peft-adapter loads this folder in PEFT.
        if let keep = getenv("SHEARS_PEFT_OUT") { try PEFTAdapterFolder.write(a, to: String(cString: keep), model: Self.model) }
        #expect(try FileSystem.contents(of: dir + "/out").sorted() == ["adapter_config.json", "adapter_model.safetensors"])
        #expect(try FileSystem.readFile(dir + "/out/adapter_model.safetensors") == FileSystem.readFile(Self.folder + "/adapter_model.safetensors"))
        let theirs = try FileSystem.readFile(Self.folder + "/adapter_config.json")
        let ours = try FileSystem.readFile(dir + "/out/adapter_config.json")
        // The renderer is Python's json.dumps(indent=2, sort_keys=True): PEFT's file re-rendered is itself.
        #expect(Array(PEFTAdapterFolder.pythonJSON(try JSONValue.parse(theirs), indent: "").utf8) == theirs)
        func normalized(_ b: [UInt8]) throws -> JSONValue {
            var o = try JSONValue.parse(b).objectValue!
            o["target_modules"] = .array(o["target_modules"]!.arrayValue!.map { $0.stringValue! }.sorted().map(JSONValue.string))
            return .object(o)
        }
        #expect(try normalized(ours) == normalized(theirs))
        #expect(try PEFTAdapterFolder.read(dir + "/out", model: Self.model) == a)
    }

    func expectThrows(_ words: String, _ body: () throws -> Void) throws {
        let e = #expect(throws: CheckpointError.self) { try body() }
        #expect(e.map { "\($0)".contains(words) } == true, "\(String(describing: e))")
    }

    /// Every setting and tensor is checked: the error names the file and the key or field.
    @Test func rejectsWhatItCannotRepresent() throws {
        let dir = temporaryFolder("shears-peft-bad")
        defer { _ = system("rm -rf '\(dir)'") }
        let config = try JSONValue.parse(FileSystem.readFile(Self.folder + "/adapter_config.json")).objectValue!
        let weights = try FileSystem.readFile(Self.folder + "/adapter_model.safetensors")
        var n = 0
        func expectError(config change: (inout JSONObject) -> Void = { _ in }, weights w: [UInt8]? = nil, _ words: [String]) throws {
            n += 1
            let f = dir + "/case\(n)"
            try FileSystem.createDirectory(f)
            var c = config
            change(&c)
            try AtomicFile.write(JSONValue.object(c).serializedBytes(), to: f + "/adapter_config.json")
            try AtomicFile.write(w ?? weights, to: f + "/adapter_model.safetensors")
            do {
                _ = try PEFTAdapterFolder.read(f, model: Self.model)
                Issue.record("case \(n) was accepted")
            } catch let e as CheckpointError {
                for word in words { #expect("\(e)".contains(word), "\(e) lacks \(word)") }
            }
        }
        try expectError(config: { $0["r"] = .int(3) }, ["adapter_model.safetensors", "lora_A.weight", "expected [3,"])
        try expectError(config: { $0["peft_type"] = .string("IA3") }, ["adapter_config.json", "peft_type"])
        try expectError(config: { $0["use_dora"] = .bool(true) }, ["use_dora"])
        try expectError(config: { $0["use_rslora"] = .bool(true) }, ["use_rslora"])
        try expectError(config: { $0["bias"] = .string("all") }, ["bias"])
        try expectError(config: { $0["rank_pattern"] = .object(JSONObject([("q_proj", .int(4))])) }, ["rank_pattern"])
        try expectError(config: { $0["target_modules"] = .array([.string("q_proj"), .string("lm_head")]) }, ["\"lm_head\" is not a projection"])
        try expectError(config: { $0["target_modules"] = .string("all-linear") }, ["target_modules"])
        // Fewer targets than the tensors hold: the extra tensors are unknown keys.
        try expectError(config: { $0["target_modules"] = .array([.string("q_proj")]) },
                        ["unknown tensor", "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"])
        // A missing tensor, a NaN, an extra key.
        let file = try SafetensorsFile(path: Self.folder + "/adapter_model.safetensors")
        func rewritten(drop: String? = nil, add: String? = nil, nan: String? = nil) throws -> [UInt8] {
            let path = dir + "/w.safetensors"
            var specs = file.tensors.filter { $0.name != drop }.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
            if let add { specs.append(TensorSpec(name: add, dtype: .f32, shape: [2])) }
            try SafetensorsWriter.write(path: path, tensors: specs) { (spec) throws(CheckpointError) -> TensorBytes in
                if spec.name == add { return .floats([1, 2]) }
                var v = try file.tensor(named: spec.name).floats()
                if spec.name == nan { v[0] = .nan }
                return .floats(v)
            }
            return try FileSystem.readFile(path)
        }
        let key = "base_model.model.model.layers.2.self_attn.v_proj.lora_B.weight"
        try expectError(weights: try rewritten(drop: key), ["missing", key])
        try expectError(weights: try rewritten(nan: key), ["NaN", key])
        try expectError(weights: try rewritten(add: "base_model.model.lm_head.lora_A.weight"), ["unknown tensor", "lm_head.lora_A"])
        try expectError(weights: Array(weights.prefix(100)), ["adapter_model.safetensors"])
        // No config, a pickle only.
        try FileSystem.createDirectory(dir + "/pickle")
        try AtomicFile.write(JSONValue.object(config).serializedBytes(), to: dir + "/pickle/adapter_config.json")
        try AtomicFile.write([1, 2, 3], to: dir + "/pickle/adapter_model.bin")
        try expectThrows("pickle") { _ = try PEFTAdapterFolder.read(dir + "/pickle", model: Self.model) }
        try expectThrows("adapter_config.json is missing") { _ = try PEFTAdapterFolder.read(dir, model: Self.model) }
        // Writing refuses an adapter that does not fit the model.
        var a = try PEFTAdapterFolder.read(Self.folder, model: Self.model)
        a.a[LoRAKey(layer: 0, role: .query)] = LoRAMatrix(rows: 2, cols: 3, values: [0, 0, 0, 0, 0, 0])
        try expectThrows("q_proj.lora_A") { try PEFTAdapterFolder.write(a, to: dir + "/w", model: Self.model) }
        #expect(!FileSystem.isDirectory(dir + "/w"))
    }
}
