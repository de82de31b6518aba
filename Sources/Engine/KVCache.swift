import ModelArchitecture

/// Keys (after rotary) and values of every layer for the tokens seen so far, so that generation
/// computes each new token against the cache instead of re-running the prefix.
public final class KVCache {
    public let capacity: Int
    /// Tokens cached.
    public private(set) var length = 0
    var keys: [Matrix]
    var values: [Matrix]

    /// An empty cache for the model `description` with room for `capacity` tokens.
    public init(description d: ModelDescription, capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        keys = d.layers.map { Matrix(rows: capacity, cols: $0.keyValueWidth(headDim: d.headDim)) }
        values = d.layers.map { Matrix(rows: capacity, cols: $0.keyValueWidth(headDim: d.headDim)) }
    }

    /// Marks `n` more tokens as cached (after every layer has written them).
    func advance(by n: Int) {
        precondition(length + n <= capacity)
        length += n
    }

    /// Forgets every token.
    public func reset() { length = 0 }
}
