#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Picks the next token from logits: greedy at temperature 0, otherwise softmax sampling at
/// `temperature` restricted to the nucleus of probability `topP`, from a seeded generator.
public struct Sampler: Sendable {
    public var temperature: Float
    public var topP: Float
    private var state: UInt64

    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0) {
        precondition(temperature >= 0 && topP > 0 && topP <= 1)
        self.temperature = temperature
        self.topP = topP
        state = seed &+ 0x9E37_79B9_7F4A_7C15
    }

    /// SplitMix64.
    private mutating func nextRandom() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    private mutating func uniform() -> Double { Double(nextRandom() >> 11) / Double(1 << 53) }

    /// The index of the first largest logit (as `torch.argmax`).
    public static func argmax(_ logits: [Float]) -> Int32 {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }

    public mutating func sample(_ logits: [Float]) -> Int32 {
        guard temperature > 0 else { return Self.argmax(logits) }
        let m = logits.max() ?? 0
        var p = logits.map { Double(expf(($0 - m) / temperature)) }
        let z = p.reduce(0, +)
        for i in p.indices { p[i] /= z }
        var order = Array(p.indices)
        if topP < 1 {
            order.sort { p[$0] > p[$1] }
            var cum = 0.0, keep = 0
            for i in order {
                cum += p[i]
                keep += 1
                if cum >= Double(topP) { break }
            }
            order = Array(order[..<keep])
        }
        let total = order.reduce(0.0) { $0 + p[$1] }
        var r = uniform() * total
        for i in order {
            r -= p[i]
            if r < 0 { return Int32(i) }
        }
        return Int32(order.last!)
    }
}
