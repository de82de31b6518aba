/// One parameter's gradient, handed over as soon as the backward pass has finished it.
public struct ParameterGradient: @unchecked Sendable {
    /// The decoder layer, or nil for the embedding, final norm and LM head.
    public let layer: Int?
    /// The full Hugging Face parameter name, as the model's family spells it
    /// (``ModelDescription/name(_:_:layer:)``).
    public let name: String
    /// The weight in F32, shaped as the gradient (vectors as `[1, n]`).
    public let weight: Matrix
    /// dL/dW of the batch's mean loss.
    public let gradient: Matrix
    /// Σ over samples of (dL_s/dW)², L_s being sample s's own mean loss: the empirical Fisher
    /// diagonal times the number of samples. Present when the consumer asked for it.
    public let fisher: Matrix?
}

/// Receives gradients layer by layer during ``LlamaModel/backward(_:consumer:)``: the LM head
/// (untied models) and final norm first, then layers from last to first, then the embedding.
/// After `consume` returns, the engine drops its references, so memory stays at one layer.
public protocol GradientConsumer: AnyObject {
    /// Whether to compute the per-sample squared-gradient sums (``ParameterGradient/fisher``).
    var wantsFisher: Bool { get }
    /// Whether the embedding's or LM head's gradient is wanted (`layer` nil); decoder layers'
    /// and the final norm's always come. Not wanting them lets the engine skip the two
    /// `[vocab, hidden]` gradient matrices and read the head in blocks. Default: true.
    func wantsGradient(of name: String, layer: Int?) -> Bool
    func consume(_ gradient: ParameterGradient) throws
}

extension GradientConsumer {
    public func wantsGradient(of name: String, layer: Int?) -> Bool { true }
}

/// Keeps every gradient: for tests and small models.
public final class GradientCollector: GradientConsumer {
    public let wantsFisher: Bool
    public private(set) var gradients: [String: ParameterGradient] = [:]
    /// Names in the order they arrived.
    public private(set) var order: [String] = []

    public init(fisher: Bool = false) { wantsFisher = fisher }

    public func consume(_ gradient: ParameterGradient) throws {
        gradients[gradient.name] = gradient
        order.append(gradient.name)
    }
}
