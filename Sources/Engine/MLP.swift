import ShearsConcurrency
/// The SwiGLU feed-forward block: `down(silu(gate(x)) ∘ up(x))`; with `gelu`, Gemma's GeGLU
/// `down(gelu_tanh(gate(x)) ∘ up(x))`.
struct MLP {
    let gate: Linear, up: Linear, down: Linear
    var gelu = false

    struct Saved {
        let g: Matrix, u: Matrix, a: Matrix
    }

    func forward(_ x: Matrix) -> (Matrix, Saved) {
        let saved = activations(x)
        return (down.forward(saved.a), saved)
    }

    /// The gate, up and SwiGLU activations without the down projection (all the backward pass needs).
    func activations(_ x: Matrix) -> Saved {
        activations(gate: gate.forward(x), up: up.forward(x))
    }

    /// The SwiGLU activations from the gate and up projections' outputs.
    func activations(gate g: Matrix, up u: Matrix) -> Saved {
        let a = Matrix(uninitializedRows: g.rows, cols: g.cols)
        let pg = UnsafeSendable(g.storage), pu = UnsafeSendable(u.storage), pa = UnsafeSendable(a.storage)
        if gelu {
            Parallel.chunks(g.count, costPerItem: 20) { r in
                let pg = pg.value, pu = pu.value, pa = pa.value
                for i in r { pa[i] = GemmaKernels.gelu(pg[i]) * pu[i] }
            }
            return Saved(g: g, u: u, a: a)
        }
        Parallel.chunks(g.count, costPerItem: 8) { r in
            let pg = pg.value, pu = pu.value, pa = pa.value
            for i in r {
                let z = pg[i]
                pa[i] = z * Kernels.sigmoid(z) * pu[i]
            }
        }
        return Saved(g: g, u: u, a: a)
    }

    /// `dx (+)=` the input gradient; weight gradients into `grads` (gate, up, down order).
    func backward(x: Matrix, saved s: Saved, dy: Matrix, dx: Matrix, accumulate: Bool, grads: LayerGradients?) {
        down.backwardWeights(x: s.a, dy: dy, weightGradient: grads?.down, biasGradient: grads?.downBias)
        let da = Matrix(uninitializedRows: s.a.rows, cols: s.a.cols)
        down.backwardInput(dy, into: da, accumulate: false)
        // da → dg, du in place: du = da·silu(g); dg = da·u·σ(g)·(1 + g·(1 − σ(g))).
        let du = Matrix(uninitializedRows: da.rows, cols: da.cols)
        let pg = UnsafeSendable(s.g.storage), pu = UnsafeSendable(s.u.storage)
        let pda = UnsafeSendable(da.storage), pdu = UnsafeSendable(du.storage)
        if gelu {
            Parallel.chunks(da.count, costPerItem: 24) { r in
                let pg = pg.value, pu = pu.value, pda = pda.value, pdu = pdu.value
                for i in r {
                    let z = pg[i], d = pda[i]
                    pdu[i] = d * GemmaKernels.gelu(z)
                    pda[i] = d * pu[i] * GemmaKernels.geluDerivative(z)
                }
            }
        } else {
        Parallel.chunks(da.count, costPerItem: 8) { r in
            let pg = pg.value, pu = pu.value, pda = pda.value, pdu = pdu.value
            for i in r {
                let z = pg[i], sg = Kernels.sigmoid(z), d = pda[i]
                pdu[i] = d * z * sg
                pda[i] = d * pu[i] * sg * (1 + z * (1 - sg))
            }
        }
        }
        let dg = da
        gate.backwardWeights(x: x, dy: dg, weightGradient: grads?.gate, biasGradient: grads?.gateBias)
        up.backwardWeights(x: x, dy: du, weightGradient: grads?.up, biasGradient: grads?.upBias)
        gate.backwardInput(dg, into: dx, accumulate: accumulate)
        up.backwardInput(du, into: dx, accumulate: true)
    }
}
