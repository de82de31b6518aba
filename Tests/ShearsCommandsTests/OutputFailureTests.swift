#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Testing

/// Failures that lose nothing (issue 21): outputs that cannot be written where asked get a clear
/// error (exit 2), leave nothing behind and leave the input as it was; an input truncated while
/// mapped ends with an error naming it; two writers of one output: one wins, one fails clearly.
@Suite struct OutputFailureTests {
    static let model = fixturesPath + "/safetensors/tiny-llama"

    /// Every file under `folder` (recursively, names relative) with its bytes; folders as empty.
    static func snapshot(_ folder: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        func walk(_ dir: String, _ prefix: String) throws {
            for name in try FileSystem.contents(of: dir) {
                let path = dir + "/" + name
                if FileSystem.isDirectory(path) { out[prefix + name + "/"] = []; try walk(path, prefix + name + "/") }
                else { out[prefix + name] = try FileSystem.readFile(path) }
            }
        }
        try walk(folder, "")
        return out
    }

    static func copyModel(to dir: String) -> String {
        let copy = dir + "/model"
        _ = system("cp -r '\(model)' '\(copy)'")
        return copy
    }

    // MARK: read-only output folder

    /// Makes a folder unwritable for this process: mode 0555 for a normal user; root ignores
    /// modes, so it also sets the immutable attribute (`chattr +i`, needs CAP_LINUX_IMMUTABLE and
    /// a file system that has it). False when the folder stays writable.
    static func makeReadOnly(_ folder: String) -> Bool {
        chmod(folder, 0o555)
        if !isWritable(folder) { return true }
        _ = system("chattr +i '\(folder)' 2>/dev/null")
        return !isWritable(folder)
    }

    static func undoReadOnly(_ folder: String) {
        _ = system("chattr -i '\(folder)' 2>/dev/null")
        chmod(folder, 0o755)
    }

    static func isWritable(_ folder: String) -> Bool {
        let probe = folder + "/.probe"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { return false }
        close(fd)
        unlink(probe)
        return true
    }

    static let readOnlyFolders: Bool = {
        let dir = temporaryFolder("shears-ro-probe")
        defer { undoReadOnly(dir); rmdir(dir) }
        return makeReadOnly(dir)
    }()

    @Test(.enabled(if: readOnlyFolders, "cannot make a read-only folder here (root without chattr +i / CAP_LINUX_IMMUTABLE)"),
          arguments: [["convert", model, "RO/out"], ["convert", model, "RO/m.gguf"], ["convert", model, "RO/m.ctz"],
                      ["prune", model, "RO/pruned", "--importance", "l2"], ["prune", model, "RO/p.gguf", "--importance", "l2"],
                      ["hash", model, "-o", "RO/h.json"]])
    func readOnlyOutputFolder(_ template: [String]) throws {
        let dir = temporaryFolder("shears-ro")
        let ro = dir + "/ro"
        mkdir(ro, 0o755)
        defer { Self.undoReadOnly(ro); _ = system("rm -rf '\(dir)'") }
        #expect(Self.makeReadOnly(ro))
        let before = try Self.snapshot(Self.model)
        let r = CommandRunner.run(template.map { $0.replacing("RO", with: ro) })
        #expect(r.status == 2, "\(template): status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains(ro) && (r.stderr.contains("Permission denied") || r.stderr.contains("Operation not permitted")),
                "\(template): \(r.stderr)")
        Self.undoReadOnly(ro)
        #expect(try FileSystem.contents(of: ro).isEmpty)
        #expect(try FileSystem.contents(of: dir) == ["ro"])
        #expect(try Self.snapshot(Self.model) == before, "the input changed")
    }

    // MARK: output path that exists as the wrong kind

    @Test(arguments: [
        (["convert", model, "DIR/file"], "is a file; this conversion writes a model folder"),
        (["convert", model, "DIR/file", "--force"], "is a file; this conversion writes a model folder"),
        (["prune", model, "DIR/file", "--importance", "l2"], "exists and is not a folder"),
        (["prune", model, "DIR/file", "--importance", "l2", "--force"], "exists and is not a folder"),
        (["convert", model, "DIR/file.gguf"], "exists already; pass --force to replace it"),
        (["prune", model, "DIR/file.gguf", "--importance", "l2"], "already exists; pass --force to replace it"),
        (["convert", model, "DIR/folder.gguf"], "is a folder; a .gguf output must be a file path"),
        (["hash", model, "-o", "DIR/folder.gguf"], "Is a directory"),
    ])
    func outputPathOfTheWrongKind(_ template: [String], _ message: String) throws {
        let dir = temporaryFolder("shears-exists")
        defer { _ = system("rm -rf '\(dir)'") }
        try AtomicFile.write(Array("keep me\n".utf8), to: dir + "/file")
        try AtomicFile.write(Array("keep me too\n".utf8), to: dir + "/file.gguf")
        mkdir(dir + "/folder.gguf", 0o755)
        let before = try Self.snapshot(dir)
        let input = try Self.snapshot(Self.model)
        let r = CommandRunner.run(template.map { $0.replacing("DIR", with: dir) })
        #expect(r.status == 2, "\(template): status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains(message), "\(template): \(r.stderr)")
        #expect(try Self.snapshot(dir) == before, "\(template) changed or left files")
        #expect(try Self.snapshot(Self.model) == input, "the input changed")
    }

    // MARK: output inside the input folder

    @Test(arguments: [
        (["convert", "IN", "IN/out"], "is inside the input folder"),
        (["convert", "IN", "IN/m.gguf"], "is inside the input folder"),
        (["convert", "IN", "IN/sub/deeper/m.ctz"], "is inside the input folder"),
        (["convert", "IN/model.safetensors.index.json", "IN/out"], "is inside the input folder"),
        (["convert", "IN", "IN/."], "is the input"),
        (["prune", "IN", "IN/pruned", "--importance", "l2"], "is inside the input folder"),
        (["prune", "IN", "IN/p.gguf", "--importance", "l2"], "is inside the input folder"),
        (["prune", "IN", "IN", "--importance", "l2", "--force"], "is the input folder"),
        (["prune", "IN", "IN/../model/x", "--importance", "l2"], "is inside the input folder"),
    ])
    func outputInsideTheInputFolder(_ template: [String], _ message: String) throws {
        let dir = temporaryFolder("shears-inside")
        defer { _ = system("rm -rf '\(dir)'") }
        let input = Self.copyModel(to: dir)
        let before = try Self.snapshot(input)
        let r = CommandRunner.run(template.map { $0.replacing("IN", with: input) })
        #expect(r.status == 2, "\(template): status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains(message), "\(template): \(r.stderr)")
        #expect(try Self.snapshot(input) == before, "\(template) changed the input folder")
        #expect(try FileSystem.contents(of: dir) == ["model"])
    }
}
