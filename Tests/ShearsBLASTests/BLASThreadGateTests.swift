import Foundation
import Testing
@testable import ShearsBLAS

@Suite struct BLASThreadGateTests {
    /// A product whose rounding depends on OpenBLAS's thread count (one thread takes the direct
    /// AVX-512 kernel, two the packed one), made while another thread keeps entering
    /// single-threaded sections, always gives the result it gives alone.
    @Test func productsElsewhereDoNotSeeASectionsThreadCount() throws {
        // The process's count is left alone unless it is 1 (changing it would perturb other
        // suites' bit-for-bit comparisons running meanwhile).
        let saved = BLAS.threads
        if saved < 2 { BLAS.setThreads(2) }
        defer { if saved < 2 { BLAS.setThreads(saved) } }
        var rng: UInt64 = 7
        func next() -> Float {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(rng >> 40) % 2001 - 1000) / 997
        }
        // The premise: at some size the two counts round differently (else the test below proves
        // nothing). With OpenBLAS 0.3.21's SkylakeX kernels, 100 × 200 × 300 does.
        var found: (m: Int, n: Int, k: Int, a: [Float], b: [Float], alone: [Float])?
        for (m, n, k) in [(100, 200, 300), (60, 120, 500), (36, 400, 200)] where found == nil {
            let a = (0..<(m * k)).map { _ in next() }, b = (0..<(k * n)).map { _ in next() }
            let alone = BLAS.matmul(a, b, m: m, n: n, k: k)
            if BLAS.singleThreadedSection({ BLAS.matmul(a, b, m: m, n: n, k: k) }) != alone { found = (m, n, k, a, b, alone) }
        }
        #expect(BLAS.threads == max(2, saved))
        let (m, n, k, a, b, alone) = try #require(found, "OpenBLAS \(BLAS.coreName) rounds alike with 1 and 2 threads at every size tried")

        let stop = Atomic(false)
        let sections = Thread {
            while !stop.load() {
                BLAS.singleThreadedSection {
                    _ = BLAS.matmul(a, b, m: m, n: n, k: k)
                    usleep(200)
                }
            }
        }
        sections.start()
        var differing = 0
        for _ in 0..<400 where BLAS.matmul(a, b, m: m, n: n, k: k) != alone { differing += 1 }
        stop.store(true)
        #expect(differing == 0)
    }

    /// Inside a section, its workers and nested sections see one thread and pass the gate.
    @Test func sectionWorkersRunInsideTheSection() {
        let count = BLAS.singleThreadedSection { BLAS.sectionWorker { BLAS.threads } }
        #expect(count == 1)
        #expect(BLAS.singleThreadedSection { BLAS.singleThreadedSection { BLAS.threads } } == 1)
    }
}

/// A flag shared between the test and its thread.
private final class Atomic: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Bool
    init(_ v: Bool) { value = v }
    func load() -> Bool { lock.lock(); defer { lock.unlock() }; return value }
    func store(_ v: Bool) { lock.lock(); value = v; lock.unlock() }
}
