/// A value that crosses into concurrently run closures although it is not `Sendable`.
///
/// Swift 6 rejects capturing unsafe pointers (and other non-`Sendable` values) in the `@Sendable`
/// closures that ``parallelFor(workers:_:)`` runs. Wrapping the value here states that the caller
/// keeps the access safe: typically each worker reads shared input and writes only its own,
/// disjoint part of an output buffer, or uses only its own element of an array of codecs.
///
/// ```swift
/// let out = UnsafeSendable(buffer.baseAddress!)
/// parallelFor(workers: 2) { w in out.value[w] = compute(w) }
/// ```
///
/// ### See Also
/// - ``SharedSlots``
public struct UnsafeSendable<T>: @unchecked Sendable {
    /// The wrapped value.
    public let value: T

    /// Wraps `value`.
    public init(_ value: T) { self.value = value }
}
