import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
@testable import GGUF

/// Dequantization throughput per type (RUN_BENCHMARKS=1; use a release build:
/// `RUN_BENCHMARKS=1 swift test -c release --filter DequantizeBenchmarks`).
@Suite(.serialized, .enabled(if: getenv("RUN_BENCHMARKS").map { String(cString: $0) } == "1"))
struct DequantizeBenchmarks {
    static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    @Test func throughput() throws {
        let n = 16 << 20  // 16 Mi elements (64 MiB of F32 out)
        var rng = SplitMix64(seed: 5)
        var out = [Float](repeating: 0, count: n)
        var lines: [String] = []
        for type in [GGMLType.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K] {
            let size = type.byteCount(elements: n)!
            // Random bytes; fp16 fields stay finite (high byte below 0x7C), which is all speed needs.
            var raw = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) & 0x7B }
            var best = Double.infinity
            for _ in 0..<3 {
                let t0 = Self.seconds()
                let r: Result<Void, CheckpointError> = raw.withUnsafeMutableBytes { src in
                    out.withUnsafeMutableBufferPointer { dst in
                        Result { () throws(CheckpointError) in try Dequantize.decode(UnsafeRawBufferPointer(src), type: type, into: dst) }
                    }
                }
                try r.get()
                best = min(best, Self.seconds() - t0)
            }
            lines.append("\(type.name): \(Int(Double(n) / best / 1e6)) M elements/s (\(Int(Double(n * 4) / best / 1e6)) MB/s of F32)")
        }
        print(lines.joined(separator: "\n"))
    }
}
