import CheckpointCore
import Engine
import Pruning

/// Taylor importance's gradients from the CPU engine: one forward/backward pass of the causal-LM
/// loss over the calibration batch, each parameter handed to the pruner as soon as the engine has
/// finished its gradient (and, for the Fisher variants, the per-sample squared-gradient sums of
/// the same pass), so that memory stays at one layer.
public struct EngineGradientSource: GradientSource {
    /// Bytes for projections kept from the forward pass (``LlamaModel/activationMemory``).
    public var activationMemory = 0

    public init(activationMemory: Int = 0) { self.activationMemory = activationMemory }

    public func computeGradients(model path: String, batch: [[Int32]], fisher: Bool,
                                 consumer: (ParameterView) throws -> Void) throws -> Double {
        let model = try ModelSource.open(path).engineModel()
        model.activationMemory = activationMemory
        let tokens = try TokenBatch(batch)
        return try withoutActuallyEscaping(consumer) { body in
            let forward = Forward(wantsFisher: fisher, samples: batch.count, body: body)
            return try model.backward(tokens, consumer: forward).loss
        }
    }

    /// Hands each `ParameterGradient` to the pruner as a `ParameterView` over the engine's buffers.
    private final class Forward: GradientConsumer {
        let wantsFisher: Bool
        let samples: Int
        let body: (ParameterView) throws -> Void

        init(wantsFisher: Bool, samples: Int, body: @escaping (ParameterView) throws -> Void) {
            self.wantsFisher = wantsFisher
            self.samples = samples
            self.body = body
        }

        func consume(_ g: ParameterGradient) throws {
            try g.weight.withUnsafeBufferPointer { (w) throws in
                try g.gradient.withUnsafeBufferPointer { (d) throws in
                    if let fisher = g.fisher {
                        try fisher.withUnsafeBufferPointer { (f) throws in
                            try body(ParameterView(layer: g.layer, name: g.name, rows: g.weight.rows, cols: g.weight.cols,
                                                   weight: w, gradient: d, fisherSum: f, samples: samples))
                        }
                    } else {
                        try body(ParameterView(layer: g.layer, name: g.name, rows: g.weight.rows, cols: g.weight.cols,
                                               weight: w, gradient: d, fisherSum: nil, samples: samples))
                    }
                }
            }
        }
    }
}
