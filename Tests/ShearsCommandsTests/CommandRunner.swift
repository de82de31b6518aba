#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore

/// Runs the built `shears` executable (next to the test bundle) and captures its output.
struct CommandRunner {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let executable: String = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = String(cString: Array(buffer[0..<max(0, n)]) + [0])
        var dir = FileSystem.directoryName(exe)
        // The test runner lives in <build>/<config>/ShearsPackageTests.xctest (or a .../usr/bin inside it).
        while !FileSystem.isFile(dir + "/shears") && dir.count > 1 { dir = FileSystem.directoryName(dir) }
        return dir + "/shears"
    }()

    static func run(_ arguments: [String], environment: [String: String] = [:], unset: [String] = []) -> Output {
        let dir = "/tmp/shears-run-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o700)
        defer { _ = system("rm -rf '\(dir)'") }
        func quote(_ s: String) -> String { "'" + s.replacing("'", with: "'\\''") + "'" }
        let env = unset.map { "-u \($0) " }.joined() + environment.map { "\($0.key)=\(quote($0.value)) " }.joined()
        let command = "env \(env)\(quote(executable)) \(arguments.map(quote).joined(separator: " ")) >\(dir)/out 2>\(dir)/err </dev/null"
        let raw = system(command)
        let status = (raw >> 8) & 0xFF
        let out = (try? FileSystem.readFile(dir + "/out")) ?? []
        let err = (try? FileSystem.readFile(dir + "/err")) ?? []
        return Output(status: status, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
    }
}

let fixturesPath: String = {
    var p = #filePath
    for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
    return p + "/Fixtures"
}()

/// A new empty folder under /tmp named `prefix-XXXXXX` (mkdtemp).
func temporaryFolder(_ prefix: String) -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    return String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
}
