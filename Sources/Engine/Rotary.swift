#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import ModelArchitecture
import ShearsConcurrency

/// Rotary position embeddings in Hugging Face's rotate-half layout: within each head, element i
/// and element i + d/2 form a pair rotated by position·inv_freq[i].
///
/// The tables follow transformers' float32 computation (inverse frequencies, position products
/// and cos/sin in float32, even when the model runs in float64), so angles agree to the last bit
/// that matters.
public struct Rotary: Sendable {
    public let headDim: Int
    /// The leading dimensions of each head that are turned (partial rotary: fewer than headDim;
    /// the rest pass through).
    public let rotaryDimensions: Int
    /// Inverse frequencies, rotaryDimensions/2 of them, after scaling.
    public let inverseFrequencies: [Float]
    /// The factor cos and sin are multiplied by (longrope's attention factor; else 1).
    public let attentionFactor: Float
    private(set) var cos: [Float] = []
    private(set) var sin: [Float] = []
    public private(set) var positions: Int = 0

    /// - Parameters:
    ///   - rotaryDimensions: the turned dimensions per head (default: all of them).
    ///   - long: for longrope, the long factors (sequences beyond the original context) instead
    ///     of the short ones.
    public init(headDim: Int, theta: Double, scaling: RotaryScaling, rotaryDimensions: Int? = nil, long: Bool = false) {
        let dim = rotaryDimensions ?? headDim
        precondition(dim % 2 == 0 && dim > 0 && dim <= headDim)
        self.headDim = headDim
        self.rotaryDimensions = dim
        let half = dim / 2
        var inv = (0..<half).map { i -> Float in
            let e = Float(2 * i) / Float(dim)
            return Float(1.0 / Float(pow(theta, Double(e))))
        }
        var attention: Float = 1
        switch scaling {
        case .none: break
        case .linear(let factor): inv = inv.map { $0 / Float(factor) }
        case .llama3(let factor, let low, let high, let original):
            let f = Float(factor), lo = Float(low), hi = Float(high), old = Float(original)
            let lowWavelen = old / lo, highWavelen = old / hi
            inv = inv.map { fr in
                let wavelen = 2 * Float.pi / fr
                var out = wavelen > lowWavelen ? fr / f : fr
                if !(wavelen < highWavelen) && !(wavelen > lowWavelen) {
                    let smooth = (old / wavelen - lo) / (hi - lo)
                    out = (1 - smooth) * out / f + smooth * out
                }
                return out
            }
        case .longRope(let short, let longFactors, let a, _):
            // transformers: 1 / (ext · theta^(2i/d)), in float32.
            let ext = long ? longFactors : short
            precondition(ext.count == half, "Rotary: longrope factors for \(ext.count) pairs, the head turns \(half)")
            inv = (0..<half).map { i in
                let base = Float(pow(theta, Double(Float(2 * i) / Float(dim))))
                return 1 / (Float(ext[i]) * base)
            }
            attention = Float(a)
        }
        inverseFrequencies = inv
        attentionFactor = attention
    }

    /// Makes the tables cover positions 0 ..< n.
    public mutating func reserve(_ n: Int) {
        guard n > positions else { return }
        let half = rotaryDimensions / 2, a = attentionFactor
        var c = [Float](repeating: 0, count: n * half), s = c
        for p in 0..<n {
            for i in 0..<half {
                let angle = Float(p) * inverseFrequencies[i]
                c[p * half + i] = Float(Foundation_cos(Double(angle)))
                s[p * half + i] = Float(Foundation_sin(Double(angle)))
                if a != 1 {
                    c[p * half + i] *= a
                    s[p * half + i] *= a
                }
            }
        }
        cos = c
        sin = s
        positions = n
    }

    /// Rotates every head of `rows` rows of `x` (row stride `ld`, `heads` heads of `headDim`),
    /// row r at position `position(r)`: the pairs (i, i + rotaryDimensions/2) of each head's first
    /// rotaryDimensions entries. `inverse` applies the transpose (for the backward pass).
    func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, ld: Int, heads: Int, inverse: Bool, position: (Int) -> Int) {
        let half = rotaryDimensions / 2, headDim = headDim, positions = positions
        let px = UnsafeSendable(x)
        cos.withUnsafeBufferPointer { cb in
            sin.withUnsafeBufferPointer { sb in
                let cb = UnsafeSendable(cb.baseAddress!), sb = UnsafeSendable(sb.baseAddress!)
                Parallel.chunks(rows, costPerItem: 3 * heads * headDim) { rowRange in
                    for r in rowRange {
                        let p = position(r)
                        precondition(p < positions, "Rotary: position \(p) beyond the tables (\(positions))")
                        let c = cb.value + p * half
                        let s = sb.value + p * half
                        for h in 0..<heads {
                            let v = px.value + r * ld + h * headDim
                            if inverse {
                                for i in 0..<half {
                                    let a = v[i], b = v[i + half]
                                    v[i] = a * c[i] + b * s[i]
                                    v[i + half] = b * c[i] - a * s[i]
                                }
                            } else {
                                for i in 0..<half {
                                    let a = v[i], b = v[i + half]
                                    v[i] = a * c[i] - b * s[i]
                                    v[i + half] = b * c[i] + a * s[i]
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

@inline(__always) private func Foundation_cos(_ x: Double) -> Double { cos(x) }
@inline(__always) private func Foundation_sin(_ x: Double) -> Double { sin(x) }
