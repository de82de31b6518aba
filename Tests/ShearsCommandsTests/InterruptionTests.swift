#if canImport(Glibc)
import Glibc
#endif
import CheckpointCore
import Testing

/// Runs that are interrupted or raced (issue 21): an input truncated while mapped, two `shears`
/// writing one output, and `kill -9` at random points (Tools/check-kill).
@Suite struct InterruptionTests {
    static let root = FileSystem.directoryName(fixturesPath)

    static func quote(_ s: String) -> String { "'" + s.replacing("'", with: "'\\''") + "'" }

    /// Runs a bash script with arguments; returns its exit status.
    static func bash(_ script: String, _ arguments: [String]) -> Int32 {
        let dir = temporaryFolder("shears-script")
        defer { _ = system("rm -rf '\(dir)'") }
        try? AtomicFile.write(Array(script.utf8), to: dir + "/s.sh")
        let raw = system("bash \(quote(dir + "/s.sh")) \(arguments.map(quote).joined(separator: " ")) </dev/null")
        return (raw >> 8) & 0xFF
    }

    static func text(_ path: String) -> String {
        String(decoding: (try? FileSystem.readFile(path)) ?? [], as: UTF8.self)
    }

    /// A safetensors file with one F32 tensor of `count` zeros, sparse on disk.
    static func writeSparse(_ path: String, count: Int) throws {
        var header = Array("{\"w\":{\"dtype\":\"F32\",\"shape\":[\(count)],\"data_offsets\":[0,\(4 * count)]}}".utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes += $0 }
        bytes += header
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        ftruncate(fd, off_t(bytes.count + 4 * count))
    }

    /// The input shrinks while `convert` reads it through its memory map (SIGBUS on the pages past
    /// the new end). The process is stopped once the file is mapped, the file truncated to its
    /// header, the process continued: it ends with exit 2 and a line naming the file, and removes
    /// its temporary output and lock file.
    @Test func inputTruncatedWhileMapped() throws {
        let dir = temporaryFolder("shears-sigbus")
        defer { _ = system("rm -rf '\(dir)'") }
        let input = dir + "/big.safetensors", out = dir + "/out"
        mkdir(out, 0o755)
        try Self.writeSparse(input, count: 64 << 20)  // 256 MiB
        let status = Self.bash("""
            "$1" convert "$2" "$3/x.safetensors" --dtype bf16 >"$4/stdout" 2>"$4/stderr" &
            pid=$!
            # Wait (up to 2 minutes on a loaded machine) until the input is mapped.
            seen=0
            for _ in $(seq 1 60000); do
              grep -qF "$2" /proc/$pid/maps 2>/dev/null && { seen=1; break; }
              kill -0 $pid 2>/dev/null || break
              sleep 0.002
            done
            [ $seen = 1 ] || { echo "the input was never seen mapped" >>"$4/stderr"; kill $pid; exit 99; }
            kill -STOP $pid
            truncate -s 128 "$2"
            kill -CONT $pid
            wait $pid
            """, [CommandRunner.executable, input, out, dir])
        let stderr = Self.text(dir + "/stderr")
        #expect(status == 2, "status \(status): \(stderr)")
        #expect(stderr.contains("shears: error: \(input): the file was truncated while shears was reading it"), "\(stderr)")
        #expect(try FileSystem.contents(of: out).isEmpty, "left behind")
    }

    /// Two `convert`s to one output folder, started together: one writes it, the other fails with
    /// exit 2 saying why (the output is being written, or already holds the winner's checkpoint);
    /// the result verifies. Then a writer stopped while it holds the output: a second one fails
    /// at once naming the first's PID, and the first completes.
    @Test func twoWritersOfOneOutput() throws {
        let dir = temporaryFolder("shears-race")
        defer { _ = system("rm -rf '\(dir)'") }
        let model = fixturesPath + "/models/austen-llama"
        for round in 0..<3 {
            let out = dir + "/out\(round)"
            let status = Self.bash("""
                "$1" convert "$2" "$3" --dtype bf16 >/dev/null 2>"$4/a.err" & a=$!
                "$1" convert "$2" "$3" --dtype bf16 >/dev/null 2>"$4/b.err" & b=$!
                wait $a; ra=$?; wait $b; rb=$?
                echo "$ra $rb" >"$4/status"
                "$1" verify "$3" >"$4/verify" 2>&1
                """, [CommandRunner.executable, model, out, dir])
            let codes = Self.text(dir + "/status").split(whereSeparator: \.isWhitespace).map { Int($0) ?? -1 }
            let errors = [Self.text(dir + "/a.err"), Self.text(dir + "/b.err")]
            #expect(codes.sorted() == [0, 2], "round \(round): exit statuses \(codes): \(errors)")
            if let loser = codes.firstIndex(of: 2) {
                let e = errors[loser]
                // The PID is best effort here: the loser may look in the instant between the
                // winner's lock and its PID write (the held case below requires it).
                #expect(e.contains("is being written by another shears process") || e.contains("already holds a checkpoint"), "\(e)")
            }
            #expect(status == 0, "round \(round): verify: \(Self.text(dir + "/verify"))")
            #expect(try FileSystem.contents(of: dir).filter { $0.hasPrefix(".") }.isEmpty)
        }
        let out = dir + "/held"
        let status = Self.bash("""
            "$1" prune "$2" "$3" --importance l2 >/dev/null 2>"$4/a.err" & a=$!
            lock="$(dirname "$3")/.$(basename "$3").lock"
            for _ in $(seq 1 60000); do [ -e "$lock" ] && break; kill -0 $a 2>/dev/null || break; sleep 0.002; done
            [ -e "$lock" ] || exit 12
            kill -STOP $a
            "$1" prune "$2" "$3" --importance l2 --force >/dev/null 2>"$4/b.err"; echo $? >"$4/b.status"
            kill -CONT $a
            wait $a || exit 10
            "$1" verify "$3" --source "$2" --manifest "$3/pruning-manifest.json" >"$4/verify" 2>&1 || exit 11
            """, [CommandRunner.executable, Self.root + "/Fixtures/safetensors/tiny-llama", out, dir])
        #expect(status == 0, "status \(status): \(Self.text(dir + "/a.err")) \(Self.text(dir + "/verify"))")
        #expect(Self.text(dir + "/b.status") == "2\n")
        #expect(Self.text(dir + "/b.err").contains("\(out): is being written by another shears process (PID "), "\(Self.text(dir + "/b.err"))")
    }

    /// `kill -9` at random points of convert and prune, three times each (Tools/check-kill runs
    /// it 20 times): the destination is absent or complete and verified, and the next run on it
    /// removes what the killed one left.
    @Test func killedRunsLeaveNothingBroken() throws {
        let dir = temporaryFolder("shears-kill-log")
        defer { _ = system("rm -rf '\(dir)'") }
        let raw = system("\(Self.quote(Self.root + "/Tools/check-kill")) --iterations 3 --shears \(Self.quote(CommandRunner.executable)) >\(dir)/log 2>&1 </dev/null")
        let log = Self.text(dir + "/log")
        #expect((raw >> 8) & 0xFF == 0, "\(log)")
        #expect(log.contains("check-kill: OK"), "\(log)")
    }
}
