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
        try computeGradients(model: path, batch: batch, fisher: fisher, wanting: { _ in true }, consumer: consumer)
    }

    public func computeGradients(model path: String, batch: [[Int32]], fisher: Bool, wanting: (String) -> Bool,
                                 consumer: (ParameterView) throws -> Void) throws -> Double {
        let model = try ModelSource.open(path).engineModel()
        model.activationMemory = activationMemory
        let tokens = try TokenBatch(batch)
        return try withoutActuallyEscaping(consumer) { body in
            try withoutActuallyEscaping(wanting) { wanting in
                let forward = Forward(wantsFisher: fisher, samples: batch.count, wanting: wanting, body: body)
                return try model.backward(tokens, consumer: forward).loss
            }
        }
    }

    /// Hands each `ParameterGradient` to the pruner as a `ParameterView` over the engine's buffers.
    private final class Forward: GradientConsumer {
        let wantsFisher: Bool
        let samples: Int
        let body: (ParameterView) throws -> Void
        let wanting: (String) -> Bool

        init(wantsFisher: Bool, samples: Int, wanting: @escaping (String) -> Bool, body: @escaping (ParameterView) throws -> Void) {
            self.wantsFisher = wantsFisher
            self.samples = samples
            self.wanting = wanting
            self.body = body
        }

        func wantsGradient(of name: String, layer: Int?) -> Bool { layer != nil || wanting(name) }

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
