/// Keys (after rotary) and values of every layer for the tokens seen so far, so that generation
/// computes each new token against the cache instead of re-running the prefix.
public final class KVCache {
    public let capacity: Int
    /// Tokens cached.
    public private(set) var length = 0
    var keys: [Matrix]
    var values: [Matrix]

    /// An empty cache for `architecture` with room for `capacity` tokens.
    public init(architecture a: LlamaArchitecture, capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        keys = a.layers.map { Matrix(rows: capacity, cols: $0.numKeyValueHeads * a.headDim) }
        values = a.layers.map { Matrix(rows: capacity, cols: $0.numKeyValueHeads * a.headDim) }
    }

    /// Marks `n` more tokens as cached (after every layer has written them).
    func advance(by n: Int) {
        precondition(length + n <= capacity)
        length += n
    }

    /// Forgets every token.
    public func reset() { length = 0 }
}
