import ArgumentParser
import ShearsBLAS
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// `shears doctor`: what the machine gives Shears (OpenBLAS kernels, threads, sgemm speed) and a
/// check that matrix products are right with the kernels chosen.
public struct DoctorCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the OpenBLAS set-up: kernels chosen, threads, sgemm correctness and GFLOP/s.",
        discussion: "Exit status 0 when the sgemm check passes, 1 when it does not.")

    @Option(help: "Matrix size for the speed measurement.")
    var size = 1024

    @Flag(help: "Print one JSON object.")
    var json = false

    public init() {}

    public func run() throws {
        let check = SgemmCheck.run()
        let gflops = SgemmCheck.gflops(n: size)
        let coreEnv = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        if json {
            StandardOutput.write("""
                {"core":"\(BLAS.coreName)","openblas_coretype":\(coreEnv.map { "\"\($0)\"" } ?? "null"),"threads":\(BLAS.threads),\
                "config":"\(BLAS.config)","sgemm_max_error":\(check.maxError),"sgemm_ok":\(check.ok),"gflops":\(Format.fixed(gflops, 1)),"size":\(size)}

                """)
        } else {
            StandardOutput.write("""
                OpenBLAS         \(BLAS.config)
                kernels          \(BLAS.coreName)\(coreEnv.map { " (OPENBLAS_CORETYPE=\($0))" } ?? " (OpenBLAS's own choice)")
                threads          \(BLAS.threads)
                sgemm check      \(check.ok ? "ok" : "FAILED"): max relative error \(check.maxError) against a float64 product
                sgemm speed      \(Format.fixed(gflops, 1)) GFLOP/s at \(size)×\(size)×\(size)

                """)
        }
        if !check.ok { throw ExitCode(1) }
    }
}

/// An sgemm against a float64 reference, and a speed measurement.
enum SgemmCheck {
    static func run() -> (ok: Bool, maxError: Double) {
        let m = 67, n = 45, k = 131
        var seed: UInt64 = 0x9E3779B97F4A7C15
        func next() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 1000
        }
        let a = (0..<(m * k)).map { _ in next() }
        let b = (0..<(k * n)).map { _ in next() }
        let c = BLAS.matmul(a, b, m: m, n: n, k: k)
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var ref = 0.0
                var mag = 0.0
                for p in 0..<k {
                    ref += Double(a[i * k + p]) * Double(b[p * n + j])
                    mag += abs(Double(a[i * k + p]) * Double(b[p * n + j]))
                }
                worst = max(worst, abs(Double(c[i * n + j]) - ref) / max(mag, 1e-30))
            }
        }
        return (worst < 1e-5, worst)
    }

    static func gflops(n: Int) -> Double {
        let a = [Float](repeating: 0.5, count: n * n)
        let b = [Float](repeating: 0.25, count: n * n)
        var best = Double.infinity
        for _ in 0..<3 {
            let t0 = monotonicSeconds()
            _ = BLAS.matmul(a, b, m: n, n: n, k: n)
            best = min(best, monotonicSeconds() - t0)
        }
        return 2 * Double(n) * Double(n) * Double(n) / best / 1e9
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
