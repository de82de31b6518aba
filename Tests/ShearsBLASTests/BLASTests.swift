#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import Testing
@testable import ShearsBLAS

@Suite struct BLASTests {
    /// sgemm against a float64 product computed here, with whatever kernels OpenBLAS runs.
    @Test(arguments: [(1, 1, 1), (3, 5, 7), (64, 64, 64), (67, 45, 131), (1, 576, 1536)])
    func gemmMatchesFloat64Reference(_ m: Int, _ n: Int, _ k: Int) {
        var rng: UInt64 = 12345
        func next() -> Float {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(rng >> 40) % 2001 - 1000) / 997
        }
        let a = (0..<(m * k)).map { _ in next() }
        let b = (0..<(k * n)).map { _ in next() }
        let c = BLAS.matmul(a, b, m: m, n: n, k: k)
        for i in 0..<m {
            for j in 0..<n {
                var ref = 0.0, mag = 0.0
                for p in 0..<k { ref += Double(a[i * k + p]) * Double(b[p * n + j]); mag += abs(Double(a[i * k + p]) * Double(b[p * n + j])) }
                #expect(abs(Double(c[i * n + j]) - ref) <= 1e-6 * max(mag, 1), "(\(i),\(j))")
            }
        }
    }

    /// The float32 Gram (blocks of 1,024 rows, column panels, float64 sums of the blocks) against
    /// `dsyrk` on the same values: with small whole numbers every float32 sum is exact, so the two
    /// agree bit for bit (any slip in the panel or block indexing shows); with random values each
    /// entry is within the float32 summation bound 1024·2⁻²⁴·Σ|products|. Only the lower triangle
    /// is written. Sizes span three row blocks and three column panels, the last ones partial.
    @Test(arguments: [false, true])
    func float32GramMatchesFloat64(_ random: Bool) {
        let rows = 2 * DoubleBLAS.float32GramRows + 300, w = 700, panel = 256
        var rng: UInt64 = 99
        func next() -> Float {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return random ? Float(Int64(rng >> 40) % 2001 - 1000) / 997 : Float(Int64(rng >> 40) % 9 - 4)
        }
        let a = (0..<(rows * w)).map { _ in next() }
        var c64 = [Double](repeating: 0, count: w * w)
        DoubleBLAS.addGram(a.map(Double.init), rows: rows, width: w, into: &c64)
        var c32 = [Double](repeating: 0, count: w * w)
        c32.withUnsafeMutableBufferPointer { DoubleBLAS.addGram(a, rows: rows, width: w, into: $0, panel: panel) }
        // A second call accumulates.
        c32.withUnsafeMutableBufferPointer { DoubleBLAS.addGram(a, rows: rows, width: w, into: $0, panel: panel) }
        var mismatches = 0
        for i in 0..<w {
            for j in 0..<w {
                guard j <= i else { if c32[i * w + j] != 0 { mismatches += 1 }; continue }
                var mag = 0.0
                for r in 0..<rows { mag += abs(Double(a[r * w + i]) * Double(a[r * w + j])) }
                let bound = random ? 2 * 1024 * 0x1p-24 * mag : 0
                if abs(c32[i * w + j] - 2 * c64[i * w + j]) > bound { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }

    /// The idle-spin setting: the user's variable wins; otherwise the pool is restarted with 2^12
    /// cycles before the first product, and threaded products stay exact afterwards.
    @Test func idleWaitIsSetBeforeTheFirstProduct() {
        #expect(OpenBLASIdleWait.setting(environment: { _ in nil }) == "12")
        #expect(OpenBLASIdleWait.setting(environment: { $0 == "OPENBLAS_THREAD_TIMEOUT" ? "20" : nil }) == nil)
        #expect(OpenBLASIdleWait.setting(environment: { $0 == "GOTO_THREAD_TIMEOUT" ? "6" : nil }) == nil)
        let (m, n, k) = (300, 200, 150)
        let a = (0..<(m * k)).map { Float(($0 * 37) % 23) - 11 }, b = (0..<(k * n)).map { Float(($0 * 11) % 17) - 8 }
        let threads = BLAS.threads
        if threads < 2 { BLAS.setThreads(2) }
        defer { if threads < 2 { BLAS.setThreads(threads) } }
        for _ in 0..<3 {
            let c = BLAS.matmul(a, b, m: m, n: n, k: k)
            // Small integers: every partial sum is exact in float32.
            for (i, j) in [(0, 0), (17, 199), (299, 3), (150, 100)] {
                var ref: Float = 0
                for p in 0..<k { ref += a[i * k + p] * b[p * n + j] }
                #expect(c[i * n + j] == ref)
            }
        }
        if OpenBLASIdleWait.restarted {
            #expect(getenv("OPENBLAS_THREAD_TIMEOUT").map { String(cString: $0) } == "12")
        }
    }

    @Test func linearUsesPyTorchWeightLayout() {
        // y = x · wᵀ with w stored [out, in].
        let x: [Float] = [1, 2, 3, 4, 5, 6]           // 2 × 3
        let w: [Float] = [1, 0, 0, 0, 1, 0, 1, 1, 1, 2, 0, -1]  // 4 × 3
        var y = [Float](repeating: 0, count: 8)
        x.withUnsafeBufferPointer { px in w.withUnsafeBufferPointer { pw in y.withUnsafeMutableBufferPointer { py in
            BLAS.linear(m: 2, n: 4, k: 3, x: px.baseAddress!, w: pw.baseAddress!, y: py.baseAddress!)
        } } }
        #expect(y == [1, 2, 6, -1, 4, 5, 15, 2])
    }

    @Test func coreTypeChoiceFollowsCPUFlags() {
        #expect(OpenBLASBootstrap.bestCoreType(cpuFlags: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx2", "fma"]) == "SkylakeX")
        #expect(OpenBLASBootstrap.bestCoreType(cpuFlags: ["avx2", "fma", "avx"]) == "Haswell")
        #expect(OpenBLASBootstrap.bestCoreType(cpuFlags: ["sse3", "avx"]) == nil)
        #expect(OpenBLASBootstrap.isWeaker("Prescott", than: "SkylakeX"))
        #expect(OpenBLASBootstrap.isWeaker("Haswell", than: "SkylakeX"))
        #expect(!OpenBLASBootstrap.isWeaker("Cooperlake", than: "SkylakeX"))
        #expect(!OpenBLASBootstrap.isWeaker("SkylakeX", than: "Haswell"))
        #expect(OpenBLASBootstrap.isWeaker("Sandybridge", than: "Haswell"))
    }
}
