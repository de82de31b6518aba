import CheckpointCore
import ModelArchitecture

/// Where Taylor importance gets its gradients: the seam between pruning and a backward pass.
///
/// An implementation runs one forward/backward pass of the causal-LM loss (labels = inputs, mean
/// over every predicted token of the batch) on the model at `model` (any path Shears opens as a
/// model: a folder, a `.ctz` or a GGUF file), and hands every
/// parameter to `consumer` as soon as its gradient is complete, so that whole-model gradients
/// never exist at once. With `fisher`, it also hands over Σ_s (∂L_s/∂W)², L_s being sample s's own
/// mean loss (``ParameterView/fisherSum``, with ``ParameterView/samples`` = the batch size).
///
/// For step 1 the folder is the source model; for later iterative steps it is the partially
/// pruned model, whose `config.json` carries per-layer widths (formats/pruned-config-output.md).
///
/// The engine's adapter (Engine's `LlamaModel.backward(_:consumer:)` streams `ParameterGradient`s):
///
/// ```swift
/// struct EngineGradientSource: GradientSource {
///     func computeGradients(model: String, batch: [[Int32]], fisher: Bool,
///                           consumer: (ParameterView) throws -> Void) throws -> Double {
///         let model = try LlamaModel(path: model)
///         return try withoutActuallyEscaping(consumer) { body in
///             final class Forward: GradientConsumer {
///                 let wantsFisher: Bool, samples: Int, body: (ParameterView) throws -> Void
///                 init(_ f: Bool, _ n: Int, _ b: @escaping (ParameterView) throws -> Void) { wantsFisher = f; samples = n; body = b }
///                 func consume(_ g: ParameterGradient) throws {
///                     try g.weight.withUnsafeBufferPointer { w in
///                         try g.gradient.withUnsafeBufferPointer { d in
///                             try (g.fisher ?? g.gradient).withUnsafeBufferPointer { f in
///                                 try body(ParameterView(layer: g.layer, name: g.name, rows: g.weight.rows, cols: g.weight.cols,
///                                                        weight: w, gradient: d, fisherSum: g.fisher == nil ? nil : f, samples: samples))
///                             }
///                         }
///                     }
///                 }
///             }
///             return Double(try model.backward(TokenBatch(batch), consumer: Forward(fisher, batch.count, body)).loss)
///         }
///     }
/// }
/// ```
public protocol GradientSource {
    /// - Returns: the batch's mean loss.
    @discardableResult
    func computeGradients(model: String, batch: [[Int32]], fisher: Bool,
                          consumer: (ParameterView) throws -> Void) throws -> Double

    /// The same, told which parameters outside the decoder layers (the embedding and LM head,
    /// by full name) the consumer uses: a source may skip the others' gradients (the engine then
    /// never builds a whole `[vocab, hidden]` matrix). The default ignores `wanting`.
    @discardableResult
    func computeGradients(model: String, batch: [[Int32]], fisher: Bool, wanting: (String) -> Bool,
                          consumer: (ParameterView) throws -> Void) throws -> Double
}

extension GradientSource {
    @discardableResult
    public func computeGradients(model: String, batch: [[Int32]], fisher: Bool, wanting: (String) -> Bool,
                                 consumer: (ParameterView) throws -> Void) throws -> Double {
        try computeGradients(model: model, batch: batch, fisher: fisher, consumer: consumer)
    }
}

/// A gradient source that has none: `--importance taylor` in a build without the engine.
public struct UnavailableGradientSource: GradientSource {
    public init() {}
    public func computeGradients(model: String, batch: [[Int32]], fisher: Bool,
                                 consumer: (ParameterView) throws -> Void) throws -> Double {
        throw CheckpointError(.invalidArgument, "taylor needs the engine; not available in this build")
    }
}

/// Gradients recorded in safetensors files (the PyTorch goldens): `gradients` holds each
/// parameter's gradient under its own name and, for the Fisher variants, `fisher` holds the
/// per-sample squared-gradient sums; `samples` is the batch size they were computed on. The model
/// weights come from the folder `model`; the batch is ignored (it was fixed when the files were made).
public struct RecordedGradientSource: GradientSource {
    public let gradients: String
    public let fisher: String?
    public let samples: Int

    public init(gradients: String, fisher: String?, samples: Int) {
        self.gradients = gradients
        self.fisher = fisher
        self.samples = samples
    }

    public func computeGradients(model: String, batch: [[Int32]], fisher wantsFisher: Bool,
                                 consumer: (ParameterView) throws -> Void) throws -> Double {
        let model = try Checkpoint.open(model)
        let description = try ModelDescription(configPath: FileSystem.join(model.folder, "config.json"), store: model)
        let grads = try Checkpoint.open(gradients)
        let fisherFile = try wantsFisher ? fisher.map { (p) throws(CheckpointError) in try Checkpoint.open(p) } : nil
        if wantsFisher && fisherFile == nil { throw CheckpointError(.invalidArgument, "no Fisher sums were recorded", path: gradients) }
        for name in grads.tensorNames {
            guard model.info(named: name) != nil else { continue }
            let wv = try model.tensor(named: name)
            let gv = try grads.tensor(named: name)
            guard wv.shape == gv.shape else {
                throw CheckpointError(.shapeMismatch, "gradient shape \(gv.shape) differs from the weight's \(wv.shape)", path: gradients, tensor: name)
            }
            let (rows, cols) = try matrixShape(wv.info)
            let w = try wv.floats(), g = try gv.floats()
            let f = try fisherFile.map { (ff) throws(CheckpointError) in try ff.tensor(named: name).floats() }
            if let f, f.count != w.count { throw CheckpointError(.shapeMismatch, "Fisher sum has the wrong size", path: fisher, tensor: name) }
            try w.withUnsafeBufferPointer { wb in
                try g.withUnsafeBufferPointer { gb in
                    try (f ?? []).withUnsafeBufferPointer { fb in
                        let p = try ParameterView(layer: description.tensors.layerIndex(of: name)?.layer, name: name, rows: rows, cols: cols,
                                                  weight: wb, gradient: gb, fisherSum: f == nil ? nil : fb, samples: samples)
                        try consumer(p)
                    }
                }
            }
        }
        return .nan
    }
}

/// A model as the estimators read it: the path a ``GradientSource`` or ``ActivationSource`` opens,
/// and its tensors (the source itself for the unpruned plan, else a written intermediate folder).
public struct MaterializedModel {
    public let path: String
    public let store: any TensorStore
    public init(path: String, store: any TensorStore) {
        self.path = path
        self.store = store
    }
}
