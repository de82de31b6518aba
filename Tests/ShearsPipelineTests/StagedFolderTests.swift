import Testing
import Glibc
import CheckpointCore
import ShearsPipeline

/// `--force` onto an existing output folder: replaced in one step (the folders are exchanged), old
/// files the new output does not replace kept, stale shards removed, nothing left behind.
@Suite struct StagedFolderTests {
    func write(_ path: String, _ text: String) throws {
        let f = fopen(path, "w")!
        fputs(text, f)
        fclose(f)
    }

    func read(_ path: String) throws -> String { String(decoding: try FileSystem.readFile(path), as: UTF8.self) }

    func inode(_ path: String) -> UInt64 {
        var s = stat()
        return stat(path, &s) == 0 ? UInt64(s.st_ino) : 0
    }

    @Test(arguments: [false, true]) func forceReplacesAnExistingFolder(withSubfolder: Bool) throws {
        let dir = temporaryFolder("shears-staged")
        defer { _ = system("rm -rf '\(dir)'") }
        let out = dir + "/out"
        mkdir(out, 0o755)
        try write(out + "/model.safetensors", "old model")
        try write(out + "/model-00002-of-00002.safetensors", "stale shard")
        try write(out + "/README.md", "the user's notes")
        if withSubfolder { mkdir(out + "/notes", 0o755) }
        let before = inode(out)

        let staged = try StagedFolder(destination: out)
        try write(staged.path + "/model.safetensors", "new model")
        try write(staged.path + "/config.json", "{}")
        try staged.commit()

        #expect(try read(out + "/model.safetensors") == "new model")
        #expect(try read(out + "/config.json") == "{}")
        #expect(try read(out + "/README.md") == "the user's notes")
        #expect(FileSystem.kind(of: out + "/model-00002-of-00002.safetensors") == nil)
        #expect(FileSystem.kind(of: staged.path) == nil, "the staging folder is gone")
        #expect(try FileSystem.contents(of: dir) == ["out"])
        // Exchanged in one step (a new folder at OUT), except with a sub-folder, which cannot be
        // hard-linked: then the files are renamed in one by one and OUT stays the same folder.
        #expect((inode(out) == before) == withSubfolder)
        if withSubfolder { #expect(FileSystem.kind(of: out + "/notes") == .directory) }
    }
}
