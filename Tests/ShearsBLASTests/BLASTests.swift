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
