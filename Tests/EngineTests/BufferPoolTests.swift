import Testing
@testable import Engine

/// Large matrix buffers are reused for the next matrix of the same size, a zero-filled matrix is
/// zero even in a reused buffer, and the pool never keeps more than its cap.
@Suite struct BufferPoolTests {
    @Test func sameSizeIsReusedAndZeroed() {
        // An odd size no other test uses: 1 MiB + 4 KiB + 44 bytes of floats.
        let rows = 263, cols = 1009
        #expect(rows * cols * 4 >= BufferPool.minimumBytes)
        var address: UnsafeMutablePointer<Float>? = nil
        do {
            let m = Matrix(uninitializedRows: rows, cols: cols)
            m.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = 7 } }
            address = m.storage
        }
        let again = Matrix(rows: rows, cols: cols)
        #expect(again.storage == address)
        #expect(again.values.allSatisfy { $0 == 0 })
    }

    @Test func smallBuffersAndOverflowAreNotKept() {
        let pool = BufferPool.shared
        let small = pool.allocate(bytes: 4096)
        pool.release(small, bytes: 4096)   // freed, not kept: nothing to check but that it does not crash
        // A buffer larger than the cap is freed rather than kept.
        let cap = pool.capacity
        let before = pool.keptBytes
        let big = pool.allocate(bytes: cap + 64)
        pool.release(big, bytes: cap + 64)
        #expect(pool.keptBytes <= cap)
        #expect(pool.keptBytes < before + cap + 64)
    }

    @Test func reserveOnlyRaisesTheCap() {
        let pool = BufferPool.shared
        let cap = pool.capacity
        pool.reserve(atLeast: cap / 2)
        #expect(pool.capacity == cap)
        #expect(cap >= BufferPool.defaultCapacity)
    }
}
