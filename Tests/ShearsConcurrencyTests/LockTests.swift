import Dispatch
import Testing
import ShearsConcurrency

@Suite struct LockTests {
    /// A counter whose read-modify-write is not atomic: without the lock, concurrent increments
    /// are lost.
    final class Counter: @unchecked Sendable {
        let lock = Lock()
        var value = 0
    }

    @Test func protectsACounterUnderConcurrentPerform() {
        let counter = Counter()
        let iterations = 64, increments = 10_000
        DispatchQueue.concurrentPerform(iterations: iterations) { _ in
            for _ in 0..<increments {
                counter.lock.withLock { counter.value += 1 }
            }
        }
        #expect(counter.value == iterations * increments)
    }

    @Test func returnsTheBodysValueAndCanBeTakenAgain() {
        let lock = Lock()
        #expect(lock.withLock { 41 + 1 } == 42)
        #expect(lock.withLock { "again" } == "again")
    }

    struct Failure: Error, Equatable { var code: Int }

    @Test func releasesTheLockWhenTheBodyThrowsAndKeepsTheErrorType() {
        let lock = Lock()
        #expect(throws: Failure(code: 7)) {
            try lock.withLock { () throws(Failure) -> Int in throw Failure(code: 7) }
        }
        // Not left locked by the throw: taking it again returns (a leaked lock would deadlock).
        #expect(lock.withLock { true })
    }
}
