/// Sebastiano Vigna's SplitMix64: a small, fully specified generator whose whole state is one
/// `UInt64`, so that a run can be saved and resumed, and a Python reference can draw the same
/// numbers. Shared by calibration sampling, random importance and LoRA initialisation.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1): the top 53 bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
}
