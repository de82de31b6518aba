import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
@testable import CheckpointCore

/// Builds safetensors bytes from a header text and data, the way the reference tests do: in memory.
func safetensorsBytes(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + h + data
}

func parseHeader(_ bytes: [UInt8]) throws(CheckpointError) -> SafetensorsHeader {
    let r: Result<SafetensorsHeader, CheckpointError> = bytes.withUnsafeBytes { raw in
        Result { () throws(CheckpointError) in try SafetensorsHeader.parse(raw) }
    }
    return try r.get()
}

/// A fresh temporary folder, removed by the caller with `removeTree`.
func temporaryFolder(_ tag: String = "shears-test") -> String {
    var template = Array("/tmp/\(tag)-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}

func removeTree(_ path: String) {
    guard path.hasPrefix("/tmp/") else { return }
    _ = system("rm -rf '\(path)'")
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    let f = fopen(path, "wb")!
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

/// The repository's Fixtures folder, found from this source file's path.
let fixturesPath: String = {
    var p = #filePath
    for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
    return p + "/Fixtures"
}()

/// Deterministic pseudo-random numbers (SplitMix64) for reproducible randomized tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
