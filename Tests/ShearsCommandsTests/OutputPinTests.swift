import Testing
#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Crypto
import ShearsJSON

/// The bytes the main jobs write on the bundled model, recorded before the model description and
/// the pruning pipeline were restructured (issue 16): the restructuring must not change a byte.
/// A deliberate change of output must update these hashes in the same commit and say why.
///
/// Manifests are compared with their golden copies in `Fixtures/pins/` rather than by hash: their
/// importance scores are float sums whose last bits depend on the CPU's OpenBLAS kernels (the
/// scores of the default prune differ by ~1e-6 relative between SkylakeX and Haswell kernels), while
/// everything else in them (selections, settings, file hashes) must match exactly.
@Suite struct OutputPinTests {
    static let model = fixturesPath + "/models/austen-llama"

    func sha256(_ path: String) throws -> String {
        let m = try MappedFile(path: path)
        let digits = Array("0123456789abcdef")
        return m.withUnsafeBytes { String(SHA256.hash(data: $0).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }) }
    }

    func check(_ arguments: [String], _ expected: [String: String], in dir: String) throws {
        let r = CommandRunner.run(arguments)
        #expect(r.status == 0, "\(arguments): \(r.stderr)")
        for (file, hash) in expected.sorted(by: { $0.key < $1.key }) {
            if hash.hasPrefix("pins/") {
                let golden = try JSONValue.parse(FileSystem.readFile(fixturesPath + "/" + hash))
                let written = try JSONValue.parse(FileSystem.readFile(dir + "/" + file))
                let differences = Self.differences(written, golden, at: file)
                #expect(differences.isEmpty, "\(arguments.prefix(3)) → \(differences.prefix(5))")
            } else {
                #expect(try sha256(dir + "/" + file) == hash, "\(arguments.prefix(3)) → \(file)")
            }
        }
    }

    /// Where `a` and `b` differ: any structural or non-float difference, or floats further apart
    /// than 1e-4 relative (1e-12 absolute near zero).
    static func differences(_ a: JSONValue, _ b: JSONValue, at path: String) -> [String] {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            guard x.keys == y.keys else { return ["\(path): keys \(x.keys) vs \(y.keys)"] }
            return x.members.flatMap { m in differences(m.value, y[m.key]!, at: path + "." + m.key) }
        case (.array(let x), .array(let y)):
            guard x.count == y.count else { return ["\(path): \(x.count) vs \(y.count) elements"] }
            return zip(x, y).enumerated().flatMap { i, p in differences(p.0, p.1, at: "\(path)[\(i)]") }
        case (.double(let x), .double(let y)):
            return abs(x - y) <= max(1e-4 * max(abs(x), abs(y)), 1e-12) ? [] : ["\(path): \(x) vs \(y)"]
        default:
            return a == b ? [] : ["\(path): \(a) vs \(b)"]
        }
    }

    @Test func pruneWritesThePinnedBytes() throws {
        let dir = temporaryFolder("shears-pin")
        defer { _ = system("rm -rf '\(dir)'") }
        try check(["prune", Self.model, dir + "/p"], [
            "p/config.json": "359bb4ab0b62d271b0a3d5c14159d422dfbb59154f035047338fc81cfe87aef8",
            "p/model.safetensors": "a2259d8019efd2450e054327910bbd9c42d7d4611f6b9b84eb745f9b2c1bdc78",
            "p/modeling_shears_llama.py": "8b20b228e8540835763410f29dac3a9c519d1e5cbaec2d38285ba07eb364e77b",
            "p/pruning-manifest.json": "pins/prune-default.pruning-manifest.json",
            "p/tokenizer.json": "782f9e8c3909b30cbd284ffae1fd1093b69a0110acb1a7914b456e1e5d426ea0",
        ], in: dir)
        try check(["prune", Self.model, dir + "/g.gguf"], [
            "g.gguf": "f5c8153299290008adb09a6ebc53dc45b14302046874c234a51a47fcbf9263c4",
            "g.pruning-manifest.json": "pins/prune-gguf.pruning-manifest.json",
        ], in: dir)
    }

    @Test func recoveredPruneWritesThePinnedBytes() throws {
        let dir = temporaryFolder("shears-pin")
        defer { _ = system("rm -rf '\(dir)'") }
        try check(["prune", Self.model, dir + "/w", "--importance", "wifv", "--recover", "anchored-ls", "--covariance-precision", "float64"], [
            "w/config.json": "c43bb0dcc19aa2241ec006b09fa27bba97ce07b3fc45063d1cc0ba2854454cbe",
            "w/model.safetensors": "0ef21fb73446ed86e3fdd4c67e45772c34afd14d924902e956b5f80c49121482",
            "w/pruning-manifest.json": "pins/prune-wifv-anchored-ls.pruning-manifest.json",
        ], in: dir)
        // The default, float32 covariances: the same selection, and every stored (bf16) value
        // within one bf16 step of the float64 output's (or 1e-4 of the tensor's largest value).
        let r = CommandRunner.run(["prune", Self.model, dir + "/d", "--importance", "wifv", "--recover", "anchored-ls"])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let m32 = try JSONValue.parse(FileSystem.readFile(dir + "/d/pruning-manifest.json"))
        let m64 = try JSONValue.parse(FileSystem.readFile(dir + "/w/pruning-manifest.json"))
        #expect(m32["recovery"]?["covariance_precision"]?.stringValue == "float32")
        let l32 = m32["layers"]?.arrayValue ?? [], l64 = m64["layers"]?.arrayValue ?? []
        #expect(l32.count == l64.count && !l64.isEmpty)
        for (l, (x, y)) in zip(l32, l64).enumerated() {
            for part in ["attention", "mlp"] {
                for key in ["kept_heads", "kept_kv_heads", "kept_channels"] {
                    #expect(x[part]?[key] == y[part]?[key], "layer \(l) \(part) \(key)")
                }
            }
        }
        let a = try Checkpoint.open(dir + "/d"), b = try Checkpoint.open(dir + "/w")
        #expect(a.tensorNames == b.tensorNames)
        var differing = 0, beyondOneUlp = 0
        for name in b.tensorNames {
            let x = try a.tensor(named: name).floats(), y = try b.tensor(named: name).floats()
            #expect(x.count == y.count, "\(name)")
            let scale = y.map(abs).max() ?? 0
            for (u, v) in zip(x, y) where u != v {
                differing += 1
                // One bf16 step of the value, or 1e-4 of the tensor's largest (values near zero).
                if abs(u - v) > max(max(abs(u), abs(v)) * 0x1p-7 * 1.01, 1e-4 * scale) { beyondOneUlp += 1 }
            }
        }
        #expect(differing > 0, "float32 covariances change some rounded value")
        #expect(beyondOneUlp == 0)
    }

    @Test func convertWritesThePinnedBytes() throws {
        let dir = temporaryFolder("shears-pin")
        defer { _ = system("rm -rf '\(dir)'") }
        try check(["convert", Self.model, dir + "/c.gguf"], ["c.gguf": "4f25a8c43cbaaa60995a8eba4cba763c951f8164bd9cf5bff5e2bca2e56697d7"], in: dir)
        try check(["convert", Self.model, dir + "/c.ctz"], ["c.ctz": "5895605b6124f3a87e8945ca3dd97031e0023c405f11265e57a28793c7006389"], in: dir)
        try check(["convert", Self.model, dir + "/cf", "--dtype", "f32"], [
            "cf/config.json": "cd3aa96bc7644fc31deb30905db074bb8d05da3922459cc8efb075e795d617eb",
            "cf/model.safetensors": "6bacc6474e3a2e1125d36851d0964ea060578a62bfe8a8a29b283e774a3971cb",
        ], in: dir)
    }
}
