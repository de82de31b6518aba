/// A counter shared by worker threads: each worker takes the next item index from it, so that
/// items of uneven size (tensors, files) spread over the workers without a fixed split.
public final class AtomicCounter: @unchecked Sendable {
    private var value = 0
    private let lock = Lock()

    public init() {}

    /// Returns the current value and adds one.
    public func increment() -> Int { lock.withLock { defer { value += 1 }; return value } }
}
