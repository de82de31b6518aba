/// Root-mean-square normalisation as LLaMA uses it: `y = w ∘ x / sqrt(mean(x²) + ε)`, per row.
enum RMSNorm {
    /// Returns `y` and the per-row reciprocal RMS `r` (kept for the backward pass).
    static func forward(_ x: Matrix, weight: Matrix, eps: Float) -> (y: Matrix, inverseRMS: [Float]) {
        precondition(weight.count == x.cols, "RMSNorm: weight \(weight.count) for width \(x.cols)")
        let y = Matrix(rows: x.rows, cols: x.cols)
        var inv = [Float](repeating: 0, count: x.rows)
        let n = x.cols, w = weight.storage
        for r in 0..<x.rows {
            let px = x.storage + r * n, py = y.storage + r * n
            var s: Double = 0
            for j in 0..<n { s += Double(px[j]) * Double(px[j]) }
            let ir = Float(1 / (s / Double(n) + Double(eps)).squareRoot())
            inv[r] = ir
            for j in 0..<n { py[j] = w[j] * (px[j] * ir) }
        }
        return (y, inv)
    }

    /// `dx (+)= ∂L/∂x` from `dy`; adds the weight gradient `Σ_rows dy ∘ x̂` to `weightGradient`.
    ///
    /// With x̂ = x·r: dx = r·(dx̂ − x̂·mean(dx̂ ∘ x̂)), dx̂ = dy ∘ w.
    static func backward(x: Matrix, inverseRMS: [Float], weight: Matrix, dy: Matrix, dx: Matrix, accumulate: Bool,
                         weightGradient: GradientAccumulator) {
        let n = x.cols, w = weight.storage
        let xhat = Matrix(rows: x.rows, cols: n)
        for r in 0..<x.rows {
            let ir = inverseRMS[r]
            let px = x.storage + r * n, ph = xhat.storage + r * n, pdy = dy.storage + r * n, pdx = dx.storage + r * n
            var dot: Double = 0
            for j in 0..<n {
                ph[j] = px[j] * ir
                dot += Double(pdy[j] * w[j]) * Double(ph[j])
            }
            let m = Float(dot / Double(n))
            if accumulate {
                for j in 0..<n { pdx[j] += ir * (pdy[j] * w[j] - ph[j] * m) }
            } else {
                for j in 0..<n { pdx[j] = ir * (pdy[j] * w[j] - ph[j] * m) }
            }
        }
        weightGradient.addColumnDots(dy, xhat)
    }
}
