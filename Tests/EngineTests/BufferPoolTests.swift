import Testing
@testable import Engine

/// Large buffers are reused for the next request of the same size, up to the pool's cap; a
/// zero-filled matrix is zero even in a reused buffer.
@Suite struct BufferPoolTests {
    @Test func sameSizeIsReusedUpToTheCap() {
        let pool = BufferPool(capacity: 3 << 20)
        let mib = 1 << 20
        let a = pool.allocate(bytes: mib), b = pool.allocate(bytes: 2 * mib), c = pool.allocate(bytes: mib)
        pool.release(a, bytes: mib)
        pool.release(b, bytes: 2 * mib)
        #expect(pool.keptBytes == 3 * mib)
        pool.release(c, bytes: mib)            // over the cap: freed
        #expect(pool.keptBytes == 3 * mib)
        #expect(pool.allocate(bytes: 2 * mib) == b)
        let again = pool.allocate(bytes: mib)
        #expect(again == a)
        #expect(pool.keptBytes == 0)
        let small = pool.allocate(bytes: 4096)  // below minimumBytes: never kept
        pool.release(small, bytes: 4096)
        #expect(pool.keptBytes == 0)
        pool.reserve(atLeast: 1 << 20)          // never lowers the cap
        #expect(pool.capacity == 3 << 20)
        pool.release(again, bytes: mib)
        pool.drain()
        #expect(pool.keptBytes == 0)
    }

    @Test func zeroFilledMatricesAreZeroInReusedBuffers() {
        let rows = 263, cols = 1009   // over 1 MiB of floats
        for _ in 0..<3 {
            let m = Matrix(rows: rows, cols: cols)
            #expect(m.values.allSatisfy { $0 == 0 })
            m.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = 7 } }
        }
    }
}
