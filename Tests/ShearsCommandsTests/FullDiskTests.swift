#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Testing

/// A full disk, simulated with a file-size limit (RLIMIT_FSIZE, `ulimit -f`; no privileges needed):
/// the command fails with a clear error (exit 2), leaves neither output nor temporary file, and
/// the input is untouched (issue 21).
@Suite struct FullDiskTests {
    static let model = fixturesPath + "/safetensors/tiny-llama"

    /// Runs `shears` under `ulimit -f 4` (4 KiB per file).
    static func limited(_ arguments: [String]) -> CommandRunner.Output {
        let dir = temporaryFolder("shears-fulldisk-run")
        defer { _ = system("rm -rf '\(dir)'") }
        func quote(_ s: String) -> String { "'" + s.replacing("'", with: "'\\''") + "'" }
        let inner = "ulimit -f 4; exec " + ([CommandRunner.executable] + arguments).map(quote).joined(separator: " ")
        let raw = system("sh -c \(quote(inner)) >\(dir)/out 2>\(dir)/err </dev/null")
        let err = (try? FileSystem.readFile(dir + "/err")) ?? []
        return CommandRunner.Output(status: (raw >> 8) & 0xFF, stdout: "", stderr: String(decoding: err, as: UTF8.self))
    }

    static func snapshot(_ folder: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in try FileSystem.contents(of: folder) { out[name] = try FileSystem.readFile(folder + "/" + name) }
        return out
    }

    @Test(arguments: [["convert", model, "OUT/folder"], ["convert", model, "OUT/m.ctz"], ["hash", model, "-o", "OUT/h.json"],
                      ["prune", model, "OUT/pruned", "--importance", "l2"], ["prune", model, "OUT/p.gguf", "--importance", "l2"],
                      ["prune", model, "OUT/p.ctz", "--importance", "l2"]])
    func fileSizeLimitLeavesNothing(_ template: [String]) throws {
        let dir = temporaryFolder("shears-fulldisk")
        defer { _ = system("rm -rf '\(dir)'") }
        let before = try Self.snapshot(Self.model)
        let r = Self.limited(template.map { $0.replacing("OUT", with: dir) })
        #expect(r.status == 2, "\(template[0]): status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("File too large"), "\(template[0]): \(r.stderr)")
        let left = try FileSystem.contents(of: dir)
        #expect(left.isEmpty, "\(template[0]) left \(left)")
        #expect(try Self.snapshot(Self.model) == before, "the input changed")
    }
}
