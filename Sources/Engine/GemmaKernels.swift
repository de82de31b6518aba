#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import ShearsConcurrency

/// The elementwise pieces Gemma adds to the LLaMA layer: GELU (tanh approximation), tanh
/// soft-capping and (1 + w) norm weights.
enum GemmaKernels {
    /// √(2/π), as PyTorch's `gelu(approximate="tanh")` uses it.
    static let geluC: Float = 0.797_884_560_802_865_4
    static let geluA: Float = 0.044715

    /// PyTorch's `gelu_pytorch_tanh`: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    @inline(__always) static func gelu(_ x: Float) -> Float {
        let t = tanhf(geluC * (x + geluA * x * x * x))
        return 0.5 * x * (1 + t)
    }

    /// d gelu / dx = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²).
    @inline(__always) static func geluDerivative(_ x: Float) -> Float {
        let t = tanhf(geluC * (x + geluA * x * x * x))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * geluC * (1 + 3 * geluA * x * x)
    }

    /// x ← tanh(x / cap) · cap for `n` values.
    static func softcap(_ p: UnsafeMutablePointer<Float>, _ n: Int, cap: Float) {
        let inv = 1 / cap
        for j in 0..<n { p[j] = tanhf(p[j] * inv) * cap }
    }
}

extension Matrix {
    /// A copy with `offset` added to every entry (Gemma's 1 + w norm weights).
    func plus(_ offset: Float) -> Matrix {
        let m = Matrix(uninitializedRows: rows, cols: cols)
        for i in 0..<count { m.storage[i] = storage[i] + offset }
        return m
    }
}

extension LogitTransform {
    /// Gemma 2's final soft-cap `cap·tanh(z/cap)`, with its derivative `1 − (y/cap)²`.
    static func softcap(_ cap: Float) -> LogitTransform {
        LogitTransform(
            forward: { p, n in GemmaKernels.softcap(p, n, cap: cap) },
            backward: { dy, y, n in
                let inv = 1 / cap
                for j in 0..<n { let t = y[j] * inv; dy[j] *= 1 - t * t }
            })
    }
}
