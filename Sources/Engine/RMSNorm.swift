import ShearsConcurrency
/// Root-mean-square normalisation as LLaMA uses it: `y = w ∘ x / sqrt(mean(x²) + ε)`, per row; with
/// `offset` 1, Gemma's `y = (1 + w) ∘ x / sqrt(mean(x²) + ε)`.
enum RMSNorm {
    /// Returns `y` and the per-row reciprocal RMS `r` (kept for the backward pass).
    static func forward(_ x: Matrix, weight: Matrix, eps: Float, offset: Float = 0) -> (y: Matrix, inverseRMS: [Float]) {
        precondition(weight.count == x.cols, "RMSNorm: weight \(weight.count) for width \(x.cols)")
        let y = Matrix(uninitializedRows: x.rows, cols: x.cols)
        var inv = [Float](repeating: 0, count: x.rows)
        let n = x.cols
        let w = UnsafeSendable(weight.storage), px0 = UnsafeSendable(x.storage), py0 = UnsafeSendable(y.storage)
        inv.withUnsafeMutableBufferPointer { ib in
            let pinv = UnsafeSendable(ib.baseAddress!)
            Parallel.chunks(x.rows, costPerItem: 4 * n) { rows in
                let w = w.value
                for r in rows {
                    let px = px0.value + r * n, py = py0.value + r * n
                    let s = Kernels.sumOfSquares(px, n)
                    let ir = Float(1 / (s / Double(n) + Double(eps)).squareRoot())
                    pinv.value[r] = ir
                    if offset == 0 {
                        for j in 0..<n { py[j] = w[j] * (px[j] * ir) }
                    } else {
                        for j in 0..<n { py[j] = (offset + w[j]) * (px[j] * ir) }
                    }
                }
            }
        }
        return (y, inv)
    }

    /// `dx (+)= ∂L/∂x` from `dy`; adds the weight gradient `Σ_rows dy ∘ x̂` to `weightGradient`.
    ///
    /// With x̂ = x·r: dx = r·(dx̂ − x̂·mean(dx̂ ∘ x̂)), dx̂ = dy ∘ (offset + w).
    static func backward(x: Matrix, inverseRMS: [Float], weight: Matrix, dy: Matrix, dx: Matrix, accumulate: Bool,
                         weightGradient: GradientAccumulator?, offset: Float = 0) {
        let n = x.cols
        let weight = offset == 0 ? weight : weight.plus(offset)
        let w = UnsafeSendable(weight.storage), px0 = UnsafeSendable(x.storage), pdy0 = UnsafeSendable(dy.storage)
        let pdx0 = UnsafeSendable(dx.storage)
        inverseRMS.withUnsafeBufferPointer { ib in
            let pinv = UnsafeSendable(ib.baseAddress!)
            Parallel.chunks(x.rows, costPerItem: 6 * n) { rows in
                let w = w.value
                for r in rows {
                    let ir = pinv.value[r]
                    let px = px0.value + r * n, pdy = pdy0.value + r * n, pdx = pdx0.value + r * n
                    // Σ (dy·w)(x·r) in Double, eight partial sums.
                    var acc = SIMD8<Double>()
                    var j = 0
                    while j + 8 <= n {
                        let dyw = UnsafeRawPointer(pdy + j).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(w + j).loadUnaligned(as: SIMD8<Float>.self)
                        let xh = UnsafeRawPointer(px + j).loadUnaligned(as: SIMD8<Float>.self) * ir
                        acc += SIMD8<Double>(dyw) * SIMD8<Double>(xh)
                        j += 8
                    }
                    var dot = acc.sum()
                    while j < n { dot += Double(pdy[j] * w[j]) * Double(px[j] * ir); j += 1 }
                    let m = Float(dot / Double(n))
                    if accumulate {
                        for j in 0..<n { pdx[j] += ir * (pdy[j] * w[j] - (px[j] * ir) * m) }
                    } else {
                        for j in 0..<n { pdx[j] = ir * (pdy[j] * w[j] - (px[j] * ir) * m) }
                    }
                }
            }
            withExtendedLifetime(weight) {}
            // Σ_rows dy ∘ x̂, with x̂ = x·r formed on the fly.
            weightGradient?.addColumnReduction { r0, r1, cols, out in
                for r in r0..<r1 {
                    let ir = pinv.value[r], px = px0.value + r * n, pdy = pdy0.value + r * n
                    for j in cols { out[j] += pdy[j] * (px[j] * ir) }
                }
            }
        }
    }
}

/// RMSNorm of every attention head separately (Qwen3's q/k norm): row r of `x` (`[rows, heads·d]`)
/// holds `heads` vectors of `d` channels, each normalised over its own `d` channels and scaled by
/// the one weight `w` (`[1, d]`) all heads share.
enum HeadNorm {
    /// Returns `y` and the reciprocal RMS of each (row, head), index `r·heads + h`.
    static func forward(_ x: Matrix, weight: Matrix, heads: Int, eps: Float, offset: Float = 0) -> (y: Matrix, inverseRMS: [Float]) {
        let weight = offset == 0 ? weight : weight.plus(offset)
        let d = weight.count
        precondition(d * heads == x.cols, "HeadNorm: weight \(d) × \(heads) heads for width \(x.cols)")
        let y = Matrix(uninitializedRows: x.rows, cols: x.cols)
        var inv = [Float](repeating: 0, count: x.rows * heads)
        guard heads > 0 else { return (y, inv) }
        let w = UnsafeSendable(weight.storage), px0 = UnsafeSendable(x.storage), py0 = UnsafeSendable(y.storage)
        inv.withUnsafeMutableBufferPointer { ib in
            let pinv = UnsafeSendable(ib.baseAddress!)
            Parallel.chunks(x.rows * heads, costPerItem: 4 * d) { items in
                let w = w.value
                for i in items {
                    let px = px0.value + i * d, py = py0.value + i * d
                    let s = Kernels.sumOfSquares(px, d)
                    let ir = Float(1 / (s / Double(d) + Double(eps)).squareRoot())
                    pinv.value[i] = ir
                    for j in 0..<d { py[j] = w[j] * (px[j] * ir) }
                }
            }
        }
        withExtendedLifetime(weight) {}
        return (y, inv)
    }

    /// Returns dL/dx for `dy`, adding `Σ_rows Σ_heads dy ∘ x̂` to `weightGradient` (`[1, d]`).
    static func backward(x: Matrix, inverseRMS: [Float], weight: Matrix, heads: Int, dy: Matrix,
                         weightGradient: GradientAccumulator?, offset: Float = 0) -> Matrix {
        let weight = offset == 0 ? weight : weight.plus(offset)
        let d = weight.count, cols = x.cols
        let dx = Matrix(rows: x.rows, cols: x.cols)
        guard heads > 0 else { return dx }
        let w = UnsafeSendable(weight.storage), px0 = UnsafeSendable(x.storage), pdy0 = UnsafeSendable(dy.storage)
        let pdx0 = UnsafeSendable(dx.storage)
        inverseRMS.withUnsafeBufferPointer { ib in
            let pinv = UnsafeSendable(ib.baseAddress!)
            Parallel.chunks(x.rows * heads, costPerItem: 6 * d) { items in
                let w = w.value
                for i in items {
                    let ir = pinv.value[i]
                    let px = px0.value + i * d, pdy = pdy0.value + i * d, pdx = pdx0.value + i * d
                    var dot = 0.0
                    for j in 0..<d { dot += Double(pdy[j] * w[j]) * Double(px[j] * ir) }
                    let m = Float(dot / Double(d))
                    for j in 0..<d { pdx[j] = ir * (pdy[j] * w[j] - (px[j] * ir) * m) }
                }
            }
            weightGradient?.addColumnReduction { r0, r1, js, out in
                for r in r0..<r1 {
                    for h in 0..<heads {
                        let ir = pinv.value[r * heads + h], o = r * cols + h * d
                        let px = px0.value + o, pdy = pdy0.value + o
                        for j in js { out[j] += pdy[j] * (px[j] * ir) }
                    }
                }
            }
        }
        withExtendedLifetime(weight) {}
        return dx
    }
}
