/// Result slots shared by worker threads that each write disjoint elements.
///
/// It is not an `Array`, so no exclusivity or copy-on-write checks race between the threads; the
/// caller makes sure that no two workers touch the same slot and that the slots are read only after
/// ``parallelFor(workers:_:)`` has returned.
public final class SharedSlots<T>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<T>
    /// The number of slots.
    public let count: Int

    /// Creates `count` slots holding `value`.
    public init(repeating value: T, count: Int) {
        self.count = count
        base = .allocate(capacity: max(1, count))
        base.initialize(repeating: value, count: count)
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    /// The slot at `i` (`0 ..< count`).
    public subscript(i: Int) -> T {
        get { precondition(i >= 0 && i < count); return base[i] }
        set { precondition(i >= 0 && i < count); base[i] = newValue }
    }

    /// Every slot's value, in order.
    public var values: [T] { Array(UnsafeBufferPointer(start: base, count: count)) }
}
